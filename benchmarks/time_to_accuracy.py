"""Wall time for the worker to train a zoo model to a target validation accuracy: issue #24's
"fast recipe to 88.09%" figure, and the GPU stage of ``scripts/device_bench.sh`` that tries a large batch.

It trains one run in this process exactly as a queued worker would (``train_run``: the run store,
augmentation in the step, checkpoints, the explanation timeline), from a named recipe with any of its
fields changed (``--set learning_rate=0.4``, as ``eipviz train --set``), then prints one JSON line (the
worker's own lines go to stderr): each epoch's wall time since training began (first-step tracing
included) and validation accuracy, the first epoch at or above ``--target``, and where each epoch's time
went: its training steps, validation, and each callback's epoch end (``last.keras``, ``best.keras``, the
explanation timeline, CSV, TensorBoard), and under JAX its compiling, with their medians over the epochs
after the first. The run
stays in ``--runs-dir``, ready for ``eipviz ship`` if it beats the shipped weights.

    KERAS_BACKEND=jax python benchmarks/time_to_accuracy.py resnet20v1 --batch-size 512 \
        --set learning_rate=0.4 --set precise_bn_below_steps=0 --epochs 30 --runs-dir /tmp/runs
"""

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def time_epoch_parts(parts: list[dict]) -> None:
    """Record into ``parts``, one dict per epoch, the seconds of its steps (``steps_s``), its validation
    (``validation_s``), its whole epoch end (``epoch_end_s``) and each callback's part of it (by class name),
    by wrapping Keras' ``CallbackList`` and ``Model.evaluate`` in this process; under JAX also the seconds
    spent tracing, lowering and compiling programs during the epoch (``compile_s``, JAX's own monitoring
    events: how much of a first epoch is compiling)."""
    import keras
    from keras.src.utils import python_utils

    if keras.backend.backend() == "jax":
        import jax

        def count_compile(event: str, seconds: float, **_) -> None:
            if parts and event.startswith("/jax/core/compile/"):
                parts[-1]["compile_s"] = parts[-1].get("compile_s", 0.0) + seconds

        jax.monitoring.register_event_duration_secs_listener(count_compile)

    callback_list, model_class = keras.callbacks.CallbackList, keras.Model
    on_epoch_begin, evaluate = callback_list.on_epoch_begin, model_class.evaluate

    def synced(model) -> float:
        """Now, once the device has run the steps dispatched so far: under JAX they run asynchronously, and
        reading an epoch's metrics does not wait for them."""
        if keras.backend.backend() == "jax":
            import jax

            jax.block_until_ready([variable.value for variable in model.trainable_variables])
        return time.perf_counter()

    def timed_begin(self, epoch, logs=None):
        parts.append({"epoch": epoch + 1, "begin": time.perf_counter()})
        on_epoch_begin(self, epoch, logs)

    def timed_evaluate(self, *args, **kwargs):
        part = parts[-1] if parts and "steps_s" not in parts[-1] else None  # fit's validation, not a callback's
        if part is None:
            return evaluate(self, *args, **kwargs)
        start = synced(self)
        part["steps_s"] = start - part.pop("begin")
        try:
            return evaluate(self, *args, **kwargs)  # returns Python numbers: the device is done
        finally:
            part["validation_s"] = time.perf_counter() - start

    def timed_end(self, epoch, logs=None):
        """Keras 3's ``CallbackList.on_epoch_end``, with each callback timed."""
        part, start = parts[-1], synced(self.model)
        if "steps_s" not in part:  # not validated this epoch
            part["steps_s"], part["validation_s"] = start - part.pop("begin"), 0.0
        if self._async_train:
            self._flush_futures()  # batch hooks still running on Keras' callback thread
        logs = python_utils.pythonify_logs(logs)
        for callback in self.callbacks:
            before = time.perf_counter()
            callback.on_epoch_end(epoch, logs)
            part[type(callback).__name__] = time.perf_counter() - before
        part["epoch_end_s"] = time.perf_counter() - start

    callback_list.on_epoch_begin, callback_list.on_epoch_end = timed_begin, timed_end
    model_class.evaluate = timed_evaluate


def medians(parts: list[dict]) -> dict:
    """Median seconds of each part over the epochs after the first (which traces)."""
    values: dict[str, list[float]] = defaultdict(list)
    for part in parts[1:] or parts:
        for key, seconds in part.items():
            if key != "epoch":
                values[key].append(seconds)
    return {key: round(statistics.median(found), 3) for key, found in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--subset", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one recipe field (repeatable), as `eipviz train --set` does")
    parser.add_argument("--target", type=float, default=0.8809)
    parser.add_argument("--runs-dir", default="/tmp/eipviz-time-to-accuracy")
    args = parser.parse_args()

    import keras

    from eipviz.recipes import parse_setting
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore
    from eipviz.training.worker import train_run

    parts: list[dict] = []
    time_epoch_parts(parts)
    store = RunStore(args.runs_dir)
    settings = dict(parse_setting(text) for text in args.set)
    run_id = create_training_run(store, args.model, args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                                 subset=args.subset, mixed_precision=args.mixed_precision or None, settings=settings,
                                 name=f"{args.model} {args.recipe} " + " ".join(args.set))
    started = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # the worker's own lines: stdout stays one JSON line
        status = train_run(store, run_id, verbose=0)
    run = store.get_run(run_id)
    epochs = [{"epoch": row["epoch"], "wall_time": round(row["wall_time"], 2),
               "epoch_seconds": round(row["epoch_seconds"], 2), "val_accuracy": round(row["val_accuracy"], 4)}
              for row in store.epoch_rows(run_id)]
    reached = next((row for row in epochs if row["val_accuracy"] >= args.target), None)
    print(json.dumps({"model": args.model, "run_id": run_id, "status": status, "backend": keras.backend.backend(),
                      "device": run.device, "settings": settings, "batch_size": run.hyperparameters["batch_size"],
                      "epochs_planned": run.hyperparameters["epochs"],
                      "dtype_policy": run.hyperparameters.get("dtype_policy"),
                      "target": args.target, "reached": reached,
                      "best_val_accuracy": max((row["val_accuracy"] for row in epochs), default=None),
                      "process_seconds": round(time.time() - started, 1), "epochs": epochs,
                      "epoch_parts_median_s": medians(parts),
                      "epoch_parts_s": [{key: round(value, 3) for key, value in part.items()} for part in parts]}))


if __name__ == "__main__":
    main()
