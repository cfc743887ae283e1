"""Misclassified-image gallery: original, CAM for the predicted class, CAM for the true class."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from eipviz.classifier import Classifier
from eipviz.evaluation import Evaluation
from eipviz.explain.overlay import DISPLAY_SIZE, gallery_sheet, overlay, upscale

COLUMN_LABELS = ("image", "CAM for predicted", "CAM for true")
PAGE_SIZE = 12  # wrong predictions per gallery page, on the Misclassified page and in ``python -m eipviz gallery``
ALL = "All"  # a class filter that keeps every class: the page's dropdown option and the sheet's note
CAM_CHUNK = 6  # images per CAM call (both of their maps): the progress bar moves at least every 6 images
ENLARGED_SIZE = 384


@dataclass
class GalleryItem:
    """One wrong prediction: the image and its two CAMs, and the tiles the page shows, drawn from them."""

    index: int  # into the test set
    true_class: str
    predicted_class: str
    confidence: float
    image: np.ndarray  # the test image as stored (uint8, its own size)
    predicted_cam: np.ndarray  # (H, W) float32 in [0, 1]
    true_cam: np.ndarray
    alpha: float = 0.45
    colormap: str = "jet"
    # RGB uint8 (DISPLAY_SIZE, DISPLAY_SIZE, 3) for the gallery and the exported sheet
    original: np.ndarray = field(init=False, repr=False)
    predicted_overlay: np.ndarray = field(init=False, repr=False)
    true_overlay: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.original, self.predicted_overlay, self.true_overlay = self.tiles()

    @property
    def caption(self) -> str:
        return f"#{self.index}: true {self.true_class}, predicted {self.predicted_class} ({self.confidence:.0%})"

    def tiles(self, size: int = DISPLAY_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image, CAM for the predicted class, CAM for the true class) as RGB uint8 (size, size, 3)."""
        return (upscale(self.image, size), overlay(self.image, self.predicted_cam, self.alpha, self.colormap, size),
                overlay(self.image, self.true_cam, self.alpha, self.colormap, size))

    def enlarged(self, size: int = ENLARGED_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``tiles`` at ``size`` (384 px by default), drawn afresh from the image and its maps (no blurry zoom)."""
        return self.tiles(size)


def gallery_page(indices: np.ndarray, page: int, page_size: int) -> tuple[np.ndarray, int]:
    """(the indices on 1-based ``page``, how many pages there are; at least one, even when empty)."""
    pages = max(1, -(-len(indices) // page_size))
    page = min(max(1, int(page)), pages)
    return indices[(page - 1) * page_size:page * page_size], pages


def gallery_note(true_name: str, predicted_name: str, low: float, high: float, page: int, pages: int) -> str:
    """The filters a gallery page was drawn with, as the exported sheet and the report state them
    (``true_name``/``predicted_name``: a class name or ``ALL``)."""
    return (f"true class {true_name}, predicted {predicted_name}, confidence {low:.2f}-{high:.2f}; "
            f"page {page} of {pages}")


def gallery_items(classifier: Classifier, evaluation: Evaluation, images: np.ndarray, indices, method="gradcam",
                  layer=None, alpha=0.45, colormap="jet",
                  progress: Callable[[int, int], None] | None = None, aug_smooth: bool = False,
                  eigen_smooth: bool = False) -> list[GalleryItem]:
    """Gallery rows for test ``indices``: batched CAM passes (predicted and true class together) in chunks.

    ``progress(done, total)`` is called with the number of images explained so far, after each chunk
    of ``CAM_CHUNK`` images (both of their maps), so a page can show how far a slow method has got.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    shown = images[indices]
    predicted = evaluation.predictions[indices]
    true = evaluation.labels[indices]
    cams_predicted, cams_true = [], []
    for start in range(0, len(indices), CAM_CHUNK):
        chunk = slice(start, start + CAM_CHUNK)
        # One batched pass per chunk: each image twice, once for each class.
        both = classifier.cams(np.concatenate([shown[chunk], shown[chunk]]), method, layer,
                               np.concatenate([predicted[chunk], true[chunk]]), aug_smooth=aug_smooth,
                               eigen_smooth=eigen_smooth)
        cams_predicted.append(both[:len(both) // 2])
        cams_true.append(both[len(both) // 2:])
        if progress is not None:
            progress(min(start + CAM_CHUNK, len(indices)), len(indices))
    maps_predicted, maps_true = np.concatenate(cams_predicted), np.concatenate(cams_true)
    items = []
    for i, index in enumerate(indices):
        items.append(GalleryItem(
            index=int(index), true_class=classifier.class_names[true[i]],
            predicted_class=classifier.class_names[predicted[i]], confidence=float(evaluation.confidence[index]),
            image=shown[i], predicted_cam=maps_predicted[i], true_cam=maps_true[i], alpha=alpha, colormap=colormap))
    return items


def sheet_header(classifier: Classifier, method: str, layer: str | None, note: str | None = None,
                 smoothing: Sequence[str] = ()) -> list[str]:
    """The lines that head an exported sheet: model, its weights file, CAM method and layer with the ``smoothing``
    applied to every map (``aug_smooth``, ``eigen_smooth``; named only when there is some), and ``note``."""
    # OpenCV's sheet font is ASCII only: no middle dots here
    smoothed = f", smoothing: {', '.join(smoothing)}" if smoothing else ""
    lines = [f"eipviz: misclassified test images of {classifier.name}", f"weights: {classifier.shown_source}",
             f"CAM method: {method}, layer: {layer or classifier.cam_layer}{smoothed}"]
    return [*lines, note] if note else lines


def gallery_png_sheet(items: list[GalleryItem], header: list[str] | tuple[str, ...] = (),
                      column_labels: list[str] | tuple[str, ...] = COLUMN_LABELS) -> np.ndarray:
    """The shown gallery as one image, for export: ``header`` lines, the column labels, a row per item."""
    return gallery_sheet([[it.original, it.predicted_overlay, it.true_overlay] for it in items],
                         [it.caption for it in items], header=header, column_labels=column_labels)
