"""The CAM family on one pipeline, in the manner of pytorch-grad-cam's ``BaseCAM``.

``BaseCAM`` runs forward and backward passes in batches on any Keras backend
(``backends``), forms per-image maps, applies ReLU, scales each map to
[0, 1] and upsamples it to the input size. A method overrides one small
piece: its channel weights, its weighted activations, or the map itself.
``aug_smooth`` and ``eigen_smooth`` are options of every call, as in
pytorch-grad-cam.

The two passes depend only on the layer a method reads (and on guided ReLUs),
not on the method, so the methods of one model share them through ``Probes``:
tracing them is most of a method's first call.
"""

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np

from eipviz.attribution.backends import forward_pass, gradient_pass
from eipviz.attribution.graph import probe_model, softmax, tail_probe_model
from eipviz.attribution.layers import default_target_layer
from eipviz.attribution.maps import (
    EPS,
    align_back,
    augment,
    augmentation_views,
    principal_component_maps,
    scale_maps,
)
from eipviz.attribution.memory import images_per_pass
from eipviz.errors import EipvizError

PREDICTED = -1  # class index meaning "the model's own top class"
PROBES_KEPT = 8  # probe models (with their traced passes) kept per model; the least recently used is dropped
Progress = Callable[[int, int], None]


def image_generator(seed: int, image: np.ndarray) -> np.random.Generator:
    """A generator seeded by ``seed`` and the image's bytes: an image draws the same numbers alone, in any
    batch and on any thread, and nothing is kept on a method that browser sessions share."""
    return np.random.default_rng([seed, zlib.crc32(image.tobytes())])


class Passes:
    """A probe model (``graph.probe_model``) and its forward and gradient passes, each built (traced,
    jitted) on its first call."""

    def __init__(self, probe):
        self.probe = probe
        self._forward: Callable | None = None
        self._gradients: Callable | None = None

    def forward(self, x, delta=None, maps=True):
        if self._forward is None:
            self._forward = forward_pass(self.probe)
        return self._forward(x, delta, maps)

    def gradients(self, x, classes):
        if self._gradients is None:
            self._gradients = gradient_pass(self.probe)
        return self._gradients(x, classes)


class Probes:
    """One model's ``Passes`` by layer and guidedness, for all its methods: Grad-CAM, Grad-CAM++, XGrad-CAM,
    LayerCAM... at one layer trace one gradient pass between them, and every method's scores one forward pass.

    Thread-safe; keeps the ``PROBES_KEPT`` most recently used (a method keeps its own alive).
    """

    def __init__(self, model):
        self.model = model
        self._passes: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def passes(self, layer: str, guided: bool = False) -> Passes:
        key = (layer, guided)
        with self._lock:
            if key not in self._passes:
                self._passes[key] = Passes(probe_model(self.model, layer, guided=guided))
                while len(self._passes) > PROBES_KEPT:
                    self._passes.popitem(last=False)
            self._passes.move_to_end(key)
            return self._passes[key]


class BaseCAM:
    """Attribution maps of one layer of one model for one method."""

    name = ""
    needs_gradients = True
    slow = False  # many forward passes per image: the pages show a progress bar
    guided = False  # ReLUs replaced by guided ReLUs in the probe model
    uses_layer = True  # False: the map is the same whatever the layer (input-gradient methods)

    def __init__(self, model, layer: str | None = None, reference_input: np.ndarray | None = None,
                 probes: Probes | None = None):
        """``reference_input``: the model input of a black image, for methods that start from one
        (Integrated Gradients; zeros when not given); the others ignore it. ``probes``: the model's
        ``Probes``, shared with its other methods (a new one when not given)."""
        if probes is not None and probes.model is not model:
            raise ValueError("probes belong to another model")
        self.model = model
        self.layer = layer or default_target_layer(model)
        self.reference_input = reference_input
        self.probes = probes or Probes(model)
        self.passes = self.probes.passes(self.probe_layer, self.guided)

    @property
    def probe(self):
        """The probe model this method reads (``graph.probe_model``), shared with the methods of its ``passes``."""
        return self.passes.probe

    @property
    def probe_layer(self) -> str:
        """The layer whose map and gradients the method reads (input-gradient methods: the input)."""
        return self.layer

    # -- the one piece each method overrides --------------------------------

    def channel_weights(self, activations, gradients, inputs, classes):
        """Per-image channel weights, shape (N, C)."""
        raise NotImplementedError

    def weighted_activations(self, activations, gradients, inputs, classes):
        """(N, h, w, C) whose channel sum is the map (and whose first principal component is, with eigen_smooth)."""
        return activations * self.channel_weights(activations, gradients, inputs, classes)[:, None, None, :]

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        """Per-image maps at the layer's resolution, (N, h, w), before ReLU and scaling."""
        weighted = self.weighted_activations(activations, gradients, inputs, classes)
        return principal_component_maps(weighted) if eigen_smooth else weighted.sum(axis=-1)

    # -- the shared pipeline ------------------------------------------------

    def __call__(self, inputs, class_indices=None, batch_size: int = 64, upsample: bool = True,
                 aug_smooth: bool = False, eigen_smooth: bool = False, progress: Progress | None = None):
        """Return ``(maps (N, H, W) float32 in [0, 1], classes (N,), logits (N, K))``.

        ``aug_smooth``: the mean of the maps of flipped and shifted views, aligned back (at the input size).
        ``eigen_smooth``: each map is the first principal component of its weighted activations.
        ``progress(done, total)`` is called after each batch: of ``batch_size`` images, fewer for a model with
        large maps (``memory``), since a batch's maps, and gradients, are kept until its maps are made.
        """
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 4 or len(inputs) == 0:
            raise EipvizError(f"Expected a batch of images (N, H, W, C), got shape {inputs.shape}.")
        batch_size = images_per_pass(self.probe, batch_size, kept_copies=2 if self.needs_gradients else 1)
        self.prepare_call(inputs)
        classes = np.full(len(inputs), PREDICTED, np.int32) if class_indices is None else (
            self._checked_classes(class_indices, len(inputs)))
        if not aug_smooth:
            maps, classes, logits = self._maps(inputs, classes, batch_size, eigen_smooth, progress)
            return self._finish(maps, inputs, upsample), classes, logits
        views = augmentation_views(inputs.shape[1])
        logits = self.logits(inputs)
        classes = np.where(classes < 0, logits.argmax(-1), classes).astype(np.int32)  # one class for every view
        total = np.zeros(inputs.shape[:3], np.float32)
        for done, (flip, shift) in enumerate(views):
            maps, _, _ = self._maps(augment(inputs, flip, shift), classes, batch_size, eigen_smooth, None)
            total = total + align_back(self._finish(maps, inputs, upsample=True), flip, shift)
            if progress:
                progress(done + 1, len(views))
        maps = scale_maps(total / len(views))
        return (maps if upsample else self._resize(maps, self.probe.outputs[0].shape[1:3])), classes, logits

    def _checked_classes(self, class_indices, count: int) -> np.ndarray:
        """One class index per image, each ``PREDICTED`` or a class of the model: any negative meant "predicted"
        (``-2`` too), and one past the last gave zero maps under JAX and an error under TensorFlow."""
        classes = np.asarray(class_indices)
        known = int(self.probe.outputs[1].shape[-1])
        if classes.dtype.kind not in "iu" or classes.ndim > 1 or classes.size not in (1, count):
            raise EipvizError(f"Classes are one class index, or one per image ({count}). Received: {class_indices!r}.")
        if ((classes != PREDICTED) & ((classes < 0) | (classes >= known))).any():
            raise EipvizError(f"A class index is 0 to {known - 1} (or {PREDICTED}: the predicted class). "
                              f"Received: {classes.tolist()}.")
        return np.broadcast_to(classes.astype(np.int32), (count,)).copy()

    def prepare_call(self, inputs: np.ndarray) -> None:
        """Called once per ``__call__`` before any batch. A method is shared across threads (browser sessions):
        what it keeps per call must be per thread (``IntegratedGradients``)."""

    def _maps(self, inputs, classes, batch_size, eigen_smooth, progress):
        maps, chosen, logits = [], [], []
        for start in range(0, len(inputs), batch_size):
            x = inputs[start:start + batch_size]
            acts, batch_logits, grads, batch_classes = self.gradients(x, classes[start:start + batch_size]) if (
                self.needs_gradients) else self._without_gradients(x, classes[start:start + batch_size])
            layer_maps = self.layer_maps(acts, grads, x, batch_classes, eigen_smooth)
            maps.append(np.maximum(np.nan_to_num(layer_maps, nan=0.0, posinf=0.0, neginf=0.0), 0))
            chosen.append(batch_classes)
            logits.append(batch_logits)
            if progress:
                progress(min(start + batch_size, len(inputs)), len(inputs))
        return scale_maps(np.concatenate(maps)), np.concatenate(chosen), np.concatenate(logits)

    def _finish(self, maps, inputs, upsample):
        return self._resize(maps, inputs.shape[1:3]) if upsample else maps

    @staticmethod
    def _resize(maps, size):
        height, width = int(size[0]), int(size[1])
        if maps.shape[1:] == (height, width):
            return maps.astype(np.float32)
        return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])

    def _without_gradients(self, x, classes):
        acts, logits = self.forward(x)
        chosen = np.where(classes < 0, logits.argmax(-1), classes).astype(np.int32)
        return acts, logits, None, chosen

    # -- passes methods build on --------------------------------------------

    def forward(self, x, delta=None):
        """(map, logits) of images ``x``; ``delta`` is added to the map before the layers after it."""
        return self.passes.forward(x, delta)

    def gradients(self, x, classes):
        """(map, logits, d logit[class] / d map, class) of images ``x``; class -1: the top class."""
        return self.passes.gradients(x, classes)

    def logits(self, x):
        """Logits of images ``x`` alone: no map is kept, so any number of images is scored in flat memory."""
        return self.passes.forward(np.asarray(x, np.float32), maps=False)[1]

    def scores(self, inputs, classes):
        """Softmax probability of each image's class, from the logits."""
        return softmax(self.logits(inputs))[np.arange(len(classes)), classes]

    def class_logits(self, inputs, classes):
        """Pre-softmax logit of each image's class (the probe model drops a final softmax)."""
        return self.logits(inputs)[np.arange(len(classes)), classes]


class GradCAM(BaseCAM):
    """Selvaraju et al. 2017: channel weight = spatial mean of the logit's gradient."""

    name = "gradcam"

    def channel_weights(self, activations, gradients, inputs, classes):
        return gradients.mean(axis=(1, 2))


class GradCAMPlusPlus(BaseCAM):
    """Chattopadhay et al. 2018: positive gradients weighted by second-order alphas."""

    name = "gradcam++"

    def channel_weights(self, activations, gradients, inputs, classes):
        grads2, grads3 = gradients ** 2, gradients ** 3
        sum_activations = activations.sum(axis=(1, 2), keepdims=True)
        denominator = 2 * grads2 + sum_activations * grads3
        alphas = grads2 / np.where(denominator != 0, denominator, 1.0)
        return (alphas * np.maximum(gradients, 0)).sum(axis=(1, 2))


class XGradCAM(BaseCAM):
    """Fu et al. 2020: gradients weighted by each channel's activations normalised to sum 1."""

    name = "xgradcam"

    def channel_weights(self, activations, gradients, inputs, classes):
        sums = activations.sum(axis=(1, 2), keepdims=True)
        return (gradients * activations / (sums + EPS)).sum(axis=(1, 2))


class HiResCAM(BaseCAM):
    """Draelos & Carin 2020: element-wise gradient times activation, summed over channels (no pooling)."""

    name = "hirescam"

    def weighted_activations(self, activations, gradients, inputs, classes):
        return gradients * activations


class GradCAMElementWise(BaseCAM):
    """pytorch-grad-cam's ``GradCAMElementWise``: ReLU of the element-wise product, summed over channels."""

    name = "gradcam-elementwise"

    def weighted_activations(self, activations, gradients, inputs, classes):
        return np.maximum(gradients * activations, 0)


class LayerCAM(BaseCAM):
    """Jiang et al. 2021: element-wise positive gradient times activation, no spatial pooling."""

    name = "layercam"

    def weighted_activations(self, activations, gradients, inputs, classes):
        return np.maximum(gradients, 0) * activations


class EigenCAM(BaseCAM):
    """Muhammad & Yeasin 2020: the first principal component of the activations (class-agnostic, no gradients)."""

    name = "eigencam"
    needs_gradients = False

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        return principal_component_maps(activations)


class EigenGradCAM(BaseCAM):
    """Eigen-CAM of gradient x activation (pytorch-grad-cam's ``EigenGradCAM``): class-specific."""

    name = "eigengradcam"

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        return principal_component_maps(gradients * activations)


class ScoreCAM(BaseCAM):
    """Wang et al. 2020: weight each channel by the class score of the input masked by it.

    Each channel, upsampled and scaled to [0, 1], masks the input; the masked
    images of a batch go through the model together. As in pytorch-grad-cam
    the score is the class's logit (pre-softmax, as every method here reads it)
    and the weights are the softmax of those scores over channels. Scoring by
    probability instead bounds the scores to [0, 1], so no weight can exceed
    another by more than a factor e: the weights come out nearly uniform and
    the map nearly the same for every class. (The paper subtracts the baseline
    image's score, a constant per image that the softmax over channels cancels.)
    """

    name = "scorecam"
    needs_gradients = False
    slow = True
    masks_per_pass = 256  # masked images made and scored at a time, fewer for a model with large maps (``memory``)

    def channel_weights(self, activations, gradients, inputs, classes):
        n, _, _, channels = activations.shape
        weights = np.zeros((n, channels), np.float32)
        chosen = self.scored_channels(activations)
        height, width = inputs.shape[1:3]
        block = images_per_pass(self.probe, self.masks_per_pass)  # 2,048 masked 224x224 images: 1.2 GB
        for i in range(n):
            maps = scale_maps(np.moveaxis(activations[i][..., chosen[i]], -1, 0))
            scores = []
            for start in range(0, len(maps), block):
                masks = self._resize(maps[start:start + block], (height, width))
                scores.append(self.class_logits(inputs[i][None] * masks[..., None], np.full(len(masks), classes[i])))
            weights[i, chosen[i]] = softmax(np.concatenate(scores)[None])[0]  # over channels, as Score-CAM defines
        return weights

    def scored_channels(self, activations) -> np.ndarray:
        """The channels each image is masked by (N, k): all of them."""
        return np.broadcast_to(np.arange(activations.shape[-1]), activations.shape[:1] + activations.shape[-1:])


class FasterScoreCAM(ScoreCAM):
    """Score-CAM on the ``top_channels`` channels of largest spatial variance (tf-keras-vis ``max_N``)."""

    name = "fasterscorecam"
    top_channels = 32

    def scored_channels(self, activations) -> np.ndarray:
        k = min(self.top_channels, activations.shape[-1])
        return np.argsort(-activations.var(axis=(1, 2)), axis=1, kind="stable")[:, :k]


class AblationCAM(BaseCAM):
    """Desai & Ramaswamy 2020: weight = drop of the class logit when the channel is zeroed, over |logit|.

    The N x C ablated maps go in batches through the layers after the tapped
    one only (``graph.tail_probe_model``; its ``delta`` input removes one
    channel at a time), as pytorch-grad-cam reuses the layer's activations.
    Where a skip connection goes around the layer, the map alone does not
    decide the logits, and the whole probe model runs per ablated channel.
    As in pytorch-grad-cam the score is the logit, but the drop is divided by
    the logit's magnitude: pytorch-grad-cam divides by the logit itself, which
    for a class with a negative logit flips every weight, and so turns the map
    inside out (maps are min-max scaled, so only the divisor's sign mattered).
    A logit within 1e-7 of zero divides by 1e-7 instead.
    """

    name = "ablationcam"
    needs_gradients = False
    slow = True
    ablation_batch_size = 256  # channels ablated per pass, fewer for a model with large maps (``memory``)

    def tail(self):
        """The forward pass of the layers after the tapped one (``tail_probe_model``), or None."""
        if not hasattr(self, "_tail_pass"):
            tail = tail_probe_model(self.model, self.layer)
            self._tail_pass = None if tail is None else forward_pass(tail)
        return self._tail_pass

    def ablated_logits(self, activations, inputs, delta):
        """Logits with ``delta`` added to the map (activations and inputs: one image, repeated as delta's rows)."""
        rows = len(delta)
        if self.tail() is not None:
            return self.tail()(np.repeat(activations[None], rows, axis=0), delta)[1]
        return self.forward(np.repeat(inputs[None], rows, axis=0), delta)[1]

    def channel_weights(self, activations, gradients, inputs, classes):
        n, _, _, channels = activations.shape
        # the unablated logits from the same pass as the ablated ones, so their difference is not rounding
        logits = self.tail()(activations)[1] if self.tail() is not None else self.logits(inputs)
        original = logits[np.arange(n), classes]
        weights = np.empty((n, channels), np.float32)
        eye = np.eye(channels, dtype=np.float32)
        block_rows = images_per_pass(self.probe, self.ablation_batch_size)  # a row: the map twice, and a pass
        for i in range(n):
            for start in range(0, channels, block_rows):
                block = eye[start:start + block_rows]  # one channel per row
                delta = -activations[i][None] * block[:, None, None, :]
                ablated = self.ablated_logits(activations[i], inputs[i], delta)
                denominator = max(abs(float(original[i])), EPS)
                weights[i, start:start + len(block)] = (original[i] - ablated[:, classes[i]]) / denominator
        return weights


class RandomCAM(BaseCAM):
    """pytorch-grad-cam's ``RandomCAM``: channel weights drawn uniformly from [-1, 1], the baseline for metrics.

    Each image's weights are drawn from ``image_generator(seed, image)``, so an image gets the same map
    alone, in any batch and whichever thread asks.
    """

    name = "random"
    needs_gradients = False
    seed = 0

    def channel_weights(self, activations, gradients, inputs, classes):
        weights = [image_generator(self.seed, image).uniform(-1, 1, activations.shape[-1]) for image in inputs]
        return np.stack(weights).astype(np.float32)
