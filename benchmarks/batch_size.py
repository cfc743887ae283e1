"""Images/s of the eipviz worker for the separable-conv nets at batch 128 and 256.

Whether a larger batch trains them faster on CPU decides the fast recipe's batch size (see README). The
worker as the app starts it (fast recipe, augmentation in the step), timed as ``train_throughput.py``
times it: each epoch's training steps, epochs 2..EPOCHS (validation and the epoch's end cost the same at
either batch size).

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/batch_size.py   (BENCH_IMAGES, BENCH_EPOCHS)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from train_throughput import EPOCHS, IMAGES, worker  # noqa: E402  (benchmarks/ is this script's folder)

from eipviz.training.devices import training_scope  # noqa: E402

MODELS = ["sepconv59k", "sepconv65k"]
BATCHES = [128, 256]


def main():
    _, device = training_scope()
    print(f"backend {keras.backend.backend()}, {device}, {IMAGES} images, epochs 2..{EPOCHS} timed\n")
    print("| model | device | " + " | ".join(f"batch {b} img/s" for b in BATCHES) + " | speed-up |")
    print("| --- | --- | " + " | ".join("---" for _ in BATCHES) + " | --- |")
    for model_name in MODELS:
        speeds = [worker(model_name, "fast", batch) for batch in BATCHES]
        cells = " | ".join(f"{s:,.0f}" for s in speeds)
        print(f"| {model_name} | {device} | {cells} | {speeds[-1] / speeds[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
