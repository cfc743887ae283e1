"""An untrusted HDF5 file is read whole in a child first: a hang, a crash or an outside reference is refused
there, and the server's other threads run meanwhile."""

import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from eipviz import hdf5_probe
from eipviz.errors import EipvizError
from eipviz.hdf5_probe import check_hdf5

SPINNING = Path(__file__).parent / "data" / "models" / "spinning-heap.h5"
LIMIT = 600 * 2**20


def _file(path, build):
    with h5py.File(path, "w") as file:
        file.attrs["model_config"] = "{}"
        build(file)
    return path


def test_a_sound_file_passes(tmp_path):
    path = _file(tmp_path / "m.h5", lambda f: f.create_dataset("kernel", data=np.ones((3, 3, 3, 4), "f4")))
    check_hdf5(path, "m.h5", LIMIT)


def test_a_file_that_spins_the_hdf5_library_is_refused_while_other_threads_run(monkeypatch):
    monkeypatch.setattr(hdf5_probe, "PROBE_SECONDS", 4)
    ticks = []

    def tick():
        for _ in range(20):
            time.sleep(0.1)
            ticks.append(time.monotonic())

    ticker = threading.Thread(target=tick)
    ticker.start()
    with pytest.raises(EipvizError, match=r"spinning-heap.h5 is damaged: reading it did not finish in 4 s"):
        check_hdf5(SPINNING, SPINNING.name, LIMIT)
    ticker.join()
    assert len(ticks) == 20  # read in this process, the file held the GIL: no tick came until it was killed


@pytest.mark.parametrize("build, reason", [
    (lambda f: f.__setitem__("w", h5py.ExternalLink("/etc/other.h5", "/")),
     "m.h5 is refused: it links to another file (/etc/other.h5)."),
    (lambda f: f.create_dataset("kernel", shape=(4,), dtype="u1", external=[("/etc/hostname", 0, 4)]),
     "m.h5 is refused: it reads kernel from outside the file."),
    (lambda f: f.create_dataset("kernel", shape=(10**9,), dtype="f4", chunks=(10**6,), compression="gzip"),
     "m.h5 unpacks to more than 600 MB; that is no small CNN, so it is refused."),
])
def test_outside_references_and_bombs_are_refused_before_any_read(tmp_path, build, reason):
    path = _file(tmp_path / "m.h5", build)
    with pytest.raises(EipvizError) as error:
        check_hdf5(path, "m.h5", LIMIT)
    assert str(error.value) == reason


@pytest.mark.parametrize("script, message", [
    ("kill -SEGV $$", r"^m.h5 is damaged: the HDF5 reader failed on it \(signal 11\).$"),  # a crash in the library
    # The probe cannot run here (a limit it may not set, say): that is no word on the file.
    ("echo 'ValueError: not allowed to raise maximum limit' >&2; exit 1",
     r"^m.h5 could not be checked: the HDF5 probe failed \(ValueError: not allowed to raise maximum limit\).$"),
])
def test_a_reader_that_dies_or_cannot_run_is_a_message(tmp_path, monkeypatch, script, message):
    dying = tmp_path / "python"
    dying.write_text(f"#!/bin/sh\n{script}\n")
    dying.chmod(0o755)
    monkeypatch.setattr(hdf5_probe.sys, "executable", str(dying))
    with pytest.raises(EipvizError, match=message):
        check_hdf5(tmp_path / "m.h5", "m.h5", LIMIT)


def test_the_probe_runs_under_a_host_limit_lower_than_its_own(tmp_path):
    """``setrlimit`` may not raise a hard limit: under ``ulimit -v 3000000`` every upload was called damaged."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = _file(tmp_path / "m.h5", lambda f: f.create_dataset("kernel", data=np.ones(4, "f4")))
    code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30)); "
            f"from pathlib import Path; from eipviz.hdf5_probe import check_hdf5; "
            f"check_hdf5(Path({str(path)!r}), 'm.h5', {LIMIT}); print('passed')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "passed", result.stderr


def test_the_child_ends_itself_when_nobody_waits_for_it(tmp_path):
    """A server killed while its probe spins leaves the child behind: its CPU limit ends it (SIGXCPU, 35 s)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    child = subprocess.Popen([sys.executable, "-m", "eipviz.hdf5_probe", str(SPINNING), str(LIMIT)], cwd=ROOT)
    try:
        limits = Path(f"/proc/{child.pid}/limits")
        deadline = time.monotonic() + 30
        while "Max cpu time" not in limits.read_text() or " 35 " not in _line(limits, "Max cpu time"):
            assert time.monotonic() < deadline and child.poll() is None, "the child set no CPU limit"
            time.sleep(0.05)
        assert _line(limits, "Max address space").split()[3:5] == [str(4 * 2**30)] * 2
    finally:
        child.kill()
        child.wait()


def _line(path: Path, name: str) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith(name))
