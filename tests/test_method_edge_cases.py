"""Every method on odd models and images: a well-defined map in [0, 1] (zeros where stated), never nan,
never a traceback.

The cases: constant images, a model whose logits ignore the features (all-zero gradients), a tapped layer
with one channel, a 1x1 feature map, a model with nan weights, and 28x28 grayscale input. Each method runs
plainly and with ``aug_smooth`` and ``eigen_smooth`` together.
"""

import functools

import keras
import numpy as np
import pytest
from keras import layers

from eipviz.attribution.methods import METHODS, make_cam

INPUT_GRADIENT = ("saliency", "smoothgrad", "integrated-gradients", "guided-backprop")
# Methods that multiply by the gradient of the logit (or by the logit's change): no gradient, no map.
NEEDS_THE_LOGIT = tuple(m for m in METHODS if m not in ("scorecam", "fasterscorecam", "eigencam", "random"))


@functools.cache
def conv_model(shape=(12, 12, 3), channels=4, kernel=3, head="random", nan_weights=False):
    """``Conv2D(features) -> Flatten -> Dense(5, softmax)``; ``kernel`` equal to the image size gives a 1x1 map."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    conv = layers.Conv2D(channels, kernel, padding="same" if kernel < shape[0] else "valid", activation="relu",
                         name="features")
    dense = layers.Dense(5, activation="softmax")
    model = keras.Model(inputs, dense(layers.Flatten()(conv(inputs))))
    if head == "zero":  # the logits are the bias whatever the image: every gradient is zero
        dense.set_weights([np.zeros_like(dense.get_weights()[0]), np.arange(5, dtype=np.float32)])
    if nan_weights:
        conv.set_weights([np.full_like(w, np.nan) for w in conv.get_weights()])
    return model


def run_method(method, model, x):
    """Maps of the plain call and of the aug_smooth + eigen_smooth call, each checked to be well-defined."""
    cam = make_cam(model, method, "features")
    results = []
    for options in ({}, {"aug_smooth": True, "eigen_smooth": True}):
        maps, classes, logits = cam(x, **options)
        assert maps.shape == x.shape[:3] and maps.dtype == np.float32, options
        assert np.isfinite(maps).all(), options
        assert maps.min() >= 0.0 and maps.max() <= 1.0, options
        assert classes.shape == (len(x),) and ((0 <= classes) & (classes < 5)).all(), options
        results.append(maps)
    return results


def noise(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (2, *shape)).astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_constant_images(method):
    x = np.stack([np.zeros((12, 12, 3)), np.full((12, 12, 3), 0.5)]).astype(np.float32)
    maps = run_method(method, conv_model(), x)
    if method == "integrated-gradients":  # the black image is the reference: nothing to attribute
        assert not maps[0][0].any()


@pytest.mark.parametrize("method", METHODS)
def test_all_zero_gradients_give_zero_maps_where_the_method_needs_them(method):
    maps = run_method(method, conv_model(head="zero"), noise((12, 12, 3)))
    if method in NEEDS_THE_LOGIT:
        assert not any(m.any() for m in maps)


@pytest.mark.parametrize("method", METHODS)
def test_a_layer_with_one_channel(method):
    run_method(method, conv_model(channels=1), noise((12, 12, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_a_1x1_feature_map_gives_zero_cams(method):
    """A 1x1 map has nothing to localise: the CAM methods give zeros (input-gradient methods still work)."""
    maps = run_method(method, conv_model(kernel=12), noise((12, 12, 3)))
    if method not in INPUT_GRADIENT:
        assert not any(m.any() for m in maps)


@pytest.mark.parametrize("method", METHODS)
def test_a_model_with_nan_weights_gives_zero_maps(method):
    maps = run_method(method, conv_model(nan_weights=True), noise((12, 12, 3)))
    assert not any(m.any() for m in maps)


@pytest.mark.parametrize("method", METHODS)
def test_28x28_grayscale(method):
    maps = run_method(method, conv_model(shape=(28, 28, 1), channels=6), noise((28, 28, 1)))
    assert maps[0].any()
