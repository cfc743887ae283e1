"""Safe to leave running and to share: loopback only, a run queue, bounded memory, many sessions at once.

Real servers (``scripts/serve.py``, as ``make run`` starts it), real workers and Debian's Chromium.
Each test starts its own server (what one measures, the resident memory or the log, is its own), so
pytest-xdist may spread them over workers.
"""

import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from eipviz.data import CLASS_NAMES
from eipviz.training.store import RunStore
from tests.browser.test_in_chromium import choose
from tests.conftest import ROOT, shared_data_dir

sys.path.insert(0, str(ROOT / "scripts"))
from browser_sessions import (  # noqa: E402
    GALLERY_CAPTION,
    open_galleries_at_once,
    resident_mb,
    summary,
    tiny_model_bytes,
    upload_model,
)
from screenshots import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    free_port,
    start_streamlit,
    still_context,
    stop_streamlit,
    wait_until_all_settled,
    wait_until_settled,
)

ARTIFACTS = ROOT / "test-artifacts" / "browser"


def _env(runs, **extra):
    return {**os.environ, "EIPVIZ_RUNS_DIR": str(runs), "EIPVIZ_DATA_DIR": str(shared_data_dir()), **extra}


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "Chromium is missing: run `apt-get install -y chromium` (make test does as root)."
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def _stop(process):
    stop_streamlit(process, grace_s=0)  # at once: Streamlit can hang on SIGTERM with a tab open (README)


# -- loopback by default ---------------------------------------------------------------------------

def listening_addresses(port: int) -> set[str]:
    """Addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, raw))
    return found


def non_loopback_address() -> str | None:
    """This machine's address on its network (a UDP connect sends nothing), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_make_run_listens_on_loopback_only_and_refuses_other_addresses(tmp_path):
    port = free_port()
    server = start_streamlit(port, _env(tmp_path), address=None, preload=False)  # the project's setting decides
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
        outside = non_loopback_address()
        if outside:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outside, port), timeout=5).close()
    finally:
        _stop(server)


def test_the_documented_setting_exposes_it_on_purpose(tmp_path):
    port = free_port()
    server = start_streamlit(port, _env(tmp_path), address="0.0.0.0", launcher="streamlit")
    try:
        assert listening_addresses(port) & {"0.0.0.0", "::"}
    finally:
        _stop(server)


# -- the run queue, through the Train page -----------------------------------------------------------

def _worker_runs(runs_dir) -> dict[int, str]:
    """Live training workers of this run store: pid -> the run id it trains."""
    workers = {}
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "status").read_text()
        except (OSError, ValueError):
            continue
        if b"--run-id" in command and str(runs_dir).encode() in command and "\nState:\tZ" not in state:
            workers[int(proc.name)] = command[command.index(b"--run-id") + 1].decode()
    return workers


def _workers(runs_dir) -> list[int]:
    """Pids of live training workers of this run store."""
    return list(_worker_runs(runs_dir))


def _training(store, runs_dir) -> list[str]:
    """Runs whose worker process is alive and training (not one that has ended and is exiting)."""
    alive = set(_workers(runs_dir))
    return [run.id for run in store.list_runs() if run.status == "running" and run.pid in alive]


def _training_run_ids(runs_dir) -> set[str]:
    """Runs that have a live worker process: a worker forking (to wake the scheduler) shows its command line
    twice until the child execs, so workers are counted by run, not by process."""
    return set(_worker_runs(runs_dir).values())


class WorkerWatch(threading.Thread):
    """Counts runs with a live worker five times a second: the most seen at once."""

    def __init__(self, runs_dir):
        super().__init__(daemon=True)
        self.runs_dir, self.most, self.done = runs_dir, 0, False

    def run(self):
        while not self.done:
            self.most = max(self.most, len(_training_run_ids(self.runs_dir)))
            time.sleep(0.2)


def test_start_pressed_ten_times_trains_n_at_once_and_survives_killing_the_scheduler_and_streamlit(
        browser, tmp_path):
    slots = 2
    store = RunStore(tmp_path)
    watch = WorkerWatch(tmp_path)
    watch.start()
    port = free_port()
    server = start_streamlit(port, _env(tmp_path, EIPVIZ_MAX_RUNS=str(slots)), preload=False)  # Train page only
    try:
        page = still_context(browser, viewport={"width": 1400, "height": 1800}).new_page()
        page.goto(f"http://127.0.0.1:{port}/train")
        wait_until_settled(page)
        choose(page, "Model", "mnist14k — MNIST net, 14,840 params, GAP")
        page.get_by_label("Epochs (0 = recipe's)").fill("1")
        page.get_by_label("Batch size (0 = recipe's)").fill("32")
        page.get_by_label("Subset (0 = all images)").fill("64")
        page.keyboard.press("Tab")
        for pressed in range(1, 11):
            page.get_by_role("button", name="Start", exact=True).click()
            deadline = time.time() + 60
            while len(store.list_runs()) < pressed and time.time() < deadline:
                time.sleep(0.1)
        runs = store.list_runs()
        assert len(runs) == 10
        expect(page.get_by_text(re.compile(r"queued · position 1 of \d"))).to_be_visible(timeout=30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "queue_ten_starts.png"), full_page=True)
        page.context.close()

        # Mid-queue, with runs done, N training and the rest waiting: kill the scheduler, then Streamlit.
        # (Killed while no worker trains, it would be woken by the next submit, Train page or `runs`.)
        deadline = time.time() + 240
        while not (any(run.status == "finished" for run in store.list_runs())
                   and len(_training(store, tmp_path)) == slots) and time.time() < deadline:
            time.sleep(0.1)
        waiting = [run for run in store.list_runs() if run.status == "queued"]
        assert len(waiting) >= 3, [run.status for run in store.list_runs()]
        scheduler_pid = int((tmp_path / "scheduler.lock").read_text().split()[0])
        os.kill(scheduler_pid, signal.SIGKILL)
    finally:
        _stop(server)

    try:
        deadline = time.time() + 400  # no page is open: the workers wake the scheduler as they exit
        while any(run.active for run in store.list_runs()) and time.time() < deadline:
            time.sleep(0.5)
    finally:
        watch.done = True
        for pid in _workers(tmp_path):
            os.kill(pid, signal.SIGTERM)
    runs = store.list_runs()
    assert [run.status for run in runs] == ["finished"] * 10, [(run.status, run.error) for run in runs]
    assert watch.most == slots  # exactly N trained at once
    for run in runs:
        log = (store.run_dir(run.id) / "worker.log").read_text()
        assert len(re.findall(r"eipviz worker pid \d+: run \S+, ", log)) == 1, log  # trained once
        assert store.completed_epochs(run.id) == 1


# -- bounded memory: 30 model uploads in 30 sessions, one after another --------------------------------

def test_thirty_uploads_in_thirty_sessions_leave_the_servers_memory_bounded(browser, tmp_path):
    port = free_port()
    # Streamlit ends a session this long after its tab closes (default 120 s), dropping its uploaded model.
    # Shipped models not preloaded: their share of the memory is not what this measures (about 5 s of CPU).
    server = start_streamlit(port, _env(tmp_path), "--server.disconnectedSessionTTL", "2", preload=False)
    models = [tiny_model_bytes(seed) for seed in range(30)]
    resident = []
    # One browser profile, a new tab per session: each tab is its own Streamlit session (closing it ends
    # that session), while the browser's cache spares re-downloading the frontend 30 times.
    context = still_context(browser, viewport={"width": 1400, "height": 1400})
    try:
        for i, data in enumerate(models):
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/upload")
            upload_model(page, f"soak-{i}.keras", data, pick=False)  # loaded: the session holds it
            assert not page.locator("[data-testid='stException']").count()
            page.close()
            resident.append(resident_mb(server.pid))
    finally:
        context.close()
        _stop(server)
    growth = resident[-1] - resident[0]
    print(f"server RSS after the first session {resident[0]:.0f} MB, after the 30th {resident[-1]:.0f} MB "
          f"(growth {growth:+.0f} MB; peak {max(resident):.0f} MB)")
    assert growth < 300, resident


# -- many users at once ----------------------------------------------------------------------------

def test_six_concurrent_sessions_see_only_their_own_filters_and_uploads_and_share_one_evaluation(
        browser, tmp_path):
    log_path = tmp_path / "server.log"
    port = free_port()
    with open(log_path, "wb") as log:
        server = start_streamlit(port, _env(tmp_path / "runs"), log=log, preload=False)  # one model: loaded once
    names = CLASS_NAMES["cifar10"]
    try:
        pages, seconds = open_galleries_at_once(browser, f"http://127.0.0.1:{port}/misclassified", 6)
        print(f"6 concurrent Misclassified sessions to a rendered gallery: {summary(seconds)}")
        wait_until_all_settled(pages)
        for i, page in enumerate(pages):  # each session filters on its own true class, all at once
            page.get_by_test_id("stSelectbox").filter(has_text="True class").click()
            page.get_by_role("option", name=names[i], exact=True).click()
        wait_until_all_settled(pages)
        for i, page in enumerate(pages):
            captions = page.get_by_text(GALLERY_CAPTION)
            expect(captions.first).to_be_visible(timeout=120_000)
            assert all(f"true {names[i]}," in text for text in captions.all_inner_texts()), names[i]
        for page in pages:  # each session loads its own model on the Upload page
            page.get_by_test_id("stSidebarNav").get_by_text("Upload", exact=True).click()
        wait_until_all_settled(pages)
        for i, page in enumerate(pages):
            upload_model(page, f"user-{i}.keras", tiny_model_bytes(100 + i))
        wait_until_all_settled(pages)
        for i, page in enumerate(pages):
            text = page.get_by_test_id("stMain").inner_text()
            assert f"user-{i}.keras" in text
            assert not [j for j in range(6) if j != i and f"user-{j}.keras" in text], text
            assert not page.locator("[data-testid='stException']").count()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pages[0].screenshot(path=str(ARTIFACTS / "six_users_upload.png"), full_page=True)
        for page in pages:
            page.context.close()
    finally:
        _stop(server)
    evaluations = re.findall(r"Evaluated the test set of (\S+)", log_path.read_text())
    assert evaluations == ["zoo:sepconv59k"], evaluations  # computed once for the six sessions
