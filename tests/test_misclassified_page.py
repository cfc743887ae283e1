"""The Misclassified page in AppTest: the confusion matrix's views and outline, the gallery's size, enlarged
items, colour legend and export, the progress it shows while it works, and which model it opens on."""

import json

import cv2
import numpy as np
import pytest
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import eipviz.explain.gallery as gallery
from eipviz.explain.gallery import ENLARGED_SIZE
from eipviz.explain.overlay import CAPTION_HEIGHT, DISPLAY_SIZE, colormap_legend
from eipviz.plots import confusion_values
from tests.conftest import ROOT, AnotherSessionsComputation

TIMEOUT = 180  # the first run imports TensorFlow and builds models
LEGEND_CAPTION = "CAM: blue = little evidence, red = most evidence for the class"


@pytest.fixture
def pngs(monkeypatch):
    """Every PNG the page hands to Streamlit (images and downloads), decoded to RGB, in order."""
    seen = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, data, mimetype, kind, filename=None):
        if mimetype == "image/png":
            decoded = cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR)
            seen.append((filename, cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)))
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def open_on(model: str | None = "mnist14k") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "misclassified.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if model:
        at.selectbox(key="mis-zoo").select(model).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def chart_spec(at, key: str) -> dict:
    (chart,) = [chart for chart in at.get("plotly_chart") if chart.key == key]
    return json.loads(chart.proto.spec)


def confusion_spec(at) -> dict:
    return chart_spec(at, "confusion")


def descendants(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from descendants(child)


def item_captions(node) -> list[str]:
    return [n.value for n in descendants(node) if type(n).__name__ == "Caption" and n.value.startswith("#")]


def test_it_opens_on_the_fastest_cifar10_model_with_a_progress_bar_saying_what_it_does(data_dir, monkeypatch):
    texts = []
    original = DeltaGenerator.progress

    def record(self, value, text=None, **kwargs):
        texts.append(text or "")
        return original(self, value, text=text, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "progress", record)
    at = open_on(None)
    assert at.selectbox(key="mis-zoo").value == "sepconv59k"
    assert any("Loading the model" in t for t in texts)
    assert any("cifar10 test set" in t for t in texts)
    assert any("test-set predictions of sepconv59k" in t for t in texts)
    assert any("Computing gradcam CAMs" in t and "12/12 images" in t for t in texts), texts
    assert not at.get("progress"), "each bar goes once its work is done"


def test_confusions_only_and_row_percent_views_mask_the_diagonal_and_keep_the_click_markers(data_dir):
    at = open_on()
    counts = confusion_spec(at)["data"][0]["z"]
    assert all(counts[k][k] > 800 for k in range(10))  # the right answers dominate the count view

    at.radio(key="mis-view").set_value("confusions").run()
    heat, markers = confusion_spec(at)["data"]
    assert all(heat["z"][k][k] is None for k in range(10))
    assert heat["z"] == confusion_values(np.array(counts), "confusions")
    assert max(v for row in heat["z"] for v in row if v is not None) < 20  # the colour scale spans the errors
    assert len(markers["x"]) == 100 and markers["marker"]["color"] == "rgba(0,0,0,0)"

    at.radio(key="mis-view").set_value("row %").run()
    heat, markers = confusion_spec(at)["data"]
    assert heat["z"] == confusion_values(np.array(counts), "row %")
    assert len(markers["customdata"]) == 100


def test_beside_the_matrix_one_bar_per_true_class_shows_its_accuracy(data_dir):
    at = open_on()
    counts = np.array(confusion_spec(at)["data"][0]["z"])
    (bars,) = chart_spec(at, "mis-per-class")["data"]
    assert bars["type"] == "bar" and bars["orientation"] == "h"
    assert bars["y"] == [str(k) for k in range(10)]  # the matrix's row order
    np.testing.assert_allclose(bars["x"], 100 * np.diag(counts) / counts.sum(axis=1))
    assert not at.dataframe, "no table: it would load the dataframe's JavaScript on a first visit"


def test_a_clicked_cell_filters_the_gallery_and_is_outlined(data_dir):
    at = open_on()
    assert "shapes" not in confusion_spec(at)["layout"]
    at.session_state["confusion"] = {"selection": {"points": [{"x": "9", "y": "4"}]}}  # a click: predicted 9, true 4
    at.run()
    assert not at.exception
    assert at.session_state["mis-cell"] == ("4", "9") and at.selectbox(key="mis-true").value == "4"
    (outline,) = confusion_spec(at)["layout"]["shapes"]
    assert (outline["x0"], outline["x1"], outline["y0"], outline["y1"]) == (8.5, 9.5, 3.5, 4.5)
    assert all("true 4, predicted 9" in c for c in item_captions(at.main))

    at.selectbox(key="mis-pred").select("All").run()  # the outline follows the filters: now the whole row
    (outline,) = confusion_spec(at)["layout"]["shapes"]
    assert (outline["x0"], outline["x1"], outline["y0"], outline["y1"]) == (-0.5, 9.5, 3.5, 4.5)


def test_the_gallery_shows_two_items_a_row_and_enlarges_one_with_both_maps(data_dir, pngs):
    at = open_on()
    grids = [block for block in descendants(at.main)
             if type(block).__name__ == "Block" and block.children
             and all(type(c).__name__ == "Column" and item_captions(c) and any(
                 type(n).__name__ == "Image" for n in descendants(c)) for c in block.children.values())]
    (grid,) = grids
    assert len(grid.children) == 2
    assert len(item_captions(grid)) == 12
    assert not [image for _, image in pngs if image.shape[0] == ENLARGED_SIZE]

    first = item_captions(grid)[0]
    index = first.split(":")[0][1:]
    at.button(key=f"mis-enlarge-{index}").click().run()
    assert not at.exception
    large = [image for _, image in pngs if image.shape[:2] == (ENLARGED_SIZE, ENLARGED_SIZE)]
    assert len(large) == 3, "the image, the CAM for the predicted class and the CAM for the true class"
    assert any(c.value == first for c in at.caption)
    captions = [c for image in at.get("image") for c in image.captions if c.startswith("CAM for ")]
    assert len(captions) == 2 and all(": " in c for c in captions), captions  # each names its class


def test_one_colour_legend_sits_above_the_gallery(data_dir, pngs):
    at = open_on()
    assert [c.value for c in at.caption].count(LEGEND_CAPTION) == 1
    legends = [image for _, image in pngs if image.shape == (34, 256, 3)]
    assert legends and np.array_equal(legends[-1], colormap_legend("jet", 256, 34))


def test_the_exported_png_names_the_model_method_and_layer_and_labels_its_columns(data_dir, pngs):
    at = open_on()
    sheet = [image for name, image in pngs if name == "misclassified-mnist14k-gradcam-page1.png"][-1]
    rows = 12 * (DISPLAY_SIZE + CAPTION_HEIGHT)
    assert sheet.shape[1] == 3 * DISPLAY_SIZE and sheet.shape[0] > rows + CAPTION_HEIGHT + 3 * 16
    header = sheet[:sheet.shape[0] - rows]
    assert (header < 128).any(axis=(1, 2)).sum() > 20, "text lines in the header and the column labels"
    assert not at.exception


def test_the_gallery_is_computed_once_until_its_inputs_change(data_dir, monkeypatch):
    calls = []
    original = gallery.gallery_items

    def counted(*args, **kwargs):
        calls.append(kwargs.get("method"))
        return original(*args, **kwargs)

    monkeypatch.setattr(gallery, "gallery_items", counted)
    at = open_on()
    before = len(calls)
    at.number_input(key="mis-f-n").set_value(20).run()  # the faithfulness expander's input: not the gallery's
    assert len(calls) == before
    first = item_captions(at.main)[0].split(":")[0][1:]
    at.button(key=f"mis-enlarge-{first}").click().run()
    assert len(calls) == before
    at.selectbox(key="mis-method").select("layercam").run()
    assert not at.exception
    assert calls[-1] == "layercam" and len(calls) == before + 1


def test_faithfulness_ranks_methods_and_layers_against_the_random_baseline(data_dir):
    at = open_on()
    layers = at.multiselect(key="mis-f-layers").options[-2:]
    at.multiselect(key="mis-f-methods").set_value(["gradcam", "saliency"])
    at.multiselect(key="mis-f-layers").set_value(layers)
    at.number_input(key="mis-f-n").set_value(10).run()
    at.button[[b.label for b in at.button].index("Compute and rank")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    assert sorted(zip(table["method"], table["layer"])) == sorted(
        [("gradcam", layers[0]), ("gradcam", layers[1]), ("saliency", "(input)"),
         ("random", layers[0]), ("random", layers[1])])
    margins = table["deletion_vs_random"].dropna().tolist()
    assert margins == sorted(margins, reverse=True) and table["method"].iloc[-1] == "random"


def test_a_ranking_of_too_many_maps_for_one_click_is_not_offered(data_dir):
    at = open_on()
    at.multiselect(key="mis-f-methods").set_value(["gradcam", "saliency", "layercam"])
    at.multiselect(key="mis-f-layers").set_value(at.multiselect(key="mis-f-layers").options[-3:])
    at.number_input(key="mis-f-n").set_value(500).run()
    assert at.button[[b.label for b in at.button].index("Compute and rank")].disabled
    assert any("That is 6,000 maps (500 images x 4 methods x 3 layers); at most 4,000" in c.value for c in at.caption)


def test_a_computation_waits_while_another_sessions_runs(data_dir, monkeypatch):
    """The server's long computations take turns: a click while another session holds the CPU waits."""
    import streamlit as st

    import eipviz.explain.compare as compare
    from app_pages.common import COMPUTATIONS

    events = []

    def rank_methods(*args, **kwargs):
        events.append("computed")
        return [{"method": "random", "layer": "x", "deletion_auc": 0.5}]

    monkeypatch.setattr(compare, "rank_methods", rank_methods)
    at = open_on()
    at.multiselect(key="mis-f-layers").set_value(at.multiselect(key="mis-f-layers").options[-1:]).run()
    with AnotherSessionsComputation(COMPUTATIONS, events) as other_session:
        st.cache_resource.clear()  # any browser can ask for it: the turn taking was a cached resource, cleared with it
        other_session.finish_when_asked()
        at.button[[b.label for b in at.button].index("Compute and rank")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert events == ["other session done", "computed"] and at.dataframe[-1].value["method"].tolist() == ["random"]


def test_one_click_sanity_check_shows_the_verdict_curve_and_strip_of_maps(data_dir):
    at = open_on()
    at.number_input(key="mis-s-n").set_value(2)
    at.number_input(key="mis-s-depths").set_value(2)
    at.button(key="mis-sanity").click().run()
    assert not at.exception, [e.value for e in at.exception]
    verdicts = [m.value for m in [*at.success, *at.error] if m.value.startswith("gradcam ")]
    assert len(verdicts) == 1 and ("passes" in verdicts[0] or "fails" in verdicts[0])
    assert any(chart.key == "mis-sanity-curve" for chart in at.get("plotly_chart"))
    strip = [c for image in at.get("image") for c in image.captions if c == "trained" or " random (to " in c]
    assert strip[0] == "trained" and len(strip) == 3


def test_the_report_button_offers_a_self_contained_html_file(data_dir):
    at = open_on()
    at.button(key="mis-report").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.get("download_button")[-1].proto.label == "Download report.html"


def click_cell(at, true: str, predicted: str) -> None:
    """A click on the confusion matrix, as the chart's widget state reports it."""
    at.session_state["confusion"] = {"selection": {"points": [{"x": predicted, "y": true}]}}


def test_another_model_starts_on_its_own_default_layer_in_the_gallery_and_the_faithfulness_table(data_dir):
    """sepconv65k has a sepconv7 too: the page kept sepconv59k's, and its faithfulness layers emptied for mnist14k."""
    at = open_on("sepconv65k")
    assert at.selectbox(key="mis-layer").value == "sepconv5"  # sepconv65k's cam_layer, not sepconv59k's sepconv7
    assert at.multiselect(key="mis-f-layers").value == ["sepconv5"]
    assert at.session_state["mis-gallery"][0][3] == "sepconv5"
    at.selectbox(key="mis-zoo").select("mnist14k").run()
    assert at.selectbox(key="mis-layer").value == "class_maps1x1"
    assert at.multiselect(key="mis-f-layers").value == ["class_maps1x1"]
    assert not at.button[[b.label for b in at.button].index("Compute and rank")].disabled


def test_a_chosen_layer_stays_while_the_model_stays(data_dir):
    at = open_on()
    chosen = at.selectbox(key="mis-layer").options[0]
    at.selectbox(key="mis-layer").select(chosen).run()
    at.selectbox(key="mis-method").select("layercam").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="mis-layer").value == chosen and at.session_state["mis-gallery"][0][3] == chosen


def test_clicking_the_same_cell_again_after_changing_the_filters_applies_it_again(data_dir):
    at = open_on()
    click_cell(at, "4", "9")
    at.run()
    del at.session_state["confusion"]  # the outlined chart is a new element: it has no selection
    at.selectbox(key="mis-true").select("All").run()
    click_cell(at, "4", "9")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert (at.selectbox(key="mis-true").value, at.selectbox(key="mis-pred").value) == ("4", "9")


def test_the_report_holds_the_pages_gallery_method_layer_and_smoothing(data_dir, monkeypatch):
    import eipviz.report as report

    calls = []
    monkeypatch.setattr(report, "build_report", lambda *args, **kwargs: calls.append(kwargs) or "<html></html>")
    at = open_on()
    click_cell(at, "4", "9")
    at.run()
    layer = at.selectbox(key="mis-layer").options[0]
    at.selectbox(key="mis-method").select("layercam")
    at.selectbox(key="mis-layer").select(layer)
    at.button_group(key="mis-smoothing").set_value(["eigen_smooth"]).run()
    at.button(key="mis-report").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (kwargs,) = calls
    shown = [int(caption.split(":")[0][1:]) for caption in item_captions(at.main)]
    assert kwargs["gallery_indices"].tolist() == shown and shown
    assert (kwargs["gallery_method"], kwargs["layer"], kwargs["aug_smooth"], kwargs["eigen_smooth"]) == (
        "layercam", layer, False, True)
    assert kwargs["gallery_note"].startswith("true class 4, predicted 9, confidence 0.00-1.00")
    assert any(f"(layercam, eigen_smooth at {layer}; true class 4, predicted 9" in c.value for c in at.caption)
    assert "Download report.html" in [b.proto.label for b in at.get("download_button")]
    at.selectbox(key="mis-method").select("gradcam").run()  # the report no longer shows this gallery
    assert "Download report.html" not in [b.proto.label for b in at.get("download_button")]


def test_faithfulness_ranks_by_each_measure_its_title_names_drop_included(data_dir):
    at = open_on()
    assert at.radio(key="mis-f-metric").options == ["deletion", "insertion", "drop", "road"]
    assert any("drop" in e.label for e in at.expander)


def test_the_exported_png_says_which_smoothing_its_maps_had(data_dir, pngs, monkeypatch):
    headers = []
    original = gallery.sheet_header
    monkeypatch.setattr(gallery, "sheet_header", lambda *args, **kwargs: headers.append(original(*args, **kwargs))
                        or headers[-1])
    at = open_on()
    at.button_group(key="mis-smoothing").set_value(["eigen_smooth"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "misclassified-mnist14k-gradcam-eigen_smooth-page1.png" in [name for name, _ in pngs]
    assert "CAM method: gradcam, layer: class_maps1x1, smoothing: eigen_smooth" in headers[-1]


def test_a_diagonal_cell_says_it_holds_the_right_answers(data_dir):
    at = open_on()
    at.selectbox(key="mis-true").select("3").run()
    at.selectbox(key="mis-pred").select("3").run()
    assert any("those are the right answers" in info.value for info in at.info)
