"""Side by side: every method and layer on one image, and several models on one test set."""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eipviz.attribution.methods import METHODS, method_label
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation
from eipviz.explain.faithfulness import faithfulness, map_faithfulness
from eipviz.explain.overlay import DISPLAY_SIZE, gallery_sheet, overlay, upscale

Progress = Callable[[float, int, str], None]  # done (a fraction within a step), total, what
# What rank_methods can sort by -> the margin over the random baseline it sorts on (positive is better)
RANK_METRICS = {"deletion": "deletion_vs_random", "insertion": "insertion_vs_random",
                "drop": "average_drop_vs_random", "road": "road_vs_random"}
# Defaults of the Compare page and of ``python -m eipviz compare-methods`` / ``compare-models``
GRID_METHODS = ("gradcam", "gradcam++", "xgradcam", "layercam", "eigencam", "saliency", "random")
# A page's method grid per image, methods x layers: 17 methods at 45 layers of resnet18 took both cores about
# 11 minutes (153 maps, 130 s). A grid above SMALL_GRID_MAPS waits for its turn among the server's long
# computations; the default one (7 x 2) opens at once.
MAX_GRID_MAPS, SMALL_GRID_MAPS = 60, 20
DISPUTED_SHOWN = 8  # the most disputed test images shown with every model's answer
SHEET_TILE = 160  # px per map of an exported sheet: room for the caption under it


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
    methods, layers = list(dict.fromkeys(methods)), list(dict.fromkeys(layers))  # a repeat is one row or column
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


def default_grid_layers(classifier: Classifier) -> list[str]:
    """The grid's default columns, as the Compare page opens on them: the last two distinct of (the third- and
    second-last of ``cam_layers``, the model's CAM layer), e.g. ``["sepconv6", "sepconv7"]`` for sepconv59k;
    the last layer alone when the model's CAM layer is not among ``cam_layers``."""
    layers = classifier.cam_layers
    chosen = layers[-3:-1] + [classifier.cam_layer] if classifier.cam_layer in layers else layers[-1:]
    return list(dict.fromkeys(chosen))[-2:]


def grid_cells(classifier: Classifier, image: np.ndarray, scores: Sequence[MapScore], separator: str = " · ",
               size: int = DISPLAY_SIZE) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """(the image as the grid shows it, an (overlay, ``"del 0.123 · ins 0.456"``) per score, in order), RGB
    uint8 at ``size``; ``separator`` between the two AUCs (the sheet's font is ASCII only)."""
    fitted = classifier.fit(np.asarray(image)[None])[0]
    return upscale(fitted, size), [
        (overlay(fitted, score.map, size=size),
         f"del {score.deletion_auc:.3f}{separator}ins {score.insertion_auc:.3f}") for score in scores]


def method_grid_sheet(classifier: Classifier, image: np.ndarray, target: int, scores: Sequence[MapScore],
                      image_name: str = "the image", tile: int = SHEET_TILE) -> np.ndarray:
    """``method_grid``'s result as one RGB image for export: a row per method (the image, then its map at each
    layer with the deletion and insertion AUC under it), a column per layer, headed by model, image and class."""
    methods = list(dict.fromkeys(score.method for score in scores))
    layers = list(dict.fromkeys(score.layer for score in scores))
    image_tile, cells = grid_cells(classifier, image, scores, separator=", ", size=tile)
    rows = [cells[r * len(layers):(r + 1) * len(layers)] for r in range(len(methods))]
    header = [f"eipviz: methods x layers of {classifier.name} on {image_name}",
              f"explaining {classifier.class_names[target]}; under each map: deletion AUC (lower is better), "
              f"insertion AUC (higher is better); random is the chance baseline"]
    return gallery_sheet([[image_tile, *[cell for cell, _ in row]] for row in rows],
                         [method_label(method) for method in methods], tile=tile, header=header,
                         column_labels=["image", *layers],
                         tile_captions=[["", *[caption for _, caption in row]] for row in rows])


@dataclass(frozen=True)
class ModelComparison:
    """Several models' answers on the same test set."""

    names: tuple[str, ...]
    accuracies: tuple[float, ...]
    both_wrong: np.ndarray  # (M, M) test images each pair gets wrong together; the diagonal: each model's errors
    disagreements: np.ndarray  # test indices where the models' predictions differ, most disputed first (most
    # distinct answers, then the highest mean confidence)


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
    # Most distinct answers first, then the most confident disagreement: with two models every dispute ties on
    # the first, and the list was in test-set order.
    confidence = np.stack([e.confidence for e in evaluations]).mean(axis=0)
    order = np.lexsort((disputed, -confidence[disputed], -distinct[disputed]))
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


def answer_caption(name: str, answer: ModelAnswer, marks: tuple[str, str] = ("✅", "❌")) -> str:
    """``"✅ mnist14k: 7 (98%)"``: a model's answer on a disputed image, marked right or wrong by ``marks``."""
    return f"{marks[0] if answer.right else marks[1]} {name}: {answer.predicted_class} ({answer.confidence:.0%})"


def disagreement_sheet(names: Sequence[str], images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                       indices, rows: Sequence[Sequence[ModelAnswer]], method: str = "gradcam",
                       tile: int = SHEET_TILE) -> np.ndarray:
    """``disagreement_rows`` as one RGB image for export: a row per test index (the image, then each model's
    CAM of what it predicted with its answer under it, ``ok`` or ``x``)."""
    header = [f"eipviz: where {', '.join(names)} disagree, the most disputed first",
              f"{method} map of each model's predicted class"]
    return gallery_sheet([[upscale(images[index], tile), *[answer.overlay for answer in answers]]
                          for index, answers in zip(indices, rows)],
                         [f"#{index}, true {class_names[labels[index]]}" for index in indices], tile=tile,
                         header=header, column_labels=["image", *names],
                         tile_captions=[["", *[answer_caption(name, answer, ("ok", "x"))
                                               for name, answer in zip(names, answers)]] for answers in rows])


def _layer_progress(progress: Progress, done: int, total: int, layer: str, methods_done: float, methods: int,
                    method: str | None) -> None:
    """``progress`` within layer number ``done``, as far as its methods (``faithfulness``'s progress) have got."""
    progress(done + methods_done / methods, total, f"layer {layer}" + (f": {method}" if method else ""))


def rank_methods(classifier: Classifier, images: np.ndarray, methods: Sequence[str], layers: Sequence[str],
                 metric: str = "deletion", progress: Progress | None = None, seed: int = 0) -> list[dict]:
    """Every method at every layer on a sample of uint8 ``images``, best first by ``metric``'s margin over the
    random baseline (one of ``RANK_METRICS``; a method that ignores the layer is scored once). ``seed``: as
    ``faithfulness``'s."""
    if metric not in RANK_METRICS:
        raise EipvizError(f"Rank by one of {', '.join(RANK_METRICS)}. Received: {metric!r}.")
    layer_free = [m for m in methods if not METHODS[m].uses_layer]
    per_layer = [m for m in methods if METHODS[m].uses_layer]
    runs = [(layer, per_layer) for layer in layers if per_layer] + ([(layers[0], layer_free)] if layer_free else [])
    rows: dict[tuple[str, str], dict] = {}  # each layer's random row is that layer's baseline
    for done, (layer, chosen) in enumerate(runs):
        within = None
        if progress:
            progress(done, len(runs), f"layer {layer}")
            within = functools.partial(_layer_progress, progress, done, len(runs), layer)
        for row in faithfulness(classifier, images, chosen, layer=layer, metrics=(metric,), progress=within,
                                seed=seed):
            where = layer if METHODS[row["method"]].uses_layer else "(input)"
            rows.setdefault((row["method"], where), {"method": row["method"], "layer": where,
                                                     **{k: v for k, v in row.items() if k != "method"}})
    if progress:
        progress(len(runs), len(runs), "done")
    key = RANK_METRICS[metric]
    return sorted(rows.values(), key=lambda r: np.inf if r.get(key) is None else -r[key])
