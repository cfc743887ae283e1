import numpy as np
import pytest

from eipviz.attribution.methods import make_cam
from eipviz.errors import EipvizError
from eipviz.explain.faithfulness import compare_with_random, faithfulness, map_faithfulness
from tests.test_cams import SIZE, quadrant_images, quadrant_model
from tests.test_classifier import classifier_of, tiny_model


def gradcam_and_scores(n=8):
    cam = make_cam(quadrant_model(), "gradcam", "features")
    inputs = quadrant_images(n)
    maps, classes, _ = cam(inputs, 0)
    return cam, inputs, maps, classes


def test_a_faithful_cam_deletes_fast_and_inserts_fast():
    """On the quadrant model Grad-CAM points at the evidence: deleting it kills the class."""
    cam, inputs, maps, classes = gradcam_and_scores(4)
    row = map_faithfulness(cam, inputs, maps, classes)
    # The evidence is 1/4 of the pixels and removed first: the curve falls within the first quarter.
    assert row["deletion_auc"] < 0.45
    assert row["insertion_auc"] > row["deletion_auc"]
    assert 0 <= row["average_drop_pct"] <= 100 and row["n"] == 4


def test_random_and_inverted_maps_score_worse_than_gradcam():
    cam, inputs, maps, classes = gradcam_and_scores()
    random_maps = np.random.default_rng(0).random(maps.shape, dtype=np.float32)
    gradcam = map_faithfulness(cam, inputs, maps, classes)
    random = map_faithfulness(cam, inputs, random_maps, classes)
    inverted = map_faithfulness(cam, inputs, 1.0 - maps, classes)
    assert gradcam["deletion_auc"] < random["deletion_auc"] < inverted["deletion_auc"]
    assert gradcam["insertion_auc"] > random["insertion_auc"] > inverted["insertion_auc"]


def test_faithfulness_reports_each_method_and_chance_for_uint8_images_with_progress():
    images = np.random.default_rng(1).integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    calls = []
    rows = faithfulness(classifier_of(tiny_model()), images, ["gradcam", "layercam"],
                        progress=lambda done, total, method: calls.append((done, total, method)))
    assert [row["method"] for row in rows] == ["gradcam", "layercam", "random"] and all(row["n"] == 6 for row in rows)
    # Each method's maps move the bar half a method (6 images: one batch) before its scores are computed.
    assert calls == [(0, 3, "gradcam"), (0.5, 3, "gradcam"), (1, 3, "layercam"), (1.5, 3, "layercam"),
                     (2, 3, "random"), (2.5, 3, "random"), (3, 3, None)]


def test_every_metric_has_its_columns_and_a_margin_over_random_that_is_positive_when_better():
    images = np.random.default_rng(1).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    gradcam, random = faithfulness(classifier_of(tiny_model()), images, ["gradcam"])
    for column in ("deletion_auc", "insertion_auc", "average_drop_pct", "increase_in_confidence_pct",
                   "road_combined", "road_morf", "road_lerf"):
        assert column in gradcam and column in random
    assert gradcam["deletion_vs_random"] == round(random["deletion_auc"] - gradcam["deletion_auc"], 4)
    assert gradcam["insertion_vs_random"] == round(gradcam["insertion_auc"] - random["insertion_auc"], 4)
    assert gradcam["average_drop_vs_random"] == round(random["average_drop_pct"] - gradcam["average_drop_pct"], 4)
    assert gradcam["road_vs_random"] == round(gradcam["road_combined"] - random["road_combined"], 4)
    assert random["deletion_vs_random"] is None  # the baseline is not compared with itself


def test_chosen_metrics_only_and_unknown_ones_are_refused():
    images = np.random.default_rng(1).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    classifier = classifier_of(tiny_model())
    rows = faithfulness(classifier, images, ["random", "gradcam"], metrics=["deletion"])
    assert [row["method"] for row in rows] == ["random", "gradcam"]  # random where the caller put it
    assert set(rows[1]) == {"method", "deletion_auc", "n", "deletion_vs_random"}
    with pytest.raises(EipvizError, match="Unknown faithfulness metric.*'auc'.*Choose from: deletion"):
        faithfulness(classifier, images, ["gradcam"], metrics=["deletion", "auc"])


def test_on_the_quadrant_model_gradcam_beats_random_on_every_metric():
    cam, inputs, maps, classes = gradcam_and_scores()
    random_cam = make_cam(cam.model, "random", "features")
    random_maps, _, _ = random_cam(inputs, classes)
    rows = compare_with_random([{"method": "gradcam", **map_faithfulness(cam, inputs, maps, classes)},
                                {"method": "random", **map_faithfulness(cam, inputs, random_maps, classes)}])
    margins = {k: v for k, v in rows[0].items() if k.endswith("_vs_random")}
    assert set(margins) == {"deletion_vs_random", "insertion_vs_random", "average_drop_vs_random",
                            "increase_in_confidence_vs_random", "road_vs_random"}
    assert all(margins[k] > 0 for k in ("deletion_vs_random", "insertion_vs_random", "road_vs_random")), margins


def test_float_noise_between_backends_does_not_reorder_tied_pixels():
    from eipviz.explain.road import relevance_order

    maps = np.random.default_rng(0).integers(0, 4, (2, 8, 8)).astype(np.float32) / 3  # many ties
    noisy = maps + np.random.default_rng(1).uniform(-1e-7, 1e-7, maps.shape).astype(np.float32)
    same_seed = [relevance_order(m, np.random.default_rng(5)) for m in (maps, noisy)]
    np.testing.assert_array_equal(*same_seed)
    assert relevance_order(np.array([[[0.5, 0.5001]]]), np.random.default_rng(0)).tolist() == [[1, 0]]


def test_tied_pixels_go_in_a_seeded_random_order_not_top_row_first():
    """A constant map ranks no pixel above another: it must delete and insert like a random map. A stable
    sort took ties top row first, as a map falling row by row would, which here removes class 0's evidence
    (the top-left quadrant) early."""
    cam, inputs, _, classes = gradcam_and_scores()
    constant = np.full(inputs.shape[:3], 0.5, np.float32)
    top_row_first = np.broadcast_to(np.linspace(1, 0, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE),
                                    constant.shape)
    random_maps = np.random.default_rng(5).random(constant.shape, dtype=np.float32)
    metrics = ("deletion", "insertion")
    tied, rows, chance = (map_faithfulness(cam, inputs, maps, classes, metrics=metrics)
                          for maps in (constant, top_row_first, random_maps))
    assert tied["deletion_auc"] > rows["deletion_auc"] + 0.04
    assert tied["deletion_auc"] == pytest.approx(chance["deletion_auc"], abs=0.02)
    assert map_faithfulness(cam, inputs, constant, classes, metrics=metrics) == tied  # seeded: reproducible
    assert map_faithfulness(cam, inputs, constant, classes, metrics=metrics, seed=1) != tied


def test_scores_do_not_depend_on_how_many_images_are_built_at_once(monkeypatch):
    """Curves are built a few images at a time and ROAD scores its imputations as batches fill, so memory stays
    flat in N; the figures must be those of building everything at once."""
    import eipviz.explain.faithfulness as faithfulness_module
    import eipviz.explain.road as road_module

    cam, inputs, maps, classes = gradcam_and_scores(7)
    whole = map_faithfulness(cam, inputs, maps, classes)
    monkeypatch.setattr(faithfulness_module, "CURVE_IMAGES", 2)
    monkeypatch.setattr(road_module, "SCORE_BATCH", 3)
    assert map_faithfulness(cam, inputs, maps, classes) == pytest.approx(whole, abs=1e-4)


# -- guards the mutation review of 2026-11-27 found untested ---------------------------------------------------------


class Saturated:
    """A model that is certain whatever it sees (float32 softmax saturates at exactly 1.0)."""

    def scores(self, inputs, classes):
        return np.ones(len(inputs), np.float32)


class MeanPixel:
    """The class score is the image's mean value."""

    def scores(self, inputs, classes):
        return np.asarray(inputs).mean(axis=(1, 2, 3))


def test_an_unchanged_probability_is_no_increase_in_confidence():
    inputs, maps = np.full((2, 4, 4, 1), 0.5, np.float32), np.ones((2, 4, 4), np.float32)
    row = map_faithfulness(Saturated(), inputs, maps, np.zeros(2, int), metrics=("drop",))
    assert row["increase_in_confidence_pct"] == 0.0 and row["average_drop_pct"] == 0.0


def test_insertion_starts_from_the_blurred_image():
    """A flat image blurs to itself, so inserting its pixels changes nothing: AUC = its score 0.5."""
    inputs = np.full((1, 8, 8, 1), 0.5, np.float32)
    maps = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    row = map_faithfulness(MeanPixel(), inputs, maps, np.zeros(1, int), metrics=("insertion",))
    assert row["insertion_auc"] == pytest.approx(0.5)


def test_methods_that_score_exactly_alike_at_a_layer_are_said_to():
    """At a layer of one channel per class every gradient method's map is that channel: a ranking of them is noise."""
    from eipviz.explain.faithfulness import scored_alike

    scores = {"deletion_auc": 0.278, "insertion_auc": 0.7, "n": 50}
    rows = [{"method": m, "layer": "maps", **scores} for m in ("gradcam", "hirescam", "layercam")]
    rows += [{"method": "random", "layer": "maps", "deletion_auc": 0.31, "insertion_auc": 0.5, "n": 50},
             {"method": "gradcam", "layer": "conv7", **scores}]
    assert scored_alike(rows) == ["gradcam, hirescam and layercam score exactly alike at maps: their maps are the "
                                  "same there."]
    one_metric = [{"method": m, "layer": "maps", "deletion_auc": 0.278, "deletion_vs_random": 0.03} for m in "ab"]
    assert scored_alike(one_metric) == []  # a tie on one rounded metric says nothing about the maps
