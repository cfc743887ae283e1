"""The run queue: slots, admission in order, cancel, claims that survive a killed scheduler, the memory guard."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from eipviz.cli import build_parser, needs_keras
from eipviz.errors import EipvizError
from eipviz.training import memory, queue
from eipviz.training.launcher import create_training_run, start_training
from eipviz.training.queue import RunQueue, admit_queued, run_slots, scheduler_env, slot_env, worker_env
from eipviz.training.store import RunStore
from tests.conftest import ROOT


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(queue, "ensure_scheduler", lambda store: None)  # admission is called by hand here
    return RunStore(tmp_path)


class Launches:
    """A stand-in for starting workers: records what would have started, on which slot."""

    def __init__(self):
        self.started: list[tuple[str, str]] = []

    def __call__(self, store, run_id, claim, slot, env):
        self.started.append((run_id, slot))
        store.start_claimed(run_id, claim, 4242)
        return 4242


def submitted(store, count):
    ids = []
    for i in range(count):
        run_id = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64, seed=i)
        RunQueue(store).submit(run_id)
        ids.append(run_id)
        time.sleep(0.002)  # distinct queue times
    return ids


def test_slots_are_one_per_visible_gpu_else_the_cpu(monkeypatch):
    monkeypatch.delenv("EIPVIZ_MAX_RUNS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert run_slots() == ["cpu"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert run_slots() == ["gpu:0", "gpu:1"]
    assert slot_env("gpu:1") == {"CUDA_VISIBLE_DEVICES": "1"} and slot_env("cpu") == {}


def gpu_runs(store, *devices):
    """Runs queued in order on a simulated 2-GPU machine, each asking for ``devices`` GPUs."""
    ids = []
    for i, wanted in enumerate(devices):
        ids.append(create_training_run(store, "mnist14k", "fast", epochs=1, subset=64, seed=i, devices=wanted))
        RunQueue(store).submit(ids[-1])
        time.sleep(0.002)
    return ids


def test_on_two_simulated_gpus_two_runs_get_distinct_devices_and_a_third_waits_queued(store, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    first, second, third = gpu_runs(store, 1, 1, 1)
    launches = Launches()
    assert admit_queued(store, launch=launches) == [first, second]
    assert [slot_env(slot) for _, slot in launches.started] == [{"CUDA_VISIBLE_DEVICES": "0"},
                                                                {"CUDA_VISIBLE_DEVICES": "1"}]
    assert RunQueue(store).status().position(third) == 1
    store.update_run(first, status="finished")  # its GPU frees; the queued run takes it
    assert admit_queued(store, launch=launches) == [third] and launches.started[-1] == (third, "gpu:0")


def test_a_run_on_all_gpus_waits_until_each_is_free_and_holds_them_all(store, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    single, both, after = gpu_runs(store, 1, "all", 1)
    launches = Launches()
    assert admit_queued(store, launch=launches) == [single]  # the "all" run waits; the one behind it too
    store.update_run(single, status="finished")
    assert admit_queued(store, launch=launches) == [both]
    assert launches.started[-1] == (both, "gpu:0,gpu:1") and slot_env("gpu:0,gpu:1") == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert admit_queued(store, launch=launches) == []
    store.update_run(both, status="finished")
    assert admit_queued(store, launch=launches) == [after]


def test_a_run_asking_for_more_gpus_than_the_machine_has_fails_saying_so(store, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    greedy, modest = gpu_runs(store, 4, 1)  # 4 splits the fast recipe's batch of 128 evenly
    assert admit_queued(store, launch=Launches()) == [modest]
    assert store.get_run(greedy).status == "failed"
    assert store.get_run(greedy).error == f"Run {greedy} asks for 4 GPUs but this machine has 2."


def test_several_host_devices_on_a_cpu_are_one_process_in_one_slot(store, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    (run_id,) = gpu_runs(store, 2)
    launches = Launches()
    assert admit_queued(store, launch=launches) == [run_id] and launches.started == [(run_id, "cpu")]


def test_a_scheduler_a_worker_starts_sees_every_gpu_again(monkeypatch):
    """A worker wakes the scheduler when it exits; started from the worker's environment it would see the
    worker's one GPU only."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    pinned = worker_env("gpu:1")
    assert pinned["CUDA_VISIBLE_DEVICES"] == "1"
    assert scheduler_env(pinned)["CUDA_VISIBLE_DEVICES"] == "0,1"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")  # the GPUs found in /dev: none named
    pinned = worker_env("gpu:0")
    assert pinned["CUDA_VISIBLE_DEVICES"] == "0" and "CUDA_VISIBLE_DEVICES" not in scheduler_env(pinned)
    assert scheduler_env({"PATH": "/bin"}) == {"PATH": "/bin"}  # a page or the CLI: its own, as it is


def test_without_cuda_visible_devices_each_gpu_node_is_a_cuda_ordinal_not_its_host_number(tmp_path, monkeypatch):
    """A container given the host's GPUs 2 and 5 has ``/dev/nvidia2`` and ``/dev/nvidia5``; CUDA there
    calls them 0 and 1, and a worker pinned to ``CUDA_VISIBLE_DEVICES=2`` would see no GPU."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("EIPVIZ_MAX_RUNS", raising=False)
    for node in ("nvidia2", "nvidia5", "nvidiactl", "nvidia-uvm", "nvidia-modeset"):
        (tmp_path / node).touch()
    monkeypatch.setattr(queue, "DEVICE_NODES", tmp_path)
    assert run_slots() == ["gpu:0", "gpu:1"]
    assert slot_env("gpu:1") == {"CUDA_VISIBLE_DEVICES": "1"}
    for node in ("nvidia2", "nvidia5"):
        (tmp_path / node).unlink()
    assert run_slots() == ["cpu"]


def test_max_runs_sets_how_many_train_at_once_and_is_validated(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("EIPVIZ_MAX_RUNS", "3")
    assert run_slots() == ["cpu", "cpu#2", "cpu#3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert run_slots() == ["gpu:0", "gpu:1", "gpu:0#2"]
    assert slot_env("gpu:0#2") == {"CUDA_VISIBLE_DEVICES": "0"}
    monkeypatch.setenv("EIPVIZ_MAX_RUNS", "zero")
    with pytest.raises(EipvizError, match="Received: EIPVIZ_MAX_RUNS='zero'"):
        run_slots()


def test_runs_beyond_the_slots_wait_and_start_in_order_as_slots_free(store):
    ids = submitted(store, 5)
    launches = Launches()
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == ids[:2]
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == []  # no slot is free
    status = RunQueue(store).status()
    assert status.queued == tuple(ids[2:]) and [status.position(i) for i in ids[2:]] == [1, 2, 3]
    store.update_run(ids[1], status="finished")
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == [ids[2]]
    assert launches.started == [(ids[0], "cpu"), (ids[1], "cpu#2"), (ids[2], "cpu#2")]


def test_a_run_being_created_is_admitted_only_once_submitted_with_its_environment(store, monkeypatch):
    # The Train page creates a run, then submits it: a scheduler admitting in between must not start it
    # without the submitter's data folder (found when Start was pressed ten times in quick succession).
    monkeypatch.setenv("EIPVIZ_DATA_DIR", "/data/here")
    run_id = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64)
    launches = Launches()
    assert admit_queued(store, ["cpu"], launch=launches) == []
    RunQueue(store).submit(run_id)
    assert admit_queued(store, ["cpu"], launch=launches) == [run_id]
    assert json.loads(store.get_run(run_id).env)["EIPVIZ_DATA_DIR"] == "/data/here"


def test_a_queued_run_is_cancelled_before_it_starts(store):
    first, second, third = submitted(store, 3)
    RunQueue(store).cancel(second)
    assert store.get_run(second).status == "cancelled"
    assert RunQueue(store).status().queued == (first, third)
    launches = Launches()
    admit_queued(store, ["cpu"], launch=launches)
    store.update_run(first, status="finished")
    admit_queued(store, ["cpu"], launch=launches)
    assert [run_id for run_id, _ in launches.started] == [first, third]


def test_a_worker_trains_only_with_the_claim_it_was_admitted_with(store):
    (run_id,) = submitted(store, 1)
    (admitted,) = store.claim_queued(["cpu"])
    assert not store.start_claimed(run_id, "not-the-token", 1)
    assert store.start_claimed(run_id, admitted.claim, 1)


def test_a_claim_whose_scheduler_died_before_the_worker_started_is_queued_again_and_starts_once(store):
    """The scheduler claimed the run and was killed before its worker registered: nothing is lost or doubled."""
    first, second = submitted(store, 2)
    (lost,) = store.claim_queued(["cpu"])  # ... and then the scheduler is killed
    assert store.requeue_lost_claims(grace_s=60) == []  # within the grace period its worker may still come
    store.update_run(first, claimed=time.time() - 120)
    assert store.requeue_lost_claims(grace_s=60) == [first]
    assert RunQueue(store).status().queued == (first, second)  # back at the front of the line
    launches = Launches()
    admit_queued(store, ["cpu"], launch=launches)
    assert launches.started == [(first, "cpu")]
    assert not store.start_claimed(first, lost.claim, 99)  # the late worker of the old claim does not train
    assert store.get_run(first).pid == 4242


def test_cancelling_an_admitted_run_before_its_worker_starts_keeps_the_worker_from_training(store):
    (run_id,) = submitted(store, 1)
    (admitted,) = store.claim_queued(["cpu"])
    RunQueue(store).cancel(run_id)
    assert store.get_run(run_id).status == "cancelled"
    assert not store.start_claimed(run_id, admitted.claim, 1)


def _exiting_worker(seconds: float) -> subprocess.Popen:
    """A process that looks like a worker tearing down (its command line names eipviz) for ``seconds``."""
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})", "eipviz worker"])


def test_resume_waits_until_the_stopped_worker_has_exited(store):
    (run_id,) = submitted(store, 1)
    exiting = _exiting_worker(1.5)
    store.update_run(run_id, status="cancelled", pid=exiting.pid, slot="cpu", ended=time.time())
    RunQueue(store).submit(run_id)  # returns once the process has gone: its slot and memory are free then
    assert exiting.poll() is not None
    assert store.get_run(run_id).status == "queued"


def test_a_finished_run_is_deleted_only_once_its_worker_has_exited(store):
    """Its row held the worker's slot: deleted while the worker tore down, a queued run started beside it."""
    first, waiting = submitted(store, 2)
    exiting = _exiting_worker(1.5)
    store.update_run(first, status="finished", pid=exiting.pid, slot="cpu", ended=time.time())
    assert store.claim_queued(["cpu"]) == []  # the exiting worker holds the only slot
    store.delete_run(first)  # returns once the process has gone
    assert exiting.poll() is not None
    assert [run.id for run in store.claim_queued(["cpu"])] == [waiting]


@pytest.mark.parametrize("status, act, then", [
    ("cancelled", lambda store, run_id: RunQueue(store).submit(run_id), "start it again"),  # a Resume
    ("finished", lambda store, run_id: store.delete_run(run_id), "delete it"),
])
def test_resume_or_delete_gives_up_with_a_message_when_the_worker_does_not_exit(store, monkeypatch, status, act,
                                                                                then):
    monkeypatch.setattr("eipviz.training.store.EXIT_WAIT_S", 0.5)
    (run_id,) = submitted(store, 1)
    stuck = _exiting_worker(30)
    try:
        store.update_run(run_id, status=status, pid=stuck.pid, slot="cpu", ended=time.time())
        with pytest.raises(EipvizError, match=rf"worker \(pid {stuck.pid}\) has not exited after 0 s; {then} once"):
            act(store, run_id)
        assert store.get_run(run_id).status == status
    finally:
        stuck.kill()
        stuck.wait()


def test_cancelling_a_run_whose_worker_died_says_it_failed(store):
    (run_id,) = submitted(store, 1)
    dead = _exiting_worker(0)
    dead.wait()
    store.update_run(run_id, status="running", pid=dead.pid, slot="cpu")
    with pytest.raises(EipvizError, match=rf"Run {run_id} is not training \(failed\); there is no worker to stop"):
        RunQueue(store).cancel(run_id)
    assert "died without finishing" in store.get_run(run_id).error


def test_a_stop_whose_signal_killed_the_worker_before_it_could_catch_it_cancels_the_run(store):
    """Python's default SIGTERM ends a worker still starting (before its handler): 5 of 16 Stops pressed then
    ended the run failed. A run queued again is not cancelled by that earlier Stop."""
    (run_id,) = submitted(store, 1)
    starting = _exiting_worker(60)  # no handler of its own yet
    store.update_run(run_id, status="running", pid=starting.pid, slot="cpu")
    RunQueue(store).cancel(run_id)
    starting.wait(timeout=30)
    assert store.reap_dead_workers() == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.error) == ("cancelled", None)
    RunQueue(store).submit(run_id)
    dead = _exiting_worker(0)
    dead.wait()
    store.update_run(run_id, status="running", pid=dead.pid)
    store.reap_dead_workers()
    assert store.get_run(run_id).status == "failed"


def test_what_a_killed_process_left_half_done_is_finished_or_undone(store):
    """A helper's SIGKILL stress test (2026-11-28): 17 of 60 killed deletes left a run's folder with no row, 25
    of 60 killed `train`s a run queued in no queue (delete refused, resume refused), 19 of 60 an empty folder."""
    from eipviz.training.store import DELETING_PREFIX, UNFINISHED_CREATE_S

    kept, deleted, unsubmitted = (create_training_run(store, "mnist14k", "fast", epochs=1, seed=i) for i in range(3))
    (store.run_dir(kept) / "metrics.csv").write_text("epoch\n")
    store.run_dir(kept).rename(store.root / f"{DELETING_PREFIX}{kept}")  # killed before the delete's commit
    store.update_run(deleted, status="cancelled")
    folder = store.run_dir(deleted)
    (folder / "best.keras").write_bytes(b"weights")
    store.delete_run(deleted)
    folder.mkdir()
    (folder / "best.keras").write_bytes(b"weights")
    folder.rename(store.root / f"{DELETING_PREFIX}{deleted}")  # killed after its commit, before the files went
    long_ago = time.time() - UNFINISHED_CREATE_S - 1
    store.update_run(unsubmitted, created=long_ago)  # its `train` killed before the submit
    empty, young, with_files = (store.root / name for name in ("20261128-000000-x-0001", "new", "mine"))
    for made in (empty, young, with_files):
        made.mkdir()
    (with_files / "notes.txt").write_text("a file of someone's")
    for made in (empty, with_files):
        os.utime(made, (long_ago, long_ago))
    store.reap_dead_workers()
    assert (store.run_dir(kept) / "metrics.csv").exists() and store.get_run(kept).status == "queued"
    assert not list(store.root.glob(f"{DELETING_PREFIX}*")) and not store.run_dir(deleted).exists()
    assert store.get_run(unsubmitted).status == "cancelled"
    assert not empty.exists() and young.exists() and (with_files / "notes.txt").exists()
    store.delete_run(unsubmitted)


def test_a_run_already_waiting_keeps_its_place_when_submitted_again(store):
    first, second = submitted(store, 2)
    RunQueue(store).submit(first)
    assert RunQueue(store).status().queued == (first, second)


def test_a_run_waits_with_the_backend_and_data_folder_of_whoever_submitted_it(store, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    (run_id,) = submitted(store, 1)
    seen = {}
    admit_queued(store, ["cpu"], launch=lambda store, run_id, claim, slot, env: seen.update(env))
    assert seen["KERAS_BACKEND"] == "jax"


def test_start_is_refused_creating_nothing_when_memory_is_short(store, monkeypatch):
    monkeypatch.setattr(memory, "available_memory_mb", lambda: 500.0)
    with pytest.raises(EipvizError, match=r"Not enough free memory to start mnist14k: it needs about 1\.\d GB "
                                          r"and 0\.5 GB is free"):
        start_training(store, "mnist14k", recipe="fast", epochs=1, subset=64)
    assert store.list_runs() == []


def test_start_with_a_bad_max_runs_is_refused_creating_nothing(store, monkeypatch):
    monkeypatch.setenv("EIPVIZ_MAX_RUNS", "zero")
    with pytest.raises(EipvizError, match="Received: EIPVIZ_MAX_RUNS='zero'"):
        start_training(store, "mnist14k", recipe="fast", epochs=1, subset=64)
    assert store.list_runs() == []  # no queued run that no scheduler would ever admit


def test_a_queued_run_waits_while_the_training_runs_hold_the_memory_it_needs(store, monkeypatch):
    first, second = submitted(store, 2)
    free = {"mb": 2000.0}  # room for one mnist14k (~1.4 GB)
    monkeypatch.setattr(queue, "available_memory_mb", lambda: free["mb"])
    launches = Launches()
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == [first]  # a slot is free, the memory is not
    free["mb"] = 600.0  # the first run's worker has taken its memory
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == []
    assert store.get_run(second).status == "queued" and RunQueue(store).status().position(second) == 1
    store.update_run(first, status="finished", ended=time.time())  # its worker has exited (pid 4242 is no process)
    free["mb"] = 2000.0
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == [second]


def test_a_run_admitted_in_an_earlier_poll_counts_for_the_memory_its_worker_has_not_taken_yet(store, monkeypatch):
    """Two slots, room for one run: the second must not start in the next poll, before the first worker
    has allocated (``MemAvailable`` does not show it yet), and starts once there is room for both."""
    first, second = submitted(store, 2)
    free, held = {"mb": 2000.0}, {"mb": 0.0}  # room for one mnist14k (~1.4 GB); what the first worker holds
    monkeypatch.setattr(queue, "available_memory_mb", lambda: free["mb"])
    monkeypatch.setattr(queue, "process_memory_mb", lambda pid: held["mb"] if pid == 4242 else 0.0)
    launches = Launches()
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == [first]
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == []  # its worker is still importing Keras
    free["mb"], held["mb"] = 700.0, 1300.0  # it has allocated most of its estimate
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == []
    free["mb"], held["mb"] = 3000.0, 1500.0  # other programs gave memory back; the first holds all it needs
    assert admit_queued(store, ["cpu", "cpu#2"], launch=launches) == [second]


def test_a_process_resident_memory_is_read_and_a_missing_one_holds_none():
    import os

    assert 10 < memory.process_memory_mb(os.getpid()) < 20_000
    assert memory.process_memory_mb(None) == 0.0 and memory.process_memory_mb(2**22 + 12345) == 0.0


def test_a_worker_that_cannot_be_started_fails_its_run_and_the_next_run_still_starts(store, monkeypatch):
    monkeypatch.setattr(queue, "available_memory_mb", lambda: None)
    first, second = submitted(store, 2)
    launches = Launches()

    def launch(store, run_id, claim, slot, env):
        if run_id == first:
            raise OSError(24, "Too many open files")
        return launches(store, run_id, claim, slot, env)

    assert admit_queued(store, ["cpu", "cpu#2"], launch=launch) == [second]
    refused = store.get_run(first)
    assert refused.status == "failed"
    assert refused.error == "Could not start the run's worker process: [Errno 24] Too many open files"
    assert store.get_run(second).status == "running"


def test_following_a_run_whose_scheduler_was_killed_starts_a_scheduler_again(store, monkeypatch):
    """``eipviz train`` follows its run; if the scheduler dies while the run waits, the follower, not only a
    page or ``eipviz runs``, starts another."""
    from eipviz.cli import runs as cli

    (run_id,) = submitted(store, 1)  # queued; the store fixture starts no scheduler
    woken = []

    def scheduler_started(store):  # stands in for a scheduler that starts the run, which then finishes
        woken.append(True)
        store.update_run(run_id, status="finished", ended=time.time())

    monkeypatch.setattr(queue, "ensure_scheduler", scheduler_started)
    polls = []
    monkeypatch.setattr(cli.time, "sleep", lambda s: polls.append(s) if len(polls) < 20 else pytest.fail("no wake"))
    assert cli._follow(store, run_id) == 0 and woken


def test_a_queued_run_that_would_not_fit_even_once_the_others_end_fails_saying_so(store, monkeypatch):
    first, second = submitted(store, 2)
    monkeypatch.setattr(queue, "available_memory_mb", lambda: 500.0)  # other programs took it after Start
    assert admit_queued(store, ["cpu"], launch=Launches()) == []
    for run_id in (first, second):  # both, the second while not yet its turn: it would block the line
        refused = store.get_run(run_id)
        assert refused.status == "failed" and "Not enough free memory to start run" in refused.error
        assert "0.5 GB is free" in refused.error


def test_a_delete_that_a_resume_overtook_refuses_and_keeps_the_run(store, monkeypatch):
    (run_id,) = submitted(store, 1)
    store.update_run(run_id, status="cancelled")
    looked = store.get_run(run_id)  # what Delete saw ...
    RunQueue(store).submit(run_id)  # ... before a Resume in another session queued it again
    monkeypatch.setattr(store, "get_run", lambda run_id: looked)
    with pytest.raises(EipvizError, match="stop it before deleting"):
        store.delete_run(run_id)
    monkeypatch.undo()
    assert store.get_run(run_id).status == "queued" and store.run_dir(run_id).is_dir()


def test_a_resume_that_another_resume_overtook_refuses_and_leaves_the_admitted_worker_alone(store, monkeypatch):
    """Two sessions resumed one stopped run at once: the second's enqueue cleared the first's pid and claim, and
    a second worker trained it beside the first in the only slot (a helper's replay, 2026-11-28)."""
    (run_id,) = submitted(store, 1)
    store.update_run(run_id, status="cancelled")
    looked = store.get_run(run_id)  # what the second Resume saw ...
    RunQueue(store).submit(run_id)  # ... before the first queued it and the scheduler admitted it
    launches = Launches()
    admit_queued(store, ["cpu"], launch=launches)
    monkeypatch.setattr(store, "get_run", lambda run_id: looked)
    with pytest.raises(EipvizError, match="already running"):
        RunQueue(store).submit(run_id)
    monkeypatch.undo()
    run = store.get_run(run_id)
    assert (run.status, run.pid, run.slot) == ("running", 4242, "cpu")
    assert admit_queued(store, ["cpu"], launch=launches) == [] and len(launches.started) == 1


def test_a_worker_that_recorded_its_end_since_the_look_is_not_reaped_as_failed(store, monkeypatch):
    (run_id,) = submitted(store, 1)
    store.update_run(run_id, status="running", pid=4242)  # no such process
    looked = store.list_runs()  # what the reaper saw ...
    store.update_run(run_id, status="finished", ended=time.time())  # ... before the worker recorded its end
    monkeypatch.setattr(store, "list_runs", lambda kinds=None, statuses=None: looked)
    assert store.reap_dead_workers() == []
    monkeypatch.undo()
    assert store.get_run(run_id).status == "finished"


def test_the_memory_estimate_grows_with_the_model_and_the_batch():
    from eipviz.training.launcher import memory_estimate_mb, planned_recipe

    small = memory_estimate_mb("mnist14k", planned_recipe("mnist14k", "fast"))
    large = memory_estimate_mb("resnet18", planned_recipe("resnet18", "fast"))
    assert 1300 < small < 1600 < large < 2700  # the measured peaks were 1.3-2.6 GB a process
    assert memory_estimate_mb("resnet18", planned_recipe("resnet18", "fast", batch_size=256)) > large


def _older_store(folder):
    with sqlite3.connect(folder / "runs.sqlite") as db:
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'trained', name TEXT NOT NULL,"
                   " model TEXT, recipe TEXT, hyperparameters TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL,"
                   " pid INTEGER, backend TEXT, device TEXT, created REAL NOT NULL, started REAL, ended REAL,"
                   " best_val_accuracy REAL, best_epoch INTEGER, error TEXT, source TEXT)")
        db.execute("INSERT INTO runs (id, name, status, created) VALUES ('old', 'old run', 'finished', 1.0)")
        db.execute("CREATE TABLE progress (run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
                   " epoch INTEGER, batch INTEGER, batches INTEGER, loss REAL, updated REAL)")


def test_an_older_run_store_gains_the_queue_and_progress_columns(tmp_path):
    _older_store(tmp_path)
    store = RunStore(tmp_path)
    run = store.get_run("old")
    assert run.status == "finished" and run.slot is None and run.queued is None
    store.set_progress("old", 1, 2, 10, 0.5, first_batch_ended=123.0)
    assert store.progress("old")["first_batch_ended"] == 123.0


def test_an_older_run_store_opened_by_several_processes_at_once_opens_in_each(tmp_path):
    """Each added the missing columns: the others failed with "duplicate column name" (19 of 20 tries)."""
    _older_store(tmp_path)
    code = (f"import time; from eipviz.training.store import RunStore;"
            f" time.sleep(max(0, {time.time() + 3} - time.time()));"  # a shared start, whenever each got here
            f" print(RunStore(r'{tmp_path}').get_run('old').status)")
    openers = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [opener.communicate(timeout=120)[0] for opener in openers]
    assert [output.strip() for output in outputs] == ["finished"] * 4, outputs


def test_renaming_a_run_deleted_meanwhile_says_so(store, monkeypatch):
    (run_id,) = submitted(store, 1)
    store.update_run(run_id, status="cancelled")
    looked = store.get_run(run_id)  # what Rename saw ...
    store.delete_run(run_id)  # ... before another session deleted the run
    monkeypatch.setattr(store, "get_run", lambda run_id: looked)
    with pytest.raises(EipvizError, match="deleted meanwhile"):
        store.rename_run(run_id, "new name")


def test_a_slot_frees_only_when_the_worker_process_has_exited(store):
    """A worker that recorded its end still holds its memory while TensorFlow tears down."""
    first, second = submitted(store, 2)
    store.claim_queued(["cpu"])
    lingering = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "eipviz-worker"])
    try:
        store.update_run(first, status="finished", ended=time.time(), pid=lingering.pid)
        assert store.claim_queued(["cpu"]) == []
    finally:
        lingering.kill()
        lingering.wait()
    assert [run.id for run in store.claim_queued(["cpu"])] == [second]


def test_the_cli_lists_queue_positions_and_cancels_a_queued_run(tmp_path):
    """``runs`` shows each waiting run's place; ``cancel`` takes one out before it starts."""
    import json

    from tests.conftest import run_cli

    store = RunStore(tmp_path)
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "eipviz-worker"])
    try:
        holder = store.create_run(name="training", model="mnist14k", status="running")
        store.update_run(holder, pid=busy.pid)  # the only slot is taken
        first, second = (create_training_run(store, "mnist14k", "fast", epochs=1, subset=64, seed=i) for i in (1, 2))
        for run_id in (first, second):
            store.enqueue(run_id, {})  # submitted (no scheduler started here: the slot is taken anyway)
        env = {"EIPVIZ_MAX_RUNS": "1", "EIPVIZ_RUNS_DIR": str(tmp_path)}
        listed = {row["id"]: row for row in json.loads(run_cli("runs", "--json", env=env).stdout)}
        assert (listed[first]["queue"], listed[second]["queue"], listed[holder]["queue"]) == (1, 2, None)
        assert "cancelled" in run_cli("cancel", first, env=env).stdout
        listed = {row["id"]: row for row in json.loads(run_cli("runs", "--json", env=env).stdout)}
        assert listed[first]["status"] == "cancelled" and listed[second]["queue"] == 1
        run_cli("cancel", second, env=env)
    finally:
        busy.kill()
        busy.wait()


def test_submitting_a_run_from_the_cli_imports_no_keras(tmp_path):
    # A real process (this one has Keras already); no scheduler is started, so the run stays queued.
    code = ("import sys; from eipviz.training import queue; queue.ensure_scheduler = lambda store: None; "
            "from eipviz.cli import main; "
            f"code = main(['train', '--model', 'mnist14k', '--epochs', '1', '--runs-dir', r'{tmp_path}', '--detach']); "
            "print('RESULT', code, 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split("RESULT")[1].split() == ["0", "False", "False"], result.stdout + result.stderr
    assert [run.status for run in RunStore(tmp_path).list_runs()] == ["queued"]
    # The worker itself still imports Keras first (quietly).
    assert needs_keras(build_parser().parse_args(["train", "--run-id", "r1", "--runs-dir", str(tmp_path)]))
    assert not needs_keras(build_parser().parse_args(["train", "--resume", "r1", "--runs-dir", str(tmp_path)]))


def test_a_relative_data_folder_reaches_the_worker_as_the_submitter_meant_it(tmp_path, monkeypatch):
    """The worker runs from the project root: ``EIPVIZ_DATA_DIR=shared/data`` given elsewhere named no folder."""
    from eipviz.training.queue import carried_env

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EIPVIZ_DATA_DIR", "shared/data")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert carried_env()["EIPVIZ_DATA_DIR"] == str(tmp_path / "shared" / "data")
    assert carried_env()["KERAS_BACKEND"] == "jax"


def test_a_runs_xla_flags_reach_its_worker_whichever_scheduler_starts_it(monkeypatch):
    """A JAX run on two host devices, admitted by a scheduler started without XLA_FLAGS, saw one device and
    failed, though its submitter had set them (a helper's walk under JAX, 2026-11-28)."""
    from eipviz.training.queue import carried_env, worker_env

    flags = "--xla_force_host_platform_device_count=2"
    monkeypatch.setenv("XLA_FLAGS", flags)
    submitted = carried_env()
    monkeypatch.delenv("XLA_FLAGS")  # the scheduler's own environment
    assert worker_env(None, submitted)["XLA_FLAGS"] == flags
    monkeypatch.setenv("XLA_FLAGS", "--scheduler-only")
    assert "XLA_FLAGS" not in worker_env(None, {"KERAS_BACKEND": "jax"})


# -- guards the mutation review of 2026-11-27 found untested ---------------------------------------------------------


def test_list_runs_is_newest_first(store):
    first = store.create_run(name="first", kind="imported", status="finished")
    time.sleep(0.01)
    second = store.create_run(name="second", kind="imported", status="finished")
    assert [r.id for r in store.list_runs()] == [second, first]


def test_cuda_visible_devices_minus_one_means_the_cpu(monkeypatch):
    monkeypatch.delenv("EIPVIZ_MAX_RUNS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert run_slots() == ["cpu"]


def test_two_slots_of_one_gpu_name_it_once():
    assert slot_env("gpu:0,gpu:0#2") == {"CUDA_VISIBLE_DEVICES": "0"}


def test_a_queued_run_whose_worker_has_started_is_not_submitted_again(store):
    run_id = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64)
    store.update_run(run_id, status="queued", pid=4242)
    with pytest.raises(EipvizError, match="already queued"):
        RunQueue(store).submit(run_id)


def test_following_a_run_whose_worker_died_says_why_it_failed(store, capsys):
    """Its log ends mid-epoch; the reason is the store's (the reaper's), and the follower printed none of it."""
    from eipviz.cli import runs as cli

    (run_id,) = submitted(store, 1)
    dead = _exiting_worker(0)
    dead.wait()
    store.update_run(run_id, status="running", pid=dead.pid, slot="cpu")
    assert cli._follow(store, run_id) == 1
    assert capsys.readouterr().err == (f"error: run {run_id} failed: The worker (pid {dead.pid}) died without "
                                       f"finishing (killed or out of memory).\n")


def test_a_run_that_ended_long_ago_is_deleted_at_once_whoever_holds_its_pid_now(store, monkeypatch):
    """Pids are reused: a week later another eipviz process may hold it, and Delete waited a minute, then refused."""
    monkeypatch.setattr("eipviz.training.store.EXIT_WAIT_S", 0.5)
    (run_id,) = submitted(store, 1)
    holder = _exiting_worker(30)
    try:
        store.update_run(run_id, status="finished", pid=holder.pid, slot="cpu", ended=time.time() - 7 * 86400)
        store.delete_run(run_id)
        assert run_id not in [run.id for run in store.list_runs()]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("error, reason", [
    ("RuntimeError: outer\nTraceback (most recent call last):\n  File \"w.py\", line 1\nValueError: inner",
     "RuntimeError: outer"),
    ("Traceback (most recent call last):\n  File \"w.py\", line 1\nValueError: stored before 2026-11-28",
     "ValueError: stored before 2026-11-28"),
    ("The worker (pid 7) died without finishing (killed or out of memory).\nEpoch 1/2", "The worker (pid 7) died "
     "without finishing (killed or out of memory)."),
    ("  \n", "no reason recorded"),
])
def test_a_failed_runs_reason_is_its_exception_in_one_line(error, reason):
    """A chained error's traceback slice began with its cause: the reason named the wrong error."""
    from eipviz.training.store import Run

    run = Run(id="r", kind="trained", name="r", model=None, recipe=None, hyperparameters={}, status="failed",
              created=0.0, started=None, ended=None, pid=None, backend=None, device=None, best_val_accuracy=None,
              best_epoch=None, error=error, source=None)
    assert run.reason == reason
