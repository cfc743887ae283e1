"""Images/s of the training data path alone: the old host-side ``ImageBatches`` against augmentation in the step.

Both sides augment CIFAR-10 uint8 images with the resnet20v1 fast recipe's augmentation (whole-pixel
shifts with reflect fill, horizontal flip) and preprocess them, batch 512:

- host: the worker's pipeline before issue #24 (kept here as the baseline): every batch goes
  through the Keras preprocessing layers of that time (``RandomTranslation``, ``RandomFlip``)
  eagerly, back to NumPy, then preprocessing.
- in-step: the worker's compiled step (the worker hands ``fit`` full ``ImageBatches`` of the arrays since
  2026-11-28; here ``fit`` takes the arrays whole): ``fit`` on the uint8 arrays of a ``TrainingModel`` whose
  classifier is a 30-parameter head (global average pooling, Dense(10)), so the compiled step is
  almost all augmentation and preprocessing. Its whole-pixel shifts are ``RandomShift``;
- in-step with Keras' ``RandomTranslation(interpolation="nearest")`` for the shifts instead: the
  same step with the interpolated transform, which is why ``RandomShift`` exists.

Each backend runs in its own process (Keras fixes it at import); the two sides alternate, one epoch
each, ROUNDS times, and the medians are printed (the first in-step epoch, which traces, is dropped).

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/input_pipeline.py
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGES = int(os.environ.get("BENCH_IMAGES", 8192))
BATCH = 512
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
# fit's jit_compile: "auto" (Keras turns XLA on under JAX, and under TensorFlow wherever there is a GPU, never
# on a TensorFlow CPU-only machine), or "1" to force XLA, as fit compiles the step on a GPU machine.
JIT = True if os.environ.get("BENCH_JIT") == "1" else "auto"


def host_batches_class():
    """The worker's ``ImageBatches`` before issue #24: augmentation on the host, eagerly, per batch."""
    import keras
    import numpy as np

    from eipviz.preprocessing import preprocess

    class HostImageBatches(keras.utils.PyDataset):
        def __init__(self, images, labels, batch_size, preprocessing, augmentation=(), seed=0):
            super().__init__()
            self.images, self.labels, self.batch_size = images, labels, batch_size
            self.preprocessing, self.augmentation = preprocessing, list(augmentation)
            self.order = np.random.default_rng(seed).permutation(len(images))

        def __len__(self):
            return math.ceil(len(self.images) / self.batch_size)

        def __getitem__(self, index):
            picked = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
            x = self.images[picked].astype(np.float32)
            for layer in self.augmentation:
                x = layer(x, training=True)
            if self.augmentation:
                x = keras.ops.convert_to_numpy(x)
            y = np.eye(10, dtype=np.float32)[self.labels[picked]]
            return preprocess(x, self.preprocessing), y

    return HostImageBatches


def measure() -> dict:
    """Run in a child process: medians of both sides on this process's backend."""
    import keras

    from eipviz.data import load_dataset
    from eipviz.recipes import get_recipe
    from eipviz.training.builders import augmentation_layers
    from eipviz.training.pipeline import TrainingModel, one_hot

    recipe = get_recipe("resnet20v1", "fast")
    ds = load_dataset("cifar10")
    x, labels = ds.x_train[:IMAGES], ds.y_train[:IMAGES]
    y = one_hot(labels)
    a = recipe.augmentation

    def keras_layers():
        """The layers the worker used before issue #24: Keras' interpolating translation, then the flip."""
        return [keras.layers.RandomTranslation(a.height_shift, a.width_shift, fill_mode=a.fill_mode,
                                               interpolation=a.interpolation, seed=0),
                keras.layers.RandomFlip("horizontal", seed=1)]

    host = host_batches_class()(x, labels, BATCH, recipe.preprocessing, keras_layers())

    def in_step_trainer(augmentation):
        head = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(10)])
        trainer = TrainingModel(head, augmentation, recipe.preprocessing)
        trainer.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                        jit_compile=JIT)
        return trainer

    trainers = {"in_step": in_step_trainer(augmentation_layers(recipe, seed=0)),
                "keras_translation": in_step_trainer(keras_layers())}

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    timer = EpochTimer()
    for trainer in trainers.values():
        trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[timer])  # traces
    rates: dict[str, list[float]] = {"host": [], **{name: [] for name in trainers}}
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(len(host)):
            host[i]
        rates["host"].append(IMAGES / (time.perf_counter() - start))
        for name, trainer in trainers.items():
            trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[timer])
            rates[name].append(IMAGES / timer.seconds)
    return {"backend": keras.backend.backend(), **{name: statistics.median(values) for name, values in rates.items()},
            "samples": rates}


def main():
    print(f"{IMAGES} CIFAR-10 images, batch {BATCH}, resnet20v1 fast augmentation, medians of {ROUNDS} "
          "alternating epochs (CPU)\n")
    print("| backend | device | host ImageBatches img/s | in-step img/s | speed-up | in-step, Keras RandomTranslation "
          "img/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for backend, jit, compiled in (("tensorflow", "auto", "no XLA (TensorFlow's CPU default)"),
                                   ("tensorflow", "1", "XLA (as on a GPU)"), ("jax", "auto", "XLA")):
        out = subprocess.run([sys.executable, __file__, "--child"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "KERAS_BACKEND": backend, "BENCH_JIT": jit}, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {backend}, step {compiled} | CPU, {os.cpu_count()} cores | {result['host']:,.0f} | "
              f"{result['in_step']:,.0f} | {result['in_step'] / result['host']:.1f}x | "
              f"{result['keras_translation']:,.0f} |", flush=True)
        samples = {name: [round(rate) for rate in values] for name, values in result["samples"].items()}
        print(f"<!-- samples {backend} {jit}: {samples} -->", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(measure()))
    else:
        main()
