"""Model inputs from uint8 images: the three preprocessings the recipes train with, on hand-made pixels."""

import numpy as np
import pytest

import eipviz.preprocessing as preprocessing
from eipviz.errors import EipvizError
from eipviz.preprocessing import CIFAR10_MEAN, CIFAR10_STD, preprocess


def test_unit_scale_divides_by_255_into_float32():
    x = preprocess(np.array([[[[0, 51, 255]]]], np.uint8), "unit_scale")
    assert x.dtype == np.float32 and x.shape == (1, 1, 1, 3)
    assert x[0, 0, 0].tolist() == pytest.approx([0.0, 0.2, 1.0])


def test_grey_images_without_a_channel_axis_get_one():
    x = preprocess(np.array([[[0, 255], [102, 51]]], np.uint8), "unit_scale")
    assert x.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(x[0, :, :, 0], [[0.0, 1.0], [0.4, 0.2]], rtol=1e-6)


def test_the_cifar10_channel_statistics_are_the_documented_ones():
    """../shared/data/README.md: per-channel train mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616)."""
    assert CIFAR10_MEAN.tolist() == pytest.approx([0.4914, 0.4822, 0.4465])
    assert CIFAR10_STD.tolist() == pytest.approx([0.2470, 0.2435, 0.2616])


def test_channel_standardize_of_black_is_minus_mean_over_std():
    # -0.4914 / 0.2470, -0.4822 / 0.2435, -0.4465 / 0.2616
    x = preprocess(np.zeros((1, 1, 1, 3), np.uint8), "channel_standardize")
    assert x.dtype == np.float32 and x[0, 0, 0].tolist() == pytest.approx([-1.989474, -1.980287, -1.706804], rel=1e-5)


def test_channel_standardize_of_white_is_one_minus_mean_over_std():
    # 0.5086 / 0.2470, 0.5178 / 0.2435, 0.5535 / 0.2616
    x = preprocess(np.full((1, 1, 1, 3), 255, np.uint8), "channel_standardize")
    assert x[0, 0, 0].tolist() == pytest.approx([2.059109, 2.126489, 2.115826], rel=1e-5)


def test_channel_standardize_treats_each_channel_with_its_own_statistics():
    # (0.2 - mean) / std for a pixel of 51 in every channel: the three results differ.
    x = preprocess(np.full((2, 3, 3, 3), 51, np.uint8), "channel_standardize")
    assert x.shape == (2, 3, 3, 3)
    assert np.allclose(x, np.array([-1.179757, -1.158932, -0.942278], np.float32), rtol=1e-5)


def test_pixel_mean_subtracts_the_per_pixel_training_mean(monkeypatch):
    mean = np.array([[[0.25, 0.5, 0.0], [0.1, 0.2, 0.3]]], np.float32)  # (1, 2, 3): one row of two pixels
    monkeypatch.setattr(preprocessing, "cifar10_pixel_mean", lambda: mean)
    x = preprocess(np.array([[[[255, 255, 255], [51, 51, 51]]]], np.uint8), "pixel_mean")
    assert x.dtype == np.float32 and x.shape == (1, 1, 2, 3)
    np.testing.assert_allclose(x[0, 0], [[0.75, 0.5, 1.0], [0.1, 0.0, -0.1]], atol=1e-6)


def test_unit_scale_and_channel_standardize_never_load_the_training_set(monkeypatch):
    def load_training_mean():
        raise AssertionError("the CIFAR-10 training mean was loaded")

    monkeypatch.setattr(preprocessing, "cifar10_pixel_mean", load_training_mean)
    preprocess(np.zeros((1, 2, 2, 3), np.uint8), "unit_scale")
    preprocess(np.zeros((1, 2, 2, 3), np.uint8), "channel_standardize")


def test_the_input_images_are_left_untouched():
    images = np.full((1, 2, 2, 3), 200, np.uint8)
    preprocess(images, "channel_standardize")
    assert images.dtype == np.uint8 and (images == 200).all()


def test_an_unknown_preprocessing_is_refused_naming_it_and_the_choices():
    with pytest.raises(EipvizError) as error:
        preprocess(np.zeros((1, 2, 2, 3), np.uint8), "zscore")
    assert str(error.value) == ("Unknown preprocessing 'zscore'. "
                                "Choose one of: unit_scale, channel_standardize, pixel_mean.")


@pytest.mark.parametrize(("kind", "size", "refused"), [
    ("unit_scale", (28, 28, 1), False), ("unit_scale", (64, 64, 3), False),
    ("channel_standardize", (64, 64, 3), False), ("channel_standardize", (28, 28, 1), True),
    ("pixel_mean", (32, 32, 3), False), ("pixel_mean", (64, 64, 3), True), ("pixel_mean", (28, 28, 1), True),
])
def test_cifar10_statistics_are_refused_for_models_they_cannot_apply_to(kind, size, refused):
    """Before, a broadcasting ValueError deep in preprocessing (a traceback on the Upload page)."""
    if refused:
        with pytest.raises(EipvizError, match=f"Preprocessing {kind} .* needs a model taking .* Choose unit_scale"):
            preprocessing.check_fits(kind, size)
    else:
        preprocessing.check_fits(kind, size)


def test_the_pixel_mean_keeps_no_training_set_in_memory(data_dir):
    from eipviz import data

    preprocessing.cifar10_pixel_mean.cache_clear()
    data._load_cached.cache_clear()
    mean = preprocessing.cifar10_pixel_mean()
    assert mean.shape == (32, 32, 3) and mean.dtype == np.float32
    assert data._load_cached.cache_info().currsize == 0  # 180 MB of training images were kept for good
    np.testing.assert_allclose(mean.mean(axis=(0, 1)), preprocessing.CIFAR10_MEAN, atol=1e-3)
