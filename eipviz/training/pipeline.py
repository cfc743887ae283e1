"""What ``fit`` trains: uint8 images in, augmented and preprocessed inside the compiled training step.

The augmentation layers and the preprocessing run in the same traced (TensorFlow) or jitted (JAX)
function as the forward and backward pass, so the host only hands over uint8 batches. The zoo model
inside stays the plain model that is saved, shipped and explained.
"""

import os
from collections import Counter
from pathlib import Path

import keras
import numpy as np

from eipviz.errors import EipvizError
from eipviz.preprocessing import CIFAR10_MEAN, CIFAR10_STD, check_known, cifar10_pixel_mean


class Preprocess(keras.layers.Layer):
    """``eipviz.preprocessing.preprocess`` as a Keras layer: uint8-range floats in, model inputs out.

    Always float32, also under a mixed-precision policy: the model's first layer casts its input.

    Example:
        Preprocess("channel_standardize")(images)  # (x / 255 - mean) / std per channel
    """

    def __init__(self, kind: str, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.kind = check_known(kind)
        self.offset, self.divisor = self._affine(kind)

    @staticmethod
    def _affine(kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(offset, divisor)``: input = (x / 255 - offset) / divisor, the float32 steps of ``preprocess``."""
        if kind == "channel_standardize":
            return CIFAR10_MEAN, CIFAR10_STD
        if kind == "pixel_mean":
            return cifar10_pixel_mean(), np.ones((1,), np.float32)
        return np.zeros((1,), np.float32), np.ones((1,), np.float32)

    def call(self, images):
        x = keras.ops.cast(images, "float32") / 255.0
        return (x - self.offset) / self.divisor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


class RandomShift(keras.layers.Layer):
    """Shift each image by its own whole number of pixels, filling what is uncovered like
    ``keras.layers.RandomTranslation(interpolation="nearest")`` does: ``"reflect"`` (``d c b a | a b c d``),
    ``"nearest"`` (the edge pixel repeated) or ``"constant"`` (zeros).

    The same meaning as that layer (whole-pixel shifts of at most ``factor`` of the side, the usual
    pad-and-crop augmentation), computed as two one-hot matrix products per image instead of an
    interpolated projective transform, which was the slowest part of the compiled step on a CPU
    (``benchmarks/input_pipeline.py``). Shifts are drawn uniformly from the whole numbers in
    ``[-round(factor * side), round(factor * side)]``.

    Example:
        RandomShift(0.125, 0.125, fill_mode="reflect", seed=0)(images, training=True)  # up to 4 px on 32x32
    """

    FILL_MODES = ("reflect", "nearest", "constant")

    def __init__(self, height_factor: float, width_factor: float, fill_mode: str = "reflect",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in self.FILL_MODES:
            raise EipvizError(f"Unknown fill_mode {fill_mode!r} for whole-pixel shifts. "
                              f"Choose one of: {', '.join(self.FILL_MODES)}.")
        self.height_factor, self.width_factor, self.fill_mode, self.seed = height_factor, width_factor, fill_mode, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _shifts(self, count, factor: float, side: int):
        limit = int(round(factor * side))
        if not limit:
            return keras.ops.zeros((count,), dtype="int32")
        return keras.random.randint((count,), -limit, limit + 1, seed=self.seed_generator, dtype="int32")

    def call(self, images, training=True):
        if not training:
            return images
        count, height, width = keras.ops.shape(images)[0], images.shape[1], images.shape[2]
        return shift_images(images, self._shifts(count, self.height_factor, height),
                            self._shifts(count, self.width_factor, width), self.fill_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor,
                "fill_mode": self.fill_mode, "seed": self.seed}


def _source_indices(shifts, side: int, fill_mode: str):
    """``(source, inside)``, each (N, side): output row i of image n reads input row ``source[n, i]``
    (i - shifts[n], folded back by the fill mode); ``inside`` is 0 where a ``"constant"`` fill leaves a zero,
    and None for the other fills, which leave none."""
    source = keras.ops.arange(side, dtype="int32")[None, :] - keras.ops.cast(shifts, "int32")[:, None]
    inside = None
    if fill_mode == "reflect":  # period 2 * side: rows 0..side-1, then side-1..0
        folded = keras.ops.mod(source, 2 * side)
        source = keras.ops.where(folded >= side, 2 * side - 1 - folded, folded)
    elif fill_mode == "constant":
        inside = keras.ops.cast((source >= 0) & (source < side), "float32")
    return keras.ops.clip(source, 0, side - 1), inside


def shift_images(images, down, right, fill_mode: str = "reflect"):
    """Images (N, H, W, C) moved ``down[n]`` rows and ``right[n]`` columns (whole pixels; negative: up, left).

    One gather of every output pixel's source pixel (``take``); until 2026-11-28 two one-hot matrix
    products per image, which did side-times the work (``benchmarks/input_pipeline.py``).

    Example:
        shift_images(np.arange(4.0).reshape(1, 1, 4, 1), [0], [1])  # one row a b c d -> a a b c (reflect)
    """
    count, height, width, channels = keras.ops.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
    rows, rows_inside = _source_indices(down, height, fill_mode)
    columns, columns_inside = _source_indices(right, width, fill_mode)
    first = keras.ops.arange(count, dtype="int32") * (height * width)  # each image's first pixel
    pixels = first[:, None, None] + rows[:, :, None] * width + columns[:, None, :]  # (N, H, W) source pixels
    flat = keras.ops.reshape(keras.ops.cast(images, "float32"), (-1, channels))
    moved = keras.ops.take(flat, pixels, axis=0)
    if rows_inside is not None and columns_inside is not None:  # a "constant" fill
        moved = moved * rows_inside[:, :, None, None] * columns_inside[:, None, :, None]
    return moved


class TrainingModel(keras.Model):
    """Augmentation, preprocessing, then ``classifier``: what ``fit`` trains; only ``classifier`` is saved.

    Takes uint8 images (N, H, W, C); augmentation runs only in training mode, so validation sees the
    preprocessed images unchanged. The output is float32 whatever the classifier computes in, so the
    loss is always computed in float32.

    Example:
        trainer = TrainingModel(build_model("resnet20v1"), augmentation_layers(recipe, seed=0),
                                "channel_standardize")
        trainer.compile(...); trainer.fit(x_uint8, y_one_hot, batch_size=512)
        trainer.classifier.save("best.keras")  # the plain zoo model
    """

    def __init__(self, classifier: keras.Model, augmentation: list[keras.layers.Layer], preprocessing: str,
                 **kwargs):
        super().__init__(**kwargs)
        self.augmentation = list(augmentation)
        if keras.backend.backend() == "jax":
            for layer in self.augmentation:
                # Keras marks RandomRotation, RandomZoom and RandomTranslation as not jit-compatible for
                # TensorFlow's XLA, and then runs the whole step without jit on every backend: under JAX,
                # op by op, each op compiled on its own (a 2-epoch mnist14k run: 71 s, 744 compiles). Their
                # JAX code (``jax.scipy.ndimage.map_coordinates``) compiles like any other.
                layer.supports_jit = True
        self.preprocess = Preprocess(preprocessing)
        self.classifier = classifier

    def call(self, images, training=False):
        x = keras.ops.cast(images, "float32")
        for layer in self.augmentation:
            x = layer(x, training=training)
        x = self.preprocess(x)
        return keras.ops.cast(self.classifier(x, training=training), "float32")


def build_before_fit(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> None:
    """Create the optimizer's and the metrics' variables from one batch, before ``fit``.

    Keras does this itself under JAX and under a TensorFlow distribution strategy. Under plain
    TensorFlow it creates them while tracing the first training step, and TensorFlow then traces
    that step a second time: about 2 s of every run's start on this CPU (a 1-epoch mnist14k run's
    ``fit``, 6.3 s before, 4.1 s after). ``_symbolic_build`` is the method Keras calls in those cases.
    """
    model._symbolic_build(data_batch=(images[:1], labels[:1]))


def saved_model(model: keras.Model) -> keras.Model:
    """The model to save for ``model``: a ``TrainingModel``'s classifier, any other model itself."""
    return model.classifier if isinstance(model, TrainingModel) else model


def partial_path(path: Path) -> Path:
    """Where a ``.keras`` file is written before it is renamed into place (``best.keras``, ``last.keras``), so a
    kill mid-write never leaves a broken checkpoint."""
    return path.with_name(path.stem + ".partial.keras")


def save_atomically(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` file beside ``path`` and rename it into place (``partial_path``)."""
    model.save(partial_path(path))
    os.replace(partial_path(path), path)


def compute_output_in_float32(classifier: keras.Model) -> None:
    """Make the classifier's last layer (its softmax) compute in float32 whatever the policy, as Keras advises
    for mixed precision: bfloat16 keeps about 3 significant digits, so it rounds the probabilities."""
    classifier.layers[-1].dtype_policy = "float32"


def layer_dtype_policy(model: keras.Model) -> str:
    """The dtype policy most of ``model``'s layers compute in: what it trains in. Not the model's own policy,
    which a loaded model takes from the global one while its layers keep those they were saved with."""
    return Counter(layer.dtype_policy.name for layer in model.layers).most_common(1)[0][0]


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` itself when every layer computes in float32, else a copy that does, with the same weights.

    What is explained and shipped (``best.keras``) then computes in float32 wherever it is loaded, also after
    mixed-precision training: a loaded layer keeps the policy it was saved with, whatever the global one is.
    The copy is compiled like ``model`` but with a fresh optimizer (a run resumes from ``last.keras``).
    """
    serialized = keras.saving.serialize_keras_object(model)
    in_float32 = _float32_policies(serialized)
    if in_float32 == serialized:
        return model
    copy = keras.saving.deserialize_keras_object(in_float32)
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(config):
    """A serialized model (nested dicts and lists) with every serialized dtype policy made float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_policies(item) for item in config]
    return config


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, C): grayscale (N, H, W) gets a channel axis (a view, no copy)."""
    return images[..., None] if images.ndim == 3 else images


def one_hot(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """float32 one-hot rows for integer class labels."""
    return np.eye(num_classes, dtype=np.float32)[labels]
