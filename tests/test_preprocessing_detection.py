"""Which preprocessing a model file of unknown origin was trained with: detected on test images, or a warning when
the chosen one is far less accurate than another (an upload with the wrong one explained nonsense at 43%)."""

import pytest
from streamlit.testing.v1 import AppTest

from eipviz.evaluation import _clearly_best, preprocessing_hint, with_detected_preprocessing
from eipviz.loading import load_uploaded_model
from tests.conftest import ROOT

SEPCONV = ROOT / "weights" / "sepconv59k.keras"  # trained with channel_standardize


@pytest.mark.parametrize("accuracies, chosen, best", [
    ({"unit_scale": 0.43, "channel_standardize": 0.92, "pixel_mean": 0.50}, "unit_scale", "channel_standardize"),
    ({"unit_scale": 0.80, "channel_standardize": 0.92}, "unit_scale", "unit_scale"),  # 12 points: not clearly
    ({"unit_scale": 0.11, "channel_standardize": 0.13, "pixel_mean": 0.09}, "unit_scale", "unit_scale"),  # chance
    ({"unit_scale": 0.99}, "unit_scale", "unit_scale"),  # MNIST: one fits
])
def test_another_preprocessing_is_chosen_only_when_clearly_more_accurate(accuracies, chosen, best):
    assert _clearly_best(accuracies, chosen) == best


def test_a_cifar_model_loaded_as_unit_scale_is_detected_and_warned_about(data_dir):
    loaded = load_uploaded_model(SEPCONV, "unit_scale")
    detected = with_detected_preprocessing(loaded)
    assert detected.preprocessing == "channel_standardize"
    assert detected.note.startswith("Preprocessing detected: channel_standardize, 8")
    assert "unit_scale 3" in detected.note
    assert "it was probably trained with channel_standardize" in preprocessing_hint(loaded)
    assert preprocessing_hint(detected) is None


def test_the_cli_detects_a_model_files_preprocessing_unless_told(data_dir):
    from eipviz.cli.options import load_for_cli

    assert load_for_cli(str(SEPCONV)).preprocessing == "channel_standardize"
    told = load_for_cli(str(SEPCONV), preprocessing="pixel_mean")
    assert told.preprocessing == "pixel_mean"
    assert "it was probably trained with channel_standardize" in told.warning  # as the pages warn


def test_an_uploaded_model_is_shown_at_once_with_its_detected_preprocessing(data_dir):
    at = AppTest.from_file(str(ROOT / "app_pages" / "misclassified.py"), default_timeout=180).run()
    at.file_uploader(key="mis-model-file").set_value(("mine.keras", SEPCONV.read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="mis-use-model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="mis-source").value == "Uploaded model"
    assert any("Preprocessing detected: channel_standardize" in info.value for info in at.info)
    assert float(at.metric[0].value.rstrip("%")) > 84  # sepconv59k's own test accuracy, not unit_scale's 37%


def test_without_the_test_set_a_model_file_still_loads_on_its_given_preprocessing(tmp_path, monkeypatch):
    """Offline with no datasets, detecting (or checking) the preprocessing needs the test set: the model still loads."""
    monkeypatch.setenv("EIPVIZ_DATA_DIR", str(tmp_path))  # holds no dataset
    loaded = load_uploaded_model(SEPCONV, "unit_scale")
    detected = with_detected_preprocessing(loaded)
    assert detected.preprocessing == "unit_scale" and "No test set to detect its preprocessing on" in detected.note
    assert preprocessing_hint(loaded) is None


def test_a_hand_picked_preprocessing_far_below_another_is_a_warning_not_a_note(data_dir):
    """It was a blue note beside the page's other notes: "37% ... channel_standardize 87%" was easy to overlook."""
    at = AppTest.from_file(str(ROOT / "app_pages" / "upload.py"), default_timeout=180).run()
    at.file_uploader(key="up-model-file").set_value(("mine.keras", SEPCONV.read_bytes(), "application/octet-stream"))
    at.selectbox(key="up-model-pre").select("unit_scale").run()
    at.button(key="up-use-model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("it was probably trained with channel_standardize" in warning.value for warning in at.warning)
    assert not any("probably trained" in info.value for info in at.info)
