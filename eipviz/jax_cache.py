"""JAX's persistent compilation cache: a process loads the XLA programs an earlier one compiled.

Under JAX, Keras compiles a program for every eager op of a new shape (each weight initialiser,
precise BatchNorm's forward pass) and for each train and test step. A 2-epoch mnist14k run on this
project's 2-core CPU spent 28 of its 45 s compiling 196 programs; with the cache filled by an earlier
run of the same model and recipe it took 17 s. JAX keys each entry on the program, the devices, the
XLA flags and its own version, so a stale or foreign entry is never used.
"""

import functools
import os
import warnings
from pathlib import Path

CACHE_DIR_VARIABLE = "EIPVIZ_JAX_CACHE_DIR"
# Least recently used entries go beyond this (a small CPU run writes about 1.5 MB).
MAX_CACHE_BYTES = 1 << 30


def jax_cache_dir() -> Path | None:
    """``$EIPVIZ_JAX_CACHE_DIR``, else ``~/.cache/eipviz/jax`` (``$XDG_CACHE_HOME`` respected); None when set
    to ``off`` or to nothing."""
    chosen = os.environ.get(CACHE_DIR_VARIABLE)
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off") else Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "eipviz" / "jax"


@functools.cache  # JAX reads these settings at its first compile: later changes would not apply
def use_jax_compilation_cache() -> Path | None:
    """Turn the cache on for this process, before anything compiles; return its folder (None: off).

    A cache the user configured for JAX itself (``JAX_COMPILATION_CACHE_DIR``) is left as it is.
    """
    import jax

    own = jax.config.values["jax_compilation_cache_dir"]
    if own:
        return Path(own)
    folder = jax_cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # an unwritable home, say: the run goes on, compiling as before
        warnings.warn(f"JAX's compilation cache is off: cannot create {folder} ({error}). Set {CACHE_DIR_VARIABLE} "
                      "to a writable folder, or to off.", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # JAX's defaults keep only programs that took 1 s to compile: Keras' per-op ones take 0.1-0.3 s each.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)  # eviction locks with filelock
    return folder
