"""Fitting uint8 images to a model's input size and channels, the note that tells the user so, and large
uploads decoded straight down to a small array."""

import io

import numpy as np
import pytest
from PIL import Image

from eipviz.errors import EipvizError
from eipviz.images import PREVIEW_SIDE, fit_images, read_image, read_upload, resize_note

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


def test_note_names_the_files_own_size_when_the_image_was_shrunk_on_reading():
    shrunk = np.zeros((171, 256, 3), np.uint8)
    assert resize_note(shrunk, (32, 32, 3), original_size=(3000, 2000)) == "resized from 3000x2000 to 32x32"


# -- read_upload: large images decoded down, never kept whole -----------------------------------------------------


def _encoded(image: Image.Image, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_a_large_upload_is_decoded_down_to_a_small_array_that_remembers_its_size():
    """A 6300x6300 solid PNG of 131 KB peaked at 530 MB and kept a 119 MB array; the cost scales with pixels."""
    decoded = read_upload(_encoded(Image.new("RGB", (3000, 2000), (200, 30, 90))), "big.png", model_side=32)
    assert decoded.pixels.shape == (171, PREVIEW_SIDE, 3) and decoded.original_size == (3000, 2000)
    assert (decoded.pixels == (200, 30, 90)).all()


def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size_and_still_exif_rotated():
    image = np.zeros((1000, 2000, 3), np.uint8)
    image[:, :1000] = 255  # left half white: after a quarter turn clockwise, the top half
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = read_upload(_encoded(Image.fromarray(image), "JPEG", exif=exif.tobytes()), "turned.jpg", model_side=32)
    assert decoded.pixels.shape == (PREVIEW_SIDE, 128, 3) and decoded.original_size == (1000, 2000)
    assert decoded.pixels[:100].min() > 240 and decoded.pixels[-100:].max() < 15


def test_a_thin_strip_keeps_at_least_the_models_side_across():
    decoded = read_upload(_encoded(Image.new("L", (20000, 40), 9)), "strip.png", model_side=32)
    assert decoded.pixels.shape == (32, PREVIEW_SIDE, 3)


def test_shrinking_a_transparent_image_does_not_darken_its_edges():
    """Transparent pixels hide a colour (black here); averaged without premultiplying alpha, the edge turns grey."""
    pixels = np.zeros((1000, 1000, 4), np.uint8)
    pixels[:, :501] = (255, 0, 0, 255)  # opaque red, the rest transparent black: red, then white
    decoded = read_upload(_encoded(Image.fromarray(pixels)), "logo.png", model_side=32)
    assert (decoded.pixels[..., 0] == 255).all(), decoded.pixels[0, 125:131].tolist()


def test_a_small_upload_is_read_whole():
    data = _encoded(Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 150, 3), dtype=np.uint8)))
    decoded = read_upload(data, "small.png", model_side=32)
    assert np.array_equal(decoded.pixels, read_image(data)) and decoded.original_size == (150, 200)


# -- the grayscale note: only for a colour file given to a one-channel model -----------------------------------------


def test_an_upload_remembers_whether_its_file_was_grey():
    grey = read_upload(_encoded(Image.new("L", (28, 28), 90)), "digit.png", model_side=28)
    grey_with_alpha = read_upload(_encoded(Image.new("LA", (28, 28), (90, 255))), "digit-la.png", model_side=28)
    colour = read_upload(_encoded(Image.new("RGB", (28, 28), (90, 90, 90))), "grey-pixels.png", model_side=28)
    assert grey.pixels.shape == (28, 28, 3) and grey.grayscale and grey_with_alpha.grayscale
    assert not colour.grayscale  # an RGB file is converted, whatever its pixels


def test_a_palette_file_is_grey_only_when_every_palette_colour_is_grey():
    """PNG optimisers store grey scans as palettes; such a file was said to be "converted to grayscale"."""
    grey_palette = Image.new("L", (28, 28), 90).quantize(4)
    colour_palette = Image.new("RGB", (28, 28), (200, 30, 30)).quantize(4)
    assert grey_palette.mode == colour_palette.mode == "P"
    assert read_upload(_encoded(grey_palette), "grey-palette.png", model_side=28).grayscale
    assert not read_upload(_encoded(colour_palette), "red-palette.png", model_side=28).grayscale


def test_a_grey_file_given_to_a_one_channel_model_gets_no_grayscale_note():
    """A mode-L MNIST digit was said to be "converted to grayscale"."""
    decoded = read_upload(_encoded(Image.new("L", (28, 28), 90)), "digit.png", model_side=28)
    assert resize_note(decoded.pixels, (28, 28, 1), decoded.original_size, decoded.grayscale) is None
    assert resize_note(decoded.pixels, (32, 32, 1), decoded.original_size, decoded.grayscale) == (
        "resized from 28x28 to 32x32")


# -- 16-bit files ---------------------------------------------------------


def test_a_16_bit_grey_png_maps_each_level_to_its_8_bit_level():
    levels = np.arange(256, dtype=np.uint16).reshape(16, 16)
    buffer = io.BytesIO()
    Image.fromarray(levels * 257).save(buffer, format="PNG")
    pixels = read_upload(buffer.getvalue()).pixels
    assert (pixels[..., 0] == levels).all()


@pytest.mark.parametrize("channels, size", [(4, (2, 2, 3)), (2, (2, 2, 1)), (4, (2, 2, 1)), (2, (2, 2, 3))])
def test_an_alpha_channel_is_laid_on_white_not_taken_for_colour(channels, size):
    """RGBA into a colour model made 12 channels (a broadcasting error); grey+alpha into a grey model averaged
    the alpha into the grey (mnist14k's answers changed)."""
    colour = np.full((1, 2, 2, channels - 1), 40, np.uint8)
    alpha = np.array([[255, 0], [51, 255]], np.uint8)[None, :, :, None]  # opaque, clear, 20%, opaque
    fitted = fit_images(np.concatenate([colour, alpha], axis=-1), size)
    assert fitted.shape == (1, *size)
    assert fitted[0, :, :, 0].tolist() == [[40, 255], [212, 40]]  # 40 * 0.2 + 255 * 0.8 = 212
    assert (fitted == fitted[..., :1]).all()


def test_more_than_four_channels_is_a_message():
    with pytest.raises(EipvizError, match=r"1 to 4 channels, got shape \(1, 2, 2, 5\)"):
        fit_images(np.zeros((1, 2, 2, 5), np.uint8), (2, 2, 3))
