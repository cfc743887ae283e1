"""Models page: the receptive-field table reads as integers and blanks, whole, with a verdict for every seed."""

import pandas as pd
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from eipviz.tables import layer_frame, rf_annotation_check
from tests.conftest import ROOT

TIMEOUT = 180  # the first run imports TensorFlow and builds models
SIZES = ["kernel", "stride", "dilation", "jump", "rf", "documented_rf"]


def test_layer_frame_keeps_sizes_whole_and_not_applicable_cells_missing():
    frame = layer_frame("sepconv59k")
    assert all(str(frame[column].dtype) == "Int64" for column in SIZES), frame.dtypes
    conv = frame.set_index("layer").loc["sepconv2"]
    assert (conv["kernel"], conv["stride"], conv["dilation"], conv["rf"], conv["documented_rf"]) == (3, 1, 1, 5, 3)
    bn = frame.set_index("layer").loc["bn2"]
    assert pd.isna(bn["kernel"]) and pd.isna(bn["documented_rf"]) and pd.isna(bn["rf_differs"])
    assert str(frame["rf_differs"].dtype) == "boolean"


def test_every_seed_gets_a_receptive_field_verdict():
    assert rf_annotation_check(layer_frame("sepconv59k")) == (
        "warning", "The seed's hand-annotated receptive field is wrong for: sepconv2.")
    kind, message = rf_annotation_check(layer_frame("resnet20v1"))
    assert kind == "info" and message.startswith("The seed does not annotate receptive fields")
    assert rf_annotation_check(layer_frame("sepconv65k"))[0] in ("success", "warning")


def _open_on(model: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "models.py"), default_timeout=TIMEOUT)
    at.run()
    at.selectbox[0].select(model).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_page_shows_the_whole_layer_table_with_integers_and_blank_cells():
    at = _open_on("resnet20v1")
    (table,) = [t for t in at.table if "kernel" in t.value.columns]  # st.table: every row shown, no scroll box
    assert len(table.value) == len(layer_frame("resnet20v1"))
    shown = dataframe_util.convert_arrow_bytes_to_pandas_df(table.proto.arrow_data.styler.display_values)
    shown = shown.set_axis(table.value.columns, axis=1).set_index("layer")
    assert tuple(shown.loc["stem_conv", ["kernel", "stride", "dilation", "rf"]]) == ("3", "1", "1", "3")
    assert tuple(shown.loc["stem_bn", ["kernel", "stride", "dilation", "documented_rf", "rf_differs"]]) == (
        "", "", "", "", "")


def test_a_seed_without_annotations_says_so():
    at = _open_on("resnet20v1")
    assert any(i.value.startswith("The seed does not annotate receptive fields") for i in at.info), \
        [i.value for i in at.info]


def test_the_page_names_a_dataset_as_every_page_does():
    """The overview said "cifar10", the dataset metric "CIFAR10" and the model titles "CIFAR-10"."""
    at = _open_on("resnet18")
    overview = next(d.value for d in at.dataframe if "dataset" in d.value.columns)
    assert sorted(set(overview["dataset"])) == ["CIFAR-10", "MNIST"]
    assert [m.value for m in at.metric if m.label == "Dataset"] == ["CIFAR-10"]
