"""Side by side: every method and layer on one image, and several models on one test set."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eipviz.attribution.methods import METHODS
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation
from eipviz.explain.faithfulness import faithfulness, map_faithfulness
from eipviz.explain.overlay import DISPLAY_SIZE, overlay

Progress = Callable[[int, int, str], None]
# What rank_methods can sort by -> the margin over the random baseline it sorts on (positive is better)
RANK_METRICS = {"deletion": "deletion_vs_random", "insertion": "insertion_vs_random",
                "drop": "average_drop_vs_random", "road": "road_vs_random"}


@dataclass(frozen=True)
class MapScore:
    """One method's map at one layer for one image, with how faithful it is."""

    method: str
    layer: str
    map: np.ndarray  # (H, W) in [0, 1] at the model's input size
    deletion_auc: float  # lower is better
    insertion_auc: float  # higher is better


def method_grid(classifier: Classifier, image: np.ndarray, methods: Sequence[str], layers: Sequence[str],
                class_index: int | None = None, progress: Progress | None = None) -> tuple[int, list[MapScore]]:
    """(explained class, a ``MapScore`` per method and layer, methods outermost) for one uint8 image.

    Methods that read the input's gradient whatever the layer (saliency, SmoothGrad, ...) are computed
    once and repeated across the layers. ``progress(done, total, what)`` is called before each map.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not layers:
        raise EipvizError(f"Choose methods from {', '.join(METHODS)} and at least one layer. "
                          f"Received: methods={list(methods)}, layers={list(layers)}.")
    inputs = classifier.prepare(np.asarray(image)[None])
    target = int(classifier.logits(np.asarray(image)[None]).argmax()) if class_index is None else int(class_index)
    classes = np.array([target])
    scores: list[MapScore] = []
    total = len(methods) * len(layers)
    for row, method in enumerate(methods):
        shared: MapScore | None = None
        for column, layer in enumerate(layers):
            if progress:
                progress(row * len(layers) + column, total, f"{method} at {layer}")
            if shared is not None:
                scores.append(MapScore(method, layer, shared.map, shared.deletion_auc, shared.insertion_auc))
                continue
            cam = classifier.cam(method, layer)
            maps, _, _ = cam(inputs, classes)
            metrics = map_faithfulness(cam, inputs, maps, classes)
            score = MapScore(method, layer, maps[0], metrics["deletion_auc"], metrics["insertion_auc"])
            scores.append(score)
            if not METHODS[method].uses_layer:
                shared = score
    if progress:
        progress(total, total, "done")
    return target, scores


@dataclass(frozen=True)
class ModelComparison:
    """Several models' answers on the same test set."""

    names: tuple[str, ...]
    accuracies: tuple[float, ...]
    both_wrong: np.ndarray  # (M, M) test images each pair gets wrong together; the diagonal: each model's errors
    disagreements: np.ndarray  # test indices where the models' predictions differ, most disputed first


def compare_models(names: Sequence[str], evaluations: Sequence[Evaluation]) -> ModelComparison:
    """Accuracy, error overlap and disagreements of 2 to 5 evaluations of one test set."""
    if not 2 <= len(evaluations) <= 5:
        raise EipvizError(f"Compare 2 to 5 models. Received: {len(evaluations)}.")
    labels = evaluations[0].labels
    if any(e.class_names != evaluations[0].class_names or not np.array_equal(e.labels, labels) for e in evaluations):
        raise EipvizError("These models were evaluated on different test sets: compare models of one dataset.")
    predictions = np.stack([e.predictions for e in evaluations])  # (M, N)
    wrong = (predictions != labels[None]).astype(np.int64)
    distinct = np.array([len(set(column)) for column in predictions.T])
    disputed = np.flatnonzero(distinct > 1)
    order = np.lexsort((disputed, -distinct[disputed]))
    return ModelComparison(tuple(names), tuple(e.accuracy for e in evaluations), wrong @ wrong.T, disputed[order])


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer on one image, with the CAM of its predicted class."""

    predicted_class: str
    confidence: float
    right: bool
    overlay: np.ndarray  # RGB uint8


def disagreement_rows(classifiers: Sequence[Classifier], evaluations: Sequence[Evaluation], images: np.ndarray,
                      indices, method: str = "gradcam", size: int = DISPLAY_SIZE) -> list[list[ModelAnswer]]:
    """For each test index, every model's prediction and the CAM of what it predicted (one batch per model)."""
    indices = np.asarray(indices, np.int64)
    rows: list[list[ModelAnswer]] = [[] for _ in indices]
    if not len(indices):
        return rows
    for classifier, evaluation in zip(classifiers, evaluations):
        predicted = evaluation.predictions[indices]
        maps = classifier.cams(images[indices], method, classes=predicted)
        for row, index, cls, cam in zip(rows, indices, predicted, maps):
            row.append(ModelAnswer(classifier.class_names[cls], float(evaluation.confidence[index]),
                                   bool(cls == evaluation.labels[index]), overlay(images[index], cam, size=size)))
    return rows


def rank_methods(classifier: Classifier, images: np.ndarray, methods: Sequence[str], layers: Sequence[str],
                 metric: str = "deletion", progress: Progress | None = None) -> list[dict]:
    """Every method at every layer on a sample of uint8 ``images``, best first by ``metric``'s margin over the
    random baseline (one of ``RANK_METRICS``; a method that ignores the layer is scored once)."""
    if metric not in RANK_METRICS:
        raise EipvizError(f"Rank by one of {', '.join(RANK_METRICS)}. Received: {metric!r}.")
    layer_free = [m for m in methods if not METHODS[m].uses_layer]
    per_layer = [m for m in methods if METHODS[m].uses_layer]
    runs = [(layer, per_layer) for layer in layers if per_layer] + ([(layers[0], layer_free)] if layer_free else [])
    rows: dict[tuple[str, str], dict] = {}  # each layer's random row is that layer's baseline
    for done, (layer, chosen) in enumerate(runs):
        if progress:
            progress(done, len(runs), f"layer {layer}")
        for row in faithfulness(classifier, images, chosen, layer=layer, metrics=(metric,)):
            where = layer if METHODS[row["method"]].uses_layer else "(input)"
            rows.setdefault((row["method"], where), {"method": row["method"], "layer": where,
                                                     **{k: v for k, v in row.items() if k != "method"}})
    if progress:
        progress(len(runs), len(runs), "done")
    key = RANK_METRICS[metric]
    return sorted(rows.values(), key=lambda r: np.inf if r.get(key) is None else -r[key])
