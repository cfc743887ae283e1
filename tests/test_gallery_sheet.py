"""The gallery's exported sheet (header, column labels, rows), its CAM colour legend, and its items."""

import cv2
import numpy as np
import pytest

from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation
from eipviz.explain.gallery import (
    COLUMN_LABELS,
    ENLARGED_SIZE,
    GalleryItem,
    gallery_items,
    gallery_png_sheet,
    sheet_header,
)
from eipviz.explain.overlay import (
    CAPTION_HEIGHT,
    HEADER_LINE_HEIGHT,
    HEADER_PADDING,
    colormap_legend,
    gallery_sheet,
    header_height,
    overlay,
    upscale,
    wrap_to_width,
)
from tests.test_classifier import classifier_of, tiny_model


def tile_of(value, size=2):
    return np.full((size, size, 3), value, np.uint8)


def dark(region) -> bool:
    return bool((region < 128).any())


# -- sheet header and column labels ----------------------------------------------------------------------------------


def test_a_header_and_column_labels_sit_above_the_rows_and_push_them_down():
    header = ["model: sepconv59k (sepconv59k.keras)", "CAM method: gradcam, layer: sepconv3"]
    sheet = gallery_sheet([[tile_of(10), tile_of(20), tile_of(30)]], ["#1"], tile=128, header=header,
                          column_labels=COLUMN_LABELS)
    top = 2 * HEADER_LINE_HEIGHT + HEADER_PADDING
    assert sheet.shape == (top + CAPTION_HEIGHT + CAPTION_HEIGHT + 128, 3 * 128, 3)
    row_top = top + CAPTION_HEIGHT + CAPTION_HEIGHT  # labels strip, then the item's caption strip
    assert (sheet[row_top:row_top + 128, 0:128] == 10).all()
    assert (sheet[row_top:row_top + 128, 256:384] == 30).all()


def test_each_header_line_is_written_in_its_own_band():
    sheet = gallery_sheet([[tile_of(255)]], [""], tile=128, header=["first line", "second line"])
    assert dark(sheet[0:HEADER_LINE_HEIGHT]) and dark(sheet[HEADER_LINE_HEIGHT:2 * HEADER_LINE_HEIGHT])
    assert not dark(sheet[2 * HEADER_LINE_HEIGHT:])  # white tile, empty caption


def test_each_column_label_is_written_over_its_own_column():
    sheet = gallery_sheet([[tile_of(255)] * 3], [""], tile=128, column_labels=["image", "", "CAM for true"])
    strip = sheet[0:CAPTION_HEIGHT]
    assert dark(strip[:, 0:128]) and not dark(strip[:, 128:256]) and dark(strip[:, 256:384])


def test_a_long_header_line_wraps_to_the_sheet_width_instead_of_running_off_it():
    path = "weights: /home/someone/projects/eipviz/runs/20260101-120000-abcdef/best.keras"
    lines = wrap_to_width(path, 120)
    assert len(lines) > 1 and "".join(lines).replace(" ", "") == path.replace(" ", "")
    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] <= 120 for line in lines)
    sheet = gallery_sheet([[tile_of(255)]], [""], tile=128, header=[path])
    assert sheet.shape[0] == header_height(wrap_to_width(path, 128 - 8)) + CAPTION_HEIGHT + 128


def test_without_header_or_labels_the_sheet_is_only_its_rows():
    sheet = gallery_sheet([[tile_of(10), tile_of(20)]], [""], tile=32)
    assert sheet.shape == (CAPTION_HEIGHT + 32, 64, 3) and header_height([]) == 0


def test_a_sheet_caption_is_drawn_past_its_first_words():
    """Captions that differ only in the predicted class draw different sheets (captions are cut at 70 characters)."""
    row = [[np.zeros((8, 8, 3), np.uint8)] * 3]
    assert not np.array_equal(gallery_sheet(row, ["#12: true cat, predicted dog (97%)"]),
                              gallery_sheet(row, ["#12: true cat, predicted frog (97%)"]))


# -- the CAM colour legend -------------------------------------------------------------------------------------------


def test_the_legend_runs_from_the_colormaps_low_end_to_its_high_end():
    legend = colormap_legend("jet", 256, 34)
    assert legend.shape == (34, 256, 3) and legend.dtype == np.uint8
    bar = legend[: 34 - CAPTION_HEIGHT]
    assert bar[:, 0].tolist() == [[0, 0, 128]] * len(bar)  # jet at 0: dark blue, as overlay draws a CAM of 0
    assert bar[:, -1].tolist() == [[128, 0, 0]] * len(bar)  # jet at 1: dark red
    cold = overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), alpha=1.0, colormap="jet", size=2)
    hot = overlay(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)), alpha=1.0, colormap="jet", size=2)
    assert bar[0, 0].tolist() == cold[0, 0].tolist() and bar[0, -1].tolist() == hot[0, 0].tolist()


def test_the_legend_labels_low_on_the_left_and_high_on_the_right():
    labels = colormap_legend("viridis", 256, 34)[34 - CAPTION_HEIGHT:]
    assert dark(labels[:, :40]) and dark(labels[:, -40:]) and not dark(labels[:, 100:156])


def test_an_unknown_colormap_is_refused_by_name():
    with pytest.raises(EipvizError, match="colormap='rainbow'"):
        colormap_legend("rainbow")


# -- gallery items and their export ----------------------------------------------------------------------------------


def solid(rgb, size=8):
    return np.broadcast_to(np.asarray(rgb, np.uint8), (size, size, 3)).copy()


@pytest.fixture(scope="module")
def tiny_gallery():
    """Five images that the tiny model gets wrong or right; evaluation says each is wrong with its own answer."""
    classifier = classifier_of(tiny_model())
    images = np.stack([solid((255, 0, 0)), solid((0, 255, 0)), solid((0, 0, 255)), solid((200, 50, 0)),
                       solid((0, 60, 200))])
    labels = np.array([1, 2, 0, 2, 1])
    evaluation = Evaluation(labels, classifier.probabilities(images), classifier.class_names)
    return classifier, evaluation, images


def test_gallery_items_report_progress_in_chunks_up_to_every_image(tiny_gallery, monkeypatch):
    classifier, evaluation, images = tiny_gallery
    monkeypatch.setattr("eipviz.explain.gallery.CAM_CHUNK", 2)
    calls = []
    items = gallery_items(classifier, evaluation, images, [0, 1, 2, 3, 4], progress=lambda *a: calls.append(a))
    assert len(items) == 5
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_each_item_has_the_cams_of_its_own_predicted_and_true_class(tiny_gallery, monkeypatch):
    classifier, evaluation, images = tiny_gallery
    monkeypatch.setattr("eipviz.explain.gallery.CAM_CHUNK", 2)  # chunks of both classes at once, split again
    items = gallery_items(classifier, evaluation, images, [0, 1, 2, 3, 4])
    np.testing.assert_allclose([it.predicted_cam for it in items],
                               classifier.cams(images, classes=evaluation.predictions), atol=1e-6)
    np.testing.assert_allclose([it.true_cam for it in items], classifier.cams(images, classes=evaluation.labels),
                               atol=1e-6)


def _red_left_blue_right_gallery():
    """Test image 1 is red on the left, blue on the right; it is blue (c2) and taken for red (c0) at 70%."""
    classifier = classifier_of(tiny_model())
    halves = np.zeros((8, 8, 3), np.uint8)
    halves[:, :4, 0], halves[:, 4:, 2] = 255, 255
    images = np.stack([np.zeros((8, 8, 3), np.uint8), halves])
    probabilities = np.array([[0.1, 0.8, 0.1], [0.7, 0.1, 0.2]], np.float32)
    return classifier, Evaluation(np.array([1, 2]), probabilities, classifier.class_names), images


def test_the_gallery_shows_the_predicted_class_cam_then_the_true_class_cam():
    """Column 2 explains what the model said (red: the left half), column 3 what it should have said (right)."""
    classifier, evaluation, images = _red_left_blue_right_gallery()
    (item,) = gallery_items(classifier, evaluation, images, [1])
    assert item.predicted_cam[:, :4].mean() > item.predicted_cam[:, 4:].mean()
    assert item.true_cam[:, 4:].mean() > item.true_cam[:, :4].mean()


def test_a_gallery_item_is_captioned_with_its_own_test_images_confidence():
    """Item for test index 1 shows index 1's confidence (70%), not that of the first image of the page."""
    classifier, evaluation, images = _red_left_blue_right_gallery()
    (item,) = gallery_items(classifier, evaluation, images, [1])
    assert item.caption == "#1: true c2, predicted c0 (70%)"


def test_an_item_keeps_its_image_and_maps_and_draws_them_again_larger(tiny_gallery):
    classifier, evaluation, images = tiny_gallery
    (item,) = gallery_items(classifier, evaluation, images, [3], method="gradcam")
    assert np.array_equal(item.image, images[3])
    np.testing.assert_allclose(item.predicted_cam, classifier.cams(images[3:4], "gradcam", None,
                                                                    [evaluation.predictions[3]])[0])
    np.testing.assert_allclose(item.true_cam, classifier.cams(images[3:4], "gradcam", None, [2])[0])
    big_image, big_predicted, big_true = item.enlarged()
    assert big_image.shape == big_predicted.shape == big_true.shape == (ENLARGED_SIZE, ENLARGED_SIZE, 3)
    assert np.array_equal(big_image, upscale(images[3], ENLARGED_SIZE))
    assert np.array_equal(big_true, overlay(images[3], item.true_cam, size=ENLARGED_SIZE))
    assert np.array_equal(item.original, upscale(images[3]))  # the gallery's own tiles stay 128 px


def test_an_item_draws_with_its_own_colormap():
    item = GalleryItem(0, "cat", "dog", 0.9, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32),
                       np.ones((4, 4), np.float32), alpha=1.0, colormap="viridis")
    assert item.predicted_overlay[0, 0].tolist() == [68, 1, 84]  # viridis at 0
    assert item.enlarged(16)[2].shape == (16, 16, 3)


def test_the_exported_page_names_model_weights_method_and_layer_over_labelled_columns(tiny_gallery):
    classifier, evaluation, images = tiny_gallery
    items = gallery_items(classifier, evaluation, images, [0, 1], method="layercam")
    header = sheet_header(classifier, "layercam", None, note="page 1 of 1")
    assert header == ["eipviz: misclassified test images of tiny", "weights: test",
                      "CAM method: layercam, layer: features", "page 1 of 1"]
    sheet = gallery_png_sheet(items, header=header)
    top = header_height(header) + CAPTION_HEIGHT  # header, then the column labels
    assert sheet.shape == (top + 2 * (CAPTION_HEIGHT + 128), 3 * 128, 3)
    assert dark(sheet[:HEADER_LINE_HEIGHT]) and dark(sheet[top - CAPTION_HEIGHT:top, :128])
    first_row = top + CAPTION_HEIGHT
    assert np.array_equal(sheet[first_row:first_row + 128, 128:256], items[0].predicted_overlay)
    assert np.array_equal(sheet[first_row:first_row + 128, 256:384], items[0].true_overlay)
