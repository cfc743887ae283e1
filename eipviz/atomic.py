"""Files written so that a reader never sees half of one: a unique temporary file beside it, fsync, rename."""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np


def write_npz_atomically(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to ``path`` atomically: two writers at once or a kill mid-write never leave a
    broken file, and a write that fails (a full disk, a file size limit) leaves no temporary file behind."""
    temporary = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with temporary:
            np.savez_compressed(temporary, **arrays)
            temporary.flush()
            os.fsync(temporary.fileno())
        os.replace(temporary.name, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a failed clean-up must not hide why the write failed
            os.unlink(temporary.name)
        raise
