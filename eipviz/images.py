"""Read untrusted image uploads safely into RGB uint8 arrays."""

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from eipviz.errors import EipvizError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 30000x30000 "decompression bomb" is refused before decoding
ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp"]


def read_image(data: bytes, name: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3), EXIF-rotated; raises ``EipvizError`` with a reason for bad files."""
    if not data:
        raise EipvizError(f"{name} is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise EipvizError(f"{name} is {len(data) / 2**20:.0f} MB; images up to {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ACCEPTED_FORMATS:
                    raise EipvizError(f"{name} is a {image.format} file; upload PNG, JPEG, WebP or BMP.")
                if image.width * image.height > MAX_PIXELS:
                    raise EipvizError(f"{name} is {image.width}x{image.height} pixels, too large to decode "
                                      f"safely (limit {MAX_PIXELS:,} pixels).")
                image.seek(0)  # first frame of animations
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
    except EipvizError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise EipvizError(f"{name} declares too many pixels; it is too large to decode safely "
                          f"(limit {MAX_PIXELS:,} pixels).") from error
    except UnidentifiedImageError as error:
        raise EipvizError(f"{name} is not an image eipviz can read.") from error
    except (OSError, ValueError, SyntaxError) as error:  # truncated or malformed data
        raise EipvizError(f"{name} is damaged or truncated and cannot be decoded.") from error
    if min(rgb.shape[:2]) < 2:
        raise EipvizError(f"{name} is {rgb.shape[1]}x{rgb.shape[0]} pixels; it is too small to classify.")
    return rgb


def read_image_file(path) -> np.ndarray:
    """``read_image`` for a file on disk, refusing oversized files before reading them."""
    path = Path(path)
    if not path.is_file():
        raise EipvizError(f"Image {path} not found.")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise EipvizError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; "
                          f"images up to {MAX_IMAGE_BYTES // 2**20} MB.")
    return read_image(path.read_bytes(), path.name)


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        array = 255 * (array - array.min()) / max(1.0, array.max() - array.min())
        return np.repeat(array.astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize_note(image: np.ndarray, input_size: tuple) -> str | None:
    """A note for the user when the image does not already have the model's input size."""
    height, width, channels = input_size
    notes = []
    if image.shape[:2] != (height, width):
        notes.append(f"resized from {image.shape[1]}x{image.shape[0]} to {width}x{height}")
    if channels == 1 and image.ndim == 3 and image.shape[-1] != 1:  # an MNIST test image is grayscale already
        notes.append("converted to grayscale")
    return "; ".join(notes) or None


def fit_images(images: np.ndarray, size: tuple) -> np.ndarray:
    """Resize uint8 images (N, H, W[, C]) to the model's (height, width, channels) with OpenCV."""
    height, width, channels = size
    x = images if images.ndim == 4 else images[..., None]
    if x.shape[1:3] != (height, width):
        x = np.stack([cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA) for img in x])
        x = x if x.ndim == 4 else x[..., None]
    if x.shape[-1] != channels:
        x = x.mean(axis=-1, keepdims=True).astype(np.uint8) if channels == 1 else np.repeat(x, 3, axis=-1)
    return x


COLOUR_CHROMA = 12.0  # mean per-pixel channel spread (max - min) above which an image counts as colour
GRAY_CHROMA = 2.0  # ... and below which it is grayscale (CIFAR-10 test images: 5% under 8.4, 1% at 0)
LIGHT_BORDER = 128  # MNIST's digits sit on a black border (test set: border mean at most 8 of 255)


def suitability_notes(image: np.ndarray, dataset: str | None) -> list[str]:
    """Reasons why ``image`` (uint8, (H, W) or (H, W, C)) does not look like the ``dataset`` a model learned from.

    Empty when it looks fine or the dataset is unknown. A model still answers for any image, often with
    high confidence (a colour photo was called "8" at 94% by the MNIST model): these notes say why not to
    trust that answer.
    """
    pixels = np.asarray(image, dtype=np.float32)
    chroma = float((pixels.max(axis=-1) - pixels.min(axis=-1)).mean()) if pixels.ndim == 3 else 0.0
    gray = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    notes = []
    if dataset == "mnist":
        if chroma > COLOUR_CHROMA:
            notes.append("colour photo given to a grayscale digit model: MNIST holds handwritten digits only")
        if _border_mean(gray) > LIGHT_BORDER:
            notes.append("light background: MNIST digits are light on dark (a dark digit on white paper "
                         "needs inverting)")
    elif dataset == "cifar10" and chroma < GRAY_CHROMA:
        notes.append("grayscale image given to a colour photo model: CIFAR-10 holds colour photos of "
                     "its ten classes")
    return notes


def _border_mean(gray: np.ndarray) -> float:
    """Mean brightness of the outer tenth (at least one pixel) on each side."""
    width = max(1, min(gray.shape[:2]) // 10)
    border = np.concatenate([gray[:width].ravel(), gray[-width:].ravel(),
                             gray[:, :width].ravel(), gray[:, -width:].ravel()])
    return float(border.mean())
