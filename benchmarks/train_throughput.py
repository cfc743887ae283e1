"""Images/s of the eipviz worker (augmentation in the step) against a bare ``model.fit`` and the previous worker.

resnet20v1 with its fast recipe, batch 512, IMAGES in-memory CIFAR-10 images, EPOCHS epochs, the
first (tracing) dropped. What is timed is the training steps of an epoch (its start to its last
batch's end): validation and the worker's end-of-epoch work (checkpoints, the explanation timeline)
cost the same whatever the input pipeline, per epoch rather than per image, and would swamp a short
benchmark epoch. Three sides, each in its own process, alternating, ROUNDS times per backend
(medians of the timed epochs printed):

- bare fit: the zoo model on preprocessed float32 arrays, no augmentation, no callbacks;
- worker: ``train_run`` as the app starts it, augmenting inside the compiled step;
- previous worker: ``train_run`` of the commit in ``BENCH_BASELINE`` (a ``git archive`` of the
  commit before issue #24), augmenting on the host in ``ImageBatches``.

BatchNorm re-estimation (short runs only) is off in both workers, as in a full-length run.

    git archive COMMIT | tar -x -C /tmp/eipviz-before   # the baseline
    BENCH_BASELINE=/tmp/eipviz-before EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/train_throughput.py
    (BENCH_IMAGES, BENCH_EPOCHS, BENCH_ROUNDS and BENCH_BACKENDS=tensorflow,jax change the size and the backends)
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


def step_timer(images: int = IMAGES):
    """A Keras callback timing each epoch's training steps: ``rate()`` is images/s over epochs 2..EPOCHS."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last - self.start)

        def rate(self) -> float:
            return images / statistics.median(self.seconds[1:])

    return StepTimer()


def bare_fit() -> float:
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
    model = build_model(MODEL)
    compile_model(model, recipe, steps_per_epoch=len(x) // BATCH)
    timer = step_timer()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=[timer])
    return timer.rate()


def worker(model: str = MODEL, recipe: str = RECIPE, batch: int = BATCH, images: int = IMAGES) -> float:
    """The worker of whichever eipviz is first on sys.path (this one, or the baseline's), its steps timed."""
    import eipviz.training.worker as worker_module
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore

    timer = step_timer(images)
    scheduled = worker_module.schedule_callbacks  # the timer joins the worker's own callbacks
    # Whatever the worker passes (the recipe, and since 2026-11-27 its completed epochs), passed on.
    worker_module.schedule_callbacks = lambda *args, **kwargs: [*scheduled(*args, **kwargs), timer]
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        run_id = create_training_run(store, model, recipe, epochs=EPOCHS, batch_size=batch, subset=images)
        hp = store.get_run(run_id).hyperparameters
        store.update_run(run_id, hyperparameters={**hp, "precise_bn_below_steps": 0})
        assert worker_module.train_run(store, run_id, verbose=0) == "finished", store.get_run(run_id).error
    return timer.rate()


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
          f"2..{EPOCHS}, training steps timed, medians of {ROUNDS} alternating rounds (CPU, {os.cpu_count()} cores)\n")
    print("| backend | device | bare fit img/s (no augmentation) | worker img/s | ratio | previous worker img/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for backend in os.environ.get("BENCH_BACKENDS", "tensorflow,jax").split(","):
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
