"""Real worker subprocesses on CPU: end to end, cancel/resume, SIGKILL, both backends."""

import contextlib
import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from eipviz.data import load_test_split
from eipviz.errors import EipvizError
from eipviz.explain.timeline import METRICS, TIMELINE_FILE, probe_indices, read_timeline
from eipviz.training import worker
from eipviz.training.launcher import create_training_run, launch_worker, resume_run, stop_run
from eipviz.training.store import RunStore
from tests.conftest import ROOT, run_cli

TINY = ["--model", "mnist14k", "--subset", "256", "--epochs", "2", "--batch-size", "64"]


def wait_for(condition, timeout=240, interval=0.5, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def test_cli_train_end_to_end_records_metrics_checkpoints_and_csv(tmp_path, data_dir):
    refused = run_cli("train", *TINY, "--set", "lr=0.1", "--runs-dir", str(tmp_path), check=False)
    assert refused.returncode == 2 and "Received: setting='lr'" in refused.stderr
    assert "Traceback" not in refused.stderr and not RunStore(tmp_path).list_runs()  # nothing created
    run_cli("train", *TINY, "--set", "learning_rate=0.002", "--set", "label_smoothing=0.05",
            "--runs-dir", str(tmp_path))
    store = RunStore(tmp_path)
    (run,) = store.list_runs()
    assert run.status == "finished" and run.backend == "tensorflow" and "CPU" in run.device
    assert (run.hyperparameters["learning_rate"], run.hyperparameters["label_smoothing"]) == (0.002, 0.05)
    rows = store.epoch_rows(run.id)
    assert [row["epoch"] for row in rows] == [1, 2]
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds", "wall_time"):
        assert all(row[name] is not None for row in rows), name
    # Seed 002's schedule from the rate set above: epoch 2 uses 0.002 / 1.319 (the seed's 0.003 gives 0.00227).
    assert rows[1]["learning_rate"] == pytest.approx(0.002 / 1.319, rel=1e-5)
    folder = store.run_dir(run.id)
    assert (folder / "best.keras").is_file() and (folder / "last.keras").is_file()
    with open(folder / "metrics.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in csv_rows] == ["0", "1"] and "val_accuracy" in csv_rows[0]
    assert float(csv_rows[1]["val_accuracy"]) == pytest.approx(rows[1]["val_accuracy"], rel=1e-6)
    assert "backend tensorflow" in (folder / "worker.log").read_text()
    assert list((folder / "tensorboard").rglob("events.out.tfevents.*"))
    assert run.best_val_accuracy == max(r["val_accuracy"] for r in rows)
    listing = run_cli("runs", "--runs-dir", str(tmp_path)).stdout
    assert run.id in listing and "finished" in listing
    _assert_timeline(store, run.id, [1, 2])


def _assert_timeline(store, run_id, epochs):
    """One probe map set per epoch in timeline.npz, and the probe set's faithfulness in the run store."""
    timeline = read_timeline(store.run_dir(run_id) / TIMELINE_FILE)
    assert timeline.epochs.tolist() == epochs
    assert len(timeline.indices) == 16 and set(timeline.labels.tolist()) == set(range(10))  # stratified
    assert timeline.maps.shape[:2] == (len(epochs), 16) and timeline.maps.dtype == np.uint8
    assert timeline.probabilities.shape == (len(epochs), 16, 10)
    rows = store.epoch_rows(run_id)
    for name in METRICS:
        assert [row[name] for row in rows] == pytest.approx(
            getattr(timeline, name.removeprefix("probe_")).tolist(), rel=1e-6), name
    return timeline


def _slow_run(store):
    """A run long enough to stop mid-epoch: 2048 images at batch 8 is 256 steps an epoch.

    A step of mnist14k at batch 8 costs about as much time on CPU as one at batch 16, so an epoch
    lasts seconds (about 2 s uncontended on 2 cores, 4096 images at batch 16 took 3-5 s); a stop
    sent within a few tenths of a second of the first progress in epoch 2 lands in that epoch.
    """
    return create_training_run(store, "mnist14k", "documented", epochs=3, batch_size=8, subset=2048)


def test_stop_cancels_after_the_batch_and_resume_keeps_the_epoch_counter(tmp_path, data_dir):
    store = RunStore(tmp_path)
    run_id = _slow_run(store)
    launch_worker(store, run_id)
    wait_for(lambda: store.completed_epochs(run_id) >= 1, what="first epoch")
    wait_for(lambda: (store.progress(run_id) or {}).get("epoch") == 2, interval=0.05, what="progress in epoch 2")
    stop_run(store, run_id)
    wait_for(lambda: store.get_run(run_id).status == "cancelled", what="cancelled")
    assert store.completed_epochs(run_id) == 1
    assert (store.run_dir(run_id) / "last.keras").is_file()
    csv_path = store.run_dir(run_id) / "metrics.csv"
    header = csv_path.read_text().splitlines()[0]
    csv_path.write_text(header + "\n")  # as a kill between the store's write and CSVLogger's leaves it

    resume_run(store, run_id)
    wait_for(lambda: store.get_run(run_id).status == "finished", timeout=400, what="finished after resume")
    rows = store.epoch_rows(run_id)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    with open(csv_path, newline="") as file:
        csv_rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in csv_rows] == ["0", "1", "2"]  # the epoch left out filled from the store
    assert float(csv_rows[0]["val_loss"]) == pytest.approx(rows[0]["val_loss"])
    assert rows[1]["learning_rate"] == pytest.approx(0.003 / (1 + 0.319 * 1), rel=1e-5)
    assert rows[2]["learning_rate"] == pytest.approx(0.003 / (1 + 0.319 * 2), rel=1e-5)
    assert "Resuming from" in (store.run_dir(run_id) / "worker.log").read_text()
    timeline = _assert_timeline(store, run_id, [1, 2, 3])  # one continuous timeline across the resume
    assert timeline.indices.tolist() == probe_indices(load_test_split("mnist")[1]).tolist()


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``signum`` (the SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_a_stop_while_the_worker_still_imports_keras_cancels_the_run(tmp_path, data_dir):
    """Stop pressed right after the scheduler started a worker: Python's default SIGTERM handler would kill it
    (the run then reaped as failed, "died"); the worker's command catches it before importing Keras."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64)
    pid = launch_worker(store, run_id)
    wait_for(lambda: _catches(pid, signal.SIGTERM), timeout=30, interval=0.01, what="the worker's stop handler")
    assert "tensorflow" not in Path(f"/proc/{pid}/maps").read_text()  # still starting: Keras not imported yet
    stop_run(store, run_id)
    wait_for(lambda: not store.get_run(run_id).active, timeout=120, what="the run to end")
    run = store.get_run(run_id)
    assert run.status == "cancelled", (run.status, run.error)
    assert store.completed_epochs(run_id) == 0
    assert "Stopped on request" in (store.run_dir(run_id) / "worker.log").read_text()


def test_sigkill_is_detected_as_failed_and_no_completed_epoch_is_lost(tmp_path, data_dir):
    store = RunStore(tmp_path)
    run_id = _slow_run(store)
    pid = launch_worker(store, run_id)
    wait_for(lambda: store.completed_epochs(run_id) >= 1, interval=0.1, what="first epoch")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: store.reap_dead_workers() == [run_id] or store.get_run(run_id).status == "failed",
             timeout=30, what="dead worker detected")
    run = store.get_run(run_id)
    assert run.status == "failed" and "died" in run.error and "Epoch 1/3" in run.error
    assert store.completed_epochs(run_id) >= 1
    assert (store.run_dir(run_id) / "last.keras").is_file()


def test_jax_backend_trains_and_its_checkpoint_loads_under_tensorflow(tmp_path, data_dir):
    run_cli("train", *TINY, "--runs-dir", str(tmp_path), env={"KERAS_BACKEND": "jax"})
    store = RunStore(tmp_path)
    (run,) = store.list_runs()
    assert run.status == "finished" and run.backend == "jax"
    _assert_timeline(store, run.id, [1, 2])  # Grad-CAM through JAX's gradients, at each epoch end
    checkpoint = store.run_dir(run.id) / "last.keras"
    assert _load_under_tensorflow(checkpoint) == ["tensorflow", "14840", "(2,", "10)"]


def _load_under_tensorflow(checkpoint):
    """Backend, parameter count and prediction shape of a checkpoint loaded under TensorFlow.

    In this process when it already runs TensorFlow (conftest's default): a second process would only
    add another TensorFlow start-up.
    """
    check = (
        "import keras, numpy as np; m = keras.models.load_model(r'%s'); "
        "print(keras.backend.backend(), m.count_params(), m.predict(np.zeros((2, 28, 28, 1)), verbose=0).shape)"
        % checkpoint
    )
    import keras

    if keras.backend.backend() == "tensorflow":
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(check, {})
        return printed.getvalue().split()[-4:]
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-4:]


def test_training_code_makes_no_tensorflow_calls_outside_the_device_scope():
    training = ROOT / "eipviz" / "training"
    for path in training.glob("*.py"):
        text = path.read_text()
        if path.name != "devices.py":
            assert "import tensorflow" not in text and "tf." not in text, path.name


def test_resume_refuses_a_finished_run(tmp_path, data_dir):
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", subset=64, epochs=1)
    store.update_run(run_id, status="finished")
    result = run_cli("train", "--resume", run_id, "--runs-dir", str(tmp_path), check=False)
    assert result.returncode == 2 and "only cancelled or failed runs resume" in result.stderr


def test_a_worker_outlives_the_process_that_started_it(tmp_path, data_dir):
    """What happens when Streamlit restarts: the launching process exits, the run goes on."""
    launcher = (
        "from eipviz.training.launcher import start_training; from eipviz.training.store import RunStore; "
        f"print(start_training(RunStore(r'{tmp_path}'), 'mnist14k', epochs=1, subset=256, batch_size=64))"
    )
    started = subprocess.run([sys.executable, "-c", launcher], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env={**os.environ})
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip().splitlines()[-1]
    store = RunStore(tmp_path)
    wait_for(lambda: store.get_run(run_id).status in ("finished", "failed"), what="orphaned run to end")
    assert store.get_run(run_id).status == "finished" and store.completed_epochs(run_id) == 1


def test_four_concurrent_runs_share_the_store_without_losing_a_metric(tmp_path, data_dir):
    store = RunStore(tmp_path)
    run_ids = [create_training_run(store, "mnist14k", epochs=2, subset=128, batch_size=32, seed=i) for i in range(4)]
    for run_id in run_ids:
        launch_worker(store, run_id)
    wait_for(lambda: all(store.get_run(r).status == "finished" for r in run_ids), timeout=400,
             what="four concurrent runs")
    for run_id in run_ids:
        rows = store.epoch_rows(run_id)
        assert [r["epoch"] for r in rows] == [1, 2]
        assert all(r.get(name) is not None for r in rows for name in ("loss", "accuracy", "val_loss",
                                                                        "val_accuracy", "learning_rate"))
    import sqlite3

    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unusable_runs_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    result = run_cli("train", "--model", "mnist14k", "--runs-dir", str(blocker / "runs"), check=False)
    assert result.returncode == 2 and "Cannot use the runs folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_full_disk_fails_the_run_cleanly_and_keeps_the_store_intact(tmp_path, data_dir):
    """The worker may write only 64 KB per file, so saving last.keras fails as on a full disk.

    Either the worker records the failure itself or, if even that write fails,
    the next look at the store finds the dead worker: the run ends failed,
    with the reason in its error or log, and the database stays intact.
    """
    import resource
    import sqlite3

    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", epochs=2, subset=128, batch_size=32)
    limit = 64 * 1024

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead

    with open(store.run_dir(run_id) / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "eipviz", "train", "--run-id", run_id,
                                   "--runs-dir", str(tmp_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=small_files)
        store.update_run(run_id, pid=worker.pid)
        assert worker.wait(timeout=300) != 0
    store.reap_dead_workers()
    run = store.get_run(run_id)
    assert run.status == "failed"
    reason = (run.error or "") + (store.run_dir(run_id) / "worker.log").read_text()
    assert "File too large" in reason or "Errno 27" in reason, reason[-2000:]
    assert not (store.run_dir(run_id) / "last.keras").exists()  # no half-written checkpoint under the real name
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_run_without_augmentation_stores_and_rebuilds_none(tmp_path):
    from eipviz.recipes import Augmentation, get_recipe
    from eipviz.training.worker import recipe_of

    store = RunStore(tmp_path / "runs")
    plain = store.get_run(create_training_run(store, "resnet20v1", "fast", augment=False))
    assert not Augmentation(**plain.hyperparameters["augmentation"]).enabled
    assert not recipe_of(plain).augmentation.enabled
    default = store.get_run(create_training_run(store, "resnet20v1", "fast", epochs=3))
    assert recipe_of(default) == get_recipe("resnet20v1", "fast").with_overrides(epochs=3)


def test_a_run_keeps_the_recipe_it_was_created_with_when_the_code_changes(tmp_path, monkeypatch):
    from dataclasses import replace

    from eipviz import recipes
    from eipviz.training.worker import recipe_of

    store = RunStore(tmp_path / "runs")
    created = recipes.get_recipe("resnet20v1", "documented")  # has a plateau and random erasing
    run_id = create_training_run(store, "resnet20v1", "documented", epochs=2)
    changed = replace(created, learning_rate=1.0, augmentation=recipes.Augmentation())
    monkeypatch.setitem(recipes.DOCUMENTED, "resnet20v1", changed)
    assert recipe_of(store.get_run(run_id)) == created.with_overrides(epochs=2)


def test_an_older_run_without_newer_hyperparameters_takes_their_defaults():
    from eipviz.recipes import Recipe, get_recipe

    stored = get_recipe("sepconv59k", "fast").hyperparameters()
    del stored["augmentation"]["interpolation"], stored["label_smoothing"]
    rebuilt = Recipe.from_hyperparameters({**stored, "subset": None, "seed": 0})
    assert rebuilt.augmentation.interpolation == "bilinear" and rebuilt.label_smoothing == 0.0


def test_the_best_epoch_recorded_is_the_one_best_keras_holds_by_the_recipes_monitor(tmp_path):
    """With checkpoint_monitor=val_loss, epoch 2's higher val accuracy does not make it the best: the run store
    (shown by the pages and `runs`, written into the shipped manifest) names the epoch in best.keras."""
    import keras

    from eipviz.recipes import get_recipe
    from eipviz.training.builders import best_checkpoint
    from eipviz.training.stop import StopFlag
    from eipviz.training.worker import RunRecorder

    store = RunStore(tmp_path)
    run_id = store.create_run(name="by val_loss", model="mnist14k", recipe="fast", hyperparameters={})
    recipe = get_recipe("mnist14k", "fast").with_settings({"checkpoint_monitor": "val_loss"})
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    recorder = RunRecorder(store, run_id, steps_per_epoch=1, stop=StopFlag(), wall_time_before=0.0)
    checkpoint = best_checkpoint(recipe, store.run_dir(run_id) / "best.keras", on_save=recorder.record_best)
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    epochs = [{"val_loss": 0.5, "val_accuracy": 0.80}, {"val_loss": 0.6, "val_accuracy": 0.82},
              {"val_loss": 0.4, "val_accuracy": 0.79}]
    recorded = []
    for epoch, logs in enumerate(epochs):
        model.layers[0].kernel.assign(np.full((4, 2), float(epoch + 1)))  # weights that say which epoch they are
        checkpoint.on_epoch_end(epoch, dict(logs))
        run = store.get_run(run_id)
        saved = keras.models.load_model(store.run_dir(run_id) / "best.keras").layers[0].kernel
        recorded.append((run.best_epoch, run.best_val_accuracy, int(keras.ops.convert_to_numpy(saved)[0, 0])))
    # Epoch 3 is the best by val_loss although its val accuracy is the lowest: best_val_accuracy is its own.
    assert recorded == [(1, 0.80, 1), (1, 0.80, 1), (3, 0.79, 3)]


def test_a_resumed_run_draws_streams_no_fresh_run_of_another_seed_draws():
    from eipviz.training.worker import stream_seed

    assert stream_seed(3, None) == 3  # a fresh run: its own seed, as before
    resumed = {stream_seed(seed, epoch) for seed in range(20) for epoch in range(0, 20)}
    # Seed 0 at epoch 1 is not seed 1's streams; resumed inside epoch 1 (k = 0) is not its own again.
    assert len(resumed) == 20 * 20 and min(resumed) >= 2**20
    assert stream_seed(0, 1) == stream_seed(0, 1) and max(resumed) * 100 < 2**31


def _write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows(rows)


def test_resuming_fills_the_epoch_a_kill_left_out_of_metrics_csv_from_the_store(tmp_path):
    from eipviz.training.worker import resume_metrics_csv
    path = tmp_path / "metrics.csv"
    _write_csv(path, [["epoch", "accuracy", "loss"], [0, 0.5, 1.5]])  # killed after the store's epoch 2
    stored = [{"epoch": 1, "accuracy": 0.5, "loss": 1.5, "wall_time": 3.0},
              {"epoch": 2, "accuracy": 0.6, "loss": 1.2, "wall_time": 6.0}]
    resume_metrics_csv(path, stored)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["epoch"], row["accuracy"], row["loss"]) for row in rows] == [("0", "0.5", "1.5"),
                                                                               ("1", "0.6", "1.2")]
    assert list(rows[0]) == ["epoch", "accuracy", "loss"]  # CSVLogger's header, not the store's extra names


def test_restarting_without_last_keras_drops_the_old_epochs_from_metrics_csv(tmp_path):
    from eipviz.training.worker import resume_metrics_csv
    path = tmp_path / "metrics.csv"
    _write_csv(path, [["epoch", "loss"], [0, 1.5], [1, 1.2], [2, 1.1]])
    resume_metrics_csv(path, [{"epoch": 1, "loss": 1.5}])
    assert path.read_text().splitlines() == ["epoch,loss", "0,1.5"]
    resume_metrics_csv(path, [])
    assert path.read_text().splitlines() == ["epoch,loss"]


class _Stop(Exception):
    """Ends a worker run at the point a test has seen what it needs."""


@pytest.fixture
def own_signal_handlers():
    """train_run installs its stop flag as this process's SIGTERM/SIGINT handler: put pytest's back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_run_restarted_without_last_keras_carries_none_of_its_old_epochs(tmp_path, monkeypatch,
                                                                           own_signal_handlers):
    """No last.keras: the run trains from epoch 0, so no stored epoch is its plateau's history, best.keras' bar or
    metrics.csv's rows."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=64)
    store.add_epoch(run_id, 1, {"val_accuracy": 0.9, "val_loss": 0.3, "wall_time": 5.0})
    store.update_run(run_id, best_epoch=1, best_val_accuracy=0.9)
    (store.run_dir(run_id) / "best.keras").touch()
    (store.run_dir(run_id) / "best.partial.keras").touch()  # a worker killed while saving it
    (store.run_dir(run_id) / "tensorboard" / "train").mkdir(parents=True)
    seen = []

    def capture(path, completed):
        seen.append(completed)
        raise _Stop

    monkeypatch.setattr(worker, "resume_metrics_csv", capture)
    with pytest.raises(_Stop):
        worker.train_run(store, run_id, verbose=0)
    assert seen == [[]]
    # Nor the store's: its curve, epoch count and best mixed two trainings until 2026-11-28.
    assert store.epoch_rows(run_id) == [] and store.completed_epochs(run_id) == 0
    run = store.get_run(run_id)
    assert (run.best_epoch, run.best_val_accuracy) == (None, None)
    assert not (store.run_dir(run_id) / "best.keras").exists() and not (store.run_dir(run_id) / "tensorboard").exists()
    assert not (store.run_dir(run_id) / "best.partial.keras").exists()


def test_a_resumed_runs_best_file_is_replaced_by_an_epoch_better_than_the_one_it_holds(tmp_path):
    """Killed between storing an improving epoch 3 and saving it, best.keras holds epoch 2: the bar is epoch 2's
    value, so an epoch 4 between the two replaces it (against every stored epoch, none could)."""
    from eipviz.recipes import get_recipe
    from eipviz.training.builders import best_checkpoint

    completed = [{"epoch": epoch, "val_accuracy": value} for epoch, value in ((1, 0.5), (2, 0.6), (3, 0.7))]
    best = tmp_path / "best.keras"
    assert worker.best_file_epochs(completed, 2, best) == []  # no best file: the next epoch saves one
    best.touch()
    bar = worker.best_file_epochs(completed, 2, best)
    assert bar == [completed[1]] and best_checkpoint(get_recipe("mnist14k", "fast"), best, bar).best == 0.6


def _tiny_classifier():
    inputs = keras.Input((28, 28, 1))
    classifier = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    classifier.compile(optimizer="sgd", loss="categorical_crossentropy")
    return classifier


def test_a_run_stopped_inside_its_first_epoch_resumes_from_the_weights_it_reached(tmp_path, monkeypatch,
                                                                                 own_signal_handlers):
    """A Stop saves last.keras at once; resumed before any epoch had ended, it was built afresh (until
    2026-11-28), so the batches trained before the Stop were lost."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=64)
    last = store.run_dir(run_id) / "last.keras"
    last.touch()
    tiny = np.zeros((4, 28, 28), np.uint8), np.arange(4) % 10
    monkeypatch.setattr(worker, "_arrays", lambda *args: (*tiny, *tiny))
    loaded = []
    monkeypatch.setattr(keras.models, "load_model", lambda path: loaded.append(path) or _tiny_classifier())

    def recorder(*args):
        raise _Stop

    monkeypatch.setattr(worker, "RunRecorder", recorder)
    assert worker.train_run(store, run_id, verbose=0) == "failed"  # _Stop, once the model was there
    assert loaded == [last]


def test_a_resumed_run_goes_on_from_its_stored_wall_time(tmp_path, monkeypatch, own_signal_handlers):
    """Resumed after epoch 1 (5 s in), the recorder counts on from 5 s: wall-time curves never go back."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=64)
    store.add_epoch(run_id, 1, {"val_accuracy": 0.9, "wall_time": 5.0})
    (store.run_dir(run_id) / "last.keras").touch()
    classifier = _tiny_classifier()
    tiny = np.zeros((4, 28, 28), np.uint8), np.arange(4) % 10
    monkeypatch.setattr(worker, "_arrays", lambda *args: (*tiny, *tiny))
    monkeypatch.setattr(keras.models, "load_model", lambda path: classifier)
    seen = []

    def recorder(store, run_id, steps, stop, wall_time_before):
        seen.append(wall_time_before)
        raise _Stop

    monkeypatch.setattr(worker, "RunRecorder", recorder)
    assert worker.train_run(store, run_id, verbose=0) == "failed"  # _Stop, after the recorder saw its start
    assert seen == [5.0]


def test_a_subset_larger_than_the_models_training_set_is_refused(tmp_path):
    """resnet18 on 60,000 CIFAR-10 images was named "60000 img" and trained on the 50,000 there are."""
    store = RunStore(tmp_path)
    with pytest.raises(EipvizError, match=r"A subset is 1 to 50,000 images: resnet18's training set has 50,000"):
        create_training_run(store, "resnet18", "fast", subset=60_000)
    with pytest.raises(EipvizError, match="A subset is 1 to 60,000"):
        create_training_run(store, "mnist14k", "fast", subset=0)
    assert not store.list_runs()
    create_training_run(store, "mnist14k", "fast", subset=60_000)  # all of MNIST's


def test_a_subset_run_validates_on_as_many_test_images(data_dir):
    """``--subset 64`` validates on the first 64 test images, not all 10,000 at every epoch."""
    _, _, x_val, y_val = worker._arrays("mnist", 64, 0)
    images, labels = load_test_split("mnist")
    assert len(x_val) == len(y_val) == 64 and np.array_equal(x_val, images[:64])


@pytest.mark.parametrize("options, message", [
    ({"seed": -1}, "A seed is a whole number from 0 to 1,048,575. Received: -1."),  # the worker failed on it
    ({"seed": 2**20}, "A seed is a whole number from 0 to 1,048,575. Received: 1048576."),
    ({"seed": "3"}, "A seed is a whole number from 0 to 1,048,575. Received: '3'."),
    ({"subset": "512"}, "A subset is a number of images. Received: '512'."),  # a TypeError
])
def test_a_run_with_a_seed_or_subset_the_worker_cannot_use_is_refused_before_it_is_created(tmp_path, options,
                                                                                           message):
    store = RunStore(tmp_path)
    with pytest.raises(EipvizError) as error:
        create_training_run(store, "mnist14k", "fast", **options)
    assert str(error.value) == message
    assert store.list_runs() == []


def test_an_empty_runs_folder_is_refused_and_an_empty_variable_is_unset(monkeypatch, tmp_path):
    """``Path("")`` is the current folder: an empty --runs-dir put runs.sqlite and run folders in the project."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EipvizError, match="The runs folder is empty; name a folder"):
        RunStore("")
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", "")
    assert RunStore().root == Path("runs")
    assert list(tmp_path.iterdir()) == [tmp_path / "runs"]


def test_a_run_whose_training_diverges_fails_saying_so_and_keeps_none_of_it(tmp_path, data_dir, own_signal_handlers):
    """A learning rate of 10^6 finished "as sound", its nan weights in best.keras, every page's answers wrong."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=512, settings={"learning_rate": 1e6})
    assert worker.train_run(store, run_id, verbose=0) == "failed"
    reason = store.get_run(run_id).reason
    assert reason.startswith("Training diverged: the ") and "a learning rate below this one's 1e+06" in reason
    assert store.epoch_rows(run_id) == []
    assert not [name for name in ("best.keras", "last.keras", TIMELINE_FILE) if (store.run_dir(run_id) / name).exists()]


@pytest.mark.parametrize("hook, logs, said", [
    ("batch", {"loss": float("nan")}, "the loss became nan in epoch 3 (batch 5)"),
    ("epoch", {"loss": 0.5, "val_loss": float("inf")}, "the val_loss became inf in epoch 3 (validation)"),
    ("epoch", {"loss": float("nan"), "val_loss": 0.5}, "the loss became nan in epoch 3 (its mean)"),
])
def test_the_divergence_check_names_what_became_nan_and_when(hook, logs, said):
    from eipviz.training.builders import StopWhenLossDiverges, TrainingDiverged

    check = StopWhenLossDiverges(learning_rate=0.5)
    check.on_epoch_begin(2)
    check.on_batch_end(4, {"loss": 0.5})  # a finite loss goes by
    with pytest.raises(TrainingDiverged, match=re.escape(said + ". Start a new run with a learning rate below "
                                                                "this one's 0.5")):
        check.on_batch_end(4, logs) if hook == "batch" else check.on_epoch_end(2, logs)


DIVERGING_UNDER_JAX = """
import numpy as np, keras
from eipviz.training.builders import StopWhenLossDiverges, TrainingDiverged
x = np.random.default_rng(0).normal(size=(512, 4)).astype("float32")
for attempt in range(3):  # Keras runs its batch hooks on callback threads here: a race showed 2 runs in 3
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e20), loss="mse")
    try:
        model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0, callbacks=[StopWhenLossDiverges(1e20)])
    except TrainingDiverged as error:
        print("DIVERGED", str(error).split(" in epoch")[0])
"""


def test_under_jax_a_divergence_seen_on_keras_callback_threads_fails_with_its_message():
    """There the check reads each batch's loss off the step loop; reading the optimizer's rate as well failed
    with JAX's "Array has been deleted" (freed for the next step) instead of saying why (a reviewer's race)."""
    result = subprocess.run([sys.executable, "-c", DIVERGING_UNDER_JAX], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("DIVERGED Training diverged: the loss became") for line in lines)
