"""Milliseconds the Train and Curves page scripts take with N runs in the store, this checkout against another.

Each store holds N finished runs: half trained (55 epochs of seven metrics each, as a worker stores them),
half imported from the real logs in ``tests/data/real_logs``. Each page script runs in Streamlit's bare mode
(widgets at their defaults, panels closed, elements built but sent to no browser): its own work, the median of
``--repeats`` runs after one warm-up, in a child process per checkout and N so that both see the same machine.

    .venv/bin/python benchmarks/many_runs.py [--vs /path/to/other/checkout] [--runs 3 30 300]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("accuracy", "loss", "val_accuracy", "val_loss", "learning_rate", "epoch_seconds", "wall_time")
TIMER = """
import json, logging, os, runpy, statistics, sys, time
os.chdir(sys.argv[1]); sys.path.insert(0, sys.argv[1]); logging.disable(logging.WARNING)
import streamlit
result = {}
for page in ("train", "curves"):
    runpy.run_path(f"app_pages/{page}.py", run_name="__page__")
    times = []
    for _ in range(int(sys.argv[2])):
        start = time.perf_counter()
        runpy.run_path(f"app_pages/{page}.py", run_name="__page__")
        times.append(time.perf_counter() - start)
    result[page] = 1000 * statistics.median(times)
print(json.dumps(result))
"""


def build_store(folder: Path, count: int) -> None:
    """``count`` finished runs, half trained, half imported logs."""
    sys.path.insert(0, str(ROOT))
    from eipviz.curves import import_log
    from eipviz.keraslog import parse_log
    from eipviz.training.store import RunStore

    store = RunStore(folder)
    logs = [path for path in sorted((ROOT / "tests" / "data" / "real_logs").iterdir()) if path.name != "README.md"]
    for index in range(count):
        if index % 2:
            log = logs[index % len(logs)]
            import_log(store, parse_log(log.read_text(errors="replace")), f"{log.stem} {index}", source=log.name)
            continue
        rows = {epoch: {name: (1 - math.exp(-epoch / 10) if "acc" in name else 5.0 * epoch if name == "wall_time"
                               else math.exp(-epoch / 10)) for name in METRICS} for epoch in range(1, 56)}
        store.create_run(name=f"mnist14k fast {index}", model="mnist14k", recipe="fast", kind="trained",
                         status="finished", epochs=rows, best_epoch=55, best_val_accuracy=rows[55]["val_accuracy"])


def page_milliseconds(checkout: Path, runs_dir: Path, repeats: int) -> dict[str, float]:
    environment = {**os.environ, "EIPVIZ_RUNS_DIR": str(runs_dir)}
    child = subprocess.run([sys.executable, "-c", TIMER, str(checkout), str(repeats)], env=environment,
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs", type=Path, help="another checkout of eipviz (e.g. a git worktree of an older commit)")
    parser.add_argument("--runs", type=int, nargs="+", default=[3, 30, 300])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    checkouts = {"this": ROOT, **({"vs": args.vs.resolve()} if args.vs else {})}
    print(f"{'runs':>5} {'checkout':>8} {'train ms':>9} {'curves ms':>10}")
    for count in args.runs:
        with tempfile.TemporaryDirectory() as folder:
            build_store(Path(folder), count)
            times = {label: page_milliseconds(path, Path(folder), args.repeats) for label, path in checkouts.items()}
        for label, result in times.items():
            ratio = "" if label == "this" else (f"  (vs / this: train {result['train'] / times['this']['train']:.1f}x,"
                                                f" curves {result['curves'] / times['this']['curves']:.1f}x)")
            print(f"{count:>5} {label:>8} {result['train']:>9.0f} {result['curves']:>10.0f}{ratio}")


if __name__ == "__main__":
    main()
