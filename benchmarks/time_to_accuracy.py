"""Wall time for the worker to train a zoo model to a target validation accuracy: issue #24's
"fast recipe to 88.09%" figure, and the GPU stage of ``scripts/device_bench.sh`` that tries a large batch.

It trains one run in this process exactly as a queued worker would (``train_run``: the run store,
augmentation in the step, checkpoints, the explanation timeline), from a named recipe with any of its
fields changed (``--set learning_rate=0.4``, as ``eipviz train --set``), then prints one JSON line:
each epoch's wall time since training began (first-step tracing included) and validation accuracy, and
the first epoch at or above ``--target``. The run stays in ``--runs-dir``, ready for ``eipviz ship`` if
it beats the shipped weights.

    KERAS_BACKEND=jax python benchmarks/time_to_accuracy.py resnet20v1 --batch-size 512 \
        --set learning_rate=0.4 --set precise_bn_below_steps=0 --epochs 30 --runs-dir /tmp/runs
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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

    store = RunStore(args.runs_dir)
    settings = dict(parse_setting(text) for text in args.set)
    run_id = create_training_run(store, args.model, args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                                 subset=args.subset, mixed_precision=args.mixed_precision or None, settings=settings,
                                 name=f"{args.model} {args.recipe} " + " ".join(args.set))
    started = time.time()
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
                      "process_seconds": round(time.time() - started, 1), "epochs": epochs}))


if __name__ == "__main__":
    main()
