"""Every hostile input through the library, the CLI and the page that accepts it:
one clear message (or a correct result for odd-but-valid input), never a traceback, nothing lost."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from eipviz.errors import EipvizError
from eipviz.images import read_image
from eipviz.keraslog import parse_log_bytes
from eipviz.loading import load_uploaded_model
from tests.conftest import ROOT, run_cli
from tests.hostile_inputs import CORPUS, IDS, _encode, _rgb

GOOD_PNG = _encode(_rgb(30, 20))


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for kind, name, make, outcome in CORPUS:
        paths[name] = folder / name
        paths[name].write_bytes(make())
    (folder / "good.png").write_bytes(GOOD_PNG)
    return folder, paths


@pytest.mark.parametrize("kind, name, make, outcome", CORPUS, ids=IDS)
def test_library(kind, name, make, outcome, corpus_files):
    _, paths = corpus_files
    data = paths[name].read_bytes()
    call = {"image": lambda: read_image(data, name), "model": lambda: load_uploaded_model(paths[name]),
            "log": lambda: parse_log_bytes(data)}[kind]
    if outcome == "error":
        with pytest.raises(EipvizError) as error:
            call()
        assert str(error.value) and "Traceback" not in str(error.value)
    else:
        result = call()
        if kind == "image":
            assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3


@pytest.mark.parametrize("kind, name, make, outcome", CORPUS, ids=IDS)
def test_cli(kind, name, make, outcome, corpus_files, tmp_path, data_dir):
    folder, paths = corpus_files
    path = str(paths[name])
    args = {
        "image": ["cam", "--model", "mnist14k", "--image", path, "--out", str(tmp_path)],
        "model": ["cam", "--model", path, "--image", str(folder / "good.png"), "--out", str(tmp_path)],
        "log": ["import-log", path],
    }[kind]
    result = run_cli(*args, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    if outcome == "error":
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    else:
        assert result.returncode == 0, result.stderr


def _page(script):
    at = AppTest.from_file(str(ROOT / "app_pages" / script), default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _messages(at):
    return [e.value for e in at.error]


@pytest.mark.parametrize("kind, name, make, outcome", [c for c in CORPUS if c[0] == "image"],
                         ids=[c[1] for c in CORPUS if c[0] == "image"])
def test_upload_page_images(kind, name, make, outcome, corpus_files, data_dir):
    _, paths = corpus_files
    at = _page("upload.py")
    at.selectbox(key="up-zoo").select("mnist14k").run()
    uploader = next(u for u in at.file_uploader if "Images" in u.label)
    uploader.set_value([("good.png", GOOD_PNG, "image/png"), (name, paths[name].read_bytes(), "image/png")]).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == (2 if outcome == "ok" else 1)  # the good image is never lost
    if outcome == "error":
        assert any(name in message for message in _messages(at))


@pytest.mark.parametrize("kind, name, make, outcome", [c for c in CORPUS if c[0] == "model"],
                         ids=[c[1] for c in CORPUS if c[0] == "model"])
def test_upload_page_models(kind, name, make, outcome, corpus_files, data_dir):
    _, paths = corpus_files
    at = _page("upload.py")
    at.file_uploader(key="up-model-file").set_value((name, paths[name].read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="up-use-model").click().run()
    assert not at.exception
    if outcome == "error":
        assert _messages(at), "a message explains the refusal"
        assert "Uploaded model" not in at.radio(key="up-source").options  # nothing half-loaded
    else:
        assert any(f"Loaded {name}" in s.value for s in at.success)


@pytest.mark.parametrize("kind, name, make, outcome", [c for c in CORPUS if c[0] == "log"],
                         ids=[c[1] for c in CORPUS if c[0] == "log"])
def test_curves_page_logs(kind, name, make, outcome, corpus_files, tmp_path, monkeypatch):
    from eipviz.training.store import RunStore

    _, paths = corpus_files
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = _page("curves.py")
    at.file_uploader(key="log-file").set_value((name, paths[name].read_bytes(), "text/plain")).run()
    at.button(key="log-import").click().run()
    assert not at.exception
    runs = RunStore(tmp_path).list_runs()
    if outcome == "error":
        assert _messages(at) and runs == []  # refused, and the store is untouched
    else:
        assert len(runs) == 1 and runs[0].kind == "imported"
