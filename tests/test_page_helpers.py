"""The library functions the pages lay out, tested without Streamlit."""

import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from app_pages import common
from eipviz import limited_child
from eipviz.curves import CurveRun, default_selection
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation
from eipviz.explain.gallery import gallery_page
from eipviz.loading import load_uploaded_bytes, runs_with_checkpoint
from eipviz.plots import curves_figure, top_classes_figure, training_curves_figure
from eipviz.training.status import RunProgress
from eipviz.training.store import RunStore, run_label, unique_name
from eipviz.weights import sha256_of
from tests.test_classifier import tiny_model


@pytest.mark.parametrize("page, shown, pages", [(1, [0, 1, 2, 3, 4], 3), (3, [10, 11], 3), (9, [10, 11], 3),
                                                (0, [0, 1, 2, 3, 4], 3)])
def test_gallery_page_slices_and_clamps(page, shown, pages):
    got, count = gallery_page(np.arange(12), page, 5)
    assert got.tolist() == shown and count == pages


def test_an_empty_gallery_still_has_one_page():
    got, count = gallery_page(np.arange(0), 1, 12)
    assert got.tolist() == [] and count == 1


def test_the_progress_label_says_epoch_batch_loss_and_time_left():
    progress = RunProgress(epochs_done=2, epochs_total=10, batch=120, batches=782, running_loss=0.81234,
                           eta_seconds=247)
    assert progress.label == "epoch 3/10: batch 120/782, loss 0.8123 · ETA 4m 07s"
    starting = RunProgress(0, 5, 0, 0, None, None)
    assert starting.label == "epoch 1/5: batch 0/? · ETA estimating…"


def test_misclassified_count():
    evaluation = Evaluation(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), ("a", "b"))
    assert evaluation.misclassified_count == 1


def test_the_curves_page_opens_on_the_two_newest_trained_runs_and_one_documented_run():
    runs = [CurveRun(f"t{i}", "x", "trained", [{"epoch": 1}]) for i in range(3)] + [
        CurveRun("i", "x", "imported", [{"epoch": 1}])] + [CurveRun(f"r{i}", "x", "reference", []) for i in range(2)]
    assert default_selection(runs) == ["t0", "t1", "r0"]


def test_run_labels_tell_same_named_runs_apart():
    first, second = CurveRun("id-1", "same", "trained", []), CurveRun("id-2", "same", "trained", [])
    assert run_label(first) != run_label(second) and run_label(first) == "same · id-1"
    assert run_label(CurveRun("reference-x", "x (documented)", "reference", [])) == "x (documented)"


def test_unique_name_counts_up_from_two():
    assert unique_name("a", set()) == "a"
    assert unique_name("a", {"a", "a (2)"}) == "a (3)"


def test_top_classes_figure_shows_percentages_best_first():
    figure = top_classes_figure([{"class": "cat", "probability": 0.8}, {"class": "dog", "probability": 0.15}])
    bar = figure.data[0]
    assert list(bar.y) == ["cat", "dog"] and list(bar.text) == ["80.0%", "15.0%"]
    assert figure.layout.xaxis.tickformat == ".0%" and tuple(figure.layout.xaxis.range) == (0, 1)


def test_only_runs_with_a_best_checkpoint_can_be_explained(tmp_path):
    store = RunStore(tmp_path)
    with_checkpoint = store.create_run(name="a", model="mnist14k")
    store.create_run(name="b", model="mnist14k")
    store.create_run(name="c", kind="imported", status="finished")
    (store.run_dir(with_checkpoint) / "best.keras").write_bytes(b"")
    assert [run.id for run in runs_with_checkpoint(store)] == [with_checkpoint]


def test_an_uploaded_models_bytes_load_under_its_own_name_and_leave_no_file(tmp_path, monkeypatch):
    path = tmp_path / "tiny.keras"
    tiny_model().save(path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    classifier = load_uploaded_bytes(path.read_bytes(), "my model.keras")
    assert classifier.name == "my model.keras" and classifier.source == "upload: my model.keras"
    assert classifier.input_size == (8, 8, 3) and classifier.predictions is None
    assert classifier.sha256 == sha256_of(path)  # the report names the file it explains (it said "not a file")
    limited_child._CHILD._end()  # the trial's child, started here, keeps TensorFlow's autograph files until it ends
    assert list((tmp_path / "scratch").iterdir()) == []
    with pytest.raises(EipvizError, match="broken.keras is not a readable Keras model file"):
        load_uploaded_bytes(b"not a zip", "broken.keras")


def test_figures_with_subplot_titles_leave_room_for_plotlys_toolbar_above_them():
    """The toolbar (about 30 px) appears at the top of the figure on hover; it covered the titles at 40 px."""
    rows = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5}, {"epoch": 2, "loss": 0.8, "accuracy": 0.6}]
    run = CurveRun("a", "a", "trained", rows)
    for figure in (training_curves_figure(rows), curves_figure([run], ["loss", "accuracy"])):
        titles = [annotation.text for annotation in figure.layout.annotations]
        assert "loss" in titles and figure.layout.margin.t >= 60


def test_a_manifest_entry_for_a_model_no_longer_in_the_zoo_is_not_offered(weights_dir):
    import json

    from eipviz.weights import shipped_models

    weights_dir.mkdir()
    entry = {"file": "x.keras", "sha256": "0" * 64}
    (weights_dir / "manifest.json").write_text(json.dumps({"vgg99": entry, "mnist14k": entry, "resnet20v1": entry}))
    assert shipped_models() == ["resnet20v1", "mnist14k"]


def test_explain_images_reuses_probabilities_it_is_given(monkeypatch):
    from eipviz.classifier import Classifier
    from eipviz.explain.predict import explain_images
    from tests.test_classifier import classifier_of

    classifier = classifier_of(tiny_model())
    images = [np.full((8, 8, 3), 200, np.uint8), np.zeros((12, 12, 3), np.uint8)]
    given = classifier.probabilities(images)
    monkeypatch.setattr(Classifier, "probabilities", lambda self, x: pytest.fail("images went through twice"))
    explanations = explain_images(classifier, images, probabilities=given, class_indices=[2, None])
    assert [e.class_index for e in explanations] == [2, int(given[1].argmax())]
    np.testing.assert_array_equal(explanations[0].probabilities, given[0])


@pytest.mark.parametrize("key, identity", [
    ("zoo:resnet20v1:" + "ab" * 32, "zoo:resnet20v1"),  # re-shipped weights: the same model
    ("run:20261127-120000-x:1795813688.5", "run:20261127-120000-x"),  # an improved checkpoint: the same run
    ("upload:" + "cd" * 32 + ":unit_scale", "upload:" + "cd" * 32 + ":unit_scale"),
])
def test_a_model_keys_identity_leaves_out_the_weights_version(key, identity):
    from app_pages.common import model_identity

    assert model_identity(key) == identity


def test_a_shipped_model_is_loaded_again_once_ship_replaces_its_weights(weights_dir, monkeypatch):
    """The pages cached shipped models by name: after `ship` a running server kept serving the old model."""
    import json

    import app_pages.common as common

    name = "reshipped-model"
    weights_dir.mkdir()
    loads = []
    monkeypatch.setattr(common, "load_zoo_model", lambda model: loads.append(model) or object())

    def ship(sha256: str) -> None:
        (weights_dir / "manifest.json").write_text(json.dumps({name: {"file": "x.keras", "sha256": sha256}}))

    ship("a" * 64)
    first = common.cached_zoo_model(name)
    assert common.cached_zoo_model(name) is first and loads == [name]
    ship("b" * 64)
    second = common.cached_zoo_model(name)
    assert second is not first and loads == [name, name]
    assert common.shipped_model(name) == (second, f"zoo:{name}:{'b' * 64}")  # a new key: a new evaluation too
    for sha256 in ("a" * 64, "b" * 64):  # leave the shared cache's room to the real models
        common._shipped_model.clear(name, sha256)


def test_markdown_link_and_image_syntax_is_escaped():
    """A run named ``![x](https://…)`` shows as text: no remote image in every viewer's browser."""
    assert common.literal("![x](https://e.com/a.png)") == "\\!\\[x\\](https\u2060\\://e.com/a.png)"


def test_bare_addresses_get_a_word_joiner_that_keeps_them_from_becoming_links():
    """GitHub-style autolinks survive escaping: a run named "log in at www.evil.example" was a link (checked in
    Chromium: with the joiners, none of these is)."""
    joined = common.literal("www.evil.example WWW.x.y admin@evil.example https://evil.example mailto:a@b.c")
    assert joined == ("www\u2060.evil.example WWW\u2060.x.y admin\u2060@evil.example https\u2060\\://evil.example "
                      "mailto\\:a\u2060@b.c")


def test_a_widget_whose_value_streamlit_dropped_gets_its_default_again(monkeypatch):
    """Back from another page, Streamlit has dropped the layer box's value: it is set to the model's default."""
    state = {"mis-layer-of": "zoo:mnist14k"}  # the same model as last time, but no "mis-layer" any more
    monkeypatch.setattr(common, "st", SimpleNamespace(session_state=state))
    common.default_for("mis-layer", "zoo:mnist14k", "conv3")
    assert state["mis-layer"] == "conv3"


def test_a_report_draws_the_gallery_it_is_given_with_its_method_layer_and_smoothing(data_dir, monkeypatch):
    """The Misclassified page's report drew the unfiltered first page with Grad-CAM, whatever the page showed."""
    import eipviz.report as report
    from eipviz.evaluation import dataset_test_split, evaluate_test_set
    from eipviz.loading import load_zoo_model

    classifier = load_zoo_model("mnist14k")
    images, _ = dataset_test_split(classifier)
    evaluation = evaluate_test_set(classifier)
    calls = []
    original = report.gallery_items
    monkeypatch.setattr(report, "gallery_items", lambda *args, **kwargs: calls.append((list(args[3]), kwargs))
                        or original(*args, **kwargs))
    shown = evaluation.misclassified_indices(true_class=4)[:2]
    layer = classifier.cam_layers[0]
    text = report.build_report(classifier, evaluation, images, n=2, methods=("gradcam",), sanity_methods=("random",),
                               gallery_indices=shown, gallery_method="layercam", gallery_note="true class 4",
                               layer=layer, eigen_smooth=True)
    assert calls == [(shown.tolist(), {"method": "layercam", "layer": layer, "aug_smooth": False,
                                       "eigen_smooth": True})]
    assert f"<h2>Misclassified test images (layercam, eigen_smooth at {layer})</h2>" in text
    assert "<p class=note>true class 4</p>" in text and f"<td>CAM layer</td><td>{layer}</td>" in text
