"""Viewer mode (EIPVIZ_MODE=viewer): every write action is refused by the library and absent from the pages."""

import os
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from eipviz.access import EDITORS_VARIABLE, MODE_VARIABLE, VIEWER, access_mode, is_editor, without_paths
from eipviz.curves import import_log
from eipviz.errors import EipvizError
from eipviz.keraslog import parse_log
from eipviz.loading import load_uploaded_bytes
from eipviz.shipping import ship_predictions, ship_run
from eipviz.training import queue
from eipviz.training.launcher import RunQueue, create_training_run, resume_run, start_training, stop_run
from eipviz.training.store import RunStore
from tests.conftest import ROOT

TIMEOUT = 180
LOG = "Epoch 1/1\n10/10 - 1s - loss: 0.5 - accuracy: 0.8 - val_loss: 0.6 - val_accuracy: 0.7\n"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store with a finished, a cancelled, a training and a queued run, made before viewer mode is on."""
    monkeypatch.setattr(queue, "ensure_scheduler", lambda store: None)
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("EIPVIZ_MODE", raising=False)
    store = RunStore(tmp_path)
    ids = {}
    for status in ("finished", "cancelled", "running", "queued"):
        ids[status] = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64, name=status)
        store.add_epoch(ids[status], 1, {"val_accuracy": 0.5, "loss": 1.0})
        store.update_run(ids[status], status=status)
    store.enqueue(ids["queued"], {})  # submitted, so it waits in the queue
    store.ids = ids
    monkeypatch.setenv("EIPVIZ_MODE", "viewer")
    return store


def tiny_model_bytes(tmp_path) -> bytes:
    import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(features)))
    path = tmp_path / "tiny.keras"
    model.save(path)
    return path.read_bytes()


WRITES = {
    "start": lambda s: start_training(s, "mnist14k", recipe="fast", epochs=1, subset=64),
    "create": lambda s: create_training_run(s, "mnist14k"),
    "submit": lambda s: RunQueue(s).submit(s.ids["cancelled"]),
    "cancel a queued run": lambda s: RunQueue(s).cancel(s.ids["queued"]),
    "stop": lambda s: stop_run(s, s.ids["running"]),
    "resume": lambda s: resume_run(s, s.ids["cancelled"]),
    "rename": lambda s: s.rename_run(s.ids["finished"], "renamed"),
    "delete": lambda s: s.delete_run(s.ids["finished"]),
    "import a log": lambda s: import_log(s, parse_log(LOG), "imported"),
    "ship a run": lambda s: ship_run(s, s.ids["finished"]),
    "ship predictions": lambda s: ship_predictions("mnist14k"),
}


@pytest.mark.parametrize("action", list(WRITES))
def test_every_write_action_is_refused_by_the_library(store, action):
    before = [(run.id, run.name, run.status) for run in store.list_runs()]
    with pytest.raises(EipvizError, match="not allowed: this eipviz is shared read-only"):
        WRITES[action](store)
    assert [(run.id, run.name, run.status) for run in store.list_runs()] == before


def test_an_uploaded_model_file_is_refused_by_the_library(tmp_path, monkeypatch):
    data = tiny_model_bytes(tmp_path)
    assert load_uploaded_bytes(data, "tiny.keras").dataset == "cifar10"  # an editor may load it
    monkeypatch.setenv("EIPVIZ_MODE", "viewer")
    with pytest.raises(EipvizError, match="Uploading a model file is not allowed"):
        load_uploaded_bytes(data, "tiny.keras")


def test_an_unknown_mode_is_an_error_naming_what_it_received(monkeypatch):
    monkeypatch.setenv("EIPVIZ_MODE", "admin")
    with pytest.raises(EipvizError, match="Received: EIPVIZ_MODE='admin'"):
        access_mode()


def test_the_mode_and_the_editors_address_are_read_regardless_of_case(monkeypatch):
    """EIPVIZ_MODE=Viewer is viewer mode, and Alice@School.org signs in as the listed alice@school.org."""
    monkeypatch.setenv(MODE_VARIABLE, "Viewer")
    assert access_mode() == VIEWER
    monkeypatch.setenv(EDITORS_VARIABLE, "alice@school.org")
    assert is_editor(" Alice@School.org")


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / page), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_train_page_shows_runs_without_any_control_that_changes_them(store):
    at = open_page("train.py")
    assert [button.label for button in at.button] == []  # no Start, Stop, Cancel, Resume, Rename or Delete
    assert not at.text_input and not at.number_input
    assert any("Viewer mode" in caption.value for caption in at.caption)
    page = " ".join(m.value for m in at.markdown) + " ".join(e.label for e in at.expander)
    assert all(run_id in page for run_id in store.ids.values())  # every run is still shown
    assert "position 1 of 1" in page


def test_a_viewer_sees_why_a_run_failed_but_not_its_traceback(store, monkeypatch):
    """The traceback named the server's files (``/work/…/site-packages/…``); editors still see it, as text."""
    error = ("Traceback (most recent call last):\n  File \"/srv/eipviz/.venv/lib/x.py\", line 3, in fit\n"
             "ValueError: the batch does not split across 3 devices")
    store.update_run(store.ids["finished"], status="failed", error=error)
    at = open_page("train.py")
    assert [e.value for e in at.error] == ["Run failed: ValueError\\: the batch does not split across 3 devices"]
    assert not [code for code in at.code if "/srv/" in code.value]
    monkeypatch.setenv("EIPVIZ_MODE", "editor")  # an editor gets the traceback too, as text
    assert [code.value for code in open_page("train.py").code if "/srv/" in code.value] == [error]


@pytest.mark.parametrize("text, shown", [
    ("Could not read the cifar10 files in /srv/data: bad zip", "Could not read the cifar10 files in …/data: bad zip"),
    ("No such file: '/home/ann/runs/x/best.keras'", "No such file: '…/best.keras'"),
    ("Cannot use the runs folder /srv/runs/: denied.", "Cannot use the runs folder …/runs: denied."),
    ("C:\\Users\\ann\\data missing", "…/data missing"),
    ("see https://keras.io/api/models, 1/2, km/h, 3 / 50, ~/runs", None),  # no absolute path: unchanged
])
def test_absolute_paths_are_cut_to_their_last_part(text, shown):
    assert without_paths(text) == (shown or text)


def test_a_viewer_sees_messages_without_the_servers_folders(store, monkeypatch, tmp_path):
    """A failed run's reason and a page's error named the server's data and runs folders."""
    store.update_run(store.ids["finished"], status="failed",
                     error="FileNotFoundError: No such file: '/srv/private/data/cifar10_train.npz'")
    (failed,) = [e.value for e in open_page("train.py").error]
    assert "/srv/" not in failed and "cifar10" in failed
    monkeypatch.setenv("EIPVIZ_MODE", "editor")
    assert "/srv/private/data/" in open_page("train.py").error[0].value
    monkeypatch.setenv("EIPVIZ_MODE", "viewer")
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path / "not-a-folder"))
    at = AppTest.from_file(str(ROOT / "app_pages" / "curves.py"), default_timeout=TIMEOUT).run()
    (message,) = [e.value for e in at.error]
    assert "…/not-a-folder" in message and str(tmp_path) not in message


def test_the_curves_page_has_no_log_import_rename_or_delete(store):
    at = open_page("curves.py")
    assert at.get("plotly_chart")  # the curves themselves show
    assert [button.label for button in at.button if button.label != "Download selected runs as CSV"] == []
    assert not [e for e in at.expander if "Import" in e.label or "Rename" in e.label]


@pytest.mark.parametrize("page", ["upload.py", "misclassified.py"])
def test_the_explanation_pages_offer_no_model_upload(store, page, data_dir):
    at = open_page(page)
    assert not [e for e in at.expander if "Upload your own model" in e.label]
    uploaders = [element.proto.label for element in at.get("file_uploader")]
    assert not [label for label in uploaders if "Model file" in label]
    if page == "upload.py":
        assert any(label.startswith("Images") for label in uploaders)  # image uploads still work


def test_a_sign_in_server_shows_error_types_not_tracebacks(monkeypatch, tmp_path):
    """Its visitors who are no editors see the viewer's pages: Streamlit showed them full tracebacks."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import serve

    monkeypatch.setenv("EIPVIZ_MODE", "editor")
    monkeypatch.delenv("STREAMLIT_CLIENT_SHOW_ERROR_DETAILS", raising=False)
    monkeypatch.setattr(serve, "SECRETS", tmp_path / "secrets.toml")  # not this checkout's, if it has one
    assert serve.settings_from([]) == []  # loopback, for its own editor: as Streamlit shows them
    (tmp_path / "secrets.toml").write_text('[auth]\nclient_id = "x"\n')
    assert serve.settings_from([]) == ["--client.showErrorDetails=type"]  # editors' 300 MB uploads kept


def test_make_run_takes_viewer_as_a_flag_and_refuses_a_bad_mode_before_serving(monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    from serve import settings_from

    monkeypatch.setenv("EIPVIZ_MODE", "editor")  # recorded, so the mode --viewer sets is undone after the test
    assert settings_from(["--no-preload", "--server.port", "8600"]) == ["--server.port", "8600"]  # serve.py's own
    # Viewers upload images of 20 MB at most: the endpoint kept four 250 MB requests of one viewer in memory.
    assert settings_from(["--viewer", "--server.port", "8600"]) == [
        "--server.maxUploadSize=20", "--client.showErrorDetails=type", "--server.port", "8600"]
    assert access_mode() == "viewer"
    assert settings_from(["--server.maxUploadSize", "5"]) == [  # what the command line says stands
        "--client.showErrorDetails=type", "--server.maxUploadSize", "5"]
    monkeypatch.setenv("STREAMLIT_CLIENT_SHOW_ERROR_DETAILS", "none")  # and what Streamlit's variables say
    assert settings_from([]) == ["--server.maxUploadSize=20"]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "serve.py")], capture_output=True, text=True,
                            env={**os.environ, "EIPVIZ_MODE": "admin"}, timeout=120)
    assert result.returncode == 2 and "Received: EIPVIZ_MODE='admin'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signed_in, editors, acts", [
    (False, "teacher@example.org", False),
    (True, "teacher@example.org", True),
    (True, "@Example.org, ta@other.org", True),  # the whole domain, any case
    (True, "*", True),
    (True, "", False),  # signed in with an account nobody listed: anyone with a Google account could
    (True, "student@example.org", False),
])
def test_with_st_login_configured_changes_need_a_signed_in_editor(store, monkeypatch, signed_in, editors, acts):
    """With [auth] in secrets.toml Streamlit gives every session ``is_logged_in``; only signed-in accounts that
    ``EIPVIZ_EDITORS`` lists act."""
    monkeypatch.delenv("EIPVIZ_MODE")
    monkeypatch.setenv("EIPVIZ_EDITORS", editors)
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": signed_in, "email": "teacher@example.org"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {button.label for button in at.button}
    assert ("Start" in labels) == acts and ("Cancel" in labels) == acts
    assert any("Sign in" in caption.value for caption in at.caption) != signed_in
    assert any("not an editor here (EIPVIZ_EDITORS)" in caption.value for caption in at.caption) == (
        signed_in and not acts)


@pytest.mark.parametrize("verified", [False, "false"])  # some providers send the claim as a string
def test_an_unverified_address_is_no_editor(store, monkeypatch, verified):
    monkeypatch.delenv("EIPVIZ_MODE")
    monkeypatch.setenv("EIPVIZ_EDITORS", "teacher@example.org")
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "email": "teacher@example.org", "email_verified": verified}
    at.run()
    assert "Start" not in {button.label for button in at.button}
