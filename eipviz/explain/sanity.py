"""Sanity checks for saliency maps (Adebayo et al. 2018): does a method's map depend on the model at all?

*Cascading model-parameter randomisation*: the layers that have weights are
re-initialised from the output down, a few more at each depth, on a copy of
the model (``keras.models.clone_model`` gives the fresh initialisation; the
caller's model is never touched, since a ``Classifier`` is shared across
browser sessions). At each depth the method's maps of the same images and
classes are compared with the original maps by Spearman rank correlation
and SSIM, averaged over images. A method passes when its maps change along
the cascade: the mean Spearman over the depths (evenly spaced, so the area
under the cascade curve) is at most ``IGNORES_WEIGHTS``. The last depth alone
(every weight random) is not enough: Adebayo et al.'s guided backpropagation
keeps its map while the top layers are random and loses it only with the
lowest ones, which still reconstruct the image. A map that stays the same
reads the image, not the model: an edge detector would.

*Random logit*: the map of a random other class, compared with the map of
the predicted class by the same two measures. High similarity means the
method cannot tell classes apart (Eigen-CAM, for one, is class-agnostic by
design).

Passing is necessary, not sufficient: the ``random`` baseline passes the
randomisation check (its maps weight the layer's activations, which change
with the weights below the layer) and is still no explanation.
"""

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import keras
import numpy as np
import scipy.stats

from eipviz.attribution.cams import BaseCAM, Probes
from eipviz.attribution.methods import make_cam
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.explain.overlay import gallery_sheet, overlay

DEPTHS = 8  # randomisation depths, evenly spaced over the layers that have weights; the last is all of them
# Spearman correlation, averaged over images and over the randomisation depths, above which a method
# "ignores the weights". Adebayo et al. show guided backprop and edge detectors staying near 0.8-1.0 while
# the top layers are random, and guided backprop falling only once the lowest layers are too; methods that
# depend on the model fall towards 0 from the first depth.
IGNORES_WEIGHTS = 0.5
# Mean Spearman correlation between the predicted class's map and a random other class's above which a
# method is called class-insensitive (reported, not a failure: some methods are class-agnostic by design).
CLASS_INSENSITIVE = 0.9
MAPS_KEPT = 2  # images whose original and randomised maps are kept for a strip of maps

STRIP_TILE = 160  # px per map of an exported strip: room for a caption such as "3 random (to conv7)"

Method = str | type[BaseCAM]  # a name in METHODS, or a BaseCAM subclass (tests, experiments)
Progress = Callable[[int, int, str], None]


def ssim(first: np.ndarray, second: np.ndarray, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Mean structural similarity of two maps (H, W) (Wang et al. 2004) with a Gaussian window.

    The standard constants: window sigma 1.5 (11 x 11 taps), K1 = 0.01, K2 = 0.03; local means,
    variances and covariance are Gaussian-weighted averages (OpenCV's ``GaussianBlur``, reflected
    borders). 1 for identical maps; near 0 for unrelated ones.
    """
    x, y = np.asarray(first, np.float64), np.asarray(second, np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(image):
        return cv2.GaussianBlur(image, (11, 11), sigma)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    covariance = blur(x * y) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return float(index.mean())


def spearman(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (N, H, W), (N,).

    Tied values share their mean rank. A constant map has no ranking: two constant maps count as
    the same (1), a constant map against a varying one as unrelated (0).
    """
    a = scipy.stats.rankdata(np.asarray(first).reshape(len(first), -1), axis=1)
    b = scipy.stats.rankdata(np.asarray(second).reshape(len(second), -1), axis=1)
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    norms = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    flat_a, flat_b = ~a.any(axis=1), ~b.any(axis=1)
    correlation = (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0)
    return np.where(flat_a & flat_b, 1.0, np.where(flat_a | flat_b, 0.0, correlation))


def mean_similarity(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """(mean Spearman, mean SSIM) of pairs of maps (N, H, W)."""
    return (float(spearman(first, second).mean()),
            float(np.mean([ssim(a, b) for a, b in zip(first, second)])))


def weighted_layers(model: keras.Model) -> list:
    """The layers of ``model`` that have weights, inside nested models too, in graph order (input first)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += weighted_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def randomisation_depths(layer_count: int, depths: int = DEPTHS) -> list[int]:
    """How many layers (from the top) are randomised at each depth: up to ``depths`` evenly spaced counts,
    the last ``layer_count``."""
    if depths < 1:
        raise EipvizError(f"Ask for at least one randomisation depth. Received: depths={depths}.")
    if layer_count < 1:
        raise EipvizError("The model has no layer with weights: there is nothing to randomise.")
    # Counted down from every layer, so one depth is all of them (from 1 up, it was only the top layer).
    return sorted({int(round(k)) for k in np.linspace(layer_count, 1, min(depths, layer_count))})


def freshly_initialised_copy(model: keras.Model, seed: int = 0) -> keras.Model:
    """A copy of ``model`` (``keras.models.clone_model``, nested models too) whose layers are initialised
    afresh by their own initialisers, each seeded from ``seed``: the same seed gives the same weights."""
    seeds = itertools.count(seed * 100_003)

    def clone(layer):
        config = copy.deepcopy(layer.get_config())
        for key, value in config.items():
            if key.endswith("_initializer") and isinstance(value, dict) and "seed" in value.get("config", {}):
                value["config"]["seed"] = next(seeds)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone, recursive=True)


@dataclass(frozen=True)
class MethodSanity:
    """One method's sanity checks. Per-depth values are means over images; the maps are of the first images."""

    method: str
    layer_count: int  # layers with weights in the model
    randomised: tuple[int, ...]  # layers randomised at each depth, counted from the output
    deepest: tuple[str, ...]  # the lowest randomised layer at each depth
    spearman: tuple[float, ...]  # original vs randomised maps, per depth
    ssim: tuple[float, ...]
    random_logit_spearman: float  # predicted class's maps vs a random other class's
    random_logit_ssim: float
    original_maps: np.ndarray  # (k, H, W)
    randomised_maps: np.ndarray  # (depths, k, H, W)
    random_logit_maps: np.ndarray  # (k, H, W)

    @property
    def cascade_spearman(self) -> float:
        """Spearman averaged over the depths: the area under the cascade curve, the depths being evenly spaced."""
        return float(np.mean(self.spearman))

    @property
    def passed(self) -> bool:
        """Whether the maps change along the cascade (``cascade_spearman`` at most ``IGNORES_WEIGHTS``).

        The whole cascade, not its last depth: a map that survives until the lowest layers are random
        (guided backprop) has ignored every layer above them.
        """
        return self.cascade_spearman <= IGNORES_WEIGHTS

    @property
    def outcome(self) -> str:
        """``passes``, ``fails``, or ``baseline`` for ``random``: it passes by construction (a green "passes")."""
        return "baseline" if self.method == "random" else "passes" if self.passed else "fails"

    @property
    def verdict(self) -> str:
        """The outcome in a sentence."""
        figures = (f"mean Spearman {self.cascade_spearman:.2f} over {len(self.spearman)} depths, "
                   f"{self.spearman[-1]:.2f} with every layer random")
        if self.outcome == "baseline":
            return (f"is the chance baseline, not an explanation: its maps weight the layer's activations, which "
                    f"change with the weights below it ({figures})")
        text = (f"passes: the maps change as the weights are randomised ({figures})" if self.passed else
                f"fails: ignores the model's weights ({figures})")
        if self.random_logit_spearman > CLASS_INSENSITIVE:
            text += "; class-insensitive: another class gives nearly the same map"
        return text

    def row(self) -> dict:
        """The summary a table shows: the mean Spearman the verdict is judged by, similarity with every layer
        randomised, the random-logit check, the verdict."""
        return {"method": self.method, "cascade_spearman": round(self.cascade_spearman, 3),
                "spearman_randomised": round(self.spearman[-1], 3),
                "ssim_randomised": round(self.ssim[-1], 3),
                "random_logit_spearman": round(self.random_logit_spearman, 3),
                "random_logit_ssim": round(self.random_logit_ssim, 3), "verdict": self.verdict}

    def curve(self) -> list[dict]:
        """One dict per depth, for a plot of similarity against how much of the model is random."""
        return [{"method": self.method, "randomised_layers": k, "down_to": name,
                 "spearman": round(s, 4), "ssim": round(m, 4)}
                for k, name, s, m in zip(self.randomised, self.deepest, self.spearman, self.ssim)]

    def to_dict(self) -> dict:
        """``row`` plus ``passed``, the mean Spearman it is judged by, and the curve (no maps): JSON-ready."""
        return {**self.row(), "passed": self.passed,
                "layers_with_weights": self.layer_count, "curve": self.curve()}


def _cam(model: keras.Model, method: Method, layer: str, reference: np.ndarray, probes: Probes) -> BaseCAM:
    if isinstance(method, str):
        return make_cam(model, method, layer, reference, probes)
    return method(model, layer, reference, probes=probes)


def sanity_check(classifier: Classifier, images: np.ndarray, methods: Sequence[Method], layer: str | None = None,
                 depths: int = DEPTHS, seed: int = 0, progress: Progress | None = None) -> list[MethodSanity]:
    """The randomisation and random-logit checks of each method on uint8 ``images`` (their predicted classes).

    ``depths``: up to this many randomisation depths (``randomisation_depths``). ``seed`` picks the random
    other classes and seeds the fresh weights, so a check is reproducible. ``progress(done, total, text)``
    is called before each step and once at the end.
    """
    methods = list(methods)
    layer = layer or classifier.cam_layer
    inputs = classifier.prepare(images)
    reference = classifier.prepare(np.zeros((1, *classifier.input_size), np.uint8))[0]
    originals = weighted_layers(classifier.model)
    cuts = randomisation_depths(len(originals), depths)
    names = [getattr(m, "name", str(m)) for m in methods]
    total, done = len(methods) * (2 + len(cuts)), 0

    def step(text):
        nonlocal done
        if progress:
            progress(done, total, text)
        done += 1

    classes = classifier.predict(images).astype(np.int32)
    count = len(classifier.class_names)
    other = (classes + np.random.default_rng(seed).integers(1, count, len(classes))) % count  # never the same
    maps: dict[str, np.ndarray] = {}
    results: dict[str, dict] = {name: {"spearman": [], "ssim": [], "kept": []} for name in names}
    for method, name in zip(methods, names):
        step(f"{name}: maps of the trained model")
        cam = classifier.cam(method, layer) if isinstance(method, str) else _cam(classifier.model, method, layer,
                                                                                 reference, classifier.probes)
        maps[name], _, _ = cam(inputs, classes)
        step(f"{name}: maps of a random other class")
        other_maps, _, _ = cam(inputs, other)
        results[name]["random_logit"] = (*mean_similarity(maps[name], other_maps), other_maps[:MAPS_KEPT])

    model_copy = freshly_initialised_copy(classifier.model, seed)
    copies = weighted_layers(model_copy)
    fresh = [layer_copy.get_weights() for layer_copy in copies]
    for original, layer_copy in zip(originals, copies):
        layer_copy.set_weights(original.get_weights())
    # One CAM per method for every depth, the methods sharing passes: each is traced once and reads the
    # weights at each call.
    probes = Probes(model_copy)
    copy_cams = {name: _cam(model_copy, method, layer, reference, probes) for method, name in zip(methods, names)}
    randomised = 0
    for cut in cuts:
        while randomised < cut:  # from the output down
            randomised += 1
            copies[-randomised].set_weights(fresh[-randomised])
        for name in names:
            step(f"{name}: {cut} of {len(copies)} layers randomised")
            random_maps, _, _ = copy_cams[name](inputs, classes)
            spearman_mean, ssim_mean = mean_similarity(maps[name], random_maps)
            results[name]["spearman"].append(spearman_mean)
            results[name]["ssim"].append(ssim_mean)
            results[name]["kept"].append(random_maps[:MAPS_KEPT])
    if progress:
        progress(total, total, "done")
    deepest = tuple(copies[-cut].name for cut in cuts)
    return [MethodSanity(
        method=name, layer_count=len(copies), randomised=tuple(cuts), deepest=deepest,
        spearman=tuple(results[name]["spearman"]), ssim=tuple(results[name]["ssim"]),
        random_logit_spearman=results[name]["random_logit"][0], random_logit_ssim=results[name]["random_logit"][1],
        original_maps=maps[name][:MAPS_KEPT], randomised_maps=np.stack(results[name]["kept"]),
        random_logit_maps=results[name]["random_logit"][2]) for name in names]


def sanity_strip(result: MethodSanity) -> list[tuple[str, np.ndarray]]:
    """(caption, map) of the first image: the trained model's map, then the map at each randomisation depth
    (``"3 random (to conv7)"``: the top 3 layers with weights re-initialised, down to conv7)."""
    strip = [("trained", result.original_maps[0])] + [
        (f"{k} random (to {name})", maps[0])
        for k, name, maps in zip(result.randomised, result.deepest, result.randomised_maps)]
    return [(caption + (" (empty map)" if not cam.any() else ""), cam) for caption, cam in strip]  # else a blank tile


def sanity_strip_sheet(classifier: Classifier, image: np.ndarray, results: Sequence[MethodSanity],
                       layer: str | None = None, tile: int = STRIP_TILE) -> np.ndarray:
    """The strips of maps as one RGB image for export: a row per method (``sanity_strip`` of its result on
    ``image``, the first of the images checked), headed by the model and layer."""
    fitted = classifier.fit(np.asarray(image)[None])[0]
    strips = [sanity_strip(result) for result in results]
    header = [f"eipviz: sanity check of {classifier.name} at {layer or classifier.cam_layer}",
              "The first test image's map as layers are re-initialised from the output down: a method that "
              "explains the model loses its map."]
    return gallery_sheet([[overlay(fitted, cam, size=tile) for _, cam in strip] for strip in strips],
                         [f"{result.method} {result.outcome}: mean Spearman "
                          f"{result.cascade_spearman:.2f}" for result in results],
                         tile=tile, header=header,
                         tile_captions=[[caption for caption, _ in strip] for strip in strips])
