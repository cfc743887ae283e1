"""The explanation timeline's cost per epoch against the epoch itself (CPU, resnet20v1's fast recipe).

The timeline callback explains 16 probe images at each epoch end (Grad-CAM,
probabilities, deletion AUC and average drop) and rewrites ``timeline.npz``.
An epoch's time is measured as ``STEPS`` training steps of the recipe's batch
size on random uint8 images, scaled to the 50,000 training images; the
callback's time is the median of ``--repeats`` epoch ends after the first
(which also traces the Grad-CAM function, reported separately).

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/timeline_overhead.py [--model resnet20v1]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from eipviz.classifier import Classifier  # noqa: E402
from eipviz.data import CLASS_NAMES, load_test_split  # noqa: E402
from eipviz.explain.timeline import probe_indices, record_epoch, start_timeline  # noqa: E402
from eipviz.preprocessing import preprocess  # noqa: E402
from eipviz.recipes import get_recipe  # noqa: E402
from eipviz.training.builders import compile_model  # noqa: E402
from eipviz.zoo import MODELS, build_model  # noqa: E402

STEPS = 20
TRAIN_IMAGES = 50_000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20v1")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    spec, recipe = MODELS[args.model], get_recipe(args.model, "fast")
    model = build_model(args.model)
    steps_per_epoch = TRAIN_IMAGES // recipe.batch_size
    compile_model(model, recipe, steps_per_epoch)
    rng = np.random.default_rng(0)
    height, width, channels = spec.input_shape
    x = preprocess(rng.integers(0, 255, (STEPS * recipe.batch_size, height, width, channels), dtype=np.uint8),
                   recipe.preprocessing)
    y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)
    model.fit(x[:recipe.batch_size * 2], y[:recipe.batch_size * 2], batch_size=recipe.batch_size, verbose=0)  # trace
    start = time.perf_counter()
    model.fit(x, y, batch_size=recipe.batch_size, epochs=1, verbose=0)
    epoch_seconds = (time.perf_counter() - start) / STEPS * steps_per_epoch

    images, labels = load_test_split(spec.dataset)
    picked = probe_indices(labels)
    classifier = Classifier(model, args.model, recipe.preprocessing, CLASS_NAMES[spec.dataset], spec.dataset,
                            spec.cam_layer, "benchmark")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "timeline.npz"
        timeline = start_timeline(path, images[picked], labels[picked], picked, classifier.class_names,
                                  spec.cam_layer, 0)
        start = time.perf_counter()
        timeline = record_epoch(timeline, classifier, 1, path)
        first = time.perf_counter() - start
        later = []
        for epoch in range(2, args.repeats + 2):
            start = time.perf_counter()
            timeline = record_epoch(timeline, classifier, epoch, path)
            later.append(time.perf_counter() - start)
    median = statistics.median(later)
    print(f"{args.model}, fast recipe (batch {recipe.batch_size}, {steps_per_epoch} steps an epoch), CPU, "
          f"{os.cpu_count()} cores, backend {keras.backend.backend()}")
    print("| epoch (estimated) s | timeline per epoch, median s | share of the epoch | first epoch end (traces) s |")
    print("| --- | --- | --- | --- |")
    print(f"| {epoch_seconds:.1f} | {median:.3f} | {median / epoch_seconds:.2%} | {first:.2f} |")


if __name__ == "__main__":
    main()
