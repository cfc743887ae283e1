"""The explanation timeline on the Train and Curves pages (AppTest), and its figure."""

import dataclasses

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from eipviz.explain.timeline import TIMELINE_FILE, read_timeline, write_timeline
from eipviz.plots import timeline_figure
from eipviz.training.store import RunStore
from tests.conftest import ROOT, run_with_timeline

TIMEOUT = 180


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    return RunStore(tmp_path)


def _captions(at):
    return [c for image in at.get("image") for c in image.captions]


def test_the_train_page_shows_a_finished_runs_probe_images_at_the_chosen_epoch(store):
    run_id = run_with_timeline(store)
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.session_state[f"run-panel-{run_id}"] = True  # its panel opened: a closed one draws no timeline
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    slider = at.select_slider(key=f"timeline-{run_id}-epoch")
    assert slider.options == ["1", "2", "3"] and slider.value == 3
    assert len([c for c in _captions(at) if c[0] in "✅❌"]) == 16
    slider.set_value(1).run()
    assert not at.exception and any("Epoch 1:" in c.value for c in at.caption)


def test_the_curves_page_shows_the_timeline_of_a_selected_trained_run(store):
    run_id = run_with_timeline(store, (1, 2))
    at = AppTest.from_file(str(ROOT / "app_pages" / "curves.py"), default_timeout=TIMEOUT).run()
    at.multiselect(key="curve-runs").set_value([run_id]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="curve-timeline-run").value == run_id
    assert len([c for c in _captions(at) if c[0] in "✅❌"]) == 16


def test_each_run_on_the_curves_page_keeps_its_own_timeline_epoch(store):
    """Moving one run's slider back must not hold another run's slider on that epoch."""
    first, second = run_with_timeline(store, (1, 2)), run_with_timeline(store, (1, 2, 3))
    at = AppTest.from_file(str(ROOT / "app_pages" / "curves.py"), default_timeout=TIMEOUT).run()
    at.multiselect(key="curve-runs").set_value([first, second]).run()
    at.selectbox(key="curve-timeline-run").set_value(first).run()
    at.select_slider(key=f"curve-timeline-{first}-epoch").set_value(1).run()
    at.selectbox(key="curve-timeline-run").set_value(second).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.select_slider(key=f"curve-timeline-{second}-epoch").value == 3  # its newest epoch


def test_a_closed_finished_panel_builds_no_timeline_even_with_its_toggle_on(store):
    """Closed, its 16 images and chart were built and sent at every rerun; the toggle keeps its state."""
    run_id = run_with_timeline(store)
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    assert not at.exception and not at.get("select_slider") and not at.get("plotly_chart")
    assert at.toggle(key=f"show-timeline-{run_id}").value


def test_a_run_from_before_timelines_says_so(store):
    run_id = store.create_run(name="old", model="mnist14k", status="finished")
    store.add_epoch(run_id, 1, {"val_accuracy": 0.5})
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.session_state[f"run-panel-{run_id}"] = True
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    assert not at.exception
    assert any("trained before eipviz recorded timelines" in c.value for c in at.caption)


def test_the_timeline_figure_marks_the_chosen_epoch_on_both_charts():
    rows = [{"epoch": e, "val_accuracy": 0.1 * e, "probe_accuracy": 0.1, "probe_deletion_auc": 0.3,
             "probe_average_drop_pct": 40.0} for e in (1, 2, 3)]
    fig = timeline_figure(rows, 2)
    assert [shape.x0 for shape in fig.layout.shapes] == [2, 2]
    assert {trace.name for trace in fig.data} >= {"val_accuracy", "probe_accuracy"}
    # The faithfulness chart's two scales each say whose they are.
    assert (fig.layout.yaxis2.title.text, fig.layout.yaxis3.title.text) == ("deletion AUC", "average drop %")
    # On their whole scales: fitted to a flat 26.1% drop, its ticks read 26.095 to 26.1617 (a reviewer's walk).
    assert [tuple(axis.range) for axis in (fig.layout.yaxis, fig.layout.yaxis2, fig.layout.yaxis3)] == [
        (0, 1.02), (0, 1.02), (0, 102)]


def test_a_live_runs_probe_images_wait_behind_its_toggle(store):
    """The live panel refreshes every 2 s: its timeline images are built and sent only once asked for."""
    run_id = run_with_timeline(store)
    store.update_run(run_id, status="running")  # no pid yet: "starting its worker", never reaped
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("starting its worker" in m.value for m in at.markdown) and not _captions(at)
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    assert len([c for c in _captions(at) if c[0] in "✅❌"]) == 16


def record_more_epochs(store, run_id, epochs):
    """Append ``epochs`` to a run's timeline as copies of its last one, as a live worker would add them."""
    path = store.run_dir(run_id) / TIMELINE_FILE
    timeline = read_timeline(path)
    for epoch in epochs:
        last = slice(-1, None)
        timeline = dataclasses.replace(
            timeline, epochs=np.append(timeline.epochs, epoch),
            probabilities=np.concatenate([timeline.probabilities, timeline.probabilities[last]]),
            maps=np.concatenate([timeline.maps, timeline.maps[last]]),
            deletion_auc=np.append(timeline.deletion_auc, timeline.deletion_auc[-1]),
            average_drop_pct=np.append(timeline.average_drop_pct, timeline.average_drop_pct[-1]))
        store.add_epoch(run_id, epoch, {"val_accuracy": 0.5})
    write_timeline(path, timeline)


def test_the_epoch_slider_follows_a_live_runs_newest_epoch_until_moved(store):
    run_id = run_with_timeline(store)
    store.update_run(run_id, status="running")
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT).run()
    at.toggle(key=f"show-timeline-{run_id}").set_value(True).run()
    slider = f"timeline-{run_id}-epoch"
    assert at.select_slider(key=slider).value == 3
    record_more_epochs(store, run_id, (4,))
    at.run()
    assert at.select_slider(key=slider).value == 4  # followed the new epoch
    at.select_slider(key=slider).set_value(2).run()
    record_more_epochs(store, run_id, (5,))
    at.run()
    assert not at.exception and at.select_slider(key=slider).value == 2  # the user's choice stays
    at.select_slider(key=slider).set_value(5).run()
    record_more_epochs(store, run_id, (6,))
    at.run()
    assert at.select_slider(key=slider).value == 6  # back on the newest: follows again
