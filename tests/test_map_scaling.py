"""Every CAM is scaled to [0, 1] by its own minimum and maximum; a flat map becomes zeros, never nan."""

import warnings

import numpy as np

from eipviz.attribution.maps import scale_maps


def test_a_map_is_scaled_by_its_own_min_and_max():
    scaled = scale_maps(np.array([[[0.0, 2.0], [4.0, 8.0]]]))
    assert scaled.tolist() == [[[0.0, 0.25], [0.5, 1.0]]]


def test_negative_values_are_shifted_up_from_the_minimum():
    scaled = scale_maps(np.array([[[-1.0, 1.0], [3.0, 1.0]]]))
    assert scaled.tolist() == [[[0.0, 0.5], [1.0, 0.5]]]


def test_each_map_of_a_batch_is_scaled_on_its_own():
    """Scaling the batch as a whole would leave the faint second map at 0.1 and below."""
    scaled = scale_maps(np.array([[[0.0, 10.0], [5.0, 10.0]],
                                  [[0.0, 1.0], [0.5, 0.0]]]))
    assert scaled.tolist() == [[[0.0, 1.0], [0.5, 1.0]],
                               [[0.0, 1.0], [0.5, 0.0]]]


def test_a_flat_map_becomes_zeros_while_its_neighbours_still_scale():
    scaled = scale_maps(np.array([[[5.0, 5.0], [5.0, 5.0]],
                                  [[1.0, 3.0], [2.0, 1.0]]]))
    assert scaled.tolist() == [[[0.0, 0.0], [0.0, 0.0]],
                               [[0.0, 1.0], [0.5, 0.0]]]


def test_an_all_zero_map_becomes_zeros_without_a_division_warning():
    """What ReLU leaves of a CAM whose every weight is negative."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled = scale_maps(np.zeros((2, 3, 3)))
    assert not np.isnan(scaled).any() and (scaled == 0).all()


def test_a_map_whose_range_is_rounding_noise_counts_as_flat():
    scaled = scale_maps(np.array([[[0.0, 1e-9], [0.0, 0.0]]]))
    assert scaled.tolist() == [[[0.0, 0.0], [0.0, 0.0]]]


def test_the_result_is_float32_of_the_same_shape_for_any_input_type():
    maps = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # integers
    scaled = scale_maps(maps)
    assert scaled.dtype == np.float32 and scaled.shape == (2, 3, 4)
    assert scaled.min(axis=(1, 2)).tolist() == [0.0, 0.0] and scaled.max(axis=(1, 2)).tolist() == [1.0, 1.0]


def test_the_input_maps_are_left_untouched():
    maps = np.array([[[0.0, 2.0], [4.0, 8.0]]], np.float32)
    scale_maps(maps)
    assert maps.tolist() == [[[0.0, 2.0], [4.0, 8.0]]]


def test_a_map_holding_an_infinity_becomes_zeros():
    scaled = scale_maps(np.array([[[0.0, np.inf], [1.0, 2.0]], [[0.0, 1.0], [2.0, 4.0]]]))
    assert np.isfinite(scaled).all() and (scaled[0] == 0).all() and scaled[1].max() == 1.0
