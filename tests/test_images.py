"""Fitting uint8 images to a model's input size and channels, and the note that tells the user so."""

import numpy as np

from eipviz.images import fit_images, resize_note

# A 4x4 grey image of four 2x2 blocks whose means are whole numbers: 6, 101, 4 and 215.
BLOCKS = np.array([[0, 4, 100, 100],
                   [8, 12, 100, 104],
                   [1, 3, 200, 210],
                   [5, 7, 220, 230]], np.uint8)


def test_images_already_the_right_size_and_channels_are_unchanged():
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    fitted = fit_images(images, (5, 5, 3))
    assert fitted.dtype == np.uint8 and np.array_equal(fitted, images)


def test_grey_images_without_a_channel_axis_get_one():
    images = np.arange(32, dtype=np.uint8).reshape(2, 4, 4)
    fitted = fit_images(images, (4, 4, 1))
    assert fitted.shape == (2, 4, 4, 1) and np.array_equal(fitted[..., 0], images)


def test_shrinking_averages_each_block_of_pixels():
    fitted = fit_images(BLOCKS[None], (2, 2, 1))
    assert fitted.dtype == np.uint8 and fitted[0, :, :, 0].tolist() == [[6, 101], [4, 215]]


def test_shrinking_by_four_averages_all_sixteen_pixels_not_just_the_centre():
    """Area averaging: a bright corner counts (160 / 16 = 10); bilinear or nearest sampling would miss it."""
    image = np.zeros((1, 4, 4), np.uint8)
    image[0, 0, 0] = 160
    assert fit_images(image, (1, 1, 1)).tolist() == [[[[10]]]]


def test_shrinking_keeps_the_channel_axis_of_one_channel_images():
    assert fit_images(BLOCKS[None, :, :, None], (2, 2, 1)).shape == (1, 2, 2, 1)


def test_enlarging_by_a_whole_factor_repeats_each_pixel():
    fitted = fit_images(np.array([[[10, 20], [30, 40]]], np.uint8), (4, 4, 1))
    assert fitted[0, :, :, 0].tolist() == [[10, 10, 20, 20], [10, 10, 20, 20], [30, 30, 40, 40], [30, 30, 40, 40]]


def test_size_is_height_then_width():
    images = np.zeros((1, 4, 8, 3), np.uint8)
    images[:, :, 4:] = 200  # right half bright
    fitted = fit_images(images, (2, 4, 3))
    assert fitted.shape == (1, 2, 4, 3)
    assert fitted[0, :, :, 0].tolist() == [[0, 0, 200, 200], [0, 0, 200, 200]]


def test_each_image_of_a_batch_is_resized_on_its_own():
    images = np.stack([np.full((6, 6, 3), 30, np.uint8), np.full((6, 6, 3), 90, np.uint8)])
    fitted = fit_images(images, (3, 3, 3))
    assert fitted.shape == (2, 3, 3, 3) and (fitted[0] == 30).all() and (fitted[1] == 90).all()


def test_grey_to_rgb_repeats_the_grey_value_in_every_channel():
    fitted = fit_images(np.array([[[10, 20], [30, 40]]], np.uint8), (2, 2, 3))
    assert fitted.shape == (1, 2, 2, 3)
    assert fitted[0].tolist() == [[[10] * 3, [20] * 3], [[30] * 3, [40] * 3]]


def test_rgb_to_grey_is_the_plain_channel_mean():
    images = np.array([[[[10, 20, 60], [0, 90, 255]], [[7, 7, 7], [255, 255, 255]]]], np.uint8)
    fitted = fit_images(images, (2, 2, 1))
    assert fitted.dtype == np.uint8 and fitted[0, :, :, 0].tolist() == [[30, 115], [7, 255]]


def test_mnist_sized_grey_batch_fits_a_cifar_model():
    images = np.full((3, 28, 28), 77, np.uint8)
    fitted = fit_images(images, (32, 32, 3))
    assert fitted.shape == (3, 32, 32, 3) and fitted.dtype == np.uint8 and (fitted == 77).all()


# -- resize_note -----------------------------------------------------------------------------------------------------


def test_no_note_when_the_image_already_fits_an_rgb_model():
    assert resize_note(np.zeros((32, 32, 3), np.uint8), (32, 32, 3)) is None


def test_note_gives_the_old_and_new_size_as_width_x_height():
    assert resize_note(np.zeros((48, 64, 3), np.uint8), (20, 40, 3)) == "resized from 64x48 to 40x20"


def test_note_says_grayscale_for_a_one_channel_model():
    assert resize_note(np.zeros((28, 28, 3), np.uint8), (28, 28, 1)) == "converted to grayscale"


def test_note_joins_resize_and_grayscale():
    assert resize_note(np.zeros((48, 64, 3), np.uint8), (28, 28, 1)) == (
        "resized from 64x48 to 28x28; converted to grayscale")
