"""How faithful a CAM is to the model: RISE deletion/insertion AUC, average drop, increase in confidence.

Deletion (Petsiuk et al. 2018): remove the most salient pixels first (set
to the baseline); a faithful map makes the class probability fall fast
(lower AUC is better). Insertion: start from a blurred image and restore
the most salient pixels first (higher AUC is better). Average drop and
increase in confidence (Chattopadhay et al. 2018) compare the probability
on the image masked by the CAM with the probability on the image.
"""

import cv2
import numpy as np

from eipviz.explain.cams import get_cam

STEPS = 16  # fractions 0, 1/16, ..., 1 of the pixels


def _probabilities(cam, inputs, classes, batch_size=512):
    return cam.scores(inputs.astype(np.float32), classes, batch_size)


def _blurred(x):
    blurred = [cv2.GaussianBlur(img, (0, 0), sigmaX=max(1.0, img.shape[0] / 8)) for img in x]
    return np.stack(blurred).reshape(x.shape)  # OpenCV drops a single channel axis


def _curve(cam, start, finish, order, classes):
    """Class probability while pixels move from ``start`` to ``finish`` in ``order``, (N, STEPS + 1)."""
    n, height, width, channels = start.shape
    pixels = height * width
    steps = []
    for step in range(STEPS + 1):
        count = int(round(pixels * step / STEPS))
        mask = np.zeros((n, pixels), bool)
        np.put_along_axis(mask, order[:, :count], True, axis=1)
        mask = mask.reshape(n, height, width, 1)
        steps.append(np.where(mask, finish, start))
    batch = np.concatenate(steps)  # step-major
    probs = _probabilities(cam, batch, np.tile(classes, STEPS + 1))
    return probs.reshape(STEPS + 1, n).T


def _auc(curves):
    return float(np.trapezoid(curves, dx=1.0 / STEPS, axis=1).mean())


def faithfulness(model, inputs: np.ndarray, methods, layer=None, baseline: float = 0.0) -> list[dict]:
    """One row per method: deletion AUC, insertion AUC, average drop %, increase in confidence %.

    ``inputs`` are preprocessed model inputs; each image is explained for its predicted class.
    """
    inputs = np.asarray(inputs, np.float32)
    blurred = _blurred(inputs)
    deleted = np.full_like(inputs, baseline)
    rows = []
    for method in methods:
        cam = get_cam(model, method, layer)
        maps, classes, _ = cam(inputs)
        order = np.argsort(-maps.reshape(len(maps), -1), axis=1, kind="stable")
        original = _probabilities(cam, inputs, classes)
        masked = _probabilities(cam, inputs * maps[..., None], classes)
        drop = np.maximum(0.0, original - masked) / np.maximum(original, 1e-12)
        rows.append({
            "method": method,
            "deletion_auc": round(_auc(_curve(cam, inputs, deleted, order, classes)), 4),
            "insertion_auc": round(_auc(_curve(cam, blurred, inputs, order, classes)), 4),
            "average_drop_pct": round(float(drop.mean() * 100), 2),
            "increase_in_confidence_pct": round(float((masked > original).mean() * 100), 2),
            "n": int(len(inputs)),
        })
    return rows
