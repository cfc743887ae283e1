"""What ``fit`` trains: uint8 images in, augmented and preprocessed inside the compiled training step.

The augmentation layers and the preprocessing run in the same traced (TensorFlow) or jitted (JAX)
function as the forward and backward pass, so the host only hands over uint8 batches. The zoo model
inside stays the plain model that is saved, shipped and explained.
"""

import keras
import numpy as np

from eipviz.errors import EipvizError
from eipviz.preprocessing import CIFAR10_MEAN, CIFAR10_STD, PREPROCESSINGS, cifar10_pixel_mean


class Preprocess(keras.layers.Layer):
    """``eipviz.preprocessing.preprocess`` as a Keras layer: uint8-range floats in, model inputs out.

    Always float32, also under a mixed-precision policy: the model's first layer casts its input.

    Example:
        Preprocess("channel_standardize")(images)  # (x / 255 - mean) / std per channel
    """

    def __init__(self, kind: str, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        if kind not in PREPROCESSINGS:
            raise EipvizError(f"Unknown preprocessing {kind!r}. Choose one of: {', '.join(PREPROCESSINGS)}.")
        self.kind = kind
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
        self.preprocess = Preprocess(preprocessing)
        self.classifier = classifier

    def call(self, images, training=False):
        x = keras.ops.cast(images, "float32")
        for layer in self.augmentation:
            x = layer(x, training=training)
        x = self.preprocess(x)
        return keras.ops.cast(self.classifier(x, training=training), "float32")


def saved_model(model: keras.Model) -> keras.Model:
    """The model to save for ``model``: a ``TrainingModel``'s classifier, any other model itself."""
    return model.classifier if isinstance(model, TrainingModel) else model


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, C): grayscale (N, H, W) gets a channel axis (a view, no copy)."""
    return images[..., None] if images.ndim == 3 else images


def one_hot(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """float32 one-hot rows for integer class labels."""
    return np.eye(num_classes, dtype=np.float32)[labels]
