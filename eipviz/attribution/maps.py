"""Operations on attribution maps (N, h, w) that every method shares: scaling, eigen projection, test-time views."""

import numpy as np

EPS = 1e-7


def scale_maps(maps: np.ndarray) -> np.ndarray:
    """Scale every map to [0, 1] by its own min and max (a flat map, or one holding nan or inf, becomes zeros)."""
    maps = np.asarray(maps, np.float64)
    finite = np.isfinite(maps).all(axis=(1, 2), keepdims=True)
    maps = np.where(finite, maps, 0.0)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > EPS, (maps - low) / np.where(span > EPS, span, 1.0), 0.0).astype(np.float32)


def principal_component_maps(stacks: np.ndarray) -> np.ndarray:
    """The first principal component of each (h, w, C) stack, as an (h, w) map (N, h, w).

    As pytorch-grad-cam's ``get_2d_projection``: pixels are observations and
    channels variables, centred before the SVD. An eigenvector's sign is
    arbitrary, so eipviz fixes it: the map correlates positively with the
    stack's channel sum (the plain CAM), which makes the result deterministic.

    The first right singular vector is the top eigenvector of the smaller Gram matrix (channels x channels,
    or pixels x pixels when there are fewer pixels): the same projection as the SVD, and a batched
    ``eigh`` of a small symmetric matrix stays fast where a batched ``svd`` took seconds on a busy CPU
    (OpenBLAS threads contending).
    """
    stacks = np.nan_to_num(np.asarray(stacks, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    n, height, width, channels = stacks.shape
    pixels = stacks.reshape(n, height * width, channels)
    centred = pixels - pixels.mean(axis=1, keepdims=True)
    if channels <= height * width:
        _, vectors = np.linalg.eigh(np.einsum("npc,npd->ncd", centred, centred))
        projection = np.einsum("npc,nc->np", centred, vectors[:, :, -1])
    else:  # centred @ v = sigma * u, with u the top eigenvector of centred @ centred.T and sigma^2 its eigenvalue
        values, vectors = np.linalg.eigh(np.einsum("npc,nqc->npq", centred, centred))
        projection = vectors[:, :, -1] * np.sqrt(np.maximum(values[:, -1], 0.0))[:, None]
    reference = pixels.sum(axis=2)
    sign = np.sign(np.einsum("np,np->n", projection, reference - reference.mean(axis=1, keepdims=True)))
    return (projection * np.where(sign == 0, 1.0, sign)[:, None]).reshape(n, height, width).astype(np.float32)


def augmentation_views(size: int) -> list[tuple[bool, int]]:
    """(horizontal flip, diagonal shift in pixels) of every view ``aug_smooth`` averages over.

    Flips and small shifts of about 1/16 of the image (2 px at 32 px), both
    ways; pytorch-grad-cam's default views are flips and brightness changes.
    """
    shift = max(1, round(size / 16))
    return [(flip, s) for flip in (False, True) for s in (0, shift, -shift)]


def augment(images: np.ndarray, flip: bool, shift: int) -> np.ndarray:
    """The view of images (N, H, W, C): shifted with wrap-around (exactly invertible), then flipped."""
    images = np.roll(images, (shift, shift), axis=(1, 2))
    return images[:, :, ::-1] if flip else images


def align_back(maps: np.ndarray, flip: bool, shift: int) -> np.ndarray:
    """Undo ``augment`` on maps (N, H, W) of the augmented images, so every view's map lines up."""
    maps = maps[:, :, ::-1] if flip else maps
    return np.roll(maps, (-shift, -shift), axis=(1, 2))
