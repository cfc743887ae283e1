"""How eipviz's processes import Keras (``eipviz.quiet``): in a fresh process, since imports are per process."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

START = """
import json, sys
if sys.argv[1] == "tensorflow first":  # imported before, without JAX: Keras under JAX still gets it
    sys.modules["jax"] = None
    import tensorflow
    del sys.modules["jax"]
from eipviz.quiet import import_keras_quietly
import_keras_quietly()
found = {"jax_after_keras": "jax" in sys.modules}
import keras
found["backend"] = keras.backend.backend()
found["keras_sum"] = float(keras.ops.sum(keras.ops.ones((2, 3))))
import jax.numpy as jnp
found["jax_sum"] = float(jnp.ones((2, 3)).sum())
print("RESULT" + json.dumps(found))
"""


@pytest.mark.parametrize("backend, before, jax_after_keras", [
    ("tensorflow", "nothing", False),  # not for TensorFlow Lite or Orbax; later, on demand
    # Keras' own import of JAX goes ahead, even after TensorFlow (and without it in every JAX worker of
    # test_training's JAX run)
    ("jax", "tensorflow first", True),
])
def test_tensorflow_starts_without_jax_and_jax_imports_whenever_something_else_asks(backend, before,
                                                                                     jax_after_keras):
    result = subprocess.run([sys.executable, "-c", START, before], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": backend})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    assert found == {"jax_after_keras": jax_after_keras, "backend": backend, "keras_sum": 6.0, "jax_sum": 6.0}
