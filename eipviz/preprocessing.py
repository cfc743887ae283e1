"""Turn uint8 images into model inputs, the way each recipe trained them.

Preprocessing lives outside the models so their parameter counts stay
exactly as documented; runs and the weights manifest record its name.
"""

import functools

import numpy as np

from eipviz.data import load_dataset
from eipviz.errors import EipvizError

# CIFAR-10 training-set statistics on the 0..1 scale (../shared/data/README.md).
CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)

PREPROCESSINGS = {
    "unit_scale": "x / 255",
    "channel_standardize": "(x / 255 - CIFAR-10 channel mean) / channel std",
    "pixel_mean": "x / 255 - per-pixel CIFAR-10 training mean (seed 004)",
}

PREPROCESSING_CHECK_IMAGES = 500  # test images it is decided on: 90% told from 40%, a second or so on a CPU
DETECT = "detect"  # a choice for a model file of unknown origin (``eipviz.evaluation.with_detected_preprocessing``)
DETECT_MEANS = f"unit_scale unless another is clearly more accurate on {PREPROCESSING_CHECK_IMAGES} test images"

# What each preprocessing's statistics need of a model's (height, width, channels); None: any size.
FITS = {"channel_standardize": (None, None, 3), "pixel_mean": (32, 32, 3)}


@functools.lru_cache(maxsize=1)
def cifar10_pixel_mean() -> np.ndarray:
    """Per-pixel mean of the CIFAR-10 training images on the 0..1 scale, (32, 32, 3). Only the mean is kept:
    the training set it is computed from (180 MB) is read for it and let go (a server explaining uploads
    kept it for good)."""
    x_train = load_dataset("cifar10", keep=False).x_train
    return (x_train.mean(axis=0, dtype=np.float64) / 255.0).astype(np.float32)


def check_known(kind: str) -> str:
    """``kind`` when it is one of ``PREPROCESSINGS``; otherwise an ``EipvizError`` naming the choices."""
    if kind not in PREPROCESSINGS:
        raise EipvizError(f"Unknown preprocessing {kind!r}. Choose one of: {', '.join(PREPROCESSINGS)}.")
    return kind


def check_fits(kind: str, input_size: tuple[int, int, int]) -> None:
    """Refuse (``EipvizError``) a preprocessing whose CIFAR-10 statistics cannot apply to a model taking
    ``input_size`` (height, width, channels) images: channel means need 3 channels, the pixel mean 32x32x3."""
    needed = FITS.get(check_known(kind))
    if needed and any(want is not None and want != have for want, have in zip(needed, input_size)):
        shape = "x".join(str(d) for d in input_size)
        wanted = "3-channel (RGB) images" if kind == "channel_standardize" else "32x32x3 images"
        raise EipvizError(f"Preprocessing {kind} ({PREPROCESSINGS[kind]}) needs a model taking {wanted}; this one "
                          f"takes {shape}. Choose unit_scale.")


def preprocess(images: np.ndarray, kind: str) -> np.ndarray:
    """Return float32 model inputs (N, H, W, C) for uint8-range images of shape (N, H, W[, C])."""
    check_known(kind)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]  # grayscale without a channel axis (MNIST)
    x = x / np.float32(255.0)
    if kind == "channel_standardize":
        x = (x - CIFAR10_MEAN) / CIFAR10_STD
    elif kind == "pixel_mean":
        x = x - cifar10_pixel_mean()
    return x
