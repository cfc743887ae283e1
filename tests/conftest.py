"""Shared fixtures. Tests that need the real datasets fail loudly when they are missing."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# JAX's own switch for smoke tests: XLA compiles without LLVM's expensive passes. The suite's JAX programs
# run a few tiny batches, so compiling is most of their cost: the JAX tests took 159 s of CPU, then 96 s.
# Every process the tests start inherits it; the app and the CLI never set it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core (pytest.ini). Each worker, and every process it starts
    # (training workers, the CLI, Streamlit), then runs TensorFlow's ops on one thread: the small
    # models here gain nothing from a second thread, and on a busy machine a pool per process only
    # oversubscribes the cores (a 3-epoch mnist14k run took 21 s instead of 28 s).
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(variable, "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"
# The five course write-ups the zoo and the reference curves come from (never copied into the project).
SEEDS_DIR = Path(os.environ.get("EIPVIZ_SEEDS_DIR", ROOT.parent / "shared" / "seeds"))


def seed_file(name: str) -> Path:
    """A seed write-up by file name or by its 3-digit prefix; fails loudly when the seeds are elsewhere."""
    matches = sorted(SEEDS_DIR.glob(name if name.endswith(".txt") else f"{name}_*.txt"))
    assert len(matches) == 1, f"Seed {name} not found in {SEEDS_DIR}: set EIPVIZ_SEEDS_DIR to ../shared/seeds."
    return matches[0]


def shared_data_dir() -> Path:
    folder = Path(os.environ.get("EIPVIZ_DATA_DIR", DEFAULT_DATA_DIR))
    assert (folder / "cifar10_test.npz").is_file() and (folder / "mnist.npz").is_file(), (
        f"These tests need the offline datasets: set EIPVIZ_DATA_DIR to the folder with "
        f"cifar10_*.npz and mnist.npz (looked in {folder})."
    )
    return folder


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory) -> Path:
    """One JAX compilation cache for this suite run, shared by its xdist workers and every process they
    start: neither read from nor added to the user's own (``eipviz.jax_cache``)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "jax-cache"
    os.environ["EIPVIZ_JAX_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def data_dir(pytestconfig) -> Path:
    folder = shared_data_dir()
    os.environ["EIPVIZ_DATA_DIR"] = str(folder)
    return folder


def run_cli(*args, env=None, timeout=600, check=True):
    """Run ``python -m eipviz ARGS`` in a fresh process and return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "eipviz", *args], cwd=ROOT, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def main_in_process(*args, check=True) -> subprocess.CompletedProcess:
    """``eipviz.cli.main(ARGS)`` in this process, as ``run_cli`` would report it: the same code as the command,
    without a TensorFlow start-up (4-5 s of CPU) per call. ``run_cli`` keeps testing the real entry point."""
    import contextlib
    import io

    from eipviz.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    result = subprocess.CompletedProcess(["eipviz", *args], code, out.getvalue(), err.getvalue())
    if check:
        assert code == 0, f"exit {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def run_with_timeline(store, epochs=(1, 2, 3)) -> str:
    """A finished run whose timeline.npz was recorded by a small untrained model (no training needed); return its id."""
    import keras  # here, not at the top: most tests never build a model
    import numpy as np

    from eipviz.classifier import Classifier
    from eipviz.data import CLASS_NAMES
    from eipviz.explain.timeline import TIMELINE_FILE, record_epoch, start_timeline

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


class AnotherSessionsComputation:
    """Holds the server's turn (``app_pages.common.COMPUTATIONS``) as another session's long computation would.

    ``finish_when_asked()`` gives the turn back the moment a page asks for it, noting "other session done" in
    ``events``: a page that waits for its turn then notes its own event after that one, one that does not wait
    before it. No timer that has to outlast the page's computation (a 6 s one was most of a test's time).
    """

    def __init__(self, turn, events):
        self.turn, self.events, self.asked = turn, events, threading.Event()
        self._thread = threading.Thread(target=self._finish, daemon=True)

    def __enter__(self):
        self.turn.acquire()
        acquire = self.turn.acquire

        def asking(*args, **kwargs):
            self.asked.set()
            return acquire(*args, **kwargs)

        self.turn.acquire = asking  # on the instance: the pages call COMPUTATIONS.acquire
        return self

    def finish_when_asked(self):
        self._thread.start()

    def _finish(self):
        self.asked.wait()
        self.events.append("other session done")
        self.turn.release()

    def __exit__(self, *exc_info):
        del self.turn.acquire
        self.asked.set()  # whatever happened, the turn is given back
        if self._thread.ident is None:  # never started: no page was let ask
            self._thread.start()
        self._thread.join()


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty weights/ folder (not created) for this test, in place of the shipped one."""
    import eipviz.weights as weights

    folder = tmp_path / "weights"
    monkeypatch.setattr(weights, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(weights, "MANIFEST", folder / "manifest.json")
    return folder


def pytest_collection_finish(session):
    """Freeze what collection imported (TensorFlow, Keras, Streamlit: about half a million objects) out of the
    garbage collector's sight: Streamlit runs a full collection twice after every page run (AppTest too), and
    each one scanned them all."""
    import gc

    gc.collect()
    gc.freeze()
