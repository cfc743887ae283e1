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


@functools.lru_cache(maxsize=1)
def cifar10_pixel_mean() -> np.ndarray:
    """Per-pixel mean of the CIFAR-10 training images on the 0..1 scale, (32, 32, 3)."""
    x_train = load_dataset("cifar10").x_train
    return (x_train.mean(axis=0, dtype=np.float64) / 255.0).astype(np.float32)


def preprocess(images: np.ndarray, kind: str) -> np.ndarray:
    """Return float32 model inputs (N, H, W, C) for uint8-range images of shape (N, H, W[, C])."""
    if kind not in PREPROCESSINGS:
        raise EipvizError(f"Unknown preprocessing {kind!r}. Choose one of: {', '.join(PREPROCESSINGS)}.")
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]  # grayscale without a channel axis (MNIST)
    x = x / np.float32(255.0)
    if kind == "channel_standardize":
        x = (x - CIFAR10_MEAN) / CIFAR10_STD
    elif kind == "pixel_mean":
        x = x - cifar10_pixel_mean()
    return x
