"""Files written so that a reader never sees half of one: a unique temporary file beside it, fsync, rename."""

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` when the block ends: two writers at once or a kill mid-write never
    leave a broken file, and a write that fails (a full disk, a file size limit) leaves no temporary file."""
    temporary = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with temporary:
            yield temporary
            temporary.flush()
            os.fsync(temporary.fileno())
        os.chmod(temporary.name, _mode_for(path))  # the temporary file is private (0600): the result must not be
        os.replace(temporary.name, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a failed clean-up must not hide why the write failed
            os.unlink(temporary.name)
        raise


def _mode_for(path: Path) -> int:
    """The permissions ``path`` has, or a new file's under this process's umask (``open`` gives 0666 & ~umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # read by setting it: there is no getter; set back at once
        os.umask(umask)
        return 0o666 & ~umask


def write_npz_atomically(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to ``path`` atomically."""
    with atomic_file(path) as file:
        np.savez_compressed(file, **arrays)


def write_text_atomically(path: Path, text: str) -> None:
    """``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as file:
        file.write(text.encode())
