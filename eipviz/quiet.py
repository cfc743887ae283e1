"""How eipviz's processes import Keras: TensorFlow's native start-up chatter kept off the user's terminal,
and nothing imported that eipviz never uses."""

import functools
import importlib.abc
import os
import sys
from contextlib import contextmanager

from eipviz.errors import EipvizError
from eipviz.jax_cache import use_jax_compilation_cache

SUPPORTED_BACKENDS = ("tensorflow", "jax")

# Modules that import JAX, when installed, for what eipviz never uses: TensorFlow Lite's converter, and Keras'
# patch of old JAX versions for its Orbax checkpoint callback.
JAX_FOR_UNUSED_FEATURES = ("tensorflow.lite.python.util", "keras.src.callbacks.orbax_checkpoint")


@contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the block.

    TensorFlow's C++ writes lines such as "All log messages before
    absl::InitializeLog()..." and a cuInit error on machines without a GPU
    straight to fd 2 at import and device discovery, before any log level
    applies. Python exceptions raised in the block still reach the user:
    they are printed after fd 2 is restored.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _NoJaxForUnusedFeatures(importlib.abc.MetaPathFinder):
    """Refuses ``import jax`` from the modules in ``JAX_FOR_UNUSED_FEATURES`` while they are being imported.

    Under the TensorFlow backend, ``import keras`` imports JAX (when installed) only through them: 0.65 s of
    CPU at the start of every process that runs TensorFlow (the worker, the CLI, the app). Any other
    ``import jax`` goes ahead: under the JAX backend Keras imports it first, from its backend module.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "jax" and any(_initializing(name) for name in JAX_FOR_UNUSED_FEATURES):
            raise ModuleNotFoundError("not imported for a feature eipviz does not use (eipviz.quiet)", name=fullname)
        return None


def _initializing(module_name: str) -> bool:
    """Whether the module's code is running now (CPython marks its spec ``_initializing`` meanwhile)."""
    module = sys.modules.get(module_name)
    return module is not None and bool(getattr(module.__spec__, "_initializing", False))


@contextmanager
def jax_only_when_needed():
    """``_NoJaxForUnusedFeatures`` for the block; ``import jax`` works anywhere after it."""
    finder = _NoJaxForUnusedFeatures()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def check_backend_setting() -> None:
    """Refuse a ``KERAS_BACKEND`` eipviz does not run on before anything starts: Keras' own refusal was a
    traceback, and a run's worker died of it with no reason given ("died without finishing")."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen and chosen not in SUPPORTED_BACKENDS:  # empty: Keras' default, as unset
        raise EipvizError(f"KERAS_BACKEND={chosen!r}: eipviz runs on {' or '.join(SUPPORTED_BACKENDS)}; set one of "
                          f"them, or unset it for tensorflow.")


@functools.cache  # once per process: the app's entry script runs on every rerun
def import_keras_quietly():
    """Import Keras as eipviz's processes run it: TensorFlow discovers its devices while fd 2 is silenced,
    without JAX; JAX keeps its compiled programs for the next process (``eipviz.jax_cache``)."""
    check_backend_setting()
    with native_stderr_silenced(), jax_only_when_needed():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
        elif keras.backend.backend() == "jax":
            use_jax_compilation_cache()
