"""The speed options a recipe carries (issue #24); which GPUs a run is pinned to is tests/test_queue.py's."""

import numpy as np
import pytest

from eipviz.errors import EipvizError
from eipviz.recipes import FAST, Recipe, parse_devices
from eipviz.training import devices
from eipviz.training.devices import training_precision
from eipviz.training.worker import split_evenly


def test_mixed_precision_is_off_on_a_cpu():
    assert training_precision(True) == "float32" and training_precision(False) == "float32"


def test_devices_are_a_positive_number_or_all_and_anything_else_names_what_it_received():
    assert parse_devices("2") == 2 and parse_devices("all") == "all"
    for bad in ("0", "two", "-1"):
        with pytest.raises(EipvizError, match="Received: devices="):
            parse_devices(bad)
    with pytest.raises(EipvizError, match="steps_per_execution must be a whole number from 1 to 10,000"):
        FAST["resnet20v1"].with_overrides(steps_per_execution=0)


def test_speed_options_are_stored_with_the_run_and_older_runs_take_their_defaults():
    recipe = FAST["resnet20v1"].with_overrides(devices="all", mixed_precision=True, steps_per_execution=4)
    stored = recipe.hyperparameters()
    assert (stored["devices"], stored["mixed_precision"], stored["steps_per_execution"]) == ("all", True, 4)
    assert Recipe.from_hyperparameters(stored) == recipe
    for name in ("devices", "mixed_precision", "steps_per_execution"):
        del stored[name]
    older = Recipe.from_hyperparameters(stored)
    assert (older.devices, older.mixed_precision, older.steps_per_execution) == (1, False, 1)


def test_a_batch_that_does_not_split_evenly_across_the_devices_is_refused_when_the_run_is_planned():
    from eipviz.training.launcher import planned_recipe

    with pytest.raises(EipvizError, match=r"Recipe mnist14k/fast: batch_size 128 does not split evenly across "
                                          r"3 devices\. Choose a batch size that is a multiple of 3 "
                                          r"\(e\.g\. 126 or 129\)"):
        planned_recipe("mnist14k", "fast", devices=3)
    with pytest.raises(EipvizError, match=r"multiple of 4 \(e\.g\. 4\)"):
        planned_recipe("mnist14k", "fast", batch_size=2, devices=4)
    assert planned_recipe("mnist14k", "fast", batch_size=96, devices=3).batch_size == 96
    assert planned_recipe("mnist14k", "fast", devices="all").devices == "all"  # the worker checks it, knowing how many


def test_validation_batches_are_a_multiple_of_the_devices_and_all_of_one_size_when_they_can_be():
    from eipviz.training.worker import VALIDATION_BATCH, validation_batch_size

    assert VALIDATION_BATCH == 256
    assert validation_batch_size(10_000, 1) == 250  # CIFAR-10's and MNIST's test sets: 40 batches of 250
    assert validation_batch_size(1_024, 1) == 256
    assert [validation_batch_size(10_000, n) for n in (2, 4, 8)] == [250, 200, 200]
    assert validation_batch_size(9_996, 3) == 204  # 49 batches; 9,996 = 2 x 2 x 3 x 7 x 7 x 17
    # No divisor above half the largest (9,999 = 3 x 3 x 11 x 101): the largest multiple of the devices, and
    # one shorter last batch.
    assert [validation_batch_size(997, 1), validation_batch_size(9_999, 3), validation_batch_size(9_999, 9)] == [
        256, 255, 252]


def _policies(checkpoint):
    """{layer name: dtype policy name} of a saved model, loaded under the (float32) global policy."""
    import keras

    return {layer.name: layer.dtype_policy.name for layer in keras.models.load_model(checkpoint).layers}


def test_a_mixed_precision_run_explains_from_a_float32_best_keras_and_resumes_in_the_policy_last_keras_holds(
        tmp_path, data_dir, monkeypatch):
    """On a GPU with bfloat16 units (simulated: the precision is forced), a mixed-precision run's best.keras still
    computes in float32 wherever it is loaded; last.keras keeps what training needs, and a resume records it."""
    import keras

    from eipviz.training import worker
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore

    monkeypatch.setattr(worker, "training_precision", lambda mixed_precision: "mixed_bfloat16")
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, batch_size=64, subset=128, augment=False,
                                 mixed_precision=True)
    record_batch = worker.RunRecorder.on_train_batch_end

    def stop_inside_the_second_epoch(recorder, batch, logs=None):
        recorder.stop.requested = recorder.epoch == 1
        record_batch(recorder, batch, logs)

    monkeypatch.setattr(worker.RunRecorder, "on_train_batch_end", stop_inside_the_second_epoch)
    assert worker.train_run(store, run_id, verbose=0) == "cancelled"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is back
    best, last = store.run_dir(run_id) / "best.keras", store.run_dir(run_id) / "last.keras"
    assert set(_policies(best).values()) == {"float32"}
    images = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    assert keras.ops.convert_to_numpy(keras.models.load_model(best)(images)).dtype == np.float32
    last_policies = _policies(last)
    assert last_policies.pop("predictions") == "float32"  # the softmax computes in float32 while training, too
    assert set(last_policies.values()) == {"mixed_bfloat16"}

    # Resumed where bfloat16 is not offered: it goes on in the policy last.keras holds, and records that one.
    monkeypatch.setattr(worker, "training_precision", lambda mixed_precision: "float32")
    monkeypatch.setattr(worker.RunRecorder, "on_train_batch_end", record_batch)
    assert worker.train_run(store, run_id, verbose=0) == "finished"
    assert store.get_run(run_id).hyperparameters["dtype_policy"] == "mixed_bfloat16"
    assert set(_policies(best).values()) == {"float32"}


# -- guards the second mutation review of 2026-11-27 found untested --------------------------------------------------


def test_a_compute_capability_8_0_gpu_trains_in_bfloat16(monkeypatch):
    """An A100 (8.0) has bfloat16 units: mixed precision is used there, not only on newer GPUs."""
    monkeypatch.setattr(devices, "_gpu_compute_capability", lambda: (8, 0))
    assert devices.training_precision(True) == "mixed_bfloat16"
    monkeypatch.setattr(devices, "_gpu_compute_capability", lambda: (7, 5))
    assert devices.training_precision(True) == "float32"


def test_split_evenly_keeps_the_largest_multiple_of_the_devices():
    """10 images on 4 devices: 8 kept, so every batch splits evenly (JAX refuses one it cannot split)."""
    images, labels = np.arange(10), np.arange(10) + 100
    kept_images, kept_labels = split_evenly(images, labels, 4)
    assert kept_images.tolist() == list(range(8)) and kept_labels.tolist() == list(range(100, 108))
    assert len(split_evenly(images, labels, 1)[0]) == 10
