"""Read an untrusted HDF5 file whole in a child process before the server reads it.

The HDF5 library is C, and h5py holds the GIL while it reads: a fuzzed Keras ``.h5`` (one 49-byte insertion)
made a single attribute read spin for over 15 minutes, which froze the whole Streamlit server, every session.
The child takes a hang (a time limit), a crash or a huge allocation (a memory limit) instead, and refuses
links and storage outside the file (HDF5 reads an external dataset's bytes from any path it names).
"""

import resource
import subprocess
import sys
from pathlib import Path

import h5py

from eipviz.errors import EipvizError
from eipviz.limited_child import limit_within_host

PROBE_SECONDS = 30  # a 300 MB model reads in about 1 s; the limit is for damaged files only
PROBE_MEMORY_BYTES = 4 * 2**30
REFUSED = 3  # the child's exit status for a file it read and refuses; the message is its last stderr line


def check_hdf5(path: Path, name: str, max_bytes: int) -> None:
    """Raise ``EipvizError`` unless every object of ``path`` reads within the limits, with no outside reference.

    ``name`` is the file name the user knows; ``max_bytes`` bounds the datasets' unpacked size.
    """
    command = [sys.executable, "-m", "eipviz.hdf5_probe", str(path), str(max_bytes)]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_SECONDS,
                               stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired as error:
        raise EipvizError(f"{name} is damaged: reading it did not finish in {PROBE_SECONDS} s.") from error
    if child.returncode == REFUSED:
        raise EipvizError(f"{name} {child.stderr.strip().splitlines()[-1]}")
    if child.returncode < 0:  # killed: a crash in the HDF5 library, or the memory or CPU limit
        raise EipvizError(f"{name} is damaged: the HDF5 reader failed on it (signal {-child.returncode}).")
    if child.returncode != 0:  # the probe itself failed (it cannot start here): no word on the file
        last = (child.stderr.strip().splitlines() or ["no message"])[-1]
        raise EipvizError(f"{name} could not be checked: the HDF5 probe failed ({last[:200]}).")


def read_everything(path: str, max_bytes: int) -> str | None:
    """Every attribute and dataset of ``path``, read and dropped: why to refuse it (after its name), or None."""
    reasons: list[str] = []
    unpacked = 0

    def read(name: str, link) -> None:
        nonlocal unpacked
        if isinstance(link, h5py.ExternalLink):
            reasons.append(f"is refused: it links to another file ({link.filename}).")
            return
        if isinstance(link, h5py.SoftLink):
            return  # another name for an object of this file, read under its own name
        item = file[name]
        for key in item.attrs:
            item.attrs[key]
        if isinstance(item, h5py.Dataset):
            if item.external or item.is_virtual:
                reasons.append(f"is refused: it reads {name} from outside the file.")
                return
            unpacked += item.size * item.dtype.itemsize
            if unpacked > max_bytes:
                reasons.append(f"unpacks to more than {max_bytes // 2**20} MB; that is no small CNN, so it is refused.")
                return
            item[()]

    with h5py.File(path, "r") as file:
        for key in file.attrs:
            file.attrs[key]
        file.visititems_links(lambda name, link: True if reasons else read(name, link))
    return reasons[0] if reasons else None


def _main(path: str, max_bytes: str) -> int:
    limit_within_host(resource.RLIMIT_AS, PROBE_MEMORY_BYTES, PROBE_MEMORY_BYTES)
    # The kernel ends a spinning child even when nobody waits for it any more (its server was killed).
    limit_within_host(resource.RLIMIT_CPU, PROBE_SECONDS + 5, PROBE_SECONDS + 10)
    try:
        reason = read_everything(path, int(max_bytes))
    except MemoryError:
        reason = f"needs more than {PROBE_MEMORY_BYTES // 2**30} GB of memory to read; it is refused."
    except Exception as error:  # h5py raises OSError, KeyError, ValueError, TypeError, ... for damaged files
        detail = str(error).splitlines()[0][:200] if str(error) else ""
        reason = f"is not a readable Keras model file ({type(error).__name__}{': ' + detail if detail else ''})."
    if reason is None:
        return 0
    print(reason, file=sys.stderr)
    return REFUSED


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:]))
