"""The confusion-matrix figure (its three colourings, its click markers, the outline of the chosen cell) and the
per-class accuracy bars beside it."""

import numpy as np
import pytest

from eipviz.plots import CONFUSION_VIEWS, confusion_figure, confusion_values, per_class_accuracy_figure

MATRIX = np.array([[90, 8, 2], [5, 95, 0], [0, 30, 70]])
NAMES = ["cat", "dog", "frog"]


def test_counts_are_the_matrix():
    assert confusion_values(MATRIX, "counts") == MATRIX.tolist()


def test_confusions_only_masks_the_diagonal_so_the_scale_spans_the_errors():
    values = confusion_values(MATRIX, "confusions")
    assert values == [[None, 8, 2], [5, None, 0], [0, 30, None]]


def test_row_percent_divides_each_confusion_by_its_true_class_and_masks_the_diagonal():
    values = confusion_values(MATRIX, "row %")
    assert values[0] == [None, 8.0, 2.0] and values[1] == [5.0, None, 0.0] and values[2] == [0.0, 30.0, None]
    assert confusion_values(np.zeros((2, 2), int), "row %") == [[None, 0.0], [0.0, None]]  # no division by zero


def test_an_unknown_view_is_refused_by_name():
    with pytest.raises(ValueError, match="view='log'"):
        confusion_values(MATRIX, "log")


@pytest.mark.parametrize("view", list(CONFUSION_VIEWS))
def test_every_view_keeps_a_clickable_marker_with_the_count_on_every_cell(view):
    fig = confusion_figure(MATRIX, NAMES, view=view)
    heat, markers = fig.data
    assert [list(row) for row in heat.z] == confusion_values(MATRIX, view)
    assert len(markers.x) == 9 and markers.marker.color == "rgba(0,0,0,0)"
    cell = list(zip(markers.x, markers.y)).index(("dog", "frog"))  # predicted dog, true frog
    assert list(markers.customdata[cell]) == [30, 30.0]
    assert fig.layout.clickmode == "event+select"


def test_masked_cells_show_no_text():
    heat = confusion_figure(MATRIX, NAMES, view="confusions").data[0]
    assert [row[0] for row in heat.text] == ["", "5", "0"] and heat.text[1][1] == ""


def test_the_chosen_cell_is_outlined_on_its_row_and_column():
    (shape,) = confusion_figure(MATRIX, NAMES, highlight=(2, 1)).layout.shapes  # true frog, predicted dog
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (0.5, 1.5, 1.5, 2.5)
    assert shape.xref == "x" and shape.yref == "y" and shape.line.width >= 2


def test_a_chosen_true_class_alone_outlines_its_row_and_nothing_chosen_outlines_nothing():
    (row,) = confusion_figure(MATRIX, NAMES, highlight=(0, None)).layout.shapes
    assert (row.x0, row.x1, row.y0, row.y1) == (-0.5, 2.5, -0.5, 0.5)
    assert confusion_figure(MATRIX, NAMES, highlight=(None, None)).layout.shapes == ()
    assert confusion_figure(MATRIX, NAMES).layout.shapes == ()


def test_per_class_bars_keep_the_class_order_top_down_in_percent_with_their_value_written():
    (bars,) = per_class_accuracy_figure({"cat": 0.9, "dog": 0.955, "frog": 0.0}).data
    assert list(bars.y) == NAMES and list(bars.x) == pytest.approx([90.0, 95.5, 0.0])
    assert list(bars.text) == ["90.0%", "95.5%", "0.0%"]
    assert (bars.textposition, bars.textangle) == ("auto", 0)  # a short bar's label beside it, level, full size
    layout = per_class_accuracy_figure({"cat": 1.0}).layout
    assert layout.yaxis.autorange == "reversed" and tuple(layout.xaxis.range) == (0, 100)  # rows as in the matrix
