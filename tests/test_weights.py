"""The shipped weights: intact, and at or above the documented accuracy on the full test set (their shipped
predictions, spot-checked against a fresh pass)."""

import json
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest

from eipviz import shipping
from eipviz.data import CLASS_NAMES
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation, dataset_test_split, evaluate_test_set
from eipviz.loading import load_zoo_model
from eipviz.shipping import WEIGHTS_ENTRY, ship_run, write_inference_copy
from eipviz.training.launcher import create_training_run
from eipviz.training.store import RunStore
from eipviz.weights import MANIFEST, read_manifest, sha256_of, shipped_weights_path
from eipviz.zoo import MODELS, build_model

SHIPPED_ENTRIES = read_manifest()  # the real manifest, before any test points weights/ elsewhere
SHIPPED = list(SHIPPED_ENTRIES)
SPOT_CHECK = 1024  # test images each shipped model is run on afresh


def test_the_manifest_lists_shipped_weights():
    assert SHIPPED, "weights/manifest.json lists no model"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_its_manifest_and_beats_the_documented_accuracy(name, data_dir):
    entry = read_manifest()[name]
    assert sha256_of(shipped_weights_path(name)) == entry["sha256"]
    for key in ("storage", "test_accuracy", "per_class_accuracy", "recipe", "hyperparameters", "epochs",
                "training_seconds", "device", "date", "curves"):
        assert key in entry, key
    classifier = load_zoo_model(name)
    # The full test set's probabilities shipped beside the file, read only when their sha256 is this file's
    # (the Misclassified page reads the same), scored against the genuine labels of ../shared/data.
    stored = evaluate_test_set(classifier)
    assert len(stored.labels) == 10000
    assert abs(stored.accuracy - entry["test_accuracy"]) <= 0.0005
    assert stored.accuracy * 100 >= MODELS[name].documented_accuracy
    # They are this model's: a fresh pass over 1,024 random test images (a tenth of the evaluation's
    # time; resnet18's full pass took 38 s in the suite) gives the same probabilities.
    images, _ = dataset_test_split(classifier)
    sample = np.sort(np.random.default_rng(0).choice(len(images), SPOT_CHECK, replace=False))
    np.testing.assert_allclose(classifier.probabilities(images[sample]), stored.probabilities[sample], atol=1e-4)


def test_a_corrupt_weights_file_is_a_clear_message(weights_dir):
    name = SHIPPED[0]
    entry = SHIPPED_ENTRIES[name]
    weights_dir.mkdir()
    (weights_dir / entry["file"]).write_bytes(b"corrupted")
    (weights_dir / "manifest.json").write_text(json.dumps({name: entry}))
    with pytest.raises(EipvizError, match="corrupt"):
        shipped_weights_path(name)
    assert MANIFEST.is_file()


def test_an_inference_copy_drops_the_optimizer_and_float16_halves_it_again(tmp_path):
    model = build_model("mnist14k")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    model.fit(x, np.arange(16) % 10, epochs=1, verbose=0)
    model.save(tmp_path / "checkpoint.keras")
    write_inference_copy(tmp_path / "checkpoint.keras", tmp_path / "plain.keras")
    write_inference_copy(tmp_path / "checkpoint.keras", tmp_path / "half.keras", float16=True)

    sizes = {name: (tmp_path / f"{name}.keras").stat().st_size for name in ("checkpoint", "plain", "half")}
    assert sizes["plain"] < 0.7 * sizes["checkpoint"] and sizes["half"] < 0.7 * sizes["plain"], sizes
    with zipfile.ZipFile(tmp_path / "half.keras") as archive:
        (tmp_path / "half.h5").write_bytes(archive.read(WEIGHTS_ENTRY))
    with h5py.File(tmp_path / "half.h5") as stored:
        assert "optimizer" not in stored
        dtypes = set()
        stored.visititems(lambda _, node: dtypes.add(node.dtype) if isinstance(node, h5py.Dataset) else None)
    assert dtypes == {np.dtype("float16")}

    half = keras.saving.load_model(tmp_path / "half.keras", compile=False)
    assert {w.dtype for w in half.weights} == {"float32"}
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(half.predict(x, verbose=0), expected, atol=5e-3)
    plain = keras.saving.load_model(tmp_path / "plain.keras", compile=False)
    np.testing.assert_allclose(plain.predict(x, verbose=0), expected, atol=1e-6)


SHIPPED_MNIST = MANIFEST.parent / "mnist14k.keras"  # the real file, before any test points weights/ elsewhere


def _finished_mnist_run(tmp_path, checkpoint):
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path / "runs")
    run_id = create_training_run(store, "mnist14k", "fast", epochs=1)
    shutil.copy(checkpoint, store.run_dir(run_id) / "best.keras")
    store.update_run(run_id, status="finished")
    return store, run_id


def test_shipping_a_model_below_its_documented_accuracy_is_refused_and_changes_nothing(
        tmp_path, weights_dir, data_dir):
    build_model("mnist14k").save(tmp_path / "untrained.keras")
    store, run_id = _finished_mnist_run(tmp_path, tmp_path / "untrained.keras")
    with pytest.raises(EipvizError, match=r"below its documented 99.46%: not shipped"):
        ship_run(store, run_id)
    assert list(weights_dir.iterdir()) == []  # no model, no manifest, no leftover candidate


def test_a_run_still_training_is_not_shipped(tmp_path, weights_dir):
    """Its best.keras and the epochs recorded beside it change under the copy."""
    (tmp_path / "best.keras").touch()  # never read
    store, run_id = _finished_mnist_run(tmp_path, tmp_path / "best.keras")
    store.update_run(run_id, status="running")
    with pytest.raises(EipvizError, match=f"Run {run_id} is running; ship it once it has ended."):
        ship_run(store, run_id)
    assert not weights_dir.exists()


def test_shipping_records_the_evaluated_file_and_never_replaces_a_better_one(tmp_path, weights_dir, data_dir):
    store, run_id = _finished_mnist_run(tmp_path, SHIPPED_MNIST)
    entry = ship_run(store, run_id)
    shipped = sorted(p.name for p in weights_dir.iterdir())
    assert shipped == ["manifest.json", "mnist14k.keras", "mnist14k.predictions.npz"]
    assert read_manifest()["mnist14k"] == entry and entry["test_accuracy"] >= 0.9946
    assert entry["sha256"] == sha256_of(weights_dir / "mnist14k.keras")
    assert entry["predictions"]["sha256"] == sha256_of(weights_dir / entry["predictions"]["file"])

    manifest = read_manifest()
    manifest["mnist14k"]["test_accuracy"] = 0.999  # as if a better model were shipped already
    (weights_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EipvizError, match=r"below the shipped 99.90%: not shipped"):
        ship_run(store, run_id)
    assert read_manifest() == manifest
    assert sorted(p.name for p in weights_dir.iterdir()) == shipped


def test_the_manifest_records_the_whole_training_time_and_every_epoch(tmp_path, weights_dir, monkeypatch):
    """training_seconds is the last epoch's wall time (the run's total), not the first epoch's."""
    store = RunStore(tmp_path / "runs")
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2)
    build_model("mnist14k").save(store.run_dir(run_id) / "best.keras")
    store.add_epoch(run_id, 1, {"val_accuracy": 0.99, "wall_time": 10.0})
    store.add_epoch(run_id, 2, {"val_accuracy": 0.995, "wall_time": 25.04})
    store.update_run(run_id, status="finished")
    perfect = Evaluation(np.arange(10), np.eye(10, dtype=np.float32), CLASS_NAMES["mnist"])

    def deleted_while_evaluating(classifier):  # the run's epochs were read after it: none were recorded
        store.delete_run(run_id)
        return perfect

    monkeypatch.setattr(shipping, "evaluate", deleted_while_evaluating)
    entry = ship_run(store, run_id)
    assert (entry["training_seconds"], entry["epochs"], len(entry["curves"])) == (25.0, 2, 2)


def test_a_ship_that_fails_after_the_candidate_passed_leaves_weights_as_they_were(
        tmp_path, weights_dir, data_dir, monkeypatch):
    """A full disk while the predictions are written: before, the new model had already replaced the shipped
    one, under the old manifest's sha256, so the shipped model was refused as corrupt."""
    import eipviz.shipping as shipping

    store, run_id = _finished_mnist_run(tmp_path, SHIPPED_MNIST)
    ship_run(store, run_id)
    before = {path.name: path.read_bytes() for path in weights_dir.iterdir()}
    build_model("mnist14k").save(tmp_path / "other.keras")
    monkeypatch.setattr(shipping, "_check_worth_shipping", lambda model, accuracy: None)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shipping, "write_predictions", full_disk)
    other_store, other_run = _finished_mnist_run(tmp_path / "other", tmp_path / "other.keras")
    with pytest.raises(OSError, match="No space left"):
        ship_run(other_store, other_run)
    assert {path.name: path.read_bytes() for path in weights_dir.iterdir()} == before  # no candidate left over
    shipped_weights_path("mnist14k")  # still verifies


def test_a_weights_file_is_fed_as_the_shipped_model_is_and_checked_against_the_zoo_models_shape(tmp_path):
    """resnet20v1's shipped weights take channel_standardize, its seed's recipe pixel_mean: --weights used the
    seed's, and the shipped file itself scored 49% instead of 91%."""
    shipped_path = MANIFEST.parent / "resnet20v1.keras"
    same = load_zoo_model("resnet20v1", weights=shipped_path)
    assert same.preprocessing == SHIPPED_ENTRIES["resnet20v1"]["preprocessing"] and same.note is None
    shutil.copy(shipped_path, tmp_path / "retrained.keras")
    with zipfile.ZipFile(tmp_path / "retrained.keras", "a") as archive:
        archive.writestr("note.txt", "another file")  # other bytes, same model
    retrained = load_zoo_model("resnet20v1", weights=tmp_path / "retrained.keras")
    assert retrained.preprocessing == "channel_standardize" and "--preprocessing" in retrained.note
    assert load_zoo_model("resnet20v1", tmp_path / "retrained.keras", "pixel_mean").preprocessing == "pixel_mean"
    with pytest.raises(EipvizError, match="takes 28x28x1 images .* resnet20v1 takes 32x32x3"):
        load_zoo_model("resnet20v1", weights=SHIPPED_MNIST)
