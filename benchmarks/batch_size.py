"""Images/s of the eipviz worker for the separable-conv nets at batch 128 and 256.

Whether a larger batch trains them faster on CPU decides the fast recipe's
batch size (it did not: see README). Real training path (fast recipe,
augmentation on), epochs after the first timed, validation included.

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/batch_size.py
"""

import keras  # noqa: E402
from train_throughput import EPOCHS, IMAGES, eipviz_path  # also puts the project on sys.path

from eipviz.training.devices import training_scope  # noqa: E402

MODELS = ["sepconv59k", "sepconv65k"]
BATCHES = [128, 256]


def main():
    _, device = training_scope()
    print(f"backend {keras.backend.backend()}, {device}, {IMAGES} images, epochs 2..{EPOCHS} timed\n")
    print("| model | device | " + " | ".join(f"batch {b} img/s" for b in BATCHES) + " | speed-up |")
    print("| --- | --- | " + " | ".join("---" for _ in BATCHES) + " | --- |")
    for model_name in MODELS:
        speeds = [eipviz_path(model_name, "fast", batch_size=b, augment=True) for b in BATCHES]
        cells = " | ".join(f"{s:,.0f}" for s in speeds)
        print(f"| {model_name} | {device} | {cells} | {speeds[-1] / speeds[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
