"""The run queue: at most one run per slot trains at once; the others wait, in order, as ``queued``.

Pages and the CLI ask three things of it, through ``RunQueue``: ``submit``,
``cancel`` and ``status``. Behind it a small scheduler process
(``python -m eipviz scheduler``, started on demand by ``submit``, one per run
store, holding ``scheduler.lock``) admits queued runs to free slots and starts
their workers, whether or not any page is open; it exits when nothing is
queued or training. It lives beside the workers, not in a Streamlit session,
so a Streamlit restart loses nothing. Admission is one SQLite transaction
that hands each run a claim token; the worker must present it to start, so a
scheduler killed at any moment neither loses a run (a claim that never got a
worker is queued again, see ``RunStore.requeue_lost_claims``) nor starts one
twice. Every worker wakes the scheduler again when it exits.

A slot is a device id: ``gpu:0``, ``gpu:1``… (one per visible GPU, the
worker pinned to it with ``CUDA_VISIBLE_DEVICES``), else ``cpu``.
``EIPVIZ_MAX_RUNS=N`` sets how many runs train at once (more than one per
device: ``cpu``, ``cpu#2``…). This module imports no Keras: the scheduler
starts in a fraction of a second.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from eipviz.access import require_write
from eipviz.data import DATA_DIR_VARIABLE
from eipviz.errors import EipvizError
from eipviz.training.memory import available_memory_mb, memory_shortfall, process_memory_mb
from eipviz.training.store import Run, RunStore, worker_alive

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_RUNS_VARIABLE = "EIPVIZ_MAX_RUNS"
SCHEDULER_LOCK = "scheduler.lock"
POLL_S = 1.0
# What a run takes from whoever submitted it, whichever process starts its worker: the backend it trains
# under, where the data is, TensorFlow's thread pools, JAX's host devices (a `--devices 2` run admitted by a
# scheduler started without XLA_FLAGS saw one device and failed).
CARRIED_ENV = ("KERAS_BACKEND", DATA_DIR_VARIABLE, "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
               "TF_CPP_MIN_LOG_LEVEL", "XLA_FLAGS")
# A worker sees only its slot's GPUs; the scheduler's own CUDA_VISIBLE_DEVICES (JSON: null when unset) rides
# along in this variable, so a scheduler the worker starts (``RunQueue.wake``) sees every GPU again.
SCHEDULER_GPUS_VARIABLE = "EIPVIZ_SCHEDULER_CUDA_VISIBLE_DEVICES"
DEVICE_NODES = Path("/dev")


def visible_gpus() -> list[str]:
    """GPU ids a worker may use: ``CUDA_VISIBLE_DEVICES`` when set, else one CUDA ordinal (0, 1…) per
    ``/dev/nvidiaN`` device node. Not N itself: a container given only GPU 2 has ``/dev/nvidia2``, which
    CUDA there calls 0."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [part.strip() for part in listed.split(",") if part.strip()]
        return [] if not ids or ids[0] == "-1" else ids
    return [str(ordinal) for ordinal in range(len(list(DEVICE_NODES.glob("nvidia[0-9]*"))))]


def run_slots() -> list[str]:
    """Device slots runs are admitted to: one per visible GPU, else ``["cpu"]``; ``EIPVIZ_MAX_RUNS`` sets how many."""
    devices = [f"gpu:{gpu}" for gpu in visible_gpus()] or ["cpu"]
    wanted = os.environ.get(MAX_RUNS_VARIABLE, "").strip()
    if not wanted:
        return devices
    try:
        count = int(wanted)
        if count < 1:
            raise ValueError
    except ValueError:
        raise EipvizError(f"{MAX_RUNS_VARIABLE} must be a whole number of runs, 1 or more. "
                          f"Received: {MAX_RUNS_VARIABLE}={wanted!r}.") from None
    return [devices[i % len(devices)] + (f"#{i // len(devices) + 1}" if i >= len(devices) else "")
            for i in range(count)]


def slot_env(slot: str | None) -> dict:
    """Environment pinning a worker to its slot's GPUs (nothing for a CPU slot).

    >>> slot_env("gpu:0,gpu:1")
    {'CUDA_VISIBLE_DEVICES': '0,1'}
    """
    devices = [part.split("#")[0] for part in (slot or "cpu").split(",")]
    gpus = [device.split(":")[1] for device in devices if device.startswith("gpu:")]
    return {"CUDA_VISIBLE_DEVICES": ",".join(dict.fromkeys(gpus))} if gpus else {}  # once each


def carried_env() -> dict[str, str]:
    """This process's ``CARRIED_ENV`` settings for a run's worker, a data folder made absolute: the worker runs
    from the project root, where a relative ``EIPVIZ_DATA_DIR`` named another folder (or none)."""
    carried = {key: os.environ[key] for key in CARRIED_ENV if key in os.environ}
    if carried.get(DATA_DIR_VARIABLE):
        carried[DATA_DIR_VARIABLE] = str(Path(carried[DATA_DIR_VARIABLE]).resolve())
    return carried


def worker_env(slot: str | None, carried: dict | None = None) -> dict:
    """A worker's environment: this process's, with the submitter's ``carried`` settings (``CARRIED_ENV``),
    pinned to its slot's GPUs, and the GPUs this process sees kept for ``scheduler_env``."""
    inherited = {key: value for key, value in os.environ.items() if carried is None or key not in CARRIED_ENV}
    return {**inherited, **(carried or {}), **slot_env(slot),
            SCHEDULER_GPUS_VARIABLE: json.dumps(os.environ.get("CUDA_VISIBLE_DEVICES")), "PYTHONUNBUFFERED": "1"}


def scheduler_env(environ: dict) -> dict:
    """The environment to start a scheduler with from ``environ``: in a worker, its own scheduler's GPUs."""
    env = dict(environ)
    saved = env.pop(SCHEDULER_GPUS_VARIABLE, None)
    if saved is not None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
        if (gpus := json.loads(saved)) is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
    return env


def slot_devices(slots: list[str]) -> set[str]:
    """The devices behind the slots: ``gpu:0#2`` is a second slot on ``gpu:0``."""
    return {slot.split("#")[0] for slot in slots}


def gpus_wanted(run: Run, slots: list[str]) -> int:
    """How many GPU slots a run holds: its recipe's ``devices`` (``"all"``: every GPU); 1 on a CPU.

    Several host devices on a CPU are one process in one slot. With ``EIPVIZ_MAX_RUNS`` above the GPU
    count a GPU has several slots (``gpu:0``, ``gpu:0#2``), and a 2-GPU run could draw two slots of one
    GPU: ``slot_env`` then names that GPU once, and the run trains on one.
    """
    gpus = {device for device in slot_devices(slots) if device.startswith("gpu:")}
    devices = run.hyperparameters.get("devices", 1)
    if not gpus:
        return 1
    return len(gpus) if devices == "all" else int(devices)


def _refusal(available_mb: float | None, slots: list[str], training_mb: float):
    """A ``claim_queued`` refusal: a run that can never start here, asking for more GPUs than there are or
    for more memory than would be free once the runs training now (``training_mb``, their estimates) end."""
    def refusal(run: Run) -> str | None:
        wanted, gpus = gpus_wanted(run, slots), len(slot_devices(slots))
        if wanted > gpus:
            return f"Run {run.id} asks for {wanted} GPUs but this machine has {gpus}."
        if available_mb is None:
            return None
        return memory_shortfall(f"run {run.id} ({run.model})", estimate_mb(run),
                                available_mb + training_mb)
    return refusal


def _wait_in_background(process: subprocess.Popen) -> None:
    # A finished child stays a zombie until its parent waits for it (Popen only reaps others at the next
    # Popen): a thread blocked in wait() reaps it the moment it exits, at no cost meanwhile.
    threading.Thread(target=process.wait, name=f"wait-{process.pid}", daemon=True).start()


def launch_worker(store: RunStore, run_id: str, claim: str | None = None, slot: str | None = None,
                  env: dict | None = None) -> int:
    """Start ``python -m eipviz train --run-id`` in its own session; return its pid.

    The worker resumes by itself when the run already has ``last.keras``. With a ``claim`` it trains
    only if the run still holds that claim when it starts.
    """
    command = [sys.executable, "-m", "eipviz", "train", "--run-id", run_id, "--runs-dir", str(store.root.resolve())]
    if claim:
        command += ["--claim", claim]
    with open(store.run_dir(run_id) / "worker.log", "ab") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: survives the app's and the scheduler's restarts
            env=worker_env(slot, env),
        )
    _wait_in_background(process)
    if claim:
        store.record_launch(run_id, claim, process.pid)
    else:
        store.update_run(run_id, pid=process.pid)
    return process.pid


def stop_run(store: RunStore, run_id: str) -> None:
    """Ask a worker to finish its batch, save ``last.keras`` and mark the run cancelled."""
    require_write("Stopping a run")
    run = store.get_run(run_id)
    if not run.active or not run.pid or not worker_alive(run.pid):
        raise EipvizError(f"Run {run_id} is not training ({run.status}); there is no worker to stop.")
    store.request_stop(run_id)
    os.kill(run.pid, signal.SIGTERM)


def estimate_mb(run: Run) -> float | None:
    """The memory a run was estimated to need when it was created (``launcher.memory_estimate_mb``)."""
    return run.hyperparameters.get("memory_estimate_mb")


def training_runs(store: RunStore) -> list[Run]:
    """The runs admitted and not yet ended."""
    return [run for run in store.list_runs(kinds=("trained",)) if run.status == "running"]


def memory_of(runs: list[Run]) -> float:
    """MB the runs are estimated to hold: for runs training now, what comes back when they end."""
    return sum(estimate_mb(run) or 0 for run in runs)


def memory_still_to_allocate(runs: list[Run]) -> float:
    """MB the training ``runs`` will take beyond what their workers hold yet: a worker admitted a moment
    ago (or still importing Keras) has not allocated its estimate, and ``MemAvailable`` does not show it."""
    return sum(max(0.0, (estimate_mb(run) or 0) - process_memory_mb(run.pid))
               for run in runs)


def _fits_now(available_mb: float | None, pending_mb: float = 0.0):
    """A ``claim_queued`` check: a run fits when its estimate is within what is free, less what the runs
    training now have still to allocate (``pending_mb``) and what this round admitted; otherwise it waits
    for a running one to end."""
    def fits(run: Run, admitted: list[Run]) -> bool:
        if available_mb is None:
            return True
        taken = pending_mb + memory_of(admitted)
        needed = estimate_mb(run)
        return needed is None or needed <= available_mb - taken
    return fits


def admit_queued(store: RunStore, slots: list[str] | None = None, launch=launch_worker) -> list[str]:
    """Admit queued runs to free slots and start their workers; return the ids of the runs started.

    A run whose memory is taken by runs training now waits, first in line, until one of them ends. One
    that would not fit even then ends ``failed``, saying so, and so does one asking for more GPUs than the
    machine has. A run on several GPUs holds a slot for each.
    """
    slots = run_slots() if slots is None else slots
    available, training = available_memory_mb(), training_runs(store)
    admitted = store.claim_queued(slots, _refusal(available, slots, memory_of(training)),
                                  lambda run: gpus_wanted(run, slots),
                                  _fits_now(available, memory_still_to_allocate(training)))
    started = []
    for run in admitted:
        try:
            launch(store, run.id, claim=run.claim, slot=run.slot, env=json.loads(run.env or "{}"))
        except OSError as error:  # no process could be made (too many, no memory): the next runs still start
            store.fail_claim(run.id, run.claim, f"Could not start the run's worker process: {error}")
            continue
        started.append(run.id)
    return started


def _lock(store: RunStore):
    """The store's scheduler lock file, held (exclusively, by this process) or None when another holds it."""
    handle = open(store.root / SCHEDULER_LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def scheduler_running(store: RunStore) -> bool:
    """True while a scheduler process serves this store (it holds the lock; the kernel drops it if killed)."""
    handle = _lock(store)
    if handle is None:
        return True
    handle.close()  # closing releases it
    return False


def ensure_scheduler(store: RunStore) -> None:
    """Start the store's scheduler process unless one is running (a second one would exit at once)."""
    if scheduler_running(store):
        return
    with open(store.root / "scheduler.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "eipviz", "scheduler", "--runs-dir", str(store.root.resolve())],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**scheduler_env(dict(os.environ)), "PYTHONUNBUFFERED": "1"})
    _wait_in_background(process)


def run_scheduler(store: RunStore, poll_s: float = POLL_S, idle_polls: int = 2) -> None:
    """The scheduler loop: admit queued runs whenever a slot is free; return when nothing is queued or training.

    Returns at once when another scheduler holds this store's lock.
    """
    handle = _lock(store)
    if handle is None:
        return
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")  # who holds it, for people (and tests) looking
    handle.flush()
    print(f"eipviz scheduler pid {os.getpid()}: slots {', '.join(run_slots())}", flush=True)
    idle = 0
    while True:
        store.reap_dead_workers()  # a dead worker frees its slot; an abandoned claim is queued again
        for run_id in admit_queued(store):
            print(f"admitted {run_id}", flush=True)
        busy = any(run.active for run in store.list_runs(kinds=("trained",)))
        idle = 0 if busy else idle + 1
        if idle >= idle_polls:
            handle.close()  # release, then look once more: a run submitted meanwhile saw the lock held
            if not store.queued_runs() or (handle := _lock(store)) is None:
                print("queue empty; exiting", flush=True)
                return
            idle = 0
        time.sleep(poll_s)


@dataclass(frozen=True)
class QueueStatus:
    """What the queue holds: its slots, the runs in them and the runs waiting, first in line first."""

    slots: tuple[str, ...]
    running: tuple[str, ...]
    queued: tuple[str, ...]

    def position(self, run_id: str) -> int | None:
        """1 for the next run to start; None for a run that is not waiting."""
        return self.queued.index(run_id) + 1 if run_id in self.queued else None


class RunQueue:
    """Submit, cancel and inspect runs; the scheduler behind it decides when each starts.

    A cluster engine could stand behind these three methods without the pages noticing.

        >>> queue = RunQueue(RunStore("runs"))
        >>> queue.submit(run_id)          # queued; starts when a slot is free
        >>> queue.status().position(run_id)
        >>> queue.cancel(run_id)          # before it starts, or stops it if it has
    """

    def __init__(self, store: RunStore):
        self.store = store

    def submit(self, run_id: str) -> None:
        """Queue a run (new, cancelled or failed) and make sure the scheduler will start it.

        Its worker gets this process's backend and data settings (``CARRIED_ENV``).
        """
        require_write("Starting a run")
        run_slots()  # a bad EIPVIZ_MAX_RUNS is an error here, not a scheduler that never starts
        run = self.store.get_run(run_id)
        if run.kind != "trained" or run.model is None:
            raise EipvizError(f"Run {run_id} is {run.kind_phrase}; only trained runs start.")
        if run.status == "running" or (run.status == "queued" and run.pid):  # a worker has it already
            raise EipvizError(f"Run {run_id} is already {run.status}.")
        # Its stopped worker must have exited first: a run queued again meanwhile would no longer hold its
        # slot and memory, so another run could be admitted onto a GPU that is still full.
        self.store.wait_for_exit(run, "start it again")
        self._check_memory(run)
        self.store.enqueue(run_id, carried_env())
        self.store.clear_progress(run_id)  # the batch it stopped at is no progress of the new worker
        ensure_scheduler(self.store)

    def _check_memory(self, run: Run) -> None:
        """Refuse a run that could not fit even once the running ones give their memory back."""
        available = available_memory_mb()
        if available is None:
            return
        reason = memory_shortfall(f"{run.model}", estimate_mb(run),
                                  available + memory_of(training_runs(self.store)))
        if reason:
            raise EipvizError(reason)

    def cancel(self, run_id: str) -> None:
        """Cancel a queued run before it starts; a training one is stopped after its batch."""
        require_write("Cancelling a run")
        self.store.reap_dead_workers()  # a run whose worker died is failed, not one with "no worker to stop"
        if not self.store.cancel_queued(run_id):
            stop_run(self.store, run_id)

    def status(self) -> QueueStatus:
        """The slots, the runs training and the runs waiting (read-only)."""
        runs = self.store.list_runs(kinds=("trained",))
        return QueueStatus(tuple(run_slots()), tuple(run.id for run in runs if run.status == "running"),
                           tuple(run.id for run in self.store.queued_runs()))

    def wake(self) -> None:
        """Start the scheduler if runs wait and none is running (after it was killed, say)."""
        if self.store.queued_runs():
            ensure_scheduler(self.store)
