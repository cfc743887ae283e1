"""How long ``make test`` takes from a clean clone, with the host's speed measured beside it.

The suite's wall time on the shared 2-core machine moved by half for the same code between sessions
(pytest 6 min 12 s to 11 min 23 s), so a wall time alone says little. This clones HEAD, runs CI's
command in the clone (``CI=true bash .ci/run``, which runs the README's ``make test``), samples
``/proc/stat`` every half second while it runs, and times a fixed one-thread gauge (Keras on
TensorFlow, 2 epochs of mnist14k on 2,048 synthetic images, CPU seconds of its process, median
of 3) before and after. The suite's busy core-seconds divided by the gauge are comparable
between hosts; its wall time is what the README's target is about.

    EIPVIZ_DATA_DIR=../shared/data EIPVIZ_SEEDS_DIR=../shared/seeds python3 benchmarks/suite_time.py
    (--keep-venv reuses the clone folder's venv from an earlier run: ``make test`` after the venv exists;
     --clone-dir DIR, default /tmp/eipviz-suite-clone; --gauge-only)
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GAUGE = """
import os
os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", TF_NUM_INTRAOP_THREADS="1",
                  TF_NUM_INTEROP_THREADS="1")
import keras, numpy as np
from eipviz.zoo import build_model
keras.utils.set_random_seed(0)
model = build_model("mnist14k")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
images = np.random.default_rng(0).random((2048, 28, 28, 1), dtype=np.float32)
model.fit(images, np.arange(2048) % 10, batch_size=32, epochs=2, verbose=0)
"""


class ProcStat(threading.Thread):
    """Samples the machine's CPU time (``/proc/stat``'s first line, in clock ticks) until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.first = self.last = self.read()
        self.stopped = threading.Event()

    @staticmethod
    def read() -> dict:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
        return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "steal": steal}

    def run(self):
        while not self.stopped.wait(0.5):
            self.last = self.read()

    def seconds(self) -> dict:
        ticks = os.sysconf("SC_CLK_TCK")
        return {key: (self.last[key] - self.first[key]) / ticks for key in self.first}


def gauge_seconds(folder: Path, python: Path, runs: int = 3) -> float:
    """Median CPU seconds of the gauge's process (TensorFlow's start-up included, as in the suite's)."""
    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(python), "-c", GAUGE], cwd=folder, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(samples)


def fresh_clone(folder: Path, keep_venv: bool) -> bool:
    """Clone HEAD into ``folder``; with ``keep_venv`` the venv already there survives. True if it did."""
    venv, aside = folder / ".venv", folder.with_name(folder.name + "-venv")
    kept = keep_venv and venv.is_dir()
    if kept:
        shutil.rmtree(aside, ignore_errors=True)
        venv.rename(aside)  # the same path afterwards: a venv does not survive a move elsewhere
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True)
    if kept:
        aside.rename(venv)
        (venv / ".installed").touch()  # newer than the clone's requirements.txt: make installs nothing
    return kept


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone-dir", type=Path, default=Path("/tmp/eipviz-suite-clone"))
    parser.add_argument("--keep-venv", action="store_true")
    parser.add_argument("--gauge-only", action="store_true")
    args = parser.parse_args(argv)
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        parser.error("the gauge runs Keras from the project's venv: run `make venv` first")
    gauge_before = gauge_seconds(ROOT, python)
    print(f"gauge: {gauge_before:.2f} s of CPU", flush=True)
    if args.gauge_only:
        return 0

    kept = fresh_clone(args.clone_dir, args.keep_venv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.clone_dir, capture_output=True,
                            text=True, check=True).stdout.strip()
    log_path = args.clone_dir.with_name(args.clone_dir.name + ".log")
    stat = ProcStat()
    stat.start()
    start = time.monotonic()
    with open(log_path, "w") as log:
        result = subprocess.run(["bash", ".ci/run"], cwd=args.clone_dir, env={**os.environ, "CI": "true"},
                                stdout=log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    stat.stopped.set()
    stat.join()
    cpu = stat.seconds()
    gauge_after = gauge_seconds(ROOT, python)

    output = log_path.read_text()
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?) in ([\d.]+)s", output, re.MULTILINE)
    tests, pytest_seconds = (summary[-1][0], float(summary[-1][1])) if summary else ("no pytest summary", 0.0)
    gauge = statistics.mean([gauge_before, gauge_after])
    row = {"commit": commit, "venv": "kept" if kept else "new", "exit": result.returncode, "tests": tests,
           "pytest_s": round(pytest_seconds), "in_all_s": round(wall), "busy_core_s": round(cpu["busy"]),
           "idle_core_s": round(cpu["idle"]), "steal_s": round(cpu["steal"], 1),
           "gauge_before_s": round(gauge_before, 2), "gauge_after_s": round(gauge_after, 2),
           "busy_in_gauges": round(cpu["busy"] / gauge)}
    print(json.dumps(row))
    print("\n| commit | venv | tests | pytest | in all | busy core-s | idle core-s | gauge s (before, after) "
          "| busy / gauge |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {commit} | {row['venv']} | {tests} | {minutes(pytest_seconds)} | {minutes(wall)} "
          f"| {row['busy_core_s']:,} | {row['idle_core_s']:,} | {gauge_before:.2f}, {gauge_after:.2f} "
          f"| {row['busy_in_gauges']} |")
    if result.returncode:
        print(f"CI failed (exit {result.returncode}): see {log_path}", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
