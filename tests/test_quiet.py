"""How eipviz's processes import Keras (``eipviz.quiet``): in a fresh process, since imports are per process."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

TENSORFLOW_START = """
import json, sys
from eipviz.quiet import import_keras_quietly
import_keras_quietly()
found = {"jax_after_keras": "jax" in sys.modules}
import keras
found["backend"] = keras.backend.backend()
found["tensorflow_sum"] = float(keras.ops.sum(keras.ops.ones((2, 3))))
import jax.numpy as jnp  # refused only while TensorFlow imported
found["jax_sum"] = float(jnp.ones((2, 3)).sum())
print("RESULT" + json.dumps(found))
"""


def test_tensorflow_starts_without_importing_jax_and_jax_still_imports_afterwards():
    # A JAX-backend process imports JAX through Keras: the worker and CLI tests under JAX cover it.
    result = subprocess.run([sys.executable, "-c", TENSORFLOW_START], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.split("RESULT", 1)[1])
    assert found == {"jax_after_keras": False, "backend": "tensorflow", "tensorflow_sum": 6.0, "jax_sum": 6.0}
