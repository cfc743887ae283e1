"""TensorFlow and JAX give the same maps for every method: the same saved model and images, per-map
correlation >= 0.99 (maps that are all zeros on one side must be all zeros on the other).

The backend is fixed when Keras is imported, so the JAX maps come from one subprocess
(``tests/backend_maps.py``) and the TensorFlow maps from this process.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from tests.backend_maps import CASES, method_maps
from tests.conftest import ROOT

SIZE = 16


def residual_model():
    """Conv, BatchNorm (non-trivial moving statistics), a nested block model, a residual Add, a strided conv
    and a softmax head: every construct the graph replay handles."""
    keras.utils.set_random_seed(0)
    block_input = keras.Input((SIZE, SIZE, 8))
    y = layers.Conv2D(8, 3, padding="same", name="block_conv1")(block_input)
    y = layers.BatchNormalization(name="block_bn")(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(8, 3, padding="same", name="block_conv2")(y)
    block = keras.Model(block_input, y, name="block")

    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU()(x)
    # Keras' default name: a fresh process whose probe adds its own "add" operation once refused this model.
    x = layers.ReLU(name="merged")(layers.Add(name="add")([x, block(x)]))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="deep")(x)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for bn in (model.get_layer("stem_bn"), block.get_layer("block_bn")):
        gamma, beta, mean, variance = bn.get_weights()
        bn.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                        rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])
    return model


# One worker runs the whole module, so its module fixture is built once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("backends")


@pytest.fixture(scope="module")
def both_backends(tmp_path_factory):
    """({case: maps} under TensorFlow, the same under JAX)."""
    folder = tmp_path_factory.mktemp("backends")
    model_path, images_path, out_path = folder / "model.keras", folder / "images.npy", folder / "jax.npz"
    residual_model().save(model_path)
    images = np.random.default_rng(1).uniform(0, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    np.save(images_path, images)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-m", "tests.backend_maps", str(model_path), str(images_path),
                             str(out_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert keras.backend.backend() == "tensorflow"
    with np.load(out_path) as jax_maps:
        return method_maps(model_path, images), dict(jax_maps)


def test_the_backends_give_the_same_logits(both_backends):
    tensorflow, jax = both_backends
    np.testing.assert_allclose(jax["logits"], tensorflow["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [name for name, _, _, _ in CASES])
def test_the_backends_give_the_same_maps(case, both_backends):
    tensorflow, jax = both_backends
    assert tensorflow[case].shape == jax[case].shape == (3, SIZE, SIZE)
    for image, (a, b) in enumerate(zip(tensorflow[case], jax[case])):
        assert np.isfinite(a).all() and np.isfinite(b).all()
        if not a.any() or not b.any():
            assert not a.any() and not b.any(), f"image {image}: all zeros under one backend only"
            continue
        correlation = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert correlation >= 0.99, f"image {image}: correlation {correlation:.4f}"
