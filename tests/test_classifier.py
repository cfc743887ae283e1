"""``Classifier``: uint8 images in, answers out, on small hand-built models."""

import dataclasses
import gc
import weakref

import keras
import numpy as np
import pytest

from eipviz.attribution.graph import softmax
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.loading import load_uploaded_model

NAMES = tuple(f"c{k}" for k in range(3))


def tiny_model(head="linear", bias=(0.0, 0.0, 0.0)):
    """8x8 RGB in, 3 classes out; class k's logit is 2 x the mean of channel k (+ bias), before ``head``."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(3, 1, activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(3, activation=head, name="head")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("features").set_weights([np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    model.get_layer("head").set_weights([2 * np.eye(3, dtype=np.float32), np.asarray(bias, np.float32)])
    return model


def classifier_of(model, preprocessing="unit_scale"):
    return Classifier(model, "tiny", preprocessing, NAMES, None, "features", source="test")


def solid(rgb, size=8):
    return np.broadcast_to(np.asarray(rgb, np.uint8), (size, size, 3)).copy()


def test_prepare_resizes_any_size_and_applies_the_models_preprocessing():
    classifier = classifier_of(tiny_model())
    inputs = classifier.prepare([solid((255, 0, 51), size=20), solid((0, 255, 0), size=5)])
    assert inputs.shape == (2, 8, 8, 3) and inputs.dtype == np.float32
    np.testing.assert_allclose(inputs[0, 3, 3], [1.0, 0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(inputs[1, 0, 0], [0.0, 1.0, 0.0], atol=1e-6)


def test_probabilities_are_the_softmax_of_the_logits_whatever_the_head():
    images = np.stack([solid((255, 0, 0)), solid((0, 0, 255))])
    linear, softmax = classifier_of(tiny_model("linear")), classifier_of(tiny_model("softmax"))
    np.testing.assert_allclose(linear.logits(images), [[2, 0, 0], [0, 0, 2]], atol=1e-6)
    np.testing.assert_allclose(softmax.logits(images), linear.logits(images), atol=1e-6)
    expected = np.exp([2, 0, 0]) / np.exp([2, 0, 0]).sum()
    np.testing.assert_allclose(linear.probabilities(images)[0], expected, atol=1e-6)
    np.testing.assert_allclose(softmax.probabilities(images), linear.probabilities(images), atol=1e-6)


def test_logits_that_happen_to_sum_to_one_are_not_mistaken_for_probabilities():
    """The old path guessed "already probabilities" when outputs were >= 0 and summed to 1."""
    classifier = classifier_of(tiny_model("linear", bias=(0.5, 0.25, 0.25)))
    black = np.zeros((1, 8, 8, 3), np.uint8)
    np.testing.assert_allclose(classifier.logits(black), [[0.5, 0.25, 0.25]], atol=1e-6)
    expected = np.exp([0.5, 0.25, 0.25]) / np.exp([0.5, 0.25, 0.25]).sum()
    np.testing.assert_allclose(classifier.probabilities(black)[0], expected, atol=1e-6)


def test_probabilities_of_large_logits_are_finite():
    """Softmax shifts by the largest logit: an uploaded model with logits of 1,000 still gets [1, 0], not NaN."""
    np.testing.assert_allclose(softmax(np.array([[1000.0, 0.0], [0.0, 0.0]])), [[1.0, 0.0], [0.5, 0.5]])


def test_predict_is_the_top_class():
    images = np.stack([solid((0, 200, 0)), solid((0, 0, 90)), solid((10, 0, 0))])
    assert classifier_of(tiny_model()).predict(images).tolist() == [1, 2, 0]


@pytest.mark.parametrize("given, index", [("c2", 2), (1, 1), ("0", 0), (" 2 ", 2)])
def test_class_index_takes_a_name_or_a_number(given, index):
    assert classifier_of(tiny_model()).class_index(given) == index


@pytest.mark.parametrize("given", ["dog", 3, "-1", ""])
def test_an_unknown_class_names_the_choices(given):
    with pytest.raises(EipvizError, match=r"Unknown class .*\(c0, c1, c2\)"):
        classifier_of(tiny_model()).class_index(given)


def test_cams_explain_the_requested_class():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:4, :, 0] = 255  # red on top: class 0's evidence
    image[4:, :, 2] = 255  # blue below: class 2's evidence
    classifier = classifier_of(tiny_model())
    maps = classifier.cams(image[None].repeat(2, 0), classes=[0, 2])
    assert maps.shape == (2, 8, 8)
    assert maps[0, :4].mean() == pytest.approx(1.0) and maps[0, 4:].mean() == pytest.approx(0.0)
    assert maps[1, 4:].mean() == pytest.approx(1.0) and maps[1, :4].mean() == pytest.approx(0.0)
    assert np.array_equal(classifier.cams(image[None].repeat(2, 0), classes=["c0", "c2"]), maps)  # by name
    for wrong in (-1, 3, "cat"):  # -1 explained the top class; a name was a ValueError from int()
        with pytest.raises(EipvizError, match=f"Unknown class {wrong!r}"):
            classifier.cams(image[None], classes=wrong)


def test_each_cam_is_built_once_per_method_and_layer_and_a_replaced_classifier_starts_afresh():
    classifier = classifier_of(tiny_model())
    assert classifier.cam("gradcam") is classifier.cam("gradcam", "features")
    assert classifier.cam("layercam") is not classifier.cam("gradcam")
    assert classifier.cam("layercam").passes is classifier.cam("gradcam").passes  # traced once for both
    variant = dataclasses.replace(classifier, preprocessing="channel_standardize")
    assert variant.preprocessing == "channel_standardize" and variant.model is classifier.model
    assert variant.cam("gradcam") is not classifier.cam("gradcam")
    assert variant.cam("gradcam").passes is not classifier.cam("gradcam").passes


def test_a_classifier_is_frozen_and_checks_what_it_is_given():
    classifier = classifier_of(tiny_model())
    with pytest.raises(dataclasses.FrozenInstanceError):
        classifier.preprocessing = "pixel_mean"  # type: ignore[misc]
    with pytest.raises(EipvizError, match="Unknown preprocessing 'nope'"):
        classifier_of(tiny_model(), preprocessing="nope")
    with pytest.raises(EipvizError, match="3 outputs but 2 class names"):
        Classifier(tiny_model(), "tiny", "unit_scale", ("a", "b"), None, "features", source="test")


def test_dropped_classifiers_free_their_models_and_cams(tmp_path):
    """The old CAM cache was keyed weakly by the model but held it in its values, so no model was ever freed.

    Three models, not twenty: any cache that keeps a dropped model alive (weak-keyed, or bounded like an LRU)
    leaves at least one of them, and each load costs about 0.3 s (twenty took 40 s in the suite)."""
    path = tmp_path / "tiny.keras"
    tiny_model("softmax").save(path)
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    dropped = []
    for _ in range(3):
        classifier = load_uploaded_model(path)
        classifier.probabilities(images)
        classifier.cams(images, "gradcam")
        dropped.append(weakref.ref(classifier.model))
        del classifier
    gc.collect()
    alive = sum(ref() is not None for ref in dropped)
    assert alive == 0, f"{alive} of {len(dropped)} dropped models are still in memory"


def test_the_cam_cache_keeps_the_most_recently_used_few(monkeypatch):
    monkeypatch.setattr("eipviz.classifier.CAMS_KEPT", 2)
    classifier = classifier_of(tiny_model())
    gradcam, layercam = classifier.cam("gradcam"), classifier.cam("layercam")
    assert classifier.cam("gradcam") is gradcam  # used again: now the most recent
    classifier.cam("gradcam++")  # a third: the least recently used (layercam) goes
    assert list(classifier._cams) == [("gradcam", "features"), ("gradcam++", "features")]
    assert classifier.cam("gradcam") is gradcam and classifier.cam("layercam") is not layercam
