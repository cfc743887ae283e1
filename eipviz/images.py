"""Read untrusted image uploads safely into RGB uint8 arrays."""

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from eipviz.errors import EipvizError, no_file_error

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 30000x30000 "decompression bomb" is refused before decoding
ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp"]
PREVIEW_SIDE = 256  # the longer side ``read_upload`` keeps: enough to show the image, 200 KB to keep it


@dataclass(frozen=True)
class DecodedImage:
    """An upload decoded for a model: small ``pixels`` to keep, and the file's own size for the resize note."""

    pixels: np.ndarray  # RGB uint8 (H, W, 3)
    original_size: tuple[int, int]  # (width, height) after EXIF rotation, before any shrinking
    grayscale: bool = False  # the file held no colour (``GRAY_MODES``): a one-channel model converts nothing


GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # Pillow's modes without colour


def read_image(data: bytes, name: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3) at full size, EXIF-rotated; raises ``EipvizError`` with a reason for bad files."""
    return read_upload(data, name).pixels


def read_upload(data: bytes, name: str = "image", model_side: int | None = None) -> DecodedImage:
    """``read_image``, but a large image is decoded straight down to about ``PREVIEW_SIDE`` (or ``model_side``).

    Its longer side becomes ``max(PREVIEW_SIDE, model_side)``, its shorter side stays at least ``model_side``.
    A JPEG is read at 1/2, 1/4 or 1/8 scale (``Image.draft``), other formats are area-averaged before they
    become an array: a 6300x6300 PNG peaked at 530 MB and kept 119 MB decoded whole; now it keeps 200 KB.
    """
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
                original_size = _displayed_size(image)
                grayscale = _holds_no_colour(image)
                if model_side is not None:
                    image = _shrunk(image, model_side)
                rgb = _to_rgb(ImageOps.exif_transpose(image))
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
    return DecodedImage(rgb, original_size, grayscale)


def _holds_no_colour(image: Image.Image) -> bool:
    """A grey mode, or a palette whose colours are all grey (PNG optimisers write grey scans as palettes)."""
    if image.mode in ("P", "PA"):
        palette = np.asarray(image.getpalette("RGB") or [0, 0, 0], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return image.mode in GRAY_MODES


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as shown: an EXIF rotation by a quarter turn swaps them."""
    quarter_turns = {5, 6, 7, 8}  # the EXIF orientations that transpose the image
    turned = image.getexif().get(ExifTags.Base.Orientation) in quarter_turns
    return (image.height, image.width) if turned else image.size


def _shrunk(image: Image.Image, model_side: int) -> Image.Image:
    """``image`` area-averaged down so its longer side is ``max(PREVIEW_SIDE, model_side)``; each side stays
    at least ``model_side`` (or its own size), so a thin strip is not squashed below what the model reads."""
    longest = max(PREVIEW_SIDE, model_side)
    scale = longest / max(image.size)
    if scale >= 1:
        return image
    width, height = (max(round(side * scale), min(side, model_side)) for side in image.size)
    image.draft(None, (width, height))  # JPEG only: decode at the smallest scale that still covers the size
    if image.mode in ("1", "P", "PA"):  # resize would pick pixels of these, not average them
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    return image.resize((width, height), Image.Resampling.BOX)  # premultiplies alpha itself


def read_image_file(path, model_side: int | None = None) -> DecodedImage:
    """``read_upload`` for a file on disk, refusing oversized files before reading them: the CLI reads a file as
    the Upload page reads an upload, so both score a large image alike."""
    path = Path(path)
    if path.is_dir():
        raise EipvizError(f"{path} is a folder; give image files (a shell expands {path}/*.png).")
    if not path.is_file():
        raise no_file_error(path, "Image")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise EipvizError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; "
                          f"images up to {MAX_IMAGE_BYTES // 2**20} MB.")
    return read_upload(path.read_bytes(), path.name, model_side)


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey (PNG; Pillow may open it as "I"): 65535 is white, as 255 is in 8 bits. Until 2026-11-27
        # each image was stretched to its own range: a flat grey came out black, a dim image bright.
        array = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257), 0, 255)
        return np.repeat(array.astype(np.uint8)[..., None], 3, axis=-1)
    if _has_alpha(image):
        return on_white(np.asarray(image.convert("RGBA"), dtype=np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def on_white(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels whose last channel is alpha, laid on white, without it: what an image viewer shows."""
    alpha = pixels[..., -1:].astype(np.float32) / 255
    return np.round(pixels[..., :-1] * alpha + 255 * (1 - alpha)).astype(np.uint8)


def _has_alpha(image: Image.Image) -> bool:
    """An alpha channel, or a palette's or a colour key's transparency (PNG ``tRNS``: what PNG optimisers write
    for RGB and grey images with one transparent colour)."""
    return image.mode in ("RGBA", "LA", "PA") or (image.mode in ("P", "RGB", "L") and "transparency" in image.info)


def resize_note(image: np.ndarray, input_size: tuple, original_size: tuple[int, int] | None = None,
                grayscale: bool = False) -> str | None:
    """A note for the user when the image does not already have the model's input size.

    ``original_size``: the file's (width, height) when ``image`` was shrunk on reading (``read_upload``);
    ``grayscale``: the file was grayscale (``DecodedImage.grayscale``), so a one-channel model converts nothing.
    """
    height, width, channels = input_size
    original_width, original_height = original_size or (image.shape[1], image.shape[0])
    notes = []
    if (original_height, original_width) != (height, width):
        notes.append(f"resized from {original_width}x{original_height} to {width}x{height}")
    # an MNIST test image (H, W) or a grey file converts nothing (until 2026-11-27 a grey PNG got this note)
    if channels == 1 and image.ndim == 3 and image.shape[-1] != 1 and not grayscale:
        notes.append("converted to grayscale")
    return "; ".join(notes) or None


def fit_images(images: np.ndarray, size: tuple) -> np.ndarray:
    """Resize uint8 images (N, H, W[, C]) to the model's (height, width, channels) with OpenCV.

    C is 1 or 3, or 2 or 4 with an alpha channel, laid on white as ``read_upload`` lays it (it was averaged
    into the grey, or repeated into 12 channels). A 3-D array is a batch of grey images: one colour image
    (H, W, C) needs a batch axis, ``image[None]``.
    """
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 2, 3, 4)):
        raise EipvizError(f"Expected images (N, H, W) or (N, H, W, C) with 1 to 4 channels, got shape "
                          f"{images.shape}.")
    height, width, channels = size
    x = images if images.ndim == 4 else images[..., None]
    if x.shape[-1] in (2, 4):
        x = on_white(x)
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
