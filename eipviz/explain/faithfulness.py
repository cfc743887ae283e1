"""How faithful a CAM is to the model, measured against chance: deletion, insertion, average drop, ROAD.

Deletion (Petsiuk et al. 2018): remove the most salient pixels first (set
to the baseline); a faithful map makes the class probability fall fast
(lower AUC is better). Insertion: start from a blurred image and restore
the most salient pixels first (higher AUC is better). Average drop and
increase in confidence (Chattopadhay et al. 2018) compare the probability
on the image masked by the CAM with the probability on the image. ROAD
(``eipviz.explain.road``) removes pixels by noisy linear imputation instead.
Deletion, insertion and ROAD rank pixels alike (``road.relevance_order``): equal
values (the zeros a ReLU leaves: about a third of a ``random`` map) go in a
seeded random order, so a tie favours no region; a stable sort deleted them
top row first.

Every table holds the ``random`` method's row (random channel weights,
pytorch-grad-cam's baseline for metrics), and each other row says by how
much it beats it: every ``*_vs_random`` column is signed so that positive
means better than chance.
"""

import functools

import cv2
import numpy as np

from eipviz.attribution.cams import BaseCAM
from eipviz.attribution.memory import images_within
from eipviz.classifier import Classifier
from eipviz.errors import check_names
from eipviz.explain.road import relevance_order, road

STEPS = 16  # fractions 0, 1/16, ..., 1 of the pixels
CURVE_IMAGES = 64  # images whose STEPS + 1 versions are built at once (all of them took 4 GB for 10,000)
METRICS = ("deletion", "insertion", "drop", "road")
CHANCE = "random"  # the method every table compares against
# metric column -> (its comparison column, +1 where higher is better or -1 where lower is): positive is better
VS_RANDOM = {"deletion_auc": ("deletion_vs_random", -1), "insertion_auc": ("insertion_vs_random", 1),
             "average_drop_pct": ("average_drop_vs_random", -1),
             "increase_in_confidence_pct": ("increase_in_confidence_vs_random", 1),
             "road_combined": ("road_vs_random", 1)}


def _blurred(x):
    blurred = [cv2.GaussianBlur(img, (0, 0), sigmaX=max(1.0, img.shape[0] / 8)) for img in x]
    return np.stack(blurred).reshape(x.shape)  # OpenCV drops a single channel axis


def _curve(cam: BaseCAM, start, finish, order, classes):
    """Class probability while pixels move from ``start`` to ``finish`` in ``order``, (N, STEPS + 1); built
    ``CURVE_IMAGES`` images at a time (fewer for large inputs: ``images_within``), so memory stays flat however
    many images are scored."""
    few = images_within((STEPS + 1) * start[0].nbytes, CURVE_IMAGES)
    return np.concatenate([_curve_of_few(cam, start[i:i + few], finish[i:i + few], order[i:i + few],
                                         classes[i:i + few]) for i in range(0, len(start), few)])


def _curve_of_few(cam: BaseCAM, start, finish, order, classes):
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


def check_metrics(metrics) -> tuple[str, ...]:
    """``metrics`` as a tuple, after checking each is one of ``METRICS``."""
    return check_names(metrics, METRICS, "faithfulness metric", show=repr)


def map_faithfulness(cam: BaseCAM, inputs: np.ndarray, maps: np.ndarray, classes: np.ndarray,
                     baseline: float = 0.0, metrics=METRICS, seed: int = 0) -> dict:
    """The chosen ``metrics`` of ``maps`` (N, H, W) in [0, 1] for ``classes``, as one row.

    ``deletion``: deletion_auc; ``insertion``: insertion_auc; ``drop``: average_drop_pct and
    increase_in_confidence_pct; ``road``: road_combined, road_morf, road_lerf. Any maps can be scored
    this way (a method's, a random one), so a table reads against chance. ``seed`` orders tied pixels
    (and seeds ROAD's noise), so a row is reproducible.
    """
    metrics = check_metrics(metrics)
    inputs = np.asarray(inputs, np.float32)
    order = relevance_order(np.asarray(maps), np.random.default_rng(seed))
    row: dict = {}
    if "deletion" in metrics:
        row["deletion_auc"] = round(_auc(_curve(cam, inputs, np.full_like(inputs, baseline), order, classes)), 4)
    if "insertion" in metrics:
        row["insertion_auc"] = round(_auc(_curve(cam, _blurred(inputs), inputs, order, classes)), 4)
    if "drop" in metrics:
        original = cam.scores(inputs, classes)
        masked = cam.scores(inputs * maps[..., None], classes)
        drop = np.maximum(0.0, original - masked) / np.maximum(original, 1e-12)
        row["average_drop_pct"] = round(float(drop.mean() * 100), 2)
        row["increase_in_confidence_pct"] = round(float((masked > original).mean() * 100), 2)
    if "road" in metrics:
        row.update(road(cam, inputs, maps, classes, seed=seed).summary())
    row["n"] = int(len(inputs))
    return row


def compare_with_random(rows: list[dict]) -> list[dict]:
    """``rows`` with a ``*_vs_random`` column per headline metric (``VS_RANDOM``): positive means better than chance.

    The ``random`` row's own comparisons are None (it is the baseline).
    """
    chance = next((row for row in rows if row["method"] == CHANCE), None)
    if chance is None:
        raise ValueError(f"compare_with_random needs the {CHANCE!r} method's row.")
    compared = []
    for row in rows:
        extra = {name: None if row is chance else round(sign * (row[column] - chance[column]), 4)
                 for column, (name, sign) in VS_RANDOM.items() if column in row}
        compared.append({**row, **extra})
    return compared


def scored_alike(rows: list[dict]) -> list[str]:
    """One sentence per set of methods that score exactly alike at one layer on every metric (a ranking of them
    means nothing: their maps are the same there, as every gradient method's is at a layer of one channel per
    class). Rows of one metric say nothing: scores are rounded to 4 decimals, and two maps may tie on one."""
    groups: dict[tuple, list[str]] = {}
    for row in rows:
        scores = tuple(sorted((key, value) for key, value in row.items() if key not in ("method", "layer", "n")
                              and not key.endswith("_vs_random")))
        if len(scores) < 2:
            return []
        groups.setdefault((row.get("layer"), scores), []).append(row["method"])
    return [f"{', '.join(methods[:-1])} and {methods[-1]} score exactly alike" + (f" at {layer}" if layer else "")
            + ": their maps are the same there." for (layer, _), methods in groups.items() if len(methods) > 1]


def _maps_done(progress, done: int, total: int, method: str, maps_done: int, maps: int) -> None:
    """``progress`` within method number ``done``: its maps are its first half."""
    progress(done + maps_done / maps / 2, total, method)


def faithfulness(classifier: Classifier, images: np.ndarray, methods, layer: str | None = None,
                 metrics=METRICS, baseline: float = 0.0, progress=None, seed: int = 0) -> list[dict]:
    """One row per method for uint8 ``images``, each explained for its predicted class, with ``random``'s row
    (added last when ``methods`` lacks it) and every method's margin over it (``compare_with_random``).

    ``metrics``: any of ``METRICS``. ``progress(done, total, method)`` is called before each method, after each
    batch of its maps (``done`` then has a fraction: the maps count for half a method) and once at the end: a
    slow method's 300 maps took a minute with the bar standing still, and a page left meanwhile ran on until
    its next call. ``seed`` orders tied pixels and seeds ROAD's noise (``map_faithfulness``).
    """
    metrics = check_metrics(metrics)
    methods = list(methods)
    if CHANCE not in methods:
        methods.append(CHANCE)
    inputs = classifier.prepare(images)
    rows = []
    for done, method in enumerate(methods):
        within = None
        if progress:
            progress(done, len(methods), method)
            within = functools.partial(_maps_done, progress, done, len(methods), method)
        cam = classifier.cam(method, layer)
        maps, classes, _ = cam(inputs, progress=within)
        rows.append({"method": method, **map_faithfulness(cam, inputs, maps, classes, baseline, metrics, seed)})
    if progress:
        progress(len(methods), len(methods), None)
    return compare_with_random(rows)
