"""Explanation timelines: the probe set, one map set per epoch, resume, export, the CLI."""

import json

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from eipviz.classifier import Classifier
from eipviz.cli import main
from eipviz.data import CLASS_NAMES
from eipviz.errors import EipvizError
from eipviz.explain.timeline import (
    TIMELINE_FILE,
    Timeline,
    export_timeline,
    probe_indices,
    read_timeline,
    record_epoch,
    start_timeline,
    write_timeline,
)
from eipviz.training.store import RunStore


def test_the_probe_set_is_stratified_fixed_and_sorted_by_class():
    labels = np.repeat(np.arange(10), 50)[np.random.default_rng(3).permutation(500)]
    picked = probe_indices(labels)
    counts = np.bincount(labels[picked], minlength=10)
    assert len(picked) == 16 and counts.min() == 1 and counts.max() == 2
    assert picked.tolist() == probe_indices(labels).tolist()  # chosen once per dataset
    assert labels[picked].tolist() == sorted(labels[picked].tolist())


def test_a_dataset_with_fewer_images_than_the_probe_set_uses_them_all():
    assert sorted(probe_indices(np.array([1, 0, 1]))) == [0, 1, 2]


def _tiny_classifier(seed=0) -> Classifier:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    return Classifier(keras.Model(inputs, outputs), "tiny", "unit_scale", CLASS_NAMES["mnist"], "mnist", "features",
                      "test")


def _probe(n=16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, 28, 28, 1), dtype=np.uint8), np.arange(n) % 10, np.arange(n)


def _recorded(path, epochs):
    classifier = _tiny_classifier()
    images, labels, indices = _probe()
    timeline = start_timeline(path, images, labels, indices, classifier.class_names, "features", 0)
    for epoch in epochs:
        timeline = record_epoch(timeline, classifier, epoch, path)
    return timeline


def test_each_epoch_appends_one_map_set_at_the_layers_resolution_to_the_file(tmp_path):
    path = tmp_path / TIMELINE_FILE
    _recorded(path, [1, 2])
    stored = read_timeline(path)
    assert stored.epochs.tolist() == [1, 2]
    assert stored.maps.shape == (2, 16, 26, 26) and stored.maps.dtype == np.uint8
    assert stored.probabilities.shape == (2, 16, 10) and stored.probabilities.dtype == np.float32
    assert np.allclose(stored.probabilities.astype(np.float32).sum(-1), 1, atol=1e-2)
    assert stored.deletion_auc.shape == (2,) and np.isfinite(stored.average_drop_pct).all()
    assert not list(tmp_path.glob(".timeline*"))  # no temporary file left behind


def test_each_epoch_records_the_model_as_it_is_then_softmax_head_included(tmp_path):
    """Training changes the weights under one classifier and its cached CAM: epoch 2 must not see epoch 1's head."""
    path = tmp_path / TIMELINE_FILE
    classifier = _tiny_classifier()
    images, labels, indices = _probe()
    timeline = start_timeline(path, images, labels, indices, classifier.class_names, "features", 0)
    for epoch in (1, 2):
        timeline = record_epoch(timeline, classifier, epoch, path)
        expected = classifier.model.predict(classifier.prepare(images), verbose=0)
        np.testing.assert_allclose(timeline.probabilities[-1].astype(np.float32), expected, atol=2e-3)
        head = classifier.model.layers[-1]  # a step of "training": the head changes
        head.set_weights([w * 5 + 0.1 for w in head.get_weights()])


def test_an_epoch_scores_only_what_it_stores_and_the_same_as_map_faithfulness(tmp_path, monkeypatch):
    import eipviz.explain.faithfulness as faithfulness

    def unused(*args, **kwargs):
        raise AssertionError("ROAD's sparse solves ran at an epoch end, for a score nothing keeps")

    monkeypatch.setattr(faithfulness, "road", unused)
    stored = _recorded(tmp_path / TIMELINE_FILE, [1])
    classifier = _tiny_classifier()
    cam = classifier.cam("gradcam", "features")
    inputs = classifier.prepare(_probe()[0])
    maps, classes, _ = cam(inputs)
    scores = faithfulness.map_faithfulness(cam, inputs, maps, classes, metrics=("deletion", "drop"))
    assert stored.deletion_auc[-1] == pytest.approx(scores["deletion_auc"])
    assert stored.average_drop_pct[-1] == pytest.approx(scores["average_drop_pct"])


def test_a_resumed_run_keeps_its_epochs_up_to_the_checkpoint_and_its_probe_set(tmp_path):
    path = tmp_path / TIMELINE_FILE
    first = _recorded(path, [1, 2, 3])
    other_images, other_labels, _ = _probe(8)
    resumed = start_timeline(path, other_images, other_labels, np.arange(8), CLASS_NAMES["mnist"], "features", 2)
    assert resumed.epochs.tolist() == [1, 2]  # epoch 3 came after the checkpoint the run resumes from
    assert resumed.indices.tolist() == first.indices.tolist() and np.array_equal(resumed.images, first.images)


def test_a_stored_timeline_of_another_cam_layer_starts_afresh(tmp_path):
    """A resumed run whose CAM layer changed must not append maps of one layer to those of another."""
    path = tmp_path / TIMELINE_FILE
    images, labels = np.zeros((2, 8, 8, 3), np.uint8), np.arange(2)
    write_timeline(path, Timeline(np.arange(2), images, labels, ("a", "b"), "old", np.array([1]),
                                  np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 3, 3), np.uint8), np.zeros(1),
                                  np.zeros(1)))
    fresh = start_timeline(path, images, labels, np.arange(2), ("a", "b"), "new", keep_epochs=1)
    assert (fresh.layer, len(fresh.epochs)) == ("new", 0)


def test_export_writes_a_png_per_epoch_and_an_animated_gif(tmp_path):
    timeline = _recorded(tmp_path / TIMELINE_FILE, [1, 2, 3])
    paths = export_timeline(timeline, tmp_path / "out")
    assert [p.name for p in paths] == ["epoch-001.png", "epoch-002.png", "epoch-003.png", "timeline.gif"]
    gif = Image.open(paths[-1])
    assert gif.n_frames == 3 and gif.size == Image.open(paths[0]).size


def test_the_timeline_command_exports_a_runs_timeline_and_explains_a_missing_one(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    with_timeline = store.create_run(name="with", model="mnist14k")
    _recorded(store.run_dir(with_timeline) / TIMELINE_FILE, [1, 2])
    assert main(["timeline", with_timeline, "--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs"] == [1, 2] and len(report["files"]) == 3

    older = store.create_run(name="older", model="mnist14k")
    assert main(["timeline", older, "--out", str(tmp_path / "o2"), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "has not finished an epoch yet, or it was trained before" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["empty", "truncated", "corrupt member"])
def test_a_damaged_timeline_file_is_a_clear_error_not_a_traceback(tmp_path, damage):
    path = tmp_path / TIMELINE_FILE
    _recorded(path, [1])
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    else:  # flip bytes inside the compressed maps, keeping the zip's directory
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    with pytest.raises(EipvizError, match="is not a readable timeline"):
        read_timeline(path)


def test_a_resumed_run_with_a_damaged_timeline_starts_it_again_and_trains_on(tmp_path, data_dir, capsys):
    from eipviz.training.timeline import ExplanationTimeline

    path = tmp_path / TIMELINE_FILE
    path.write_bytes(b"PK\x03\x04 not a whole zip")
    recorder = ExplanationTimeline(_tiny_classifier(), tmp_path, initial_epoch=2)
    assert recorder.timeline.epochs.tolist() == [] and len(recorder.timeline.indices) == 16
    assert "It starts again at this epoch." in capsys.readouterr().out


def test_sheet_captions_fit_their_tile_and_keep_the_whole_percentage():
    from eipviz.explain.overlay import FONT, FONT_SCALE
    from eipviz.explain.timeline import fitted_caption

    text = fitted_caption("x automobile 100%", 100)
    assert text.endswith(". 100%") and text.startswith("x auto")
    assert cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0] <= 100
    assert fitted_caption("x automobile 100%", 124) == "x automobile 100%"  # every CIFAR-10 name fits a tile


def test_the_sheet_names_the_true_class_under_each_wrong_prediction(tmp_path):
    """A report's reader has no page to ask what a red tile should have been: a second line says it."""
    from eipviz.explain.timeline import timeline_sheet, timeline_tiles

    timeline = _recorded(tmp_path / TIMELINE_FILE, [1])
    tiles, size, columns = timeline_tiles(timeline, 1, 128), 128, 4
    assert [tile.truth for tile in tiles] == [CLASS_NAMES["mnist"][label] for label in timeline.labels]
    assert {tile.right for tile in tiles} == {True, False}  # an untrained model: some of each
    sheet = timeline_sheet(timeline, 1, columns, size)
    for i, tile in enumerate(tiles):
        top, left = 22 + (i // columns) * (size + 32) + size, (i % columns) * size
        second_line = sheet[top + 17:top + 31, left:left + size]
        assert (second_line.min() < 128) == (not tile.right)  # ink on the second line: the wrong ones only


@pytest.mark.parametrize("dataset", ["cifar10", "mnist"])
def test_every_true_class_line_fits_a_sheet_tile(dataset):
    from eipviz.explain.overlay import FONT, FONT_SCALE

    assert max(cv2.getTextSize(f"true: {name}", FONT, FONT_SCALE, 1)[0][0] for name in CLASS_NAMES[dataset]) <= 124


def test_an_epoch_not_in_the_timeline_is_a_clear_error(tmp_path):
    timeline = _recorded(tmp_path / TIMELINE_FILE, [1])
    with pytest.raises(EipvizError, match="Epoch 5 is not in this timeline"):
        timeline.position(5)


def test_report_of_a_run_includes_its_curves_and_timeline(tmp_path, data_dir, capsys):
    from eipviz.zoo import build_model

    store = RunStore(tmp_path / "runs")
    run_id = store.create_run(name="reported", model="mnist14k", status="finished")
    keras.utils.set_random_seed(0)
    model = build_model("mnist14k")
    model.save(store.run_dir(run_id) / "best.keras")
    classifier = Classifier(model, "run", "unit_scale", CLASS_NAMES["mnist"], "mnist", "class_maps1x1", "test")
    images, labels, indices = _probe()
    timeline = start_timeline(store.run_dir(run_id) / TIMELINE_FILE, images, labels, indices,
                              classifier.class_names, classifier.cam_layer, 0)
    for epoch in (1, 2):
        timeline = record_epoch(timeline, classifier, epoch, store.run_dir(run_id) / TIMELINE_FILE)
        store.add_epoch(run_id, epoch, {"loss": 1.0 / epoch, "val_accuracy": 0.1 * epoch})
    out = tmp_path / "report.html"
    assert main(["report", "--run", run_id, "--runs-dir", str(tmp_path / "runs"), "--n", "4",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert "<h2>Training curves</h2>" in text and "<h2>Explanations across epochs</h2>" in text
    assert "<script src=" not in text and "<script>/**" in text  # plotly.js inline, nothing fetched
    assert main(["report", "--out", str(out)]) == 2  # neither --model nor --run
    assert "Give --model NAME_OR_PATH or --run RUN_ID" in capsys.readouterr().err
