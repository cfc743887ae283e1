"""ROAD: noisy linear imputation solves the neighbour-mean system, and a faithful map scores better."""

import numpy as np
import pytest

from eipviz.attribution.methods import make_cam
from eipviz.errors import EipvizError
from eipviz.explain.road import NEIGHBOUR_WEIGHTS, RoadScores, linear_imputation, noisy_linear_imputation, road
from tests.test_cams import quadrant_images, quadrant_model


def dense_neighbour_means(image, removed):
    """The imputation written out pixel by pixel: each removed pixel = weighted mean of its grid neighbours."""
    height, width, channels = image.shape
    unknowns = [(r, c) for r in range(height) for c in range(width) if removed[r, c]]
    index = {pixel: i for i, pixel in enumerate(unknowns)}
    a = np.zeros((len(unknowns), len(unknowns)))
    b = np.zeros((len(unknowns), channels))
    for i, (r, c) in enumerate(unknowns):
        for (dr, dc), weight in NEIGHBOUR_WEIGHTS.items():
            nr, nc = r + dr, c + dc
            if 0 <= nr < height and 0 <= nc < width:
                a[i, i] += weight
                if removed[nr, nc]:
                    a[i, index[(nr, nc)]] -= weight
                else:
                    b[i] += weight * image[nr, nc]
    filled = image.astype(np.float64).copy()
    for (r, c), value in zip(unknowns, np.linalg.solve(a, b)):
        filled[r, c] = value
    return filled


def tiny_image_and_mask():
    image = np.arange(5 * 4 * 2, dtype=np.float32).reshape(5, 4, 2) ** 1.5 / 10
    removed = np.zeros((5, 4), bool)
    removed[0, 0] = removed[1, 1] = removed[1, 2] = removed[2, 1] = removed[4, 3] = True  # a blob, a corner
    return image, removed


def test_linear_imputation_is_the_neighbour_mean_solution():
    image, removed = tiny_image_and_mask()
    filled = linear_imputation(image, removed)
    np.testing.assert_allclose(filled, dense_neighbour_means(image, removed), rtol=1e-5)
    np.testing.assert_array_equal(filled[~removed], image[~removed])  # kept pixels are untouched


def test_a_lone_removed_pixel_becomes_its_neighbours_weighted_mean():
    image = np.zeros((3, 3, 1), np.float32)
    image[0, 1] = 6.0  # an edge neighbour of the centre, weight 1/6 of 1
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    assert linear_imputation(image, removed)[1, 1, 0] == pytest.approx(1.0)


def test_the_noise_touches_only_removed_pixels_and_is_seeded():
    image, removed = tiny_image_and_mask()
    noisy = noisy_linear_imputation(image, removed, noise=0.5, rng=np.random.default_rng(3))
    again = noisy_linear_imputation(image, removed, noise=0.5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(noisy, again)
    np.testing.assert_array_equal(noisy[~removed], image[~removed])
    assert not np.allclose(noisy[removed], linear_imputation(image, removed)[removed])


def test_a_map_of_the_evidence_scores_better_than_its_inverse():
    cam = make_cam(quadrant_model(), "gradcam", "features")
    inputs = quadrant_images(6)
    maps, classes, _ = cam(inputs, 0)
    faithful, inverted = road(cam, inputs, maps, classes), road(cam, inputs, 1.0 - maps, classes)
    assert faithful.morf.shape == faithful.lerf.shape == (6, 9)
    assert faithful.combined > 0.05 > -0.05 > inverted.combined
    assert faithful.morf.mean() < inverted.morf.mean() and faithful.lerf.mean() > inverted.lerf.mean()


def test_percentiles_outside_0_to_100_are_refused():
    cam = make_cam(quadrant_model(), "gradcam", "features")
    inputs = quadrant_images(1)
    with pytest.raises(EipvizError, match="between 0 and 100"):
        road(cam, inputs, np.zeros(inputs.shape[:3], np.float32), np.zeros(1, int), percentiles=(50, 100))


# -- the combined score's scale ---------------------------------------------------------


def test_road_combined_is_half_the_lerf_morf_gap_averaged():
    scores = RoadScores((10, 20), morf=np.array([[-0.4, -0.2]]), lerf=np.array([[0.2, 0.0]]))
    assert scores.combined == pytest.approx(0.2) and scores.summary()["road_combined"] == 0.2
