"""Augmentation and preprocessing inside the compiled training step; several devices (issue #24).

The worker hands ``fit`` full uint8 batches (``ImageBatches``) and trains a ``TrainingModel`` (augmentation layers, the
recipe's preprocessing, the zoo model); only the zoo model is saved. Several devices are simulated
on the CPU: JAX host devices through ``XLA_FLAGS``, TensorFlow logical CPU devices.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from eipviz.preprocessing import preprocess
from eipviz.recipes import DOCUMENTED, FAST
from eipviz.training.builders import augmentation_layers, compile_model, make_optimizer
from eipviz.training.launcher import create_training_run
from eipviz.training.pipeline import Preprocess, RandomShift, TrainingModel, saved_model, shift_images
from eipviz.training.store import RunStore
from eipviz.training.worker import RunRecorder, TrainingCancelled, train_run
from eipviz.zoo import build_model
from tests.conftest import ROOT

# mnist14k's fast recipe augments (whole-pixel shifts and rotation): 256 images at batch 64, 4 steps.
SMALL = {"model": "mnist14k", "recipe": "fast", "epochs": 2, "batch_size": 64, "subset": 256}


def test_the_preprocess_layer_computes_what_preprocess_does(data_dir):
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    for kind in ("unit_scale", "channel_standardize", "pixel_mean"):
        in_step = keras.ops.convert_to_numpy(Preprocess(kind)(images))
        np.testing.assert_allclose(in_step, preprocess(images, kind), rtol=1e-6, atol=1e-6, err_msg=kind)


def test_the_training_model_validates_on_preprocessed_images_and_saves_the_plain_zoo_model():
    model = build_model("resnet20v1")
    trainer = TrainingModel(model, augmentation_layers(DOCUMENTED["resnet20v1"], seed=0), "unit_scale")
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trainer(images)),
                               keras.ops.convert_to_numpy(model(preprocess(images, "unit_scale"))), rtol=1e-5)
    assert saved_model(trainer) is model and saved_model(model) is model


@pytest.mark.parametrize("fill_mode, numpy_mode", [("reflect", "symmetric"), ("nearest", "edge"),
                                                   ("constant", "constant")])
def test_whole_pixel_shifts_are_pad_and_crop_and_what_random_translation_does(fill_mode, numpy_mode):
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 2)).astype(np.float32)
    down, right = np.array([2, -2, 0, 1]), np.array([-1, 2, 0, -2])
    moved = keras.ops.convert_to_numpy(shift_images(images, down, right, fill_mode))
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode=numpy_mode)
    for n in range(4):  # output pixel (i, j) is input pixel (i - down, j - right), filled as numpy pads
        np.testing.assert_array_equal(moved[n], padded[n, 2 - down[n]:10 - down[n], 2 - right[n]:10 - right[n]])
    # Keras' own layer, its random factor pinned to 2 px down and 1 px left, moves pixels the same way.
    translation = keras.layers.RandomTranslation((2 / 8, 2 / 8), (-1 / 8, -1 / 8), fill_mode=fill_mode,
                                                 interpolation="nearest")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(shift_images(images, [2] * 4, [-1] * 4, fill_mode)),
                                  keras.ops.convert_to_numpy(translation(images, training=True)))


def test_random_shifts_stay_within_the_factor_differ_per_image_and_are_off_at_inference():
    layer = RandomShift(0.125, 0.125, fill_mode="constant", seed=3)
    images = np.zeros((64, 32, 32, 1), np.float32)
    images[:, 16, 16] = 1.0  # one lit pixel: where it lands is the shift
    moved = keras.ops.convert_to_numpy(layer(images, training=True))
    rows, columns = np.nonzero(moved[..., 0])[1:]
    assert len(rows) == 64 and set(rows - 16) <= set(range(-4, 5)) and set(columns - 16) <= set(range(-4, 5))
    assert len(set(zip(rows, columns))) > 20  # each image its own shift
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)


def test_the_fast_recipes_whole_pixel_shifts_use_random_shift_and_interpolated_ones_keras():
    assert isinstance(augmentation_layers(FAST["resnet20v1"], seed=0)[0], RandomShift)
    assert isinstance(augmentation_layers(FAST["sepconv59k"], seed=0)[0], keras.layers.RandomTranslation)


def test_augmentation_layers_draw_from_their_own_seeds():
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")

    def augmented(seed):
        x = images
        for layer in augmentation_layers(DOCUMENTED["resnet20v1"], seed=seed):
            x = layer(x, training=True)
        return keras.ops.convert_to_numpy(x)

    np.testing.assert_array_equal(augmented(3), augmented(3))
    assert not np.array_equal(augmented(3), augmented(4))


def _layer_types(checkpoint):
    return {type(layer).__name__ for layer in keras.models.load_model(checkpoint).layers}


def test_a_resumed_run_continues_the_per_step_schedule_and_checkpoints_hold_no_augmentation(
        tmp_path, data_dir, monkeypatch):
    """Stopped right after epoch 1 (4 of 8 one-cycle steps), resumed and stopped again inside epoch 2, then
    resumed to the end, with 2 steps per execution."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, **SMALL)
    run = store.get_run(run_id)
    store.update_run(run_id, hyperparameters={**run.hyperparameters, "steps_per_execution": 2})
    record_epoch = RunRecorder.on_epoch_end

    def stop_after_the_first_epoch(recorder, epoch, logs=None):
        record_epoch(recorder, epoch, logs)
        raise TrainingCancelled()

    monkeypatch.setattr(RunRecorder, "on_epoch_end", stop_after_the_first_epoch)
    assert train_run(store, run_id, verbose=0) == "cancelled"
    assert store.completed_epochs(run_id) == 1
    monkeypatch.setattr(RunRecorder, "on_epoch_end", record_epoch)
    record_batch = RunRecorder.on_train_batch_end

    def stop_inside_the_second_epoch(recorder, batch, logs=None):
        recorder.stop.requested = recorder.epoch == 1  # as a Stop pressed during epoch 2 would
        record_batch(recorder, batch, logs)

    monkeypatch.setattr(RunRecorder, "on_train_batch_end", stop_inside_the_second_epoch)
    assert train_run(store, run_id, verbose=0) == "cancelled"
    assert store.completed_epochs(run_id) == 1
    assert int(keras.models.load_model(store.run_dir(run_id) / "last.keras").optimizer.iterations) > 4
    monkeypatch.setattr(RunRecorder, "on_train_batch_end", record_batch)
    assert train_run(store, run_id, verbose=0) == "finished"

    run = store.get_run(run_id)
    rows = store.epoch_rows(run_id)
    assert [row["epoch"] for row in rows] == [1, 2]
    schedule = make_optimizer(FAST["mnist14k"].with_overrides(epochs=2), steps_per_epoch=4)._learning_rate
    # Epoch 2 starts at step 4 of the one-cycle schedule: not back at its warm-up (step 0), nor where the stop
    # inside it left the count.
    for row, step in zip(rows, (0, 4)):
        assert row["learning_rate"] == pytest.approx(float(schedule(step)), rel=1e-5)
    assert run.hyperparameters["dtype_policy"] == "float32" and run.hyperparameters["steps_per_execution"] == 2
    for checkpoint in ("best.keras", "last.keras"):
        saved = keras.models.load_model(store.run_dir(run_id) / checkpoint)
        assert not [name for name in _layer_types(store.run_dir(run_id) / checkpoint)
                    if name.startswith("Random") or name == "Preprocess"], checkpoint
        assert saved.count_params() == 14840
    assert int(keras.models.load_model(store.run_dir(run_id) / "last.keras").optimizer.iterations) == 8


def test_every_training_batch_is_full_and_validation_batches_have_one_size(tmp_path, data_dir, monkeypatch):
    """300 images at batch 64: 4 full steps an epoch (a different 44 images left out each epoch), validated
    on 300 images in 2 batches of 150, so each step is traced for one batch shape (under JAX: compiled once;
    a short last batch compiled it again)."""
    traced: dict[str, list[tuple]] = {"train": [], "test": []}
    train_step, test_step = TrainingModel.train_step, TrainingModel.test_step

    def recording(kind, step):
        def record(model, data):
            traced[kind].append(tuple(data[0].shape))  # once per trace
            return step(model, data)
        return record

    monkeypatch.setattr(TrainingModel, "train_step", recording("train", train_step))
    monkeypatch.setattr(TrainingModel, "test_step", recording("test", test_step))
    store = RunStore(tmp_path)
    run_id = create_training_run(store, **{**SMALL, "subset": 300})
    assert train_run(store, run_id, verbose=0) == "finished"
    # TensorFlow traces the training step for any batch size (None): ImageBatches' specs leave it open.
    assert traced["train"] in ([(64, 28, 28, 1)], [(None, 28, 28, 1)]) and traced["test"] == [(150, 28, 28, 1)]
    assert store.get_run(run_id).hyperparameters["precise_bn_batches"] == 4  # 4 steps an epoch, not 5


def test_a_resumed_one_cycle_schedule_is_made_again_for_the_steps_an_epoch_now_has():
    """A run saved before 2026-11-28 counted a short last batch (5 steps an epoch for 300 images at batch 64);
    resumed now it has 4, and its optimizer from last.keras gets the schedule of 4."""
    recipe = FAST["mnist14k"].with_overrides(epochs=2, batch_size=64)
    saved_optimizer = make_optimizer(recipe, steps_per_epoch=5)
    model = TrainingModel(build_model("mnist14k"), [], recipe.preprocessing)
    compile_model(model, recipe, 4, optimizer=saved_optimizer)
    assert model.optimizer is saved_optimizer
    assert saved_optimizer._learning_rate.get_config() == make_optimizer(recipe, 4)._learning_rate.get_config()
    assert saved_optimizer._learning_rate.get_config() != make_optimizer(recipe, 5)._learning_rate.get_config()


# Trains a run under JAX, its batch hook wrapped to record its thread and to cancel at batch 1.
ASYNC_BATCH_HOOKS = """
import json, sys, threading
from eipviz.training.launcher import create_training_run
from eipviz.training.store import RunStore
from eipviz.training.worker import RunRecorder, train_run
store = RunStore(sys.argv[1])
run_id = create_training_run(store, **json.loads(sys.argv[2]))
on_main_thread, hook = [], RunRecorder.on_train_batch_end
def recording_hook(recorder, batch, logs=None):
    on_main_thread.append(threading.current_thread() is threading.main_thread())
    if batch == 1:
        recorder.stop.requested = True  # as SIGTERM sets it, in the middle of the first epoch
    hook(recorder, batch, logs)
RunRecorder.on_train_batch_end = recording_hook
status = train_run(store, run_id, verbose=0)
print("RESULT" + json.dumps({"status": status, "on_main_thread": on_main_thread,
                             "epochs": store.completed_epochs(run_id),
                             "last": store.run_dir(run_id).joinpath("last.keras").is_file()}))
"""


# Under JAX: is the training step of a model whose augmentation rotates and zooms jit-compiled?
JIT_UNDER_JAX = """
import keras
from eipviz.recipes import DOCUMENTED, FAST
from eipviz.training.builders import augmentation_layers, compile_model
from eipviz.training.devices import training_scope
from eipviz.training.pipeline import TrainingModel
from eipviz.zoo import build_model
training_scope(1)  # as the worker starts: one device, JAX's compilation cache
layers = augmentation_layers(DOCUMENTED["resnet20v1"], seed=0)  # RandomZoom and RandomRotation among them
model = TrainingModel(build_model("mnist14k"), layers, "unit_scale")
compile_model(model, FAST["mnist14k"], steps_per_epoch=4)
print("RESULT", keras.backend.backend(), ",".join(type(layer).__name__ for layer in layers), model.jit_compile)
"""


def test_under_jax_a_step_that_rotates_and_zooms_is_still_jit_compiled():
    # Keras marks those layers unfit for TensorFlow's XLA, and then ran the whole step op by op under JAX too.
    result = subprocess.run([sys.executable, "-c", JIT_UNDER_JAX], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    backend, layers, jitted = result.stdout.split("RESULT", 1)[1].split()
    assert backend == "jax" and {"RandomRotation", "RandomZoom"} <= set(layers.split(","))
    assert jitted == "True"


def test_under_jax_the_workers_batch_hooks_run_off_the_training_loop_and_a_cancel_still_stops_it(
        tmp_path, data_dir):
    """Keras dispatches batch hooks to a thread only when every callback is async-safe; else each step
    waits for the device (what the H200 run showed). A cancel raised on that thread still ends ``fit``."""
    run = json.dumps({**SMALL, "augment": False})  # augmentation would only add tracing time here
    result = subprocess.run([sys.executable, "-c", ASYNC_BATCH_HOOKS, str(tmp_path), run], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    assert found["status"] == "cancelled" and found["epochs"] == 0 and found["last"]
    assert found["on_main_thread"] and not any(found["on_main_thread"])


# Runs a 2-device run, then the same run on 1 device, in one process (TensorFlow must split its CPU
# before it runs anything); prints what each recorded.
TWO_THEN_ONE = """
import json, sys
from eipviz.training.launcher import create_training_run
from eipviz.training.store import RunStore
from eipviz.training.worker import train_run
store = RunStore(sys.argv[1])
found = {}
for devices in (2, 1):
    run_id = create_training_run(store, **json.loads(sys.argv[2]))
    run = store.get_run(run_id)
    store.update_run(run_id, hyperparameters={**run.hyperparameters, "devices": devices})
    status = train_run(store, run_id, verbose=0)
    run = store.get_run(run_id)
    found[devices] = {"status": status, "device": run.device, "error": run.error, "run_id": run_id,
                      "loss": [row["loss"] for row in store.epoch_rows(run_id)],
                      "val_accuracy": [row["val_accuracy"] for row in store.epoch_rows(run_id)]}
print("RESULT", json.dumps(found))
"""


def _two_then_one(tmp_path, backend, recipe, **env):
    result = subprocess.run(
        [sys.executable, "-c", TWO_THEN_ONE, str(tmp_path), json.dumps({**SMALL, "recipe": recipe})], cwd=ROOT,
        capture_output=True,
        text=True, timeout=400, env={**os.environ, "KERAS_BACKEND": backend, **env})  # 45-70 s in the suite
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    return found["2"], found["1"]


@pytest.mark.parametrize("backend, recipe, env, described, tolerance", [
    # JAX shards each global batch: the same arithmetic as on one device, up to summation order. With the
    # fast recipe's shifts and rotation: before the step was jit-compiled with rotation, the two host
    # devices' all-reduce hung op by op, so this ran the documented recipe, without augmentation.
    ("jax", "fast", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
     "jax: 2 CPU devices via DataParallel", 0.02),
    # MirroredStrategy normalises each replica's half batch on its own: close, not equal.
    ("tensorflow", "fast", {}, "tensorflow: 2 CPU devices via MirroredStrategy", 0.15),
])
def test_a_two_device_run_follows_the_one_device_trajectory_and_its_checkpoint_loads_anywhere(
        tmp_path, data_dir, backend, recipe, env, described, tolerance):
    two, one = _two_then_one(tmp_path, backend, recipe, **env)
    assert two["status"] == "finished" and one["status"] == "finished", (two["error"], one["error"])
    assert two["device"] == described and "CPU" in one["device"] and "2" not in one["device"]
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=tolerance)
    assert one["loss"][1] < one["loss"][0] and two["loss"][1] < two["loss"][0]
    # The checkpoint loads in this (TensorFlow, one-device) process and holds only the zoo model.
    checkpoint = tmp_path / two["run_id"] / "last.keras"
    assert not [name for name in _layer_types(checkpoint) if name.startswith("Random")]
    assert keras.models.load_model(checkpoint).predict(np.zeros((2, 28, 28, 1)), verbose=0).shape == (2, 10)


# Runs each named run (create_training_run's options) to its end in one process; prints what each recorded.
RUNS_TO_THE_END = """
import json, sys
from eipviz.training.launcher import create_training_run
from eipviz.training.store import RunStore
from eipviz.training.worker import train_run
store = RunStore(sys.argv[1])
found = {}
for name, options in json.loads(sys.argv[2]).items():
    run_id = create_training_run(store, **options)
    status = train_run(store, run_id, verbose=0)
    found[name] = {"status": status, "error": store.get_run(run_id).error, "epochs": store.completed_epochs(run_id)}
print("RESULT" + json.dumps(found))
"""


def test_under_jax_two_devices_train_an_odd_number_of_images_and_all_devices_refuse_a_batch_they_cannot_split(
        tmp_path, data_dir):
    """JAX refuses a batch it cannot split across the devices: 131 images at batch 64 ended in a batch of 3 (and one
    validation batch of 131). How many devices 'all' means is only known in the worker, which refuses the run."""
    plain = {"model": "mnist14k", "recipe": "fast", "epochs": 1, "augment": False}
    runs = {"odd": {**plain, "subset": 131, "batch_size": 64, "devices": 2},
            "all": {**plain, "subset": 64, "batch_size": 63, "devices": "all"}}
    result = subprocess.run([sys.executable, "-c", RUNS_TO_THE_END, str(tmp_path), json.dumps(runs)], cwd=ROOT,
                            capture_output=True, text=True, timeout=400,
                            env={**os.environ, "KERAS_BACKEND": "jax",
                                 "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    assert found["odd"] == {"status": "finished", "error": None, "epochs": 1}
    assert ("Left out 1 of 131 training and 1 of 131 validation images, so that every batch splits evenly "
            "across 2 devices.") in result.stdout
    assert found["all"]["status"] == "failed" and found["all"]["epochs"] == 0
    assert found["all"]["error"].endswith("(jax: 2 CPU devices via DataParallel): batch_size 63 does not split "
                                          "evenly across 2 devices. Choose a batch size that is a multiple of 2 "
                                          "(e.g. 62 or 64) or another number of devices.")


def test_a_float32_copy_of_a_mixed_precision_model_has_its_weights_and_computes_like_a_float32_build():
    from eipviz.training.devices import global_dtype_policy
    from eipviz.training.pipeline import compute_output_in_float32, float32_copy

    with global_dtype_policy("mixed_bfloat16"):
        mixed = build_model("resnet20v1")
    compute_output_in_float32(mixed)
    assert mixed.get_layer("predictions").compute_dtype == "float32" and mixed.layers[1].compute_dtype == "bfloat16"
    copy = float32_copy(mixed)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for theirs, ours in zip(mixed.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(theirs), keras.ops.convert_to_numpy(ours))
    built_in_float32 = build_model("resnet20v1")
    built_in_float32.set_weights(mixed.get_weights())
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy(images)),
                                  keras.ops.convert_to_numpy(built_in_float32(images)))
    assert float32_copy(built_in_float32) is built_in_float32  # already float32: nothing copied
