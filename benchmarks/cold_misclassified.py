"""Seconds from opening the Misclassified page on a freshly started server to its first rendered gallery.

Real browser (Debian's Chromium, headless), a new server for every sample, so
nothing is cached: the page loads the model, reads its stored test-set
predictions, draws the confusion matrix and computes the first page's CAMs.
Both ways of serving are timed in the same run: ``make run``'s
``scripts/serve.py`` (Keras imported while the server starts) and a bare
``streamlit run app.py`` (Keras imported when the first browser connects).

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/cold_misclassified.py [--model resnet20v1] [--runs 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from browser_sessions import gallery_shown  # noqa: E402
from screenshots import CHROMIUM, CHROMIUM_FLAGS, free_port, start_streamlit  # noqa: E402

SERVERS = {"make run (scripts/serve.py)": "serve", "streamlit run app.py": "streamlit"}


def first_gallery_seconds(browser, url: str) -> float:
    """From navigation to the first gallery row's three images (original and two CAMs) on screen."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    while not gallery_shown(page):  # the colour legend's caption and image come first: not the gallery
        if time.perf_counter() - start > 300:
            raise TimeoutError(f"no gallery at {url} after 300 s")
        page.wait_for_timeout(20)
    seconds = time.perf_counter() - start
    context.close()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20v1")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {label: [] for label in SERVERS}
    with sync_playwright() as p, tempfile.TemporaryDirectory() as runs:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        for _ in range(args.runs):
            for label, how in SERVERS.items():  # interleaved, so both see the same machine load
                port = free_port()
                server = start_streamlit(port, {**os.environ, "EIPVIZ_RUNS_DIR": runs}, launcher=how)
                try:
                    samples[label].append(first_gallery_seconds(
                        browser, f"http://127.0.0.1:{port}/misclassified?model={args.model}"))
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                print(f"{label}: {samples[label][-1]:.2f} s", flush=True)
        browser.close()
    print(f"\nCold Misclassified page, {args.model}, {args.runs} fresh servers each (CPU, {os.cpu_count()} cores)\n")
    print("| served by | median s | min s | max s |")
    print("| --- | --- | --- | --- |")
    for label, values in samples.items():
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
