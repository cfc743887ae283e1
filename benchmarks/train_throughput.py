"""Images/s of the eipviz worker path against a bare ``model.fit``.

Same model, batch size and in-memory data (augmentation off in both, as a
bare fit has none); each side trains EPOCHS epochs on IMAGES images with
validation on as many, and the first epoch (graph build) is dropped.

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/train_throughput.py
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from eipviz.data import load_dataset  # noqa: E402
from eipviz.preprocessing import preprocess  # noqa: E402
from eipviz.recipes import get_recipe  # noqa: E402
from eipviz.training.builders import compile_model  # noqa: E402
from eipviz.training.devices import training_scope  # noqa: E402
from eipviz.training.launcher import create_training_run  # noqa: E402
from eipviz.training.store import RunStore  # noqa: E402
from eipviz.training.worker import train_run  # noqa: E402
from eipviz.zoo import build_model  # noqa: E402

IMAGES = int(os.environ.get("BENCH_IMAGES", 5120))
EPOCHS = 4
BATCH = 128
CASES = [("resnet20v1", "fast"), ("sepconv59k", "documented")]


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = getattr(self, "seconds", []) + [time.perf_counter() - self.start]


def bare_fit(model_name, recipe_name):
    recipe = get_recipe(model_name, recipe_name).with_overrides(epochs=EPOCHS, batch_size=BATCH)
    ds = load_dataset("cifar10")
    picked = np.random.default_rng(0).permutation(len(ds.x_train))[:IMAGES]
    x = preprocess(ds.x_train[picked], recipe.preprocessing)
    y = np.eye(10, dtype=np.float32)[ds.y_train[picked]]
    xv = preprocess(ds.x_test[:IMAGES], recipe.preprocessing)
    yv = np.eye(10, dtype=np.float32)[ds.y_test[:IMAGES]]
    model = build_model(model_name)
    compile_model(model, recipe, steps_per_epoch=len(x) // BATCH)
    timer = EpochTimer()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(xv, yv), verbose=0, callbacks=[timer],
              validation_batch_size=256)
    return IMAGES / np.mean(timer.seconds[1:])


def eipviz_path(model_name, recipe_name, batch_size=BATCH, augment=False):
    """Images/s of the worker, epochs after the first (validation on as many images included)."""
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        run_id = create_training_run(store, model_name, recipe_name, epochs=EPOCHS, batch_size=batch_size,
                                     subset=IMAGES, augment=augment)
        train_run(store, run_id, verbose=0)
        seconds = [row["epoch_seconds"] for row in store.epoch_rows(run_id)]
    return IMAGES / np.mean(seconds[1:])


def main():
    _, device = training_scope()
    print(f"backend {keras.backend.backend()}, {device}, {IMAGES} images, batch {BATCH}, "
          f"epochs 2..{EPOCHS} timed (validation on {IMAGES} images included)\n")
    print("| model | device | bare fit img/s | eipviz worker img/s | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for model_name, recipe_name in CASES:
        bare = bare_fit(model_name, recipe_name)
        ours = eipviz_path(model_name, recipe_name)
        print(f"| {model_name} ({recipe_name}) | {device} | {bare:,.0f} | {ours:,.0f} | {ours / bare:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
