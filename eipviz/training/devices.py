"""Which devices a run trains on, on whichever backend Keras runs, and in which precision."""

import contextlib
from collections.abc import Iterator
from typing import Any

import keras

from eipviz.errors import EipvizError
from eipviz.jax_cache import use_jax_compilation_cache
from eipviz.quiet import native_stderr_silenced
from eipviz.recipes import check_devices

HOST_DEVICES_HINT = ("JAX sees more host devices with XLA_FLAGS=--xla_force_host_platform_device_count=N "
                     "set before it starts")


def training_scope(devices: int | str = 1) -> tuple[Any, str]:
    """Return ``(context manager to build and fit in, description of the devices)``.

    ``devices`` is how many devices one run trains on, or ``"all"``: GPUs when there are any, else
    host (CPU) devices. Several devices train one data-parallel run: TensorFlow through
    ``MirroredStrategy``, JAX through Keras' ``DataParallel`` distribution (set globally, so the
    context manager is a no-op there). Without a GPU, TensorFlow splits the CPU into ``devices``
    logical devices (which must happen before TensorFlow starts its runtime) and JAX uses the host
    devices it was started with (``XLA_FLAGS=--xla_force_host_platform_device_count=N``); ``"all"``
    there means the host devices that already exist. Both only serve to test the multi-device path:
    they make a CPU no faster. Asking for more devices than exist raises ``EipvizError``.
    """
    check_devices(devices)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_scope(devices)
    if backend == "jax":
        return _jax_scope(devices)
    if devices not in (1, "all"):
        raise EipvizError(f"Training on several devices needs TensorFlow or JAX, not {backend}.")
    return contextlib.nullcontext(), f"{backend}: default device"


def _count(devices: int | str, available: int, what: str, hint: str = "") -> int:
    wanted = available if devices == "all" else int(devices)
    if wanted > available:
        raise EipvizError(f"Asked for {wanted} devices but {available} {what} visible{hint}. "
                          "Ask for fewer (--devices N) or 'all'.")
    return wanted


def _tensorflow_scope(devices: int | str) -> tuple[Any, str]:
    import tensorflow as tf  # the one TensorFlow call site: its own multi-device strategy

    with native_stderr_silenced():  # a GPU-less machine gets a scary-looking cuInit line
        gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        count = _count(devices, len(gpus), "GPU(s) are")
        if count == 1:
            return contextlib.nullcontext(), "tensorflow: 1 GPU"
        names = [f"/gpu:{i}" for i in range(count)]
        return tf.distribute.MirroredStrategy(names).scope(), f"tensorflow: {count} GPUs via MirroredStrategy"
    count = 1 if devices == "all" else int(devices)
    if count == 1:
        return contextlib.nullcontext(), "tensorflow: CPU"
    (cpu,) = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:  # the runtime already started with one CPU device
        raise EipvizError(f"TensorFlow had already started with one CPU device; {count} host devices "
                          "must be asked for before anything runs on it.") from error
    names = [f"/cpu:{i}" for i in range(count)]
    return (tf.distribute.MirroredStrategy(names).scope(),
            f"tensorflow: {count} CPU devices via MirroredStrategy")


def _jax_scope(devices: int | str) -> tuple[Any, str]:
    import jax  # its own device list: Keras' list_devices hides the platform of each

    use_jax_compilation_cache()  # before the run compiles anything: a rerun of a model loads its programs
    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    pool = gpus or jax.devices("cpu")
    kind = "GPU" if gpus else "CPU"
    hint = "" if gpus else f" ({HOST_DEVICES_HINT})"
    count = _count(devices, len(pool), f"{kind} device(s) are", hint)
    keras.distribution.set_distribution(None)  # one run per process, but never an earlier run's devices
    if count > 1:
        chosen = [f"{kind.lower()}:{device.id}" for device in pool[:count]]
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen))
        return contextlib.nullcontext(), f"jax: {count} {kind} devices via DataParallel"
    if gpus:
        return contextlib.nullcontext(), f"jax: 1 GPU ({gpus[0]})"
    return contextlib.nullcontext(), "jax: CPU"


def replica_count() -> int:
    """How many devices share each batch, asked inside ``training_scope``'s context: the replicas of
    TensorFlow's strategy, or the devices of JAX's ``DataParallel``; 1 without either."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return int(tf.distribute.get_strategy().num_replicas_in_sync)
    distribution = keras.distribution.distribution() if backend == "jax" else None
    return int(distribution.device_mesh.devices.size) if distribution is not None else 1


@contextlib.contextmanager
def global_dtype_policy(policy: str) -> Iterator[None]:
    """Layers created (or loaded) inside take ``policy``; the previous global policy is back afterwards,
    also when building fails (a test that trains in its own process would otherwise inherit it)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def training_precision(mixed_precision: bool) -> str:
    """The Keras dtype policy a run trains with: ``"mixed_bfloat16"`` when asked and the GPU has
    bfloat16 units (compute capability 8.0 or newer: A100, H100, ...), else ``"float32"`` (a CPU)."""
    if not mixed_precision:
        return "float32"
    return "mixed_bfloat16" if _gpu_compute_capability() >= (8, 0) else "float32"


def _gpu_compute_capability() -> tuple[int, int]:
    """The first GPU's compute capability, (0, 0) without one."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with native_stderr_silenced():
            gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0)))
    elif backend == "jax":
        import jax

        for device in jax.devices():
            if device.platform == "gpu":
                major, _, minor = str(getattr(device, "compute_capability", "0.0")).partition(".")
                return int(major), int(minor or 0)
    return (0, 0)
