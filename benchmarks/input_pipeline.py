"""Images/s of the training data path alone: the old host-side ``ImageBatches`` against augmentation in the step.

Both sides augment CIFAR-10 uint8 images with the resnet20v1 fast recipe's augmentation (whole-pixel
shifts with reflect fill, horizontal flip) and preprocess them, batch 512:

- host: the worker's pipeline before issue #24 (kept here as the baseline): every batch goes
  through the Keras preprocessing layers eagerly, back to NumPy, then preprocessing.
- in-step: what the worker does now: ``fit`` on the uint8 arrays of a ``TrainingModel`` whose
  classifier is a 30-parameter head (global average pooling, Dense(10)), so the compiled step is
  almost all augmentation and preprocessing.

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
    host = host_batches_class()(x, labels, BATCH, recipe.preprocessing, augmentation_layers(recipe, seed=0))

    head = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    trainer = TrainingModel(head, augmentation_layers(recipe, seed=0), recipe.preprocessing)
    trainer.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True))

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    timer = EpochTimer()
    trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[timer])  # traces
    host_rates, step_rates = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(len(host)):
            host[i]
        host_rates.append(IMAGES / (time.perf_counter() - start))
        trainer.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[timer])
        step_rates.append(IMAGES / timer.seconds)
    return {"backend": keras.backend.backend(), "host": statistics.median(host_rates),
            "in_step": statistics.median(step_rates), "host_all": host_rates, "in_step_all": step_rates}


def main():
    print(f"{IMAGES} CIFAR-10 images, batch {BATCH}, resnet20v1 fast augmentation, medians of {ROUNDS} "
          "alternating epochs (CPU)\n")
    print("| backend | device | host ImageBatches img/s | in-step img/s | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for backend in ("tensorflow", "jax"):
        out = subprocess.run([sys.executable, __file__, "--child"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "KERAS_BACKEND": backend}, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {backend} | CPU, {os.cpu_count()} cores | {result['host']:,.0f} | {result['in_step']:,.0f} | "
              f"{result['in_step'] / result['host']:.1f}x |", flush=True)
        print(f"<!-- samples {backend}: host {[round(r) for r in result['host_all']]}, "
              f"in-step {[round(r) for r in result['in_step_all']]} -->", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(measure()))
    else:
        main()
