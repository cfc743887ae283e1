"""Keep TensorFlow's native start-up chatter off the user's terminal."""

import functools
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


@functools.cache  # once per process: the app's entry script runs on every rerun
def import_keras_quietly():
    """Import Keras as eipviz's processes run it: TensorFlow discovers its devices while fd 2 is silenced;
    JAX keeps its compiled programs for the next process (``eipviz.jax_cache``)."""
    with native_stderr_silenced():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
        elif keras.backend.backend() == "jax":
            use_jax_compilation_cache()
