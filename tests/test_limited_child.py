"""A limited child takes a crash, a hang or a huge allocation instead of the server, and is reused while it
serves well. The functions it runs are this module's (the child imports them by name)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eipviz import limited_child
from eipviz.errors import EipvizError
from eipviz.limited_child import ChildFailed, ChildUnavailable, SpoiledChild, call_limited


def note_pid(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def refuse(message: str) -> None:
    raise EipvizError(message)


def abort() -> None:
    os.abort()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def allocate(gigabytes: int) -> None:
    bytearray(gigabytes * 2**30)


def fail() -> None:
    {}["missing"]


def _pid(tmp_path) -> int:
    assert call_limited(note_pid, str(tmp_path / "pid")) is None
    return int((tmp_path / "pid").read_text())


def test_calls_that_return_share_one_child_other_than_this_process(tmp_path):
    first = _pid(tmp_path)
    assert first != os.getpid()
    assert _pid(tmp_path) == first


def spoil(message: str) -> None:
    raise SpoiledChild(message)


def test_a_refusal_comes_back_as_its_message_and_keeps_the_child(tmp_path):
    before = _pid(tmp_path)
    assert call_limited(refuse, "x.keras is refused") == "x.keras is refused"
    assert _pid(tmp_path) == before


def test_after_running_out_of_memory_the_next_call_gets_a_fresh_child(tmp_path):
    """TensorFlow left broken by a failed allocation segfaulted on the next load (a fuzzer's, 2026-11-28)."""
    before = _pid(tmp_path)
    assert call_limited(spoil, "x.keras runs out of memory") == "x.keras runs out of memory"
    assert _pid(tmp_path) != before


def test_an_abort_is_the_childs_not_ours_and_says_so(tmp_path):
    with pytest.raises(ChildFailed, match="ended by SIGABRT: aborted, as TensorFlow does when an allocation fails"):
        call_limited(abort)
    assert _pid(tmp_path) != os.getpid()


def test_an_allocation_beyond_the_memory_limit_is_refused_and_ends_the_child(tmp_path):
    before = _pid(tmp_path)
    assert call_limited(allocate, 2 * limited_child.MEMORY_BYTES // 2**30) == (
        f"needs more than {limited_child.MEMORY_BYTES // 2**30} GB of memory")
    assert _pid(tmp_path) != before


def test_a_bug_in_the_function_is_said_as_the_childs_not_the_inputs(tmp_path):
    with pytest.raises(ChildUnavailable, match=r"failed in its own code \(KeyError: 'missing'\)"):
        call_limited(fail)
    assert _pid(tmp_path) != os.getpid()


def test_a_child_that_cannot_start_is_said_so_not_blamed_on_the_input(tmp_path):
    """A child that exited before answering read "X is refused: … exited with status 1": the model blamed
    for the server's own trouble (a reviewer's, 2026-11-28)."""
    limited_child._CHILD._end()
    with pytest.raises(ChildUnavailable, match=r"could not start \(exited with status 1"):
        call_limited(note_pid, str(tmp_path / "pid"), environment={"PYTHONSAFEPATH": "1"})  # eipviz not found
    assert _pid(tmp_path) != os.getpid()  # the next call starts a sound one


def test_a_host_limit_is_kept_when_no_limit_of_our_own_is_asked(monkeypatch):
    """Asked for no hard CPU limit under a host's finite one, the child raised it: ValueError, every upload
    refused."""
    import resource

    set_to = []
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (100, 1000))
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: set_to.append(limits))
    limited_child.limit_within_host(resource.RLIMIT_CPU, 50, resource.RLIM_INFINITY)
    limited_child.limit_within_host(resource.RLIMIT_CPU, 5000, 5000)
    assert set_to == [(50, 1000), (1000, 1000)]


def test_waiting_works_on_descriptors_past_select_s_1023():
    """``select`` raised "filedescriptor out of range" once the server's descriptors passed 1,023."""
    read_end, write_end = os.pipe()
    high = os.dup2(read_end, 2000)
    try:
        with os.fdopen(high, "rb", closefd=False) as stream:
            assert not limited_child._readable(stream, 0.01)
            os.write(write_end, b"x\n")
            assert limited_child._readable(stream, 1)
    finally:
        for fd in (high, read_end, write_end):
            os.close(fd)


def test_a_call_past_its_time_is_killed_with_its_child(monkeypatch, tmp_path):
    monkeypatch.setattr(limited_child, "CALL_SECONDS", 1)
    before = _pid(tmp_path)
    with pytest.raises(ChildFailed, match="did not finish in 1 s"):
        call_limited(sleep, 30)
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)
    assert isinstance(ChildFailed("x"), EipvizError)  # pages and the CLI show it as any refusal


def test_the_child_leaves_when_its_parent_ends(tmp_path):
    script = (f"from tests.test_limited_child import _pid; from pathlib import Path; "
              f"print(_pid(Path({str(tmp_path)!r})))")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    child = int(parent.stdout.split()[-1])
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"the child {child} outlived its parent by 10 s")
