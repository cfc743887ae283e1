"""The explanation timeline on the Train and Curves pages (AppTest), and its figure."""

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from eipviz.classifier import Classifier
from eipviz.data import CLASS_NAMES
from eipviz.explain.timeline import TIMELINE_FILE, record_epoch, start_timeline
from eipviz.plots import timeline_figure
from eipviz.training.store import RunStore
from tests.conftest import ROOT

TIMEOUT = 180


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    return RunStore(tmp_path)


def _run_with_timeline(store, epochs=(1, 2, 3)):
    """A finished run whose timeline.npz was recorded by a small untrained model (no training needed)."""
    run_id = store.create_run(name="probe", model="mnist14k", recipe="fast", status="finished")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(features))
    classifier = Classifier(keras.Model(inputs, outputs), "tiny", "unit_scale", CLASS_NAMES["mnist"], "mnist",
                            "features", "test")
    images = np.random.default_rng(0).integers(0, 255, (16, 28, 28, 1), dtype=np.uint8)
    path = store.run_dir(run_id) / TIMELINE_FILE
    timeline = start_timeline(path, images, np.arange(16) % 10, np.arange(16), CLASS_NAMES["mnist"], "features", 0)
    for epoch in epochs:
        timeline = record_epoch(timeline, classifier, epoch, path)
        store.add_epoch(run_id, epoch, {"val_accuracy": 0.2 * epoch,
                                        "probe_deletion_auc": float(timeline.deletion_auc[-1]),
                                        "probe_average_drop_pct": float(timeline.average_drop_pct[-1]),
                                        "probe_accuracy": float(timeline.accuracy()[-1])})
    return run_id


def _captions(at):
    return [c for image in at.get("image") for c in image.captions]


def test_the_train_page_shows_a_finished_runs_probe_images_at_the_chosen_epoch(store):
    run_id = _run_with_timeline(store)
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    slider = at.select_slider(key=f"timeline-{run_id}-epoch")
    assert slider.options == ["1", "2", "3"] and slider.value == 3
    assert len([c for c in _captions(at) if c[0] in "✅❌"]) == 16
    slider.set_value(1).run()
    assert not at.exception and any("Epoch 1:" in c.value for c in at.caption)


def test_the_curves_page_shows_the_timeline_of_a_selected_trained_run(store):
    run_id = _run_with_timeline(store, (1, 2))
    at = AppTest.from_file(str(ROOT / "app_pages" / "curves.py"), default_timeout=TIMEOUT).run()
    at.multiselect(key="curve-runs").set_value([run_id]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="curve-timeline-run").value == run_id
    assert len([c for c in _captions(at) if c[0] in "✅❌"]) == 16


def test_a_run_from_before_timelines_says_so(store):
    run_id = store.create_run(name="old", model="mnist14k", status="finished")
    store.add_epoch(run_id, 1, {"val_accuracy": 0.5})
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    assert not at.exception
    assert any("trained before eipviz recorded timelines" in c.value for c in at.caption)


def test_the_timeline_figure_marks_the_chosen_epoch_on_both_charts():
    rows = [{"epoch": e, "val_accuracy": 0.1 * e, "probe_accuracy": 0.1, "probe_deletion_auc": 0.3,
             "probe_average_drop_pct": 40.0} for e in (1, 2, 3)]
    fig = timeline_figure(rows, 2)
    assert [shape.x0 for shape in fig.layout.shapes] == [2, 2]
    assert {trace.name for trace in fig.data} >= {"val_accuracy", "probe_accuracy"}
