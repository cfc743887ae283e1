"""Screenshot every page of a running eipviz in Debian's Chromium (for the README and for review).

    .venv/bin/python scripts/screenshots.py [--out docs] [--runs-dir DIR] [--pages curves ...]

Starts ``streamlit run app.py`` on a free loopback port, opens each page
headless, waits until Streamlit stops running the script, and saves a PNG.
The app shows the runs in ``--runs-dir`` (default test-artifacts/screenshot-runs/): when it holds none,
the six demo runs missing there are trained first (mnist14k, both recipes, three seeds each: real tiny
trainings, about 1 min each on two cores), and the Curves shot picks them with a regex, groups them by
recipe over a min-max band and shows their hyperparameter table and parallel coordinates.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["models", "train", "curves", "misclassified", "upload"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAUNCHERS = {
    "serve": ["scripts/serve.py"],  # what `make run` starts: Keras imported before the server listens
    "streamlit": ["-m", "streamlit", "run", "app.py"],  # plain Streamlit, for comparison
}


def start_streamlit(port: int, env: dict, *extra_args: str, launcher: str = "serve", address: str | None = "127.0.0.1",
                    log=None) -> subprocess.Popen:
    """The app as ``make run`` serves it, headless on a loopback port; return it once it answers its health check.

    ``address=None`` leaves the listening address to the project's settings; ``log`` (an open file) gets the
    server's output.
    """
    where = ["--server.address", address] if address else []
    process = subprocess.Popen(
        [sys.executable, *LAUNCHERS[launcher], "--server.headless", "true", "--server.port", str(port),
         *where, "--browser.gatherUsageStats", "false", *extra_args],
        cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise AssertionError("streamlit did not start")


# Streamlit marks its app root with the script's state (what its own end-to-end tests wait on). Its running
# indicator (stStatusWidget) is no signal here: with client.toolbarMode = "minimal" (.streamlit/config.toml)
# it never shows, so a page that still computes for over 3 s after its title looked settled.
SCRIPT_STATE = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    const indicator = document.querySelector("[data-testid='stStatusWidget']");
    return [app ? app.dataset.testScriptState : null, Boolean(indicator && indicator.offsetParent)];
}"""
BUSY_STATES = (None, "initial", "running", "rerunRequested", "stopRequested")


def wait_until_settled(page, timeout_s=180, quiet_s=3, short_run_s=0.5):
    """Wait until the page script has started and no run has lasted over ``short_run_s`` for ``quiet_s``.

    Every page opens with ``st.title``: before its ``h1`` shows, the session may not have started
    yet. A run shorter than ``short_run_s`` (a fragment's refresh, every 2 s on the Train page) does not
    count, as it never showed Streamlit's running indicator either; the script is idle when this returns.
    """
    deadline = time.time() + timeout_s
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    quiet_since = running_since = None
    while time.time() < deadline:
        state, indicator = page.evaluate(SCRIPT_STATE)
        now = time.time()
        idle = state not in BUSY_STATES and not indicator
        running_since = None if idle else (running_since or now)
        if indicator or (running_since is not None and now - running_since > short_run_s):
            quiet_since = None
        else:
            quiet_since = quiet_since or now
            if idle and now - quiet_since > quiet_s:
                return
        time.sleep(0.1)
    raise TimeoutError("page never settled")


# Real trainings, not made-up curves: 10 epochs on 1,024 images, a seed each. One MNIST model, as a CIFAR-10
# one takes about 10 min a run on two shared cores; its two recipes (Adam, one-cycle SGD) make the groups.
DEMO_RUNS = [("mnist14k", recipe, seed) for recipe in ("documented", "fast") for seed in (1, 2, 3)]
DEMO_PATTERN = r"seed\d$"
TALL = {"curves": 2500}  # window heights (px) of pages longer than the default 2200


def fill_demo_runs(runs_dir: Path) -> None:
    """Train the ``DEMO_RUNS`` that ``runs_dir`` lacks (by name) into it; its other runs are left as they are."""
    sys.path.insert(0, str(ROOT))
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore
    from eipviz.training.worker import train_run

    store = RunStore(runs_dir)
    have = {run.name for run in store.list_runs() if run.status == "finished"}
    for model, recipe, seed in DEMO_RUNS:
        name = f"{model} {recipe} seed{seed}"
        if name in have:
            continue
        run_id = create_training_run(store, model, recipe, epochs=10, subset=1024, seed=seed, name=name)
        print(f"training {run_id}", flush=True)
        status = train_run(store, run_id, verbose=0)
        assert status == "finished", (run_id, status)


def choose(page, label, option):
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_settled(page)


def compare_runs_on_curves(page, pattern: str, group_by: str = "model", band: str = "min-max"):
    """On the open Curves page: filter runs by ``pattern``, select every match, group them with a band."""
    page.get_by_label("Filter runs by name (regular expression)").fill(pattern)
    page.keyboard.press("Enter")
    wait_until_settled(page)
    page.get_by_role("button", name=re.compile(r"^Select the \d+ matching runs$")).click()
    wait_until_settled(page)
    choose(page, "Group runs by", group_by)
    page.get_by_test_id("stRadio").filter(has_text="Band").get_by_text(band, exact=True).click()
    wait_until_settled(page)
    # The chart is drawn by a fragment, Plotly after it: wait for the bands and the parallel coordinates.
    page.wait_for_function("""() => {
        const data = Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(p => p.data || []);
        return data.some(t => t.fill === 'tonexty') && data.some(t => t.type === 'parcoords'); }""",
                           timeout=60_000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--runs-dir", default=str(ROOT / "test-artifacts" / "screenshot-runs"),
                        help="the runs the app shows; the demo runs it lacks are trained there first")
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=PAGES, help="shoot only these pages")
    args = parser.parse_args()
    fill_demo_runs(Path(args.runs_dir))
    port = free_port()
    server = start_streamlit(port, {**os.environ, "EIPVIZ_RUNS_DIR": str(Path(args.runs_dir).resolve())})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            for name in args.pages:
                path = "" if name == "models" else name  # the default page is served at /
                # Streamlit's main area scrolls inside the window: the window must hold the whole page.
                page.set_viewport_size({"width": 1400, "height": TALL.get(name, 2200)})
                page.goto(f"http://127.0.0.1:{port}/{path}")
                wait_until_settled(page)
                if name == "curves":
                    compare_runs_on_curves(page, DEMO_PATTERN, group_by="recipe")
                exceptions = page.query_selector_all("[data-testid='stException']")
                target = Path(args.out) / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"{target}{' (EXCEPTION SHOWN)' if exceptions else ''}", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
