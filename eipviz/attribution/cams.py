"""The CAM family on one pipeline, in the manner of pytorch-grad-cam's ``BaseCAM``.

``BaseCAM`` runs forward and backward passes in batches (one traced
gradient function per explainer), forms per-image maps, applies ReLU,
scales each map to [0, 1] and upsamples it to the input size. A method
overrides one small piece: how channel weights (or the map itself) are
formed.
"""

from collections.abc import Callable

import cv2
import keras
import numpy as np

from eipviz.attribution.graph import feature_logit_model, softmax
from eipviz.attribution.layers import default_target_layer
from eipviz.errors import EipvizError

PREDICTED = -1  # class index meaning "the model's own top class"
EPS = 1e-7


class BaseCAM:
    """Class activation maps of one layer of one model."""

    name = ""
    needs_gradients = True

    def __init__(self, model, layer: str | None = None):
        self.model = model
        self.layer = layer or default_target_layer(model)
        self.features_and_logits = feature_logit_model(model, self.layer)
        self._traced: Callable | None = None

    # -- the one piece each method overrides --------------------------------

    def channel_weights(self, activations, gradients, inputs, classes):
        """Per-image channel weights, shape (N, C)."""
        raise NotImplementedError

    def layer_maps(self, activations, gradients, inputs, classes):
        """Per-image maps at the layer's resolution, (N, h, w), before ReLU and scaling."""
        weights = self.channel_weights(activations, gradients, inputs, classes)
        return np.einsum("nhwc,nc->nhw", activations, weights)

    # -- the shared pipeline ------------------------------------------------

    def __call__(self, inputs, class_indices=None, batch_size: int = 64, upsample: bool = True):
        """Return ``(cams (N, H, W) float32 in [0, 1], classes (N,), logits (N, K))``."""
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 4:
            raise EipvizError(f"Expected a batch of images (N, H, W, C), got shape {inputs.shape}.")
        classes = np.full(len(inputs), PREDICTED, np.int32) if class_indices is None else (
            np.broadcast_to(np.asarray(class_indices, np.int32), (len(inputs),)).copy())
        cams, chosen, logits = [], [], []
        for start in range(0, len(inputs), batch_size):
            x = inputs[start:start + batch_size]
            acts, batch_logits, grads, batch_classes = self._forward(x, classes[start:start + batch_size])
            maps = np.maximum(self.layer_maps(acts, grads, x, batch_classes), 0)
            cams.append(maps)
            chosen.append(batch_classes)
            logits.append(batch_logits)
        maps = scale_maps(np.concatenate(cams))
        if upsample:
            height, width = inputs.shape[1:3]
            maps = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])
        return maps.astype(np.float32), np.concatenate(chosen), np.concatenate(logits)

    def _forward(self, x, classes):
        if not self.needs_gradients:
            acts, logits = (keras.ops.convert_to_numpy(t) for t in self.features_and_logits(x, training=False))
            chosen = np.where(classes < 0, logits.argmax(-1), classes).astype(np.int32)
            return acts, logits, None, chosen
        if self._traced is None:
            self._traced = _gradient_function(self.features_and_logits)
        return tuple(np.asarray(t) for t in self._traced(x, classes))

    def scores(self, inputs, classes, batch_size=256):
        """Softmax probability of each image's class, from the logits."""
        probabilities = []
        for start in range(0, len(inputs), batch_size):
            _, logits = self.features_and_logits(inputs[start:start + batch_size], training=False)
            probabilities.append(softmax(keras.ops.convert_to_numpy(logits)))
        probabilities = np.concatenate(probabilities)
        return probabilities[np.arange(len(classes)), classes]


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


class LayerCAM(BaseCAM):
    """Jiang et al. 2021: element-wise positive gradient times activation, no spatial pooling."""

    name = "layercam"

    def layer_maps(self, activations, gradients, inputs, classes):
        return (np.maximum(gradients, 0) * activations).sum(axis=-1)


class ScoreCAM(BaseCAM):
    """Wang et al. 2020: weight each channel by the class score of the input masked by it.

    The N x C masked images go through the model in batches.
    """

    name = "scorecam"
    needs_gradients = False
    mask_batch_size = 256

    def channel_weights(self, activations, gradients, inputs, classes):
        n, _, _, channels = activations.shape
        height, width = inputs.shape[1:3]
        weights = np.empty((n, channels), np.float32)
        for i in range(n):
            masks = scale_maps(np.moveaxis(activations[i], -1, 0))
            masks = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in masks])
            masked = inputs[i][None] * masks[..., None]
            scores = self.scores(masked, np.full(channels, classes[i]), self.mask_batch_size)
            weights[i] = softmax(scores[None])[0]  # softmax over channels, as Score-CAM defines
        return weights


METHODS = {cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, ScoreCAM, LayerCAM)}

def make_cam(model, method: str = "gradcam", layer: str | None = None) -> BaseCAM:
    """A new CAM of ``method`` for a Keras model (``Classifier.cam`` keeps one per method and layer)."""
    if method not in METHODS:
        raise EipvizError(f"Unknown CAM method {method!r}. Choose one of: {', '.join(METHODS)}.")
    return METHODS[method](model, layer)


def scale_maps(maps: np.ndarray) -> np.ndarray:
    """Scale every map to [0, 1] by its own min and max (a flat map becomes zeros)."""
    maps = maps.astype(np.float32)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > EPS, (maps - low) / np.where(span > EPS, span, 1.0), 0.0).astype(np.float32)


def _gradient_function(explainer):
    """Traced (activations, logits, d logit[class] / d activations, classes) for a batch."""
    if keras.backend.backend() != "tensorflow":
        raise EipvizError("Gradient CAMs need the TensorFlow backend (KERAS_BACKEND=tensorflow); "
                          "Score-CAM works on any backend.")
    import tensorflow as tf

    shape = (None, *explainer.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32), tf.TensorSpec([None], tf.int32)])
    def run(x, classes):
        with tf.GradientTape() as tape:
            activations, logits = explainer(x, training=False)
            chosen = tf.where(classes < 0, tf.argmax(logits, axis=-1, output_type=tf.int32), classes)
            score = tf.reduce_sum(tf.gather(logits, chosen, batch_dims=1))
        return activations, logits, tape.gradient(score, activations), chosen

    return run
