"""Display helpers on tiny hand-made images: RGB conversion, upscaling, CAM overlays, gallery sheets, PNG bytes."""

import cv2
import numpy as np
import pytest

from eipviz.explain.overlay import as_rgb, gallery_sheet, overlay, png_bytes, upscale

# Jet's two ends in RGB: 0 is dark blue, 1 is dark red (OpenCV's table).
JET_LOW, JET_HIGH = [0, 0, 128], [128, 0, 0]
GREY = np.array([[10, 20], [30, 40]], np.uint8)


def test_as_rgb_repeats_a_grey_image_into_three_channels():
    rgb = as_rgb(GREY)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb.tolist() == [[[10] * 3, [20] * 3], [[30] * 3, [40] * 3]]


def test_as_rgb_repeats_a_one_channel_image_into_three_channels():
    assert as_rgb(GREY[..., None]).tolist() == as_rgb(GREY).tolist()


def test_as_rgb_leaves_an_rgb_image_as_it_is():
    image = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)
    assert as_rgb(image).tolist() == [[[1, 2, 3], [4, 5, 6]]]


def test_upscale_turns_each_pixel_into_a_block_without_blending():
    assert upscale(GREY, 4)[..., 0].tolist() == [[10, 10, 20, 20], [10, 10, 20, 20],
                                                 [30, 30, 40, 40], [30, 30, 40, 40]]


def test_upscale_defaults_to_a_128_pixel_rgb_square():
    big = upscale(np.zeros((32, 32, 3), np.uint8))
    assert big.shape == (128, 128, 3) and big.dtype == np.uint8


def test_overlay_with_alpha_zero_is_the_upscaled_image():
    image = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    cam = np.random.default_rng(1).random((2, 2))
    assert np.array_equal(overlay(image, cam, alpha=0.0, size=8), upscale(image, 8))


def test_overlay_with_alpha_one_is_the_colormap_in_rgb_order():
    image = np.full((2, 2, 3), 200, np.uint8)
    assert (overlay(image, np.zeros((2, 2)), alpha=1.0, size=4) == JET_LOW).all()
    assert (overlay(image, np.ones((2, 2)), alpha=1.0, size=4) == JET_HIGH).all()


def test_overlay_clips_the_cam_to_zero_one():
    image = np.zeros((2, 2, 3), np.uint8)
    assert (overlay(image, np.full((2, 2), 5.0), alpha=1.0, size=4) == JET_HIGH).all()
    assert (overlay(image, np.full((2, 2), -3.0), alpha=1.0, size=4) == JET_LOW).all()


def test_overlay_stretches_the_cam_over_the_whole_image():
    heat = overlay(np.zeros((2, 2, 3), np.uint8), np.array([[0.0, 1.0], [1.0, 0.0]]), alpha=1.0, size=4)
    assert heat[0, 0].tolist() == JET_LOW and heat[0, 3].tolist() == JET_HIGH
    assert heat[3, 0].tolist() == JET_HIGH and heat[3, 3].tolist() == JET_LOW


def test_overlay_blends_image_and_heat_by_alpha():
    blended = overlay(np.full((2, 2, 3), 100, np.uint8), np.zeros((2, 2)), alpha=0.5, size=4)
    assert (blended == [50, 50, 114]).all()  # 0.5 * (0, 0, 128) + 0.5 * (100, 100, 100)


def test_overlay_takes_a_grey_image_and_returns_an_rgb_square():
    result = overlay(GREY, np.zeros((2, 2)), size=6)
    assert result.shape == (6, 6, 3) and result.dtype == np.uint8


@pytest.mark.parametrize("colormap, low", [("jet", [0, 0, 128]), ("turbo", [48, 18, 59]),
                                           ("viridis", [68, 1, 84]), ("inferno", [0, 0, 4])])
def test_overlay_uses_the_named_colormap(colormap, low):
    heat = overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), alpha=1.0, colormap=colormap, size=2)
    assert heat[0, 0].tolist() == low


# -- gallery_sheet ---------------------------------------------------------------------------------------------------


def tile_of(value):
    return np.full((2, 2, 3), value, np.uint8)


def test_gallery_sheet_has_a_caption_strip_and_a_row_of_tiles_per_item():
    sheet = gallery_sheet([[tile_of(10), tile_of(20)], [tile_of(30)]], ["", ""], tile=32)
    assert sheet.shape == (2 * (18 + 32), 2 * 32, 3) and sheet.dtype == np.uint8


def test_gallery_sheet_puts_each_tile_below_its_caption_enlarged_to_the_tile_size():
    sheet = gallery_sheet([[tile_of(10), tile_of(20)], [tile_of(30)]], ["", ""], tile=32)
    assert (sheet[18:50, 0:32] == 10).all() and (sheet[18:50, 32:64] == 20).all()
    assert (sheet[68:100, 0:32] == 30).all()


def test_gallery_sheet_leaves_missing_tiles_and_empty_captions_white():
    sheet = gallery_sheet([[tile_of(10), tile_of(20)], [tile_of(30)]], ["", ""], tile=32)
    assert (sheet[68:100, 32:64] == 255).all()
    assert (sheet[0:18] == 255).all() and (sheet[50:68] == 255).all()


def test_gallery_sheet_writes_each_caption_in_its_own_strip():
    sheet = gallery_sheet([[tile_of(255)], [tile_of(255)]], ["", "cat -> dog 0.93"], tile=128)
    assert (sheet[0:18] == 255).all()
    assert (sheet[146:164] < 128).any()  # dark text in the second caption strip


# -- png_bytes -------------------------------------------------------------------------------------------------------


def test_png_bytes_round_trips_an_rgb_image_in_rgb_order():
    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [12, 34, 56]]], np.uint8)
    data = png_bytes(image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # OpenCV decodes to BGR
    assert np.array_equal(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), image)


def test_png_bytes_writes_a_grey_image_as_rgb():
    decoded = cv2.imdecode(np.frombuffer(png_bytes(GREY), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (2, 2, 3) and np.array_equal(decoded, as_rgb(GREY))
