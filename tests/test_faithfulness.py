import numpy as np

from eipviz.explain.faithfulness import faithfulness
from tests.test_cams import quadrant_images, quadrant_model


def test_a_faithful_cam_deletes_fast_and_inserts_fast():
    """On the quadrant model Grad-CAM points at the evidence: deleting it kills the class."""
    rows = {row["method"]: row for row in faithfulness(quadrant_model(), quadrant_images(4), ["gradcam"],
                                                       layer="features")}
    row = rows["gradcam"]
    # The evidence is 1/4 of the pixels and removed first: the curve falls within the first quarter.
    assert row["deletion_auc"] < 0.45
    assert row["insertion_auc"] > row["deletion_auc"]
    assert 0 <= row["average_drop_pct"] <= 100 and row["n"] == 4
