"""Seconds an upload of a model file takes with its trial in a limited child, against loading it in-process only.

Each sample loads a fresh copy of a shipped model file (a new sha256, so the trial's cache never answers):
"in-process only" is what an upload did before the trial (the checks, Keras' load, one blank image); "first
upload" starts the child too (the backend's import), "next upload" finds it running; "same file again" is
answered by the cache of files that passed. One process, interleaved, so all see the same machine load.

    .venv/bin/python benchmarks/upload_trial.py [--model resnet20v1] [--runs 5]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eipviz import limited_child, loading  # noqa: E402
from eipviz.weights import shipped_weights_path  # noqa: E402


def fresh_copy(source: Path, folder: Path, index: int) -> Path:
    """The model saved again: the same network, another file (Keras writes the save time into it)."""
    path = folder / f"copy{index}.keras"
    keras.models.load_model(source, compile=False).save(path)
    return path


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20v1")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    source = shipped_weights_path(args.model)
    samples: dict[str, list[float]] = {"in-process only": [], "first upload": [], "next upload": [],
                                       "same file again": []}
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            limited_child._CHILD._end()  # no child running: the first upload starts one
            first, following = (fresh_copy(source, Path(scratch), 2 * run + k) for k in (0, 1))
            samples["in-process only"].append(seconds(
                lambda: loading._classify_model_file(first, "unit_scale", first.name)))
            samples["first upload"].append(seconds(lambda: loading.load_uploaded_model(first)))
            samples["next upload"].append(seconds(lambda: loading.load_uploaded_model(following)))
            samples["same file again"].append(seconds(lambda: loading.load_uploaded_model(following)))
    print(f"{args.model} ({source.stat().st_size / 2**20:.1f} MB), backend {keras.backend.backend()}, "
          f"{args.runs} runs:")
    base = statistics.median(samples["in-process only"])
    for label, values in samples.items():
        median = statistics.median(values)
        print(f"  {label:16s} median {median:6.2f} s (min {min(values):.2f}, max {max(values):.2f}), "
              f"{median / base:.2f}x in-process only")


if __name__ == "__main__":
    main()
