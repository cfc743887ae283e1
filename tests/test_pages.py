"""Every page opens in AppTest without an exception."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

TIMEOUT = 180  # the first run imports TensorFlow and builds models


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_app_entry_runs():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_models_page_shows_counts_and_flags_wrong_seed_annotations():
    at = open_page("models.py")
    at.selectbox[0].select("sepconv59k").run()
    assert not at.exception
    assert any("sepconv2" in w.value for w in at.warning)
    assert at.metric[0].value == "58,965"


def test_train_page_starts_a_worker_and_shows_its_live_curves(tmp_path, monkeypatch, data_dir):
    from eipviz.training.store import RunStore
    from tests.test_training import wait_for

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = open_page("train.py")
    assert any("No runs yet" in i.value for i in at.info)
    at.selectbox[0].select("mnist14k")
    at.number_input[0].set_value(1)  # epochs
    at.number_input[1].set_value(64)  # batch size
    at.number_input[2].set_value(256)  # subset
    at.button[0].click().run()
    assert not at.exception
    assert any("Started run" in s.value for s in at.success)

    store = RunStore(tmp_path)
    (run,) = store.list_runs()
    assert run.hyperparameters["subset"] == 256 and run.hyperparameters["epochs"] == 1
    wait_for(lambda: store.get_run(run.id).status == "finished", what="page-started run to finish")
    at.run()
    assert not at.exception
    assert at.get("plotly_chart"), "the finished run shows its curves"
    assert any(run.id in m.value for m in at.markdown)
