"""Explain arbitrary images (uploads, CLI files) with a ``Classifier``."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eipviz.classifier import Classifier
from eipviz.data import dataset_label
from eipviz.errors import EipvizError
from eipviz.explain.overlay import overlay
from eipviz.images import resize_note, suitability_notes

COLORMAP = "jet"
OVERLAY_MIN_SIDE = 128  # an overlay's side in pixels: a 28-32 px model input is drawn larger


@dataclass
class ImageExplanation:
    probabilities: np.ndarray  # (K,)
    class_index: int  # the class the CAM explains
    cam: np.ndarray  # (H, W) in [0, 1] at the model's input size
    overlay: np.ndarray  # RGB uint8 for display

    def top(self, class_names, k=5) -> list[dict]:
        order = np.argsort(-self.probabilities)[:k]
        return [{"class": class_names[i], "index": int(i), "probability": round(float(self.probabilities[i]), 6)}
                for i in order]


def explain_images(classifier: Classifier, images: list[np.ndarray], method="gradcam", layer=None,
                   class_index: int | None = None, alpha=0.45, colormap=COLORMAP,
                   class_indices: Sequence[int | None] | None = None,
                   probabilities: np.ndarray | None = None, aug_smooth: bool = False,
                   eigen_smooth: bool = False) -> list[ImageExplanation]:
    """Predictions and a CAM overlay per RGB uint8 image (any size), in one batch.

    ``class_index`` is the class every CAM explains (None: each image's top prediction; a name or an index, as
    ``Classifier.class_index`` reads it);
    ``class_indices`` gives one per image instead, None entries meaning that image's top prediction.
    ``probabilities``: ``classifier.probabilities(images)`` when the caller has them already (a page that
    offers the top class as each image's default), so the images go through the model once.
    ``aug_smooth`` and ``eigen_smooth``: as ``BaseCAM.__call__``.
    """
    if class_indices is not None:
        if class_index is not None:
            raise EipvizError(f"Give class_index or class_indices, not both. Received: class_index={class_index}.")
        if len(class_indices) != len(images):
            raise EipvizError(f"class_indices needs one entry per image ({len(images)}). "
                              f"Received: {len(class_indices)} entries.")
    fitted = classifier.fit(images)
    if probabilities is None:
        probabilities = classifier.probabilities(fitted)
    top = probabilities.argmax(axis=1)
    wanted = class_indices if class_indices is not None else [class_index] * len(images)
    classes = np.array([top[i] if c is None else classifier.class_index(c) for i, c in enumerate(wanted)],
                       dtype=np.int64)
    cams = classifier.cams(fitted, method, layer, classes, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
    return [ImageExplanation(probabilities[i], int(classes[i]), cams[i], explanation_overlay(fitted[i], cams[i], alpha,
                                                                                      colormap))
            for i in range(len(images))]


def explanation_overlay(fitted: np.ndarray, cam: np.ndarray, alpha: float, colormap: str = COLORMAP) -> np.ndarray:
    """The overlay the Upload page and ``python -m eipviz cam`` show: ``cam`` over the model-sized image, drawn
    at least ``OVERLAY_MIN_SIDE`` pixels wide (a 28-32 px input is drawn larger)."""
    return overlay(fitted, cam, alpha, colormap, size=max(OVERLAY_MIN_SIDE, *fitted.shape[:2]))


def upload_notes(classifier: Classifier, image: np.ndarray, original_size: tuple[int, int] | None = None,
                 grayscale: bool = False) -> tuple[str | None, str | None]:
    """(how ``image`` is fitted to the model, why it may not suit the model), each None when there is nothing to
    say: the Upload page's note and warning, worded once for the page and ``python -m eipviz cam``.

    ``original_size`` and ``grayscale``: the ``DecodedImage``'s, as ``resize_note`` takes them. For example
    ``("resized from 300x200 to 28x28; converted to grayscale to fit the model", "may not suit a MNIST model:
    colour photo given to a grayscale digit model: ... Its prediction and map say little about such images")``.
    """
    fitted = resize_note(image, classifier.input_size, original_size, grayscale)
    unsuited = suitability_notes(image, classifier.dataset)
    return (None if fitted is None else f"{fitted} to fit the model",
            None if not unsuited else f"may not suit a {dataset_label(classifier.dataset)} model: "
                                      f"{'; '.join(unsuited)}. Its prediction and map say little about such images")
