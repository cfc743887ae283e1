"""Sanity checks (Adebayo et al. 2018): a method that ignores the model fails, Grad-CAM passes."""

import cv2
import numpy as np
import pytest

from eipviz.attribution.cams import BaseCAM, GradCAM
from eipviz.attribution.methods import make_cam
from eipviz.errors import EipvizError
from eipviz.evaluation import sample_test_images
from eipviz.explain.sanity import (
    IGNORES_WEIGHTS,
    MAPS_KEPT,
    MethodSanity,
    freshly_initialised_copy,
    randomisation_depths,
    sanity_check,
    spearman,
    ssim,
    weighted_layers,
)
from eipviz.loading import load_zoo_model
from tests.test_classifier import classifier_of, tiny_model


class EdgeCAM(BaseCAM):
    """An edge detector posing as an explanation: the Sobel magnitude of the image, whatever the model."""

    name = "edges"
    needs_gradients = False

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        gray = inputs.mean(axis=-1)
        return np.stack([np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)) for g in gray])


def test_ssim_is_one_for_the_same_map_and_low_for_unrelated_ones():
    rng = np.random.default_rng(0)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) < 0.2
    assert ssim(a, 0.5 * a + 0.5 * b) < ssim(a, 0.9 * a + 0.1 * b) < 1.0


def test_spearman_reads_ranks_only_and_handles_flat_maps():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 8, 8))
    np.testing.assert_allclose(spearman(maps, maps ** 3), 1.0)  # a monotone change keeps the ranking
    np.testing.assert_allclose(spearman(maps, -maps), -1.0)
    flat = np.zeros((2, 8, 8))
    np.testing.assert_array_equal(spearman(flat, flat), 1.0)
    np.testing.assert_array_equal(spearman(maps, flat), 0.0)


def test_depths_are_evenly_spaced_and_end_with_every_layer():
    assert randomisation_depths(41, 8) == [1, 7, 12, 18, 24, 30, 35, 41]
    assert randomisation_depths(3, 8) == [1, 2, 3]
    assert randomisation_depths(41, 1) == [41]  # one depth: every layer random (it was the top one alone)
    with pytest.raises(EipvizError, match="at least one"):
        randomisation_depths(41, 0)


def test_a_fresh_copy_has_new_weights_drawn_the_same_way_for_the_same_seed():
    model = tiny_model()
    first, again, other = (freshly_initialised_copy(model, seed) for seed in (0, 0, 1))
    kernel = [m.get_layer("features").get_weights()[0] for m in (model, first, again, other)]
    assert [layer.name for layer in weighted_layers(first)] == ["features", "head"]
    assert np.array_equal(kernel[1], kernel[2]) and not np.array_equal(kernel[1], kernel[3])
    assert not np.array_equal(kernel[0], kernel[1])


def test_each_depths_maps_are_those_of_a_cam_built_afresh_on_that_depths_model():
    """The check builds one CAM per method and changes the copy's weights under it: a softmax head included,
    each depth must give what a new CAM on a model with those weights gives."""
    model = tiny_model(head="softmax")
    classifier = classifier_of(model)
    images = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    (result,) = sanity_check(classifier, images, ["gradcam"], depths=2)
    inputs, classes = classifier.prepare(images), classifier.predict(images)
    fresh = freshly_initialised_copy(model, seed=0)
    fresh.get_layer("features").set_weights(model.get_layer("features").get_weights())  # depth 1: the head only
    for depth, expected_model in enumerate([fresh, freshly_initialised_copy(model, seed=0)]):
        expected, _, _ = make_cam(expected_model, "gradcam", "features")(inputs, classes)
        np.testing.assert_allclose(result.randomised_maps[depth], expected[:MAPS_KEPT], atol=1e-5)
    assert result.randomised == (1, 2)


def sanity_of(spearman):
    """A ``MethodSanity`` with these per-depth Spearman correlations (and no maps)."""
    depths = len(spearman)
    return MethodSanity(method="m", layer_count=depths, randomised=tuple(range(1, depths + 1)),
                        deepest=("layer",) * depths, spearman=spearman, ssim=spearman, random_logit_spearman=0.0,
                        random_logit_ssim=0.0, original_maps=np.zeros((0, 2, 2)),
                        randomised_maps=np.zeros((depths, 0, 2, 2)), random_logit_maps=np.zeros((0, 2, 2)))


def test_a_method_is_judged_by_its_mean_spearman_over_the_cascade_not_by_its_last_depth():
    survives_the_top_layers = sanity_of((0.98, 0.79, 0.33))  # Adebayo et al.'s guided backprop
    assert survives_the_top_layers.cascade_spearman == pytest.approx(0.70)
    assert not survives_the_top_layers.passed and survives_the_top_layers.spearman[-1] < IGNORES_WEIGHTS
    assert survives_the_top_layers.verdict.startswith("fails: ignores the model's weights (mean Spearman 0.70")
    assert survives_the_top_layers.to_dict()["cascade_spearman"] == 0.7
    assert sanity_of((0.23, 0.05, 0.05)).passed  # Grad-CAM's curve


def test_the_random_baseline_is_called_the_baseline_not_a_pass_and_an_empty_map_says_so():
    """It passes by construction: the page showed a green "random passes". Randomised Grad-CAM maps are often all
    zero: the strip showed blank tiles with no word why."""
    from dataclasses import replace

    from eipviz.explain.sanity import sanity_strip

    baseline = replace(sanity_of((0.1, 0.0)), method="random", original_maps=np.ones((1, 2, 2)),
                       randomised_maps=np.stack([np.ones((1, 2, 2)), np.zeros((1, 2, 2))]))
    assert baseline.passed and baseline.verdict.startswith("is the chance baseline, not an explanation")
    assert [caption for caption, _ in sanity_strip(baseline)] == ["trained", "1 random (to layer)",
                                                                  "2 random (to layer) (empty map)"]


# One worker runs the whole module, so its module fixture is built once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("sanity")


@pytest.fixture(scope="module")
def resnet_checks(data_dir):
    classifier = load_zoo_model("resnet20v1")
    before = [w.copy() for w in classifier.model.get_weights()]
    calls = []
    results = sanity_check(classifier, sample_test_images(classifier, 8), ["gradcam", EdgeCAM, "guided-backprop"],
                           depths=3,
                           progress=lambda done, total, text: calls.append((done, total, text)))
    return classifier, before, {r.method: r for r in results}, calls


def test_an_edge_detector_fails_the_randomisation_check(resnet_checks):
    _, _, results, _ = resnet_checks
    edges = results["edges"]
    assert edges.spearman[-1] > IGNORES_WEIGHTS and not edges.passed
    assert edges.verdict.startswith("fails: ignores the model's weights")
    assert edges.random_logit_spearman == pytest.approx(1.0)  # and it is blind to the class
    assert "class-insensitive" in edges.verdict


def test_gradcam_passes_the_randomisation_check_on_resnet20v1(resnet_checks):
    _, _, results, _ = resnet_checks
    gradcam = results["gradcam"]
    assert gradcam.passed and gradcam.verdict.startswith("passes")
    assert gradcam.cascade_spearman < 0.25 and gradcam.spearman[-1] < IGNORES_WEIGHTS and gradcam.ssim[-1] < 0.5
    assert gradcam.random_logit_spearman < 0.9  # another class gives another map
    assert gradcam.randomised == (1, 21, 41) and gradcam.deepest[0] == "predictions"
    assert gradcam.original_maps.shape == (2, 32, 32) and gradcam.randomised_maps.shape == (3, 2, 32, 32)
    assert [row["randomised_layers"] for row in gradcam.curve()] == [1, 21, 41]


def test_guided_backprop_fails_though_its_maps_change_once_every_layer_is_random(resnet_checks):
    """Adebayo et al.'s finding: guided backprop keeps its map while the top layers are random, and loses it
    only when the lowest ones are, which still reconstruct the image."""
    _, _, results, _ = resnet_checks
    guided = results["guided-backprop"]
    assert guided.spearman[0] > 0.9 and guided.spearman[-1] < IGNORES_WEIGHTS  # the last depth alone passes it
    assert guided.cascade_spearman > IGNORES_WEIGHTS and not guided.passed
    assert guided.verdict.startswith("fails: ignores the model's weights")


def test_the_callers_model_is_unchanged(resnet_checks):
    classifier, before, _, _ = resnet_checks
    after = classifier.model.get_weights()
    assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(before, after))


def test_progress_counts_every_step(resnet_checks):
    _, _, _, calls = resnet_checks
    assert [done for done, _, _ in calls] == list(range(16)) and {total for _, total, _ in calls} == {15}
    assert calls[0][2] == "gradcam: maps of the trained model" and calls[-1][2] == "done"


# -- the random-logit check ---------------------------------------------------------


def test_the_random_logit_check_never_asks_for_the_predicted_class():
    calls = []

    class Recording(GradCAM):
        name = "recording"

        def __call__(self, inputs, class_indices=None, **options):
            calls.append(np.asarray(class_indices).copy())
            return super().__call__(inputs, class_indices, **options)

    images = np.random.default_rng(1).integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    sanity_check(classifier_of(tiny_model()), images, [Recording], depths=1)
    predicted, other = calls[0], calls[1]
    assert (other != predicted).all()
