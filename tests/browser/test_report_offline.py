"""The HTML report opens in headless Chromium with the network cut off: every image and chart is inside it."""

import sys

import pytest
from playwright.sync_api import sync_playwright

from eipviz.evaluation import dataset_test_split, evaluate_test_set
from eipviz.loading import load_zoo_model
from eipviz.report import build_report, write_report
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.mark.xdist_group("report")
def test_the_report_renders_offline_with_its_tables_images_and_charts(data_dir, tmp_path):
    classifier = load_zoo_model("mnist14k")
    images, _ = dataset_test_split(classifier)
    text = build_report(classifier, evaluate_test_set(classifier), images, n=4, methods=("gradcam",),
                        sanity_methods=("gradcam",))
    path = write_report(tmp_path / "report.html", text)
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(path.as_uri())
        page.locator(".plotly .main-svg").first.wait_for(timeout=60_000)  # plotly.js is inline
        loaded = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
        headings = page.locator("h2").all_inner_texts()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert loaded and all(loaded) and not errors
    assert {"Accuracy", "Faithfulness (4 test images)",
            "Sanity checks (Adebayo et al. 2018, 4 test images)"} <= set(headings)
    assert "mnist14k" in text and "keras version" in text and "sha256" in text
