"""CPU seconds the Streamlit process spends while a training starts from the Train page, per file watcher.

Streamlit watches the app's folder recursively, `.venv` included, and inotify
reports every file *open* there: a worker importing TensorFlow floods it, and
the app re-walks the venv. This measures what that costs the app process,
which is why `.streamlit/config.toml` turns the watcher off (see README).

    EIPVIZ_DATA_DIR=../shared/data .venv/bin/python benchmarks/app_watcher_cpu.py
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from browser_sessions import cpu_seconds, start_tiny_run_from_page  # noqa: E402
from screenshots import CHROMIUM, CHROMIUM_FLAGS, free_port, start_streamlit  # noqa: E402

from eipviz.training.launcher import stop_run  # noqa: E402
from eipviz.training.store import RunStore  # noqa: E402

WATCHERS = ["auto", "none"]
SETTLE_S = 15  # the page's own first render is not counted
AFTER_START_S = 30  # the worker imports TensorFlow and starts its first epoch


def app_cpu_during_a_run_start(browser, watcher):
    runs = tempfile.mkdtemp(prefix=f"watcher-{watcher}-")
    port = free_port()
    app = start_streamlit(port, {**os.environ, "EIPVIZ_RUNS_DIR": runs}, "--server.fileWatcherType", watcher)
    context = browser.new_context()
    try:
        url = f"http://127.0.0.1:{port}"
        tab = context.new_page()
        tab.goto(f"{url}/train")
        time.sleep(SETTLE_S)
        before = cpu_seconds(app.pid)
        start_tiny_run_from_page(tab, url, epochs=300, subset=512)
        time.sleep(AFTER_START_S)
        return cpu_seconds(app.pid) - before
    finally:
        context.close()
        app.kill()
        store = RunStore(runs)
        for run in store.list_runs():
            if run.active:
                stop_run(store, run.id)
        shutil.rmtree(runs, ignore_errors=True)  # a stopping worker may still write: what it leaves is its own


def main():
    print(f"| file watcher | app CPU s, run start + {AFTER_START_S} s |")
    print("| --- | --- |")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        for watcher in WATCHERS:
            print(f"| {watcher} | {app_cpu_during_a_run_start(browser, watcher):.1f} |", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
