"""How eipviz's processes import Keras: TensorFlow's native start-up chatter kept off the user's terminal,
and nothing imported that eipviz never uses."""

import functools
import importlib.abc
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from eipviz.errors import EipvizError
from eipviz.jax_cache import use_jax_compilation_cache

SUPPORTED_BACKENDS = ("tensorflow", "jax")
# What eipviz's models, data and in-step augmentation are written for, whatever a user's keras.json says:
# with "channels_first" there a new run failed on its first layer ("Computed output size would be zero").
KERAS_SETTINGS = {"image_data_format": "channels_last", "floatx": "float32"}
KERAS_ACCEPTS = {"floatx": ("float16", "float32", "float64"), "image_data_format": ("channels_last", "channels_first")}

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


def keras_config_file() -> Path:
    """The ``keras.json`` Keras reads at import, found as Keras finds it: in ``KERAS_HOME``, else ``~/.keras``
    (``/tmp/.keras`` when the home folder is not writable)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser() / "keras.json"
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras" / "keras.json"


def check_keras_settings() -> None:
    """Refuse, before anything starts, a backend eipviz does not run on (from ``KERAS_BACKEND`` or ``keras.json``)
    and a ``keras.json`` Keras would refuse at import: Keras' refusal was a traceback, and a run's worker died
    of it with no reason given ("died without finishing")."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen and chosen not in SUPPORTED_BACKENDS:  # empty: Keras' default, as unset
        raise EipvizError(f"KERAS_BACKEND={chosen!r}: eipviz runs on {' or '.join(SUPPORTED_BACKENDS)}; set one of "
                          f"them, or unset it for tensorflow.")
    path = keras_config_file()
    try:
        config = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):  # none, or no JSON: Keras ignores it too
        return
    except OSError as error:  # a folder, or not readable: Keras' import fails on it
        raise EipvizError(f"{path} cannot be read ({error.strerror or type(error).__name__}); Keras reads its "
                          f"settings there at import: fix or remove it.") from error
    if not isinstance(config, dict):
        raise EipvizError(f"{path} holds no JSON object, so Keras cannot read its settings: fix or remove it.")
    for key, accepted in KERAS_ACCEPTS.items():  # what Keras checks at import
        if key in config and config[key] not in accepted:
            raise EipvizError(f"{path} sets {key} {config[key]!r}; Keras takes {', '.join(map(repr, accepted))}: "
                              f"fix the file.")
    if "epsilon" in config and not isinstance(config["epsilon"], float):
        raise EipvizError(f"{path} sets epsilon {config['epsilon']!r}; Keras takes a float such as 1e-07: fix the "
                          f"file.")
    if not chosen and config.get("backend", SUPPORTED_BACKENDS[0]) not in SUPPORTED_BACKENDS:
        raise EipvizError(f"{path} sets the Keras backend {config['backend']!r}: eipviz runs on "
                          f"{' or '.join(SUPPORTED_BACKENDS)}; set KERAS_BACKEND to one of them (it takes precedence "
                          f"over the file), or change the file.")


@functools.cache  # once per process: the app's entry script runs on every rerun
def import_keras_quietly():
    """Import Keras as eipviz's processes run it: TensorFlow discovers its devices while fd 2 is silenced,
    without JAX; JAX keeps its compiled programs for the next process (``eipviz.jax_cache``)."""
    check_keras_settings()
    with native_stderr_silenced(), jax_only_when_needed():
        import keras

        keras.config.set_image_data_format(KERAS_SETTINGS["image_data_format"])
        keras.config.set_floatx(KERAS_SETTINGS["floatx"])

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
        elif keras.backend.backend() == "jax":
            use_jax_compilation_cache()
