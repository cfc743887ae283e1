"""Server CPU and wall time per page load and per click, with and without ``gc.freeze()`` in ``scripts/serve.py``.

After every script run Streamlit collects garbage twice over the whole heap (its
``runner.postScriptGC``, and ``keras.backend.clear_session``, which it also calls).
``make run`` freezes the objects it imported and preloaded first, so those
collections skip them. This starts the server both ways, with the shipped models
preloaded, and in one headless Chromium context: opens the Upload page in new
tabs (a new session each, as a visitor's first view), then clicks its "Try 4
test images" button (a rerun that predicts and explains 4 images). Each action
is timed until the page has settled, and the server's CPU is read from ``/proc``.

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/rerun_cpu.py [--loads 5] [--clicks 5]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
import screenshots  # noqa: E402
from browser_sessions import cpu_seconds  # noqa: E402
from screenshots import CHROMIUM, CHROMIUM_FLAGS, free_port, start_streamlit, wait_until_settled  # noqa: E402

# serve.py as `make run` starts it, with gc.freeze made a no-op: the server as it was before.
UNFROZEN = ("import gc, runpy, sys; gc.freeze = lambda: None; sys.argv[0] = 'scripts/serve.py'; "
            "runpy.run_path('scripts/serve.py', run_name='__main__')")
screenshots.LAUNCHERS["serve without gc.freeze"] = ["-c", UNFROZEN]
VARIANTS = ["serve without gc.freeze", "serve"]


def timed(server_pid: int, action) -> tuple[float, float]:
    """(server CPU seconds, wall seconds) of ``action()``, which returns once the page has settled."""
    cpu, start = cpu_seconds(server_pid), time.perf_counter()
    action()
    return cpu_seconds(server_pid) - cpu, time.perf_counter() - start


def measure(browser, variant: str, loads: int, clicks: int) -> dict[str, list[tuple[float, float]]]:
    port = free_port()
    runs = tempfile.mkdtemp(prefix="rerun-cpu-")
    server = start_streamlit(port, {**os.environ, "EIPVIZ_RUNS_DIR": runs},
                             launcher=variant)
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    found: dict[str, list[tuple[float, float]]] = {"page load": [], "click": []}
    try:
        url = f"http://127.0.0.1:{port}/upload"
        warm = context.new_page()  # the browser's cache and the server's first session are not counted
        warm.goto(url)
        wait_until_settled(warm)
        warm.close()
        page = None
        for _ in range(loads):
            page = context.new_page()

            def load(page=page):
                page.goto(url)
                wait_until_settled(page)
            found["page load"].append(timed(server.pid, load))
        button = page.get_by_role("button", name="Try 4 test images")
        for _ in range(clicks):
            def click():
                button.click()
                wait_until_settled(page)
            found["click"].append(timed(server.pid, click))
    finally:
        context.close()
        server.kill()
        server.wait(timeout=30)
        shutil.rmtree(runs, ignore_errors=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=5)
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        results = {variant: measure(browser, variant, args.loads, args.clicks) for variant in VARIANTS}
        browser.close()
    print(f"{'server':<26} {'action':<10} {'server CPU s (median)':>22} {'wall s (median)':>16}")
    medians = {}
    for variant, found in results.items():
        for action, samples in found.items():
            cpu = statistics.median(s[0] for s in samples)
            wall = statistics.median(s[1] for s in samples)
            medians[variant, action] = cpu
            print(f"{variant:<26} {action:<10} {cpu:>22.2f} {wall:>16.2f}")
    for action in ("page load", "click"):
        before, after = medians[VARIANTS[0], action], medians[VARIANTS[1], action]
        print(f"{action}: server CPU {before:.2f} s -> {after:.2f} s ({before / max(after, 0.01):.1f}x less)")


if __name__ == "__main__":
    main()
