"""Screenshot every page and view of a running eipviz in Debian's Chromium (for the README and for review).

    .venv/bin/python scripts/screenshots.py [--out docs] [--runs-dir DIR] [--pages curves timeline ...]

Starts ``streamlit run app.py`` on a free loopback port, opens each page
headless, waits until Streamlit stops running the script, and saves a PNG.
The app shows the runs in ``--runs-dir`` (default test-artifacts/screenshot-runs/): for the Train and
Curves shots, the six demo runs missing there are trained first (mnist14k, both recipes, three seeds each: real tiny
trainings, about 1 min each on two cores), and the Curves shot picks them by name (a glob), groups them by
recipe over a min-max band and shows their hyperparameter table and parallel coordinates.
The views are driven with their widgets first and shot alone: ``timeline`` (a real 4-epoch mnist14k run,
trained there when missing, about 1 min), ``compare-methods``, ``compare-models`` and ``sanity``.
Emoji captions need a colour-emoji font (Debian: ``apt-get install -y fonts-noto-color-emoji``).
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
VIEWS = ["timeline", "compare-methods", "compare-models", "sanity"]  # one part of a page, driven, then shot
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless Chromium 156 still renders the address bar's two omnibox popups (WebUI pages, one renderer each)
# beside every tab: about 40% of its CPU on a Streamlit page here. Chromium keeps only the last
# --disable-features switch, so ours repeats Playwright's own list (1.65) before adding them; a browser
# test checks that the list still covers Playwright's and that no popup is rendered.
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding", "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect", "TcpPortRandomizationWin", "OptimizationHints",
    "NetworkTimeServiceQuerying", "AimEnabled", "PreconnectToSearch", "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion")
OMNIBOX_POPUPS = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES + OMNIBOX_POPUPS)]


# For tests: without CSS animations and transitions, a tab waiting on a running script repaints about half
# as often (software rendering, no GPU: 0.14 -> 0.08 s of Chromium CPU a second); the app is otherwise the same.
STILL_CSS = "*, *::before, *::after { animation: none !important; transition: none !important; }"


def still_context(browser, **options):
    """A new browser context (``browser.new_context(**options)``) whose pages get ``STILL_CSS``."""
    context = browser.new_context(**options)
    context.add_init_script("document.addEventListener('DOMContentLoaded', () => {"
                            " const style = document.createElement('style');"
                            f" style.textContent = {STILL_CSS!r}; document.head.appendChild(style); }});")
    return context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAUNCHERS = {
    "serve": ["scripts/serve.py"],  # what `make run` starts: Keras imported before the server listens
    "streamlit": ["-m", "streamlit", "run", "app.py"],  # plain Streamlit, for comparison
}


START_TIMEOUT_S = 180  # preloading the shipped models took 38 s with two test suites sharing 2 cores


def start_streamlit(port: int, env: dict, *extra_args: str, launcher: str = "serve", address: str | None = "127.0.0.1",
                    log=None, preload: bool = True) -> subprocess.Popen:
    """The app as ``make run`` serves it, headless on a loopback port; return it once it answers its health check.

    ``address=None`` leaves the listening address to the project's settings; ``log`` (an open file) gets the
    server's output; ``preload=False`` skips serve.py's loading of the shipped models (for a server whose
    pages never show them).
    """
    where = ["--server.address", address] if address else []
    if not preload and launcher == "serve":
        where.append("--no-preload")
    process = subprocess.Popen(
        [sys.executable, *LAUNCHERS[launcher], "--server.headless", "true", "--server.port", str(port),
         *where, "--browser.gatherUsageStats", "false", *extra_args],
        cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process
        except OSError:
            time.sleep(0.5)
    exited = process.poll()
    stop_streamlit(process, grace_s=0)
    raise AssertionError(f"streamlit exited with code {exited} before it served" if exited is not None else
                         f"streamlit did not start within {START_TIMEOUT_S} s")


def stop_streamlit(process, grace_s: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``: with a tab open Streamlit sometimes never exits on SIGTERM
    (README, Known problems), and a test must not hang on it."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


# Streamlit marks its app root with the script's state (what its own end-to-end tests wait on). Its running
# indicator (stStatusWidget) is no signal here: with client.toolbarMode = "minimal" (.streamlit/config.toml)
# it never shows, so a page that still computes for over 3 s after its title looked settled. A skeleton
# (stSkeleton) stands in for an element whose code the frontend is still loading (Plotly's 4.7 MB can arrive
# after the script has ended): the page is busy while one is left.
SCRIPT_STATE = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    const indicator = document.querySelector("[data-testid='stStatusWidget']");
    const skeleton = document.querySelector("[data-testid='stSkeleton']");
    return [app ? app.dataset.testScriptState : null, Boolean((indicator && indicator.offsetParent) || skeleton)];
}"""
BUSY_STATES = (None, "initial", "running", "rerunRequested", "stopRequested")


def wait_until_settled(page, timeout_s=180, quiet_s=1.0, short_run_s=0.5):
    """Wait until the page script has started and, for ``quiet_s``, no run has lasted over ``short_run_s`` and no
    element has waited for its code (a skeleton).

    Every page opens with ``st.title``: before its ``h1`` shows, the session may not have started
    yet. A run shorter than ``short_run_s`` (a fragment's refresh, every 2 s on the Train page) does not
    count, as it never showed Streamlit's running indicator either; the script is idle when this returns.
    """
    wait_until_all_settled([page], timeout_s, quiet_s, short_run_s)


def wait_until_all_settled(pages, timeout_s=180, quiet_s=1.0, short_run_s=0.5):
    """``wait_until_settled`` for several sessions at once: their quiet periods overlap instead of adding up."""
    deadline = time.time() + timeout_s
    for page in pages:
        page.wait_for_selector("h1", timeout=timeout_s * 1000)
    quiet_since: list[float | None] = [None] * len(pages)
    running_since: list[float | None] = [None] * len(pages)
    while time.time() < deadline:
        settled = 0
        for i, page in enumerate(pages):
            state, busy = page.evaluate(SCRIPT_STATE)
            now = time.time()
            idle = state not in BUSY_STATES and not busy
            running_since[i] = None if idle else (running_since[i] or now)
            if busy or (running_since[i] is not None and now - running_since[i] > short_run_s):
                quiet_since[i] = None
            else:
                quiet_since[i] = quiet_since[i] or now
                if idle and now - quiet_since[i] > quiet_s:
                    settled += 1
        if settled == len(pages):
            return
        time.sleep(0.1)
    raise TimeoutError("page never settled")


# Real trainings, not made-up curves: 10 epochs on 1,024 images, a seed each. One MNIST model, as a CIFAR-10
# one takes about 10 min a run on two shared cores; its two recipes (Adam, one-cycle SGD) make the groups.
DEMO_RUNS = [("mnist14k", recipe, seed) for recipe in ("documented", "fast") for seed in (1, 2, 3)]
DEMO_PATTERN = "seed[0-9]"  # a glob: the reference runs say "seed 000"
# Window heights (px) over the default 2200; each view is cut at 2400 px below its top.
TALL = {"curves": 2500, "timeline": 2800, "compare-methods": 2800, "compare-models": 2800, "sanity": 2800}


# The timeline shot's run: what `python -m eipviz train --model mnist14k --recipe fast --epochs 4 --subset 2048`
# trains (its worker records the timeline), found by the name that command gives it.
TIMELINE_RUN = {"model": "mnist14k", "recipe": "fast", "epochs": 4, "subset": 2048,
                "name": "mnist14k fast (4 ep, 2048 img)"}


def fill_timeline_run(runs_dir: Path) -> str:
    """The id of ``runs_dir``'s finished ``TIMELINE_RUN``, trained there first when it has none."""
    sys.path.insert(0, str(ROOT))
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore
    from eipviz.training.worker import train_run

    store = RunStore(runs_dir)
    for run in store.list_runs():
        if run.name == TIMELINE_RUN["name"] and run.status == "finished":
            return run.id
    run_id = create_training_run(store, **TIMELINE_RUN)
    print(f"training {run_id}", flush=True)
    status = train_run(store, run_id, verbose=0)
    assert status == "finished", (run_id, status)
    return run_id


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
    page.get_by_role("textbox", name="Filter runs by name").fill(pattern)
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


def pick(page, multiselect, option):
    """Add ``option`` to a multiselect: typed, as its dropdown lists only the first options it has."""
    multiselect.get_by_role("combobox").fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")  # closed, so a screenshot shows what is under it
    wait_until_settled(page)


def open_run_timeline(page, run_id: str, epoch_key: str = "Home"):
    """On the open Train page: open finished run ``run_id``, its timeline, and press ``epoch_key`` on the
    epoch slider (Home: the first epoch); return the run's expander."""
    run = page.get_by_test_id("stExpander").filter(has_text=run_id)
    run.locator("summary").click()
    toggle = run.get_by_test_id("stCheckbox").filter(has_text="Explanations across epochs")
    for _ in range(3):  # a click can be lost to a rerun in flight (README, Known problems): click until it is on
        wait_until_settled(page)
        if toggle.locator("input").is_checked():
            break
        toggle.locator("label").click()
    wait_until_settled(page)
    run.get_by_role("slider").press(epoch_key, timeout=60_000)
    wait_until_settled(page)
    return run


def grid_methods(page, methods, layers=None):
    """On the open Compare page: set the methods grid's rows to ``methods`` (and its columns to ``layers``,
    when given); return its tab."""
    tab = page.get_by_role("tabpanel", name="Methods on one image")
    for label, options in (("Methods (rows)", methods), ("Layers (columns)", layers)):
        if options is None:
            continue
        chosen = tab.get_by_test_id("stMultiSelect").filter(has_text=label)
        chosen.get_by_role("button", name="Clear all").click()
        wait_until_settled(page)
        for option in options:
            pick(page, chosen, option)
    return tab


def compare_models(page, names):
    """On the open Compare page: set shipped models ``names`` side by side; return their tab."""
    page.get_by_role("tab", name="Models side by side").click()
    tab = page.get_by_role("tabpanel", name="Models side by side")
    if "mnist14k" in names:  # one dataset's models at a time: CIFAR-10's first
        tab.get_by_test_id("stRadio").get_by_text("MNIST", exact=True).click()
        wait_until_settled(page)
    models = tab.get_by_test_id("stMultiSelect").filter(has_text="Models (2 to 5)")
    for name in names:
        pick(page, models, f"{name} (shipped)")
    tab.get_by_role("heading", name=re.compile(r"^Where they disagree")).wait_for(timeout=120_000)
    return tab


def run_sanity_check(page, n: int | None = None, depths: int | None = None):
    """On the open Misclassified page: open the sanity check, set its images and depths, press its button;
    return its expander."""
    sanity = page.get_by_test_id("stExpander").filter(has_text="Sanity check of")
    sanity.locator("summary").click()
    for label, value in (("Test images", n), ("Randomisation depths", depths)):
        if value is not None:
            sanity.get_by_label(label).fill(str(value))
            sanity.get_by_label(label).press("Enter")
            wait_until_settled(page)
    sanity.get_by_role("button", name=re.compile(r"^Randomise the model's weights")).click()
    wait_until_settled(page)
    sanity.locator(".js-plotly-plot").wait_for(timeout=120_000)
    return sanity


def shoot_part(page, part, target: Path, max_height: int = 2400) -> None:
    """Save the top ``max_height`` px of ``part`` (a locator) as a PNG."""
    part.scroll_into_view_if_needed()
    box = part.bounding_box()
    page.screenshot(path=str(target), clip={"x": box["x"] - 10, "y": box["y"] - 10, "width": box["width"] + 20,
                                            "height": min(box["height"], max_height) + 20})


def shoot_page(page, base_url: str, name: str, target: Path) -> None:
    """Open page ``name`` (the Curves page comparing the demo runs) and save all of it."""
    page.goto(f"{base_url}/{'' if name == 'models' else name}")  # the default page is served at /
    wait_until_settled(page)
    if name == "curves":
        compare_runs_on_curves(page, DEMO_PATTERN, group_by="recipe")
    page.screenshot(path=str(target), full_page=True)


def shoot_view(page, base_url: str, name: str, target: Path, timeline_run: str | None) -> None:
    """Open the page of view ``name``, drive its widgets, and save that part of the page."""
    path = {"timeline": "train", "compare-methods": "compare?model=mnist14k", "compare-models": "compare",
            "sanity": "misclassified?model=mnist14k"}[name]
    page.goto(f"{base_url}/{path}")
    wait_until_settled(page)
    if name == "timeline":
        part = open_run_timeline(page, timeline_run)
    elif name == "compare-methods":
        grid_methods(page, ["gradcam", "gradcam++", "layercam", "eigencam", "random"], ["conv3", "conv5", "conv7"])
        part = page.get_by_test_id("stTabs")  # with the tab names, so the shot says which tab it is
    elif name == "compare-models":
        compare_models(page, ["sepconv59k", "sepconv65k", "resnet20v1"])
        part = page.get_by_test_id("stTabs")
    else:
        part = run_sanity_check(page)
    shoot_part(page, part, target)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--runs-dir", default=str(ROOT / "test-artifacts" / "screenshot-runs"),
                        help="the runs the app shows; the demo runs it lacks are trained there first")
    parser.add_argument("--pages", nargs="+", choices=PAGES + VIEWS, default=PAGES + VIEWS,
                        help="shoot only these pages and views")
    args = parser.parse_args()
    if {"train", "curves"} & set(args.pages):
        fill_demo_runs(Path(args.runs_dir))
    timeline_run = fill_timeline_run(Path(args.runs_dir)) if "timeline" in args.pages else None
    port = free_port()
    server = start_streamlit(port, {**os.environ, "EIPVIZ_RUNS_DIR": str(Path(args.runs_dir).resolve())})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            for name in args.pages:
                # Streamlit's main area scrolls inside the window: the window must hold the whole page.
                page.set_viewport_size({"width": 1400, "height": TALL.get(name, 2200)})
                target = Path(args.out) / f"{name}.png"
                if name in VIEWS:
                    shoot_view(page, f"http://127.0.0.1:{port}", name, target, timeline_run)
                else:
                    shoot_page(page, f"http://127.0.0.1:{port}", name, target)
                exceptions = page.query_selector_all("[data-testid='stException']")
                print(f"{target}{' (EXCEPTION SHOWN)' if exceptions else ''}", flush=True)
            browser.close()
    finally:
        stop_streamlit(server)


if __name__ == "__main__":
    main()
