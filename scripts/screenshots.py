"""Screenshot every page of a running eipviz in Debian's Chromium (for the README and for review).

    .venv/bin/python scripts/screenshots.py [--port 8599] [--out docs]

Starts ``streamlit run app.py`` on a free loopback port, opens each page
headless, waits until Streamlit stops running the script, and saves a PNG.
"""

import argparse
import os
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    port = free_port()
    server = start_streamlit(port, os.environ.copy())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            for name in PAGES:
                path = "" if name == "models" else name  # the default page is served at /
                page.goto(f"http://127.0.0.1:{port}/{path}")
                wait_until_settled(page)
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
