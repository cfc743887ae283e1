"""Files written so that a reader never sees half of one: a unique temporary file beside it, fsync, rename."""

import os
import tempfile
from pathlib import Path

import numpy as np


def write_npz_atomically(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to ``path`` atomically: two writers at once or a kill mid-write never leave a
    broken file."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)
