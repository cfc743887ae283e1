"""Helpers for driving many browser sessions against one eipviz server (tests/browser/, benchmarks/).

A session here is one Chromium context (its own cookies, so its own Streamlit
session) without CSS animations (``screenshots.still_context``: on one machine the
browser's repaints would take CPU from the server); what the server holds is
measured from outside, in ``/proc``.
"""

import io
import os
import re
import statistics
import time
from pathlib import Path

from playwright.sync_api import expect
from screenshots import choose, still_context, wait_until_settled

GALLERY_CAPTION = re.compile(r"^#\d+: true")


def tiny_model_bytes(seed: int) -> bytes:
    """A small CIFAR-shaped ``.keras`` classifier (one 3x3 conv, about 20 KB), different for every seed."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    scratch = Path(f"/tmp/eipviz-tiny-{seed}-{time.time_ns()}.keras")
    keras.Model(inputs, outputs).save(scratch)
    try:
        return scratch.read_bytes()
    finally:
        scratch.unlink()


def resident_mb(pid: int) -> float:
    """Resident memory (VmRSS) of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a live process has used so far, in seconds (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # after the command name
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upload_model(page, name: str, data: bytes, pick: bool = True) -> None:
    """Upload a model file on an explanation page and use it (the session holds it); ``pick``: also choose it
    as the page's model."""
    page.get_by_test_id("stExpander").filter(has_text="Upload your own model").locator("summary").click()
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Model file").locator("input[type=file]")
    uploader.set_input_files({"name": name, "mimeType": "application/octet-stream", "buffer": data})
    # The upload reruns the script: a click before that rerun has the file can be lost (a flaky soak). The
    # button shows only in a run that has the file: once it does, wait for that run to end, not for a second of
    # quiet (a second a session, 30 s of the soak).
    use = page.get_by_role("button", name="Use this model")
    expect(use).to_be_visible(timeout=120_000)
    wait_until_settled(page, quiet_s=0.2)
    use.click()
    expect(page.get_by_text(f"Loaded {name}.")).to_be_visible(timeout=120_000)
    if not pick:
        return
    page.get_by_test_id("stRadio").filter(has_text="Model source").get_by_text("Uploaded model").click()
    expect(page.get_by_text(f"Uploaded: {name}")).to_be_visible(timeout=120_000)


def start_tiny_run_from_page(page, base_url: str, epochs: int, subset: int) -> int:
    """Start mnist14k on ``subset`` images at batch 16 from the Train page's form; return the steps an epoch."""
    page.goto(f"{base_url}/train")
    wait_until_settled(page)
    choose(page, "Model", "mnist14k — MNIST net, 14,840 params, GAP")
    page.get_by_label("Epochs (0 = recipe's)").fill(str(epochs))
    page.get_by_label("Batch size (0 = recipe's)").fill("16")
    page.get_by_label("Subset (0 = all images)").fill(str(subset))
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_text("Started run")).to_be_visible(timeout=30_000)
    return subset // 16


def gallery_shown(page) -> bool:
    """True once the Misclassified gallery's first row (image and both CAMs) is on screen."""
    return (page.get_by_text(GALLERY_CAPTION).count() > 0
            and page.locator("[data-testid='stImage'] img").count() >= 4)  # the colour legend, then a row


def open_galleries_at_once(browser, url: str, sessions: int, timeout_s: float = 300) -> tuple[list, list[float]]:
    """Open ``url`` (a Misclassified page) in ``sessions`` new contexts at once; return the pages and, for each,
    the seconds from its navigation to a rendered gallery. The server handles them concurrently."""
    pages, started = [], []
    for _ in range(sessions):
        page = still_context(browser, viewport={"width": 1400, "height": 1800}).new_page()
        started.append(time.perf_counter())
        page.goto(url, wait_until="commit")
        pages.append(page)
    seconds: list[float | None] = [None] * sessions
    deadline = time.perf_counter() + timeout_s
    while None in seconds:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"galleries never rendered: {seconds}")
        for i, page in enumerate(pages):
            if seconds[i] is None and gallery_shown(page):
                seconds[i] = time.perf_counter() - started[i]
        time.sleep(0.05)
    return pages, [s for s in seconds if s is not None]


def summary(seconds: list[float]) -> str:
    """``median 4.10 s, worst 6.20 s (6 sessions)``"""
    return f"median {statistics.median(seconds):.2f} s, worst {max(seconds):.2f} s ({len(seconds)} sessions)"


def png_bytes(value: int) -> bytes:
    """A small grey PNG, different for every value."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (value % 256,) * 3).save(buffer, format="PNG")
    return buffer.getvalue()
