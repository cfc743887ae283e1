"""Misclassified-image gallery: original, CAM for the predicted class, CAM for the true class."""

from dataclasses import dataclass

import numpy as np

from eipviz.evaluation import Evaluation
from eipviz.images import fit_images
from eipviz.explain.cams import get_cam
from eipviz.explain.overlay import gallery_sheet, overlay, upscale
from eipviz.loading import LoadedModel
from eipviz.preprocessing import preprocess


@dataclass
class GalleryItem:
    index: int  # into the test set
    true_class: str
    predicted_class: str
    confidence: float
    original: np.ndarray  # RGB uint8 for display
    predicted_overlay: np.ndarray
    true_overlay: np.ndarray

    @property
    def caption(self) -> str:
        return f"#{self.index}: true {self.true_class}, predicted {self.predicted_class} ({self.confidence:.0%})"


def gallery_items(loaded: LoadedModel, evaluation: Evaluation, images: np.ndarray, indices, method="gradcam",
                  layer=None, alpha=0.45, colormap="jet") -> list[GalleryItem]:
    """Gallery rows for test ``indices``: two batched CAM passes (predicted, then true class)."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    shown = images[indices]
    inputs = preprocess(fit_images(shown, loaded.input_size), loaded.preprocessing)
    cam = get_cam(loaded.model, method, layer or loaded.cam_layer)
    predicted = evaluation.predictions[indices]
    true = evaluation.labels[indices]
    cams_predicted, _, _ = cam(inputs, predicted)
    cams_true, _, _ = cam(inputs, true)
    items = []
    for i, index in enumerate(indices):
        items.append(GalleryItem(
            index=int(index), true_class=loaded.class_names[true[i]],
            predicted_class=loaded.class_names[predicted[i]], confidence=float(evaluation.confidence[index]),
            original=upscale(shown[i]), predicted_overlay=overlay(shown[i], cams_predicted[i], alpha, colormap),
            true_overlay=overlay(shown[i], cams_true[i], alpha, colormap),
        ))
    return items


def gallery_png_sheet(items: list[GalleryItem]) -> np.ndarray:
    """The shown gallery as one image, for export."""
    return gallery_sheet([[it.original, it.predicted_overlay, it.true_overlay] for it in items],
                         [it.caption for it in items])
