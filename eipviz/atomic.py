"""Files written so that a reader never sees half of one: a unique temporary file beside it, fsync, rename."""

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` when the block ends: two writers at once or a kill mid-write never
    leave a broken file, and a write that fails (a full disk, a file size limit) leaves no temporary file. It gets
    ``path``'s permissions, or a new file's (the umask's), not a temporary file's 0600."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    # Made as open() makes a file, so the kernel applies the umask (tempfile's are 0600, and reading the umask
    # means setting it, process-wide, under the server's other threads).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))  # an existing file keeps its permissions
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a failed clean-up must not hide why the write failed
            os.unlink(temporary)
        raise


def write_npz_atomically(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to ``path`` atomically."""
    with atomic_file(path) as file:
        np.savez_compressed(file, **arrays)


def write_text_atomically(path: Path, text: str) -> None:
    """``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as file:
        file.write(text.encode())
