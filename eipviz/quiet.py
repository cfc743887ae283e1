"""How eipviz's processes import Keras: TensorFlow's native start-up chatter kept off the user's terminal,
and nothing imported that eipviz never uses."""

import functools
import importlib.abc
import os
import sys
from contextlib import contextmanager

from eipviz.jax_cache import use_jax_compilation_cache


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


class _NoJaxForTensorFlowLite(importlib.abc.MetaPathFinder):
    """Refuses ``import jax`` while TensorFlow is importing.

    ``import tensorflow`` imports JAX, when installed, for TensorFlow Lite's converter
    (``tensorflow.lite.python.util``), which eipviz never uses: 0.65 s of CPU at the start of every
    process that runs TensorFlow (the worker, the CLI, the app). Under the JAX backend Keras imports
    JAX itself, before TensorFlow if ever, and then this finder is never asked.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "jax" and "tensorflow" in sys.modules:
            raise ModuleNotFoundError("not imported for TensorFlow Lite (eipviz.quiet)", name=fullname)
        return None


@contextmanager
def tensorflow_lite_without_jax():
    """``_NoJaxForTensorFlowLite`` for the block; ``import jax`` works again after it."""
    finder = _NoJaxForTensorFlowLite()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@functools.cache  # once per process: the app's entry script runs on every rerun
def import_keras_quietly():
    """Import Keras as eipviz's processes run it: TensorFlow discovers its devices while fd 2 is silenced,
    without JAX; JAX keeps its compiled programs for the next process (``eipviz.jax_cache``)."""
    with native_stderr_silenced(), tensorflow_lite_without_jax():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
        elif keras.backend.backend() == "jax":
            use_jax_compilation_cache()
