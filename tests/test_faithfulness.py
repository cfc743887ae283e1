import numpy as np

from eipviz.attribution.methods import make_cam
from eipviz.explain.faithfulness import faithfulness, map_faithfulness
from tests.test_cams import quadrant_images, quadrant_model
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


def test_faithfulness_reports_each_method_for_uint8_images_with_progress():
    images = np.random.default_rng(1).integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    calls = []
    rows = faithfulness(classifier_of(tiny_model()), images, ["gradcam", "layercam"],
                        progress=lambda done, total, method: calls.append((done, total, method)))
    assert [row["method"] for row in rows] == ["gradcam", "layercam"] and all(row["n"] == 6 for row in rows)
    assert calls == [(0, 2, "gradcam"), (1, 2, "layercam"), (2, 2, None)]
