"""Use every visible GPU, on whichever backend Keras runs."""

import contextlib

import keras

from eipviz.quiet import native_stderr_silenced


def training_scope():
    """Return ``(context manager to build and fit in, description of the devices)``.

    TensorFlow: all GPUs through ``MirroredStrategy``. JAX: Keras'
    ``DataParallel`` distribution over several GPUs. Otherwise the CPU.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # the one TensorFlow call site: its own multi-GPU strategy

        with native_stderr_silenced():  # a GPU-less machine gets a scary-looking cuInit line
            gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            strategy = tf.distribute.MirroredStrategy()
            return strategy.scope(), f"tensorflow: {len(gpus)} GPU(s) via MirroredStrategy"
        return contextlib.nullcontext(), "tensorflow: CPU"
    if backend == "jax":
        gpus = keras.distribution.list_devices("gpu") if _jax_has_gpu() else []
        if len(gpus) > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=gpus))
            return contextlib.nullcontext(), f"jax: {len(gpus)} GPUs via DataParallel"
        if gpus:
            return contextlib.nullcontext(), f"jax: 1 GPU ({gpus[0]})"
        return contextlib.nullcontext(), "jax: CPU"
    return contextlib.nullcontext(), f"{backend}: default device"


def _jax_has_gpu() -> bool:
    import jax

    return any(device.platform == "gpu" for device in jax.devices())
