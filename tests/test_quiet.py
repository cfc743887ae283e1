"""How eipviz's processes import Keras (``eipviz.quiet``): in a fresh process, since imports are per process."""

import json
import os
import re
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


SETTINGS = """
import keras
from eipviz.loading import _trial
from eipviz.weights import shipped_weights_path
_trial(str(shipped_weights_path("mnist14k")), "unit_scale", "mnist14k")  # as the upload trial's child does first
from eipviz.zoo import build_model
model = build_model("mnist14k")
print("RESULT", keras.config.image_data_format(), keras.config.floatx(), model.outputs[0].shape[-1],
      model.weights[0].dtype)
"""


def test_eipviz_processes_run_keras_channels_last_in_float32_whatever_keras_json_says(tmp_path):
    """A keras.json with "channels_first" (a Theano-era setting) made a new run fail on its first layer. The
    upload trial's child, which imports Keras on its own, runs as the server does too (a reviewer's catch)."""
    (tmp_path / "keras.json").write_text(json.dumps({"image_data_format": "channels_first", "floatx": "float16"}))
    result = subprocess.run([sys.executable, "-c", SETTINGS], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("RESULT", 1)[1].split() == ["channels_last", "float32", "10", "float32"]


@pytest.mark.parametrize("settings, message", [
    ({"backend": "torch"}, "keras.json sets the Keras backend 'torch': eipviz runs on tensorflow or jax"),
    ({"floatx": "bfloat16"}, "sets floatx 'bfloat16'; Keras takes 'float16', 'float32', 'float64'"),
    ({"image_data_format": "nhwc"}, "sets image_data_format 'nhwc'"),
    ({"epsilon": 1}, "sets epsilon 1; Keras takes a float"),
    ([1], "holds no JSON object"),
])
def test_a_keras_json_keras_would_refuse_or_eipviz_cannot_run_is_one_line_before_anything(tmp_path, monkeypatch,
                                                                                            settings, message):
    from eipviz.errors import EipvizError
    from eipviz.quiet import check_keras_settings

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    (tmp_path / "keras.json").write_text(json.dumps(settings))
    with pytest.raises(EipvizError, match=re.escape(message)):
        check_keras_settings()


def test_a_keras_json_that_cannot_be_read_is_one_line_not_keras_traceback(tmp_path, monkeypatch):
    """A folder in its place passed the check, then Keras' import raised IsADirectoryError (a reviewer's)."""
    from eipviz.errors import EipvizError
    from eipviz.quiet import check_keras_settings

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").mkdir()
    with pytest.raises(EipvizError, match=r"keras.json cannot be read \(Is a directory\); Keras reads its settings"):
        check_keras_settings()


def test_keras_backend_takes_precedence_over_keras_json_and_a_broken_file_is_ignored_as_keras_does(tmp_path,
                                                                                                    monkeypatch):
    from eipviz.quiet import check_keras_settings

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    check_keras_settings()
    monkeypatch.delenv("KERAS_BACKEND")
    (tmp_path / "keras.json").write_text("{not json")
    check_keras_settings()
