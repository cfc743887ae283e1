"""The shipped weights: intact, and at or above the documented accuracy on the full test set."""

import json

import pytest

from eipviz.errors import EipvizError
from eipviz.evaluation import evaluate
from eipviz.loading import load_zoo_model
from eipviz.weights import MANIFEST, read_manifest, sha256_of, shipped_weights_path
from eipviz.zoo import MODELS

SHIPPED = list(read_manifest())


def test_the_manifest_lists_shipped_weights():
    assert SHIPPED, "weights/manifest.json lists no model"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_its_manifest_and_beats_the_documented_accuracy(name, data_dir):
    entry = read_manifest()[name]
    assert sha256_of(shipped_weights_path(name)) == entry["sha256"]
    for key in ("test_accuracy", "per_class_accuracy", "recipe", "hyperparameters", "epochs",
                "training_seconds", "device", "date", "curves"):
        assert key in entry, key
    result = evaluate(load_zoo_model(name))
    assert len(result.labels) == 10000
    assert abs(result.accuracy - entry["test_accuracy"]) <= 0.0005
    assert result.accuracy * 100 >= MODELS[name].documented_accuracy


def test_a_corrupt_weights_file_is_a_clear_message(tmp_path, monkeypatch):
    import eipviz.weights as weights

    name = SHIPPED[0]
    entry = read_manifest()[name]
    (tmp_path / entry["file"]).write_bytes(b"corrupted")
    (tmp_path / "manifest.json").write_text(json.dumps({name: entry}))
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(weights, "MANIFEST", tmp_path / "manifest.json")
    with pytest.raises(EipvizError, match="corrupt"):
        shipped_weights_path(name)
    assert MANIFEST.is_file()
