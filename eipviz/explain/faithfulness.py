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

from eipviz.attribution.cams import BaseCAM
from eipviz.classifier import Classifier

STEPS = 16  # fractions 0, 1/16, ..., 1 of the pixels


def _blurred(x):
    blurred = [cv2.GaussianBlur(img, (0, 0), sigmaX=max(1.0, img.shape[0] / 8)) for img in x]
    return np.stack(blurred).reshape(x.shape)  # OpenCV drops a single channel axis


def _curve(cam: BaseCAM, start, finish, order, classes):
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
    probs = cam.scores(batch, np.tile(classes, STEPS + 1))
    return probs.reshape(STEPS + 1, n).T


def _auc(curves):
    return float(np.trapezoid(curves, dx=1.0 / STEPS, axis=1).mean())


def map_faithfulness(cam: BaseCAM, inputs: np.ndarray, maps: np.ndarray, classes: np.ndarray,
                     baseline: float = 0.0) -> dict:
    """Deletion AUC, insertion AUC, average drop % and increase in confidence % of ``maps`` (N, H, W) in [0, 1].

    Any maps can be scored this way (a method's, a random one), so a table reads against chance.
    """
    inputs = np.asarray(inputs, np.float32)
    order = np.argsort(-maps.reshape(len(maps), -1), axis=1, kind="stable")
    original = cam.scores(inputs, classes)
    masked = cam.scores(inputs * maps[..., None], classes)
    drop = np.maximum(0.0, original - masked) / np.maximum(original, 1e-12)
    return {
        "deletion_auc": round(_auc(_curve(cam, inputs, np.full_like(inputs, baseline), order, classes)), 4),
        "insertion_auc": round(_auc(_curve(cam, _blurred(inputs), inputs, order, classes)), 4),
        "average_drop_pct": round(float(drop.mean() * 100), 2),
        "increase_in_confidence_pct": round(float((masked > original).mean() * 100), 2),
        "n": int(len(inputs)),
    }


def faithfulness(classifier: Classifier, images: np.ndarray, methods, layer: str | None = None,
                 baseline: float = 0.0, progress=None) -> list[dict]:
    """One row per method for uint8 ``images``, each explained for its predicted class.

    ``progress(done, total, method)`` is called before each method and once at the end.
    """
    inputs = classifier.prepare(images)
    rows = []
    for done, method in enumerate(methods):
        if progress:
            progress(done, len(methods), method)
        cam = classifier.cam(method, layer)
        maps, classes, _ = cam(inputs)
        rows.append({"method": method, **map_faithfulness(cam, inputs, maps, classes, baseline)})
    if progress:
        progress(len(methods), len(methods), None)
    return rows
