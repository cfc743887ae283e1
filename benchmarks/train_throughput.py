"""Images/s of the eipviz worker (augmentation in the step) against a bare ``model.fit`` and the previous worker.

resnet20v1 with its fast recipe, batch 512, IMAGES in-memory CIFAR-10 images, EPOCHS epochs with
validation on as many images, the first epoch (tracing) dropped. Three sides, each in its own
process, alternating, ROUNDS times per backend (medians printed):

- bare fit: the zoo model on preprocessed float32 arrays, no augmentation, no callbacks;
- worker: ``train_run`` as the app starts it, augmenting inside the compiled step;
- previous worker: ``train_run`` of the commit in ``BENCH_BASELINE`` (a ``git archive`` of the
  commit before issue #24), augmenting on the host in ``ImageBatches``.

BatchNorm re-estimation (short runs only) is off in both workers, as in a full-length run.

    git archive COMMIT | tar -x -C /tmp/eipviz-before   # the baseline
    BENCH_BASELINE=/tmp/eipviz-before EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/train_throughput.py
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

IMAGES = int(os.environ.get("BENCH_IMAGES", 2048))
EPOCHS = int(os.environ.get("BENCH_EPOCHS", 3))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 2))
BATCH = 512
MODEL, RECIPE = "resnet20v1", "fast"


def bare_fit() -> float:
    import keras
    import numpy as np

    from eipviz.data import load_dataset
    from eipviz.preprocessing import preprocess
    from eipviz.recipes import get_recipe
    from eipviz.training.builders import compile_model
    from eipviz.zoo import build_model

    recipe = get_recipe(MODEL, RECIPE).with_overrides(epochs=EPOCHS, batch_size=BATCH)
    ds = load_dataset("cifar10")
    picked = np.random.default_rng(0).permutation(len(ds.x_train))[:IMAGES]
    x = preprocess(ds.x_train[picked], recipe.preprocessing)
    y = np.eye(10, dtype=np.float32)[ds.y_train[picked]]
    xv = preprocess(ds.x_test[:IMAGES], recipe.preprocessing)
    yv = np.eye(10, dtype=np.float32)[ds.y_test[:IMAGES]]
    model = build_model(MODEL)
    compile_model(model, recipe, steps_per_epoch=len(x) // BATCH)
    seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(xv, yv), verbose=0,
              callbacks=[EpochTimer()], validation_batch_size=256)
    return IMAGES / statistics.mean(seconds[1:])


def worker() -> float:
    """The worker of whichever eipviz is first on sys.path (this one, or the baseline's)."""
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore
    from eipviz.training.worker import train_run

    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        run_id = create_training_run(store, MODEL, RECIPE, epochs=EPOCHS, batch_size=BATCH, subset=IMAGES)
        hp = store.get_run(run_id).hyperparameters
        store.update_run(run_id, hyperparameters={**hp, "precise_bn_below_steps": 0})
        assert train_run(store, run_id, verbose=0) == "finished", store.get_run(run_id).error
        seconds = [row["epoch_seconds"] for row in store.epoch_rows(run_id)]
    return IMAGES / statistics.mean(seconds[1:])


def child(side: str, backend: str, cwd: Path) -> float:
    code = f"import sys; sys.path.insert(0, {str(cwd)!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); " \
           f"import train_throughput as t; print('RATE', t.{side}())"
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": backend})
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return float(out.stdout.split("RATE")[-1])


def main():
    baseline = os.environ.get("BENCH_BASELINE")
    sides = [("bare fit", "bare_fit", ROOT), ("worker", "worker", ROOT)]
    if baseline:
        sides.append(("previous worker", "worker", Path(baseline)))
    print(f"{MODEL} ({RECIPE} recipe, its augmentation in the workers), batch {BATCH}, {IMAGES} images, epochs "
          f"2..{EPOCHS} timed with validation, medians of {ROUNDS} alternating rounds (CPU, {os.cpu_count()} cores)\n")
    print("| backend | device | bare fit img/s (no augmentation) | worker img/s | ratio | previous worker img/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for backend in ("tensorflow", "jax"):
        rates: dict[str, list[float]] = {name: [] for name, _, _ in sides}
        for _ in range(ROUNDS):
            for name, side, cwd in sides:
                rates[name].append(child(side, backend, cwd))
        median = {name: statistics.median(values) for name, values in rates.items()}
        previous = f"{median['previous worker']:,.0f}" if baseline else "not measured"
        print(f"| {backend} | CPU, {os.cpu_count()} cores | {median['bare fit']:,.0f} | {median['worker']:,.0f} | "
              f"{median['worker'] / median['bare fit']:.2f}x | {previous} |", flush=True)
        print(f"<!-- samples {backend}: {json.dumps({k: [round(v) for v in vs] for k, vs in rates.items()})} -->",
              flush=True)


if __name__ == "__main__":
    main()
