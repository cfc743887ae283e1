"""Explain arbitrary images (uploads, CLI files) with a ``Classifier``."""

from dataclasses import dataclass

import numpy as np

from eipviz.classifier import Classifier
from eipviz.explain.overlay import overlay


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
                   class_index: int | None = None, alpha=0.45, colormap="jet") -> list[ImageExplanation]:
    """Predictions and a CAM overlay per RGB uint8 image (any size), in one batch.

    ``class_index`` None explains each image's top prediction.
    """
    fitted = classifier.fit(images)
    probabilities = classifier.probabilities(fitted)
    classes = probabilities.argmax(axis=1) if class_index is None else np.full(len(images), class_index)
    cams = classifier.cams(fitted, method, layer, classes)
    return [ImageExplanation(probabilities[i], int(classes[i]), cams[i],
                             overlay(fitted[i], cams[i], alpha, colormap, size=max(128, max(fitted[i].shape[:2]))))
            for i in range(len(images))]
