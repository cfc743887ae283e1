"""Misclassified-image gallery: original, CAM for the predicted class, CAM for the true class."""

from dataclasses import dataclass

import numpy as np

from eipviz.classifier import Classifier
from eipviz.evaluation import Evaluation
from eipviz.explain.overlay import gallery_sheet, overlay, upscale


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


def gallery_page(indices: np.ndarray, page: int, page_size: int) -> tuple[np.ndarray, int]:
    """(the indices on 1-based ``page``, how many pages there are; at least one, even when empty)."""
    pages = max(1, -(-len(indices) // page_size))
    page = min(max(1, int(page)), pages)
    return indices[(page - 1) * page_size:page * page_size], pages


def gallery_items(classifier: Classifier, evaluation: Evaluation, images: np.ndarray, indices, method="gradcam",
                  layer=None, alpha=0.45, colormap="jet") -> list[GalleryItem]:
    """Gallery rows for test ``indices``: two batched CAM passes (predicted, then true class)."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    shown = images[indices]
    predicted = evaluation.predictions[indices]
    true = evaluation.labels[indices]
    cams_predicted = classifier.cams(shown, method, layer, predicted)
    cams_true = classifier.cams(shown, method, layer, true)
    items = []
    for i, index in enumerate(indices):
        items.append(GalleryItem(
            index=int(index), true_class=classifier.class_names[true[i]],
            predicted_class=classifier.class_names[predicted[i]], confidence=float(evaluation.confidence[index]),
            original=upscale(shown[i]), predicted_overlay=overlay(shown[i], cams_predicted[i], alpha, colormap),
            true_overlay=overlay(shown[i], cams_true[i], alpha, colormap),
        ))
    return items


def gallery_png_sheet(items: list[GalleryItem]) -> np.ndarray:
    """The shown gallery as one image, for export."""
    return gallery_sheet([[it.original, it.predicted_overlay, it.true_overlay] for it in items],
                         [it.caption for it in items])
