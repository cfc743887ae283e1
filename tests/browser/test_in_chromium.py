"""The app in a real browser: `streamlit run app.py` on a loopback port, driven by Playwright in Debian's Chromium.

Each test saves a screenshot under test-artifacts/browser/ and fails on a
Streamlit exception box, a browser console error or a page that never settles.
"""

import contextlib
import io
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright  # noqa: E402  (in requirements.txt)

from tests.conftest import ROOT, run_with_timeline, shared_data_dir

sys.path.insert(0, str(ROOT / "scripts"))
from browser_sessions import start_tiny_run_from_page  # noqa: E402
from screenshots import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    compare_models,
    compare_runs_on_curves,
    free_port,
    grid_methods,
    open_run_timeline,
    run_sanity_check,
    start_streamlit,
    still_context,
    stop_streamlit,
    wait_until_settled,
)

ARTIFACTS = ROOT / "test-artifacts" / "browser"
# Streamlit's frontend probes for a base path when opened on a page URL (/train/_stcore/health):
# those two 404s are its own, harmless, and the only console errors we accept.
BASE_PATH_PROBE = re.compile(r"/_stcore/(health|host-config)")
# One Streamlit server and one Chromium for the whole module: under pytest-xdist (--dist loadgroup)
# every test here runs on the same worker.
pytestmark = pytest.mark.xdist_group("browser")


def _start_streamlit(port, runs, preload=True):
    env = {**os.environ, "EIPVIZ_RUNS_DIR": str(runs), "EIPVIZ_DATA_DIR": str(shared_data_dir())}
    return start_streamlit(port, env, preload=preload)


def _stop_active_runs(store):
    from eipviz.training.launcher import stop_run

    for run in store.list_runs():
        if run.active:
            stop_run(store, run.id)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """The runs folder of the module's server: a test may add runs to it while the server serves."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(runs_dir):
    from eipviz.training.store import RunStore

    assert os.path.exists(CHROMIUM), "Chromium is missing: run `apt-get install -y chromium` (make test does as root)."
    port = free_port()
    process = _start_streamlit(port, runs_dir)
    yield f"http://127.0.0.1:{port}"
    stop_streamlit(process)
    _stop_active_runs(RunStore(runs_dir))  # whatever failed, no run started from a page outlives the module


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def profile(browser):
    """One browser profile for the module: each test's new tab is its own Streamlit session, while the
    browser's cache spares downloading and compiling the frontend again. No CSS animations
    (``still_context``): the browser would repaint them in software on the CPU the server needs."""
    context = still_context(browser, viewport={"width": 1400, "height": 1800})
    yield context
    context.close()


@pytest.fixture
def page(profile, request):
    tab = profile.new_page()
    errors = []
    tab.on("console", lambda m: m.type == "error" and errors.append(m))
    tab.on("pageerror", lambda e: errors.append(e))
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    exceptions = tab.locator("[data-testid='stException']").all_inner_texts()
    real = [e for e in errors if not (hasattr(e, "location") and BASE_PATH_PROBE.search(e.location.get("url", "")))]
    tab.close()
    assert not exceptions, exceptions
    assert not real, [getattr(e, "text", str(e)) for e in real]


def open_page(page, server, name):
    page.goto(f"{server}/{name}")
    wait_until_settled(page)


def choose(page, label, option):
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_settled(page)


@pytest.mark.parametrize("name", ["models", "train", "curves", "misclassified", "upload", "compare"])
def test_every_page_opens_cleanly(page, server, name):
    open_page(page, server, "" if name == "models" else name)  # the default page is served at /
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Misclassified")


def _chromium_command_lines() -> list[list[str]]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            switches = [part.decode() for part in (proc / "cmdline").read_bytes().split(b"\0") if part]
        except OSError:
            continue
        if switches and Path(switches[0]).name == "chromium":
            found.append(switches)
    return found


def test_chromium_renders_no_omnibox_popup_and_keeps_playwrights_disabled_features(browser, page, server):
    """``CHROMIUM_FLAGS`` replaces Playwright's --disable-features (Chromium keeps the last one): it must still
    hold every feature Playwright disables, and no address-bar popup may be rendered beside the tabs."""
    open_page(page, server, "upload")
    browsers = [line for line in _chromium_command_lines() if not any(s.startswith("--type=") for s in line)]
    assert browsers
    for switches in browsers:  # this module's browser, and any other test module's, all launched alike
        disabled = [set(s.split("=", 1)[1].split(",")) for s in switches if s.startswith("--disable-features=")]
        assert len(disabled) >= 2 and disabled[-1] >= set().union(*disabled[:-1]), switches
    targets = browser.new_browser_cdp_session().send("Target.getTargets")["targetInfos"]
    assert not [target["url"] for target in targets if target["url"].startswith("chrome://")], targets


def _plot_points(page):
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p && p.data ? p.data[0].x.length : 0; }")


def _wait_for_plot_points_over(page, count):
    page.wait_for_function("n => { const p = document.querySelector('.js-plotly-plot');"
                           " return p && p.data && p.data[0].x.length > n; }", arg=count, timeout=180_000)


def test_train_page_runs_a_tiny_training_live_and_stops_it(page, server):
    # 512 images (32 steps an epoch, about a second each): the run is stopped long before its 50 epochs.
    steps = start_tiny_run_from_page(page, server, epochs=50, subset=512)

    progress = page.get_by_text(re.compile(rf"epoch \d+/50: batch \d+/{steps}"))
    expect(progress).to_be_visible(timeout=120_000)
    first = progress.inner_text()
    expect(progress).not_to_have_text(first, timeout=30_000)  # the bar moves

    _wait_for_plot_points_over(page, 0)
    seen = _plot_points(page)
    _wait_for_plot_points_over(page, seen)
    assert _plot_points(page) > seen >= 1  # the curve grew by an epoch while we watched
    # In the main area: Streamlit's header also shows a "Stop" button while a script runs.
    page.get_by_test_id("stMain").get_by_role("button", name="Stop training", exact=True).click()
    expect(page.get_by_text(re.compile(r"· stopped"))).to_be_visible(timeout=120_000)  # stored as cancelled
    page.get_by_test_id("stExpander").filter(has_text="· stopped").locator("summary").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()


def test_curves_page_overlays_the_run_on_the_documented_one(page, server):
    open_page(page, server, "curves")
    # The curves chart is drawn by a fragment, so the probe-set chart below it can be drawn first: wait for a
    # chart with the documented curve, then check every trace name.
    page.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".some(p => (p.data || []).some(t => (t.name || '').includes('documented')))",
                           timeout=60_000)
    names = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                          ".flatMap(p => p.data.map(t => t.name || ''))")
    assert any("mnist14k documented" in n or "mnist14k" in n and "ep" in n for n in names), names
    assert any("documented" in n for n in names), names


@pytest.fixture
def compare_server(tmp_path):
    """A server of its own over two models' runs, two seeds each (stored, not trained), and a decoy run."""
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    for model, scale in (("mnist14k", 1.0), ("sepconv59k", 0.8)):
        for seed in (1, 2):
            run_id = store.create_run(name=f"{model} fast seed{seed}", model=model, recipe="fast",
                                      status="finished", hyperparameters={"learning_rate": 0.01 * scale, "seed": seed})
            for epoch in range(1, 13):
                accuracy = scale * (1 - 0.5 / epoch) - 0.02 * seed
                store.add_epoch(run_id, epoch, {"val_accuracy": accuracy, "val_loss": 1 - accuracy})
    store.create_run(name="decoy", model="resnet18", status="finished", hyperparameters={"seed": 9})
    port = free_port()
    process = _start_streamlit(port, tmp_path, preload=False)  # the Curves page shows no model
    yield f"http://127.0.0.1:{port}"
    stop_streamlit(process)


def test_curves_page_groups_filtered_runs_into_bands_and_compares_hyperparameters(compare_server, page):
    # compare_server first, so the tab closes before its server stops (a tab left open logs disconnections)
    open_page(page, compare_server, "curves")
    compare_runs_on_curves(page, "seed[0-9]", group_by="model", band="std")
    plots = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                          ".map(p => p.data.map(t => [t.type || 'scatter', t.name || '', t.fill || '']))")
    curves, parcoords = plots
    means = sorted(name for _, name, _ in curves if "(mean of" in name)
    assert means == ["model=mnist14k (mean of 2)"] * 2 + ["model=sepconv59k (mean of 2)"] * 2  # two panels
    assert sum(fill == "tonexty" for *_, fill in curves) == 4 and not any("decoy" in n for _, n, _ in curves)
    assert [kind for kind, *_ in parcoords] == ["parcoords"]
    expect(page.locator(".js-plotly-plot").nth(1).locator(".parcoords")).to_be_visible()  # drawn, not just data
    expect(page.get_by_role("heading", name="Hyperparameters")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2)  # the runs' summary and the hyperparameter table


# The confusion matrix: the page's heatmap (the per-class accuracy bars beside it are a Plotly chart too).
CONFUSION_PLOT = ("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                  ".find(gd => gd.data && gd.data[0].type === 'heatmap')")


def test_misclassified_confusion_cell_click_filters_the_gallery(page, server):
    open_page(page, server, "misclassified")
    # Plotly's component loads lazily, after the page has settled: wait for the drawn chart
    page.wait_for_function(f"() => {{ const gd = {CONFUSION_PLOT}; return gd && gd._fullLayout; }}", timeout=60_000)
    # the most frequent confusion, and where its cell is on screen
    true_name, pred_name, x, y = page.evaluate("""() => {
        const gd = """ + CONFUSION_PLOT + """; const z = gd.data[0].z, names = gd.data[0].x;
        let best = [0, 1, -1];
        z.forEach((row, i) => row.forEach((v, j) => { if (i !== j && v > best[2]) best = [i, j, v]; }));
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
        return [names[best[0]], names[best[1]],
                r.left + xa._offset + xa.l2p(best[1]), r.top + ya._offset + ya.l2p(best[0])];
    }""")
    page.mouse.click(x, y)
    captions = page.get_by_text(re.compile(r"^#\d+: true"))
    pair = f"true {true_name}, predicted {pred_name}"
    expect(captions.filter(has_text=pair)).not_to_have_count(0, timeout=60_000)
    expect(captions.filter(has_not_text=pair)).to_have_count(0, timeout=60_000)


def test_misclassified_gallery_changes_cam_method(page, server):
    open_page(page, server, "misclassified")
    # the gallery's tiles: captioned images (the colour legend above them has no caption)
    images = page.get_by_test_id("stImage").filter(has=page.get_by_test_id("stImageCaption"))
    expect(images).not_to_have_count(0, timeout=60_000)
    wait_until_settled(page)  # the gallery streams in image by image
    before = images.count()
    assert before % 3 == 0  # image, CAM for the prediction, CAM for the truth
    choose(page, "CAM method", "scorecam (slow)")  # slow methods say so in the selector
    expect(page.get_by_text(re.compile(r"^#\d+: true"))).not_to_have_count(0)
    expect(images).to_have_count(before, timeout=60_000)


MAP_CAPTION = re.compile(r"^del \d\.\d{3} · ins \d\.\d{3}$")


def test_compare_page_grids_the_chosen_methods_by_layers_on_a_test_image(page, server):
    open_page(page, server, "compare?model=mnist14k")
    tab = grid_methods(page, ["gradcam", "random"])
    expect(tab.get_by_text(re.compile(r"^test #0, true \w+: explaining"))).to_be_visible()
    expect(tab.get_by_test_id("stImageCaption").filter(has_text=MAP_CAPTION)).to_have_count(2 * 2)  # methods x layers


def test_compare_page_sets_two_cifar10_models_side_by_side(page, server):
    open_page(page, server, "compare")
    tab = compare_models(page, ["sepconv59k", "resnet20v1"])
    expect(tab.get_by_test_id("stMetric")).to_have_count(2)
    expect(tab.get_by_test_id("stMetric").first).to_contain_text(re.compile(r"\d+\.\d\d%"))
    expect(tab.locator(".js-plotly-plot .heatmaplayer")).to_have_count(1)  # errors together
    rows = tab.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^#\d+, true "))
    expect(rows).to_have_count(8)  # the most disputed images
    answers = tab.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^[✅❌] (sepconv59k|resnet20v1): "))
    expect(answers).to_have_count(8 * 2)  # every model's prediction and CAM on each


def test_misclassified_page_sanity_checks_the_chosen_method_in_one_click(page, server):
    open_page(page, server, "misclassified?model=mnist14k")
    sanity = run_sanity_check(page, n=2, depths=2)
    expect(sanity.get_by_text(re.compile(r"^gradcam (passes|fails)"))).to_be_visible()
    expect(sanity.locator(".js-plotly-plot")).to_have_count(1)  # similarity against depth
    captions = sanity.get_by_test_id("stImageCaption")
    expect(captions).to_have_count(1 + 2)  # the trained map, then one a depth
    expect(captions.first).to_have_text("trained")


def test_train_page_shows_a_finished_runs_explanations_across_epochs(page, server, runs_dir):
    from eipviz.training.store import RunStore

    run_id = run_with_timeline(RunStore(runs_dir))
    open_page(page, server, "train")
    run = open_run_timeline(page, run_id, "End")
    probes = run.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^[✅❌] "))
    expect(probes).to_have_count(16)
    expect(run.get_by_text(re.compile(r"^Epoch 3: \d+% of the 16 probe images right"))).to_be_visible()
    run.get_by_role("slider").press("Home")  # the epoch slider, to the first epoch
    wait_until_settled(page)
    expect(run.get_by_text(re.compile(r"^Epoch 1: \d+% of the 16 probe images right"))).to_be_visible()
    expect(probes).to_have_count(16)
    charts = run.locator(".js-plotly-plot")
    epoch_marks = charts.evaluate_all("ps => ps.map(p => (p.layout.shapes || []).map(s => s.x0))")
    assert [1, 1] in epoch_marks, epoch_marks  # the chosen epoch marked on the accuracy and faithfulness charts


def test_a_finished_run_stays_open_through_a_rename_and_is_deleted_once_confirmed(page, server, runs_dir):
    """A rename closed the run's panel (Streamlit names an expander by its label too); one click on Delete
    deleted the run."""
    from eipviz.training.store import RunStore

    store = RunStore(runs_dir)
    run_id = store.create_run(name="before", model="mnist14k", recipe="fast", status="finished",
                              hyperparameters={"epochs": 2})
    store.add_epochs(run_id, {1: {"val_accuracy": 0.5, "loss": 1.0}, 2: {"val_accuracy": 0.6, "loss": 0.5}})
    open_page(page, server, "train")
    run = page.get_by_test_id("stExpander").filter(has_text=run_id)
    run.locator("summary").click()
    wait_until_settled(page)
    name = run.get_by_role("textbox", name="Name")
    name.fill("after")
    name.press("Enter")
    wait_until_settled(page)
    run.get_by_role("button", name="Rename").click()
    wait_until_settled(page)
    expect(run.locator("summary")).to_contain_text(f"after · {run_id}")
    expect(run.locator(".js-plotly-plot")).to_be_visible()  # still open: its curves and buttons show
    run.get_by_test_id("stPopover").locator("button").click()
    confirm = page.get_by_role("button", name="Delete after and its files")
    expect(confirm).to_be_visible()
    assert (runs_dir / run_id).exists()  # asked, not done
    confirm.click()
    expect(page.get_by_test_id("stToast").filter(has_text=f"Deleted after ({run_id}).")).to_be_visible()
    expect(page.get_by_test_id("stExpander").filter(has_text=run_id)).to_have_count(0)
    assert not (runs_dir / run_id).exists()


def _png_bytes():
    image = np.zeros((56, 40), np.uint8)
    image[8:48, 18:22] = 255
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_page_explains_an_image_and_rejects_a_bad_file(page, server):
    open_page(page, server, "upload")
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Images").locator("input[type=file]")
    uploader.set_input_files([{"name": "one.png", "mimeType": "image/png", "buffer": _png_bytes()},
                              {"name": "broken.png", "mimeType": "image/png", "buffer": b"no picture here"}])
    wait_until_settled(page)
    expect(page.get_by_text("broken.png is not an image eipviz can read.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"resized from 40x56 to \d+x\d+"))).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(1)  # top-5 chart of the good image


def test_restarting_streamlit_neither_stops_nor_forgets_a_run(browser, tmp_path):
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    try:
        _restart_streamlit_during_a_run(browser, store, tmp_path)
    finally:  # whatever failed, no 300-epoch worker outlives the test
        _stop_active_runs(store)


@contextlib.contextmanager
def _tab(browser):
    context = still_context(browser, viewport={"width": 1400, "height": 1400})
    try:
        yield context.new_page()
    finally:
        context.close()


def _lower_priority_once_training(store, timeout_s=120):
    """Renice the one run's worker to 19 once it has recorded progress: it keeps training through the restart,
    on CPU no other test wants (at full priority its two threads took about 150 s of CPU from the suite)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        (run,) = store.list_runs()
        if run.pid and store.progress(run.id):
            for thread in os.listdir(f"/proc/{run.pid}/task"):  # Linux keeps a nice value per thread
                os.setpriority(os.PRIO_PROCESS, int(thread), 19)
            return
        time.sleep(0.2)
    raise AssertionError(f"the run never recorded progress: {store.list_runs()}")


def _restart_streamlit_during_a_run(browser, store, runs_dir):
    first_port = free_port()
    first = _start_streamlit(first_port, runs_dir, preload=False)  # the Train page shows no shipped model
    try:
        with _tab(browser) as tab:  # closed before the server stops: see below
            # Far more epochs than the test lasts, so the run cannot finish during the restart.
            steps = start_tiny_run_from_page(tab, f"http://127.0.0.1:{first_port}", epochs=300, subset=4096)
            _lower_priority_once_training(store)
    finally:
        # The app goes away; its worker must not. With a tab still open, Streamlit 1.67 sometimes never
        # exits on SIGTERM: uvicorn's graceful shutdown waits, without a timeout, on a keep-alive
        # connection the frontend opened while reconnecting (README, Known problems).
        stop_streamlit(first)
    (run,) = store.list_runs()
    second_port = free_port()
    second = _start_streamlit(second_port, runs_dir, preload=False)
    try:
        with _tab(browser) as tab:
            open_page(tab, f"http://127.0.0.1:{second_port}", "train")
            expect(tab.get_by_text(run.id)).to_be_visible(timeout=60_000)
            expect(tab.get_by_text(re.compile(rf"epoch \d+/300: batch \d+/{steps}"))).to_be_visible(timeout=120_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / "restart_reattach.png"))
        assert store.get_run(run.id).status == "running"
    finally:
        stop_streamlit(second)
