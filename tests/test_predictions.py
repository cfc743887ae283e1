"""Test-set predictions kept beside a model file, so each model file is evaluated once."""

import dataclasses
import errno

import numpy as np
import pytest

from eipviz.atomic import write_npz_atomically
from eipviz.classifier import Classifier, StoredPredictions
from eipviz.evaluation import evaluate_test_set, read_predictions, write_predictions
from eipviz.weights import sha256_of
from tests.test_classifier import NAMES, tiny_model

N = 4


@pytest.fixture
def saved(tmp_path):
    """A tiny 3-class classifier saved to a file, as run checkpoints are."""
    path = tmp_path / "best.keras"
    tiny_model().save(path)
    return Classifier(tiny_model(), "tiny", "unit_scale", NAMES, None, "features", source=str(path),
                      predictions=StoredPredictions(tmp_path / "best.predictions.npz", sha256_of(path)))


def probabilities():
    return np.random.default_rng(0).dirichlet(np.ones(3), N).astype(np.float32)


def test_stored_predictions_read_back_only_for_the_same_model_file_and_preprocessing(saved):
    model_sha = sha256_of(saved.source)
    write_predictions(saved.predictions.path, probabilities(), model_sha, saved)
    np.testing.assert_array_equal(read_predictions(saved.predictions, model_sha, saved, N), probabilities())
    assert read_predictions(saved.predictions, "0" * 64, saved, N) is None  # another model file
    other = dataclasses.replace(saved, preprocessing="channel_standardize")
    assert read_predictions(saved.predictions, model_sha, other, N) is None
    assert read_predictions(saved.predictions, model_sha, saved, N + 1) is None  # another test set


def test_a_broken_or_unverified_predictions_file_is_ignored(saved):
    model_sha = sha256_of(saved.source)
    write_predictions(saved.predictions.path, probabilities(), model_sha, saved)
    shipped = StoredPredictions(saved.predictions.path, model_sha, sha256="f" * 64)  # the manifest says otherwise
    assert read_predictions(shipped, model_sha, saved, N) is None
    saved.predictions.path.write_bytes(b"PK\x03\x04 truncated")
    assert read_predictions(saved.predictions, model_sha, saved, N) is None
    assert not list(saved.predictions.path.parent.glob(".best.predictions.npz.*"))  # no temporary file left


def test_a_checkpoint_is_evaluated_once_then_read_from_its_stored_predictions(saved, monkeypatch):
    images = np.random.default_rng(1).integers(0, 255, (N, 8, 8, 3), dtype=np.uint8)
    monkeypatch.setattr("eipviz.evaluation.dataset_test_split", lambda classifier: (images, np.arange(N) % 3))
    calls = []
    original = Classifier.probabilities
    monkeypatch.setattr(Classifier, "probabilities", lambda self, x: calls.append(len(x)) or original(self, x))
    first = evaluate_test_set(saved)
    assert calls == [N] and saved.predictions.path.is_file()
    second = evaluate_test_set(saved)
    assert calls == [N], "the second evaluation reads the stored predictions"
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    np.testing.assert_array_equal(first.probabilities, saved.probabilities(images))


def _write_then_fail_as_a_full_disk(file, **arrays):
    file.write(b"PK\x03\x04 the first bytes")
    raise OSError(errno.EFBIG, "File too large")


def test_failed_prediction_writes_leave_no_temporary_file_and_the_evaluation_stands(saved, monkeypatch):
    """Three evaluations whose write failed (full disk, file size limit) left three ``.best.predictions.npz.*``."""
    images = np.random.default_rng(1).integers(0, 255, (N, 8, 8, 3), dtype=np.uint8)
    monkeypatch.setattr("eipviz.evaluation.dataset_test_split", lambda classifier: (images, np.arange(N) % 3))
    monkeypatch.setattr(np, "savez_compressed", _write_then_fail_as_a_full_disk)
    for _ in range(3):
        assert evaluate_test_set(saved).probabilities.shape == (N, 3)
    assert sorted(p.name for p in saved.predictions.path.parent.iterdir()) == ["best.keras"]


def test_a_write_that_cannot_be_renamed_into_place_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "taken.npz"
    (target / "inside").mkdir(parents=True)  # a non-empty folder where the file should go
    with pytest.raises(OSError):
        write_npz_atomically(target, probabilities=probabilities())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.npz"]


def test_shipped_predictions_are_never_written_at_run_time(saved, monkeypatch):
    images = np.random.default_rng(1).integers(0, 255, (N, 8, 8, 3), dtype=np.uint8)
    monkeypatch.setattr("eipviz.evaluation.dataset_test_split", lambda classifier: (images, np.arange(N) % 3))
    shipped = dataclasses.replace(saved, predictions=dataclasses.replace(saved.predictions, sha256="f" * 64))
    result = evaluate_test_set(shipped)
    assert result.probabilities.shape == (N, 3) and not saved.predictions.path.exists()


def test_a_checkpoint_replaced_while_it_loads_keeps_no_predictions(tmp_path, monkeypatch):
    """A live run rewrites best.keras: the model loaded must never get the new file's predictions, or vice versa."""
    from eipviz import loading
    from eipviz.training.store import RunStore
    from eipviz.zoo import build_model

    store = RunStore(tmp_path)
    run_id = store.create_run(name="live", model="mnist14k", status="running", hyperparameters={})
    path = store.run_dir(run_id) / "best.keras"
    build_model("mnist14k").save(path)
    original = loading._load_keras_file

    def load_then_replace(file):
        model = original(file)
        file.write_bytes(file.read_bytes() + b"\0")  # the worker saved a better epoch meanwhile
        return model

    monkeypatch.setattr(loading, "_load_keras_file", load_then_replace)
    assert loading.load_run_checkpoint(store, run_id).predictions is None
    monkeypatch.setattr(loading, "_load_keras_file", original)
    steady = loading.load_run_checkpoint(store, run_id)
    assert steady.predictions is not None and steady.predictions.model_sha256 == sha256_of(path)


def test_an_atomic_write_gives_the_file_the_permissions_a_plain_write_would(tmp_path):
    """The temporary file is private (0600): renamed as it was, reports and metrics.csv became owner-only."""
    import os
    import stat

    from eipviz.atomic import write_text_atomically

    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "report.html"
        write_text_atomically(fresh, "<html></html>")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "metrics.csv"
        kept.write_text("epoch\n")
        kept.chmod(0o640)
        write_text_atomically(kept, "epoch,loss\n")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "epoch,loss\n"
    finally:
        os.umask(old_umask)
