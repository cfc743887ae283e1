"""Training images/s of a zoo model on synthetic uint8 data, augmentation in the step: the GPU stage of
``scripts/device_bench.sh`` (also runs on a CPU, smaller, to rehearse it).

The worker's own pieces (``TrainingModel``, the fast recipe's augmentation and optimizer), batch
BATCH, STEPS steps an epoch, EPOCHS epochs; the first epoch (tracing) is dropped and the median of
the others printed as JSON, with the device and the dtype policy used.

    KERAS_BACKEND=jax python benchmarks/device_throughput.py resnet20v1 [--mixed-precision] [--devices N] \
        [--set interpolation=bilinear]
"""

import argparse
import faulthandler
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=int(os.environ.get("BENCH_BATCH", 512)))
    parser.add_argument("--steps", type=int, default=int(os.environ.get("BENCH_STEPS", 50)))
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("BENCH_EPOCHS", 4)))
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--devices", default="1")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one recipe field (repeatable), as `eipviz train --set` does, e.g. "
                             "interpolation=nearest")
    parser.add_argument("--stack-after", type=float, metavar="SECONDS",
                        help="print every thread's Python stack to stderr after this long, and again each time as "
                             "long again: where a step that never finishes compiling is stuck")
    args = parser.parse_args()
    if args.stack_after:
        faulthandler.dump_traceback_later(args.stack_after, repeat=True)

    import keras
    import numpy as np

    from eipviz.recipes import get_recipe, parse_devices, parse_setting
    from eipviz.training.builders import augmentation_layers, compile_model
    from eipviz.training.devices import training_precision, training_scope
    from eipviz.training.pipeline import TrainingModel, one_hot
    from eipviz.zoo import build_model, get_spec

    recipe = get_recipe(args.model, "fast").with_overrides(
        batch_size=args.batch, devices=parse_devices(args.devices), mixed_precision=args.mixed_precision,
        settings=dict(parse_setting(text) for text in args.set))
    shape = get_spec(args.model).input_shape
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (recipe.batch_size * args.steps, *shape), dtype=np.uint8)
    labels = one_hot(rng.integers(0, 10, len(images)))
    scope, device = training_scope(recipe.devices)
    precision = training_precision(recipe.mixed_precision)
    with scope:
        keras.config.set_dtype_policy(precision)
        model = TrainingModel(build_model(args.model), augmentation_layers(recipe, seed=0), recipe.preprocessing)
        compile_model(model, recipe, args.steps)
        keras.config.set_dtype_policy("float32")
    seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model.fit(images, labels, batch_size=recipe.batch_size, epochs=args.epochs, shuffle=True, verbose=0,
              callbacks=[EpochTimer()])
    print(json.dumps({"model": args.model, "backend": keras.backend.backend(), "device": device,
                      "settings": args.set, "dtype_policy": precision, "batch": recipe.batch_size,
                      "images_per_epoch": len(images),
                      "images_per_s": len(images) / statistics.median(seconds[1:]),
                      "epoch_seconds": [round(s, 3) for s in seconds]}))


if __name__ == "__main__":
    main()
