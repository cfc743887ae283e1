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
    if channels == 1:
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
