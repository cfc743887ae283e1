"""Behaviours a hand-made mutation review (2026-11-27) found no test pinned: each test here failed on its
mutant. Grouped by the module they guard; the section headers name where each belongs."""

import argparse
import pickle
import signal
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from app_pages import common
from eipviz import shipping
from eipviz.access import EDITORS_VARIABLE, MODE_VARIABLE, VIEWER, access_mode, is_editor
from eipviz.attribution import input_gradients
from eipviz.attribution.graph import INPUT, probe_model, softmax
from eipviz.attribution.input_gradients import integrated_gradients
from eipviz.attribution.methods import make_cam
from eipviz.classifier import Classifier
from eipviz.cli.options import load_for_cli, unit_interval
from eipviz.curves_import import tbevents
from eipviz.curves_import.tbevents import epoch_metric_name
from eipviz.data import CLASS_NAMES, _checked_arrays, load_dataset, load_test_split, sample_images
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation
from eipviz.explain import compare
from eipviz.explain.compare import default_grid_layers
from eipviz.explain.gallery import gallery_items
from eipviz.explain.overlay import gallery_sheet
from eipviz.explain.predict import ImageExplanation
from eipviz.explain.timeline import TIMELINE_FILE, Timeline, start_timeline, write_timeline
from eipviz.loading import load_uploaded_model
from eipviz.tables import recipe_table
from eipviz.training import worker
from eipviz.training.launcher import create_training_run
from eipviz.training.store import RunStore
from eipviz.zoo import build_model
from tests.test_classifier import classifier_of, tiny_model
from tests.test_data import _tiny_cifar_batches

# --- training/worker.py (home: tests/test_training.py) ---


def test_a_subset_run_validates_on_as_many_test_images(data_dir):
    """``--subset 64`` validates on the first 64 test images, not all 10,000 at every epoch."""
    _, _, x_val, y_val = worker._arrays("mnist", 64, 0)
    images, labels = load_test_split("mnist")
    assert len(x_val) == len(y_val) == 64 and np.array_equal(x_val, images[:64])


class _Stop(Exception):
    """Ends a worker run at the point a test has seen what it needs."""


@pytest.fixture
def own_signal_handlers():
    """train_run installs its stop flag as this process's SIGTERM/SIGINT handler: put pytest's back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_run_restarted_without_last_keras_carries_none_of_its_old_epochs(tmp_path, monkeypatch,
                                                                           own_signal_handlers):
    """No last.keras: the run trains from epoch 0, so no stored epoch is its plateau's history, best.keras' bar or
    metrics.csv's rows."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=64)
    store.add_epoch(run_id, 1, {"val_accuracy": 0.9, "val_loss": 0.3, "wall_time": 5.0})
    seen = []

    def capture(path, completed):
        seen.append(completed)
        raise _Stop

    monkeypatch.setattr(worker, "resume_metrics_csv", capture)
    with pytest.raises(_Stop):
        worker.train_run(store, run_id, verbose=0)
    assert seen == [[]]


def test_a_resumed_run_goes_on_from_its_stored_wall_time(tmp_path, monkeypatch, own_signal_handlers):
    """Resumed after epoch 1 (5 s in), the recorder counts on from 5 s: wall-time curves never go back."""
    store = RunStore(tmp_path)
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=64)
    store.add_epoch(run_id, 1, {"val_accuracy": 0.9, "wall_time": 5.0})
    (store.run_dir(run_id) / "last.keras").touch()
    inputs = keras.Input((28, 28, 1))
    classifier = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    classifier.compile(optimizer="sgd", loss="categorical_crossentropy")
    tiny = np.zeros((4, 28, 28), np.uint8), np.arange(4) % 10
    monkeypatch.setattr(worker, "_arrays", lambda *args: (*tiny, *tiny))
    monkeypatch.setattr(keras.models, "load_model", lambda path: classifier)
    seen = []

    def recorder(store, run_id, steps, stop, wall_time_before):
        seen.append(wall_time_before)
        raise _Stop

    monkeypatch.setattr(worker, "RunRecorder", recorder)
    assert worker.train_run(store, run_id, verbose=0) == "failed"  # _Stop, after the recorder saw its start
    assert seen == [5.0]


# --- loading.py (home: tests/test_uploads.py) ---


def _saved(tmp_path, outputs: int, name="model.keras"):
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="features")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax")(pooled))
    model.save(tmp_path / name)
    return tmp_path / name


def test_an_uploaded_32x32_rgb_model_of_five_classes_is_not_taken_for_cifar10(tmp_path):
    """Only 10 classes make a CIFAR-10 model: five classes get "class 0".."class 4" and no test set."""
    classifier = load_uploaded_model(_saved(tmp_path, 5))
    assert classifier.dataset is None and classifier.class_names == tuple(f"class {i}" for i in range(5))


def test_an_uploaded_model_with_one_output_is_refused_as_no_class_scores(tmp_path):
    """A single sigmoid unit is no class distribution: softmax over one class would always say 100%."""
    with pytest.raises(EipvizError, match="not class scores"):
        load_uploaded_model(_saved(tmp_path, 1))


# --- data.py (home: tests/test_data.py) ---


def test_keras_style_n_by_1_cifar10_labels_are_flattened():
    """Keras' own CIFAR-10 download (the fallback source) gives labels of shape (N, 1)."""
    images, labels = _checked_arrays("cifar10", np.zeros((2, 32, 32, 3), np.uint8), np.array([[3], [9]]), "keras")
    assert labels.tolist() == [3, 9] and labels.dtype == np.uint8


# --- shipping.py (home: tests/test_weights.py) ---


def test_the_manifest_records_the_whole_training_time_and_every_epoch(tmp_path, weights_dir, monkeypatch):
    """training_seconds is the last epoch's wall time (the run's total), not the first epoch's."""
    store = RunStore(tmp_path / "runs")
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2)
    build_model("mnist14k").save(store.run_dir(run_id) / "best.keras")
    store.add_epoch(run_id, 1, {"val_accuracy": 0.99, "wall_time": 10.0})
    store.add_epoch(run_id, 2, {"val_accuracy": 0.995, "wall_time": 25.04})
    store.update_run(run_id, status="finished")
    perfect = Evaluation(np.arange(10), np.eye(10, dtype=np.float32), CLASS_NAMES["mnist"])
    monkeypatch.setattr(shipping, "evaluate", lambda classifier: perfect)
    entry = shipping.ship_run(store, run_id)
    assert (entry["training_seconds"], entry["epochs"]) == (25.0, 2)


def test_cifar10_python_batches_decode_rows_as_height_then_width(tmp_path):
    """Each pickled row is C x H x W: pixel (0, 1) is raw[1], not raw[32] (a transposed image)."""
    batches = _tiny_cifar_batches(tmp_path / "cifar-10-batches-py")
    (_, _), (x_test, _), _ = load_dataset("cifar10", data_dir=tmp_path, keep=False)
    raw = pickle.loads((batches / "test_batch").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(x_test[0], raw.reshape(3, 32, 32).transpose(1, 2, 0))


def test_a_sample_larger_than_the_test_set_is_every_image_once(data_dir):
    """Drawn without replacement: no image twice in a faithfulness or report sample."""
    names = [name for name, _ in sample_images("mnist", 10**6, seed=0)]
    assert len(names) == len(set(names)) == 10_000


# --- report.py (home: tests/test_cli_foundation.py or a new tests/test_report.py) ---

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def report_parts(data_dir):
    """A report of a tiny MNIST-shaped model named like an uploaded file could be, with what reached its slow parts
    (gallery, faithfulness and sanity are recorded, not computed)."""
    import eipviz.report as report

    inputs = keras.Input((28, 28, 1))
    features = keras.layers.Conv2D(2, 3, activation="relu", name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(features)))
    names = (HOSTILE, *"123456789")
    classifier = Classifier(model, f"{HOSTILE}.keras", "unit_scale", names, "mnist", "features", source="test")
    labels = np.arange(40) % 10
    evaluation = Evaluation(labels, np.eye(10, dtype=np.float32)[(labels + 1) % 10], names)  # all 40 wrong
    seen = {}

    def recorded(what):
        def record(classifier, evaluation_or_sample, *args, **kwargs):
            seen[what] = args[1] if what == "gallery" else evaluation_or_sample
            return []
        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "gallery_items", recorded("gallery"))
        patch.setattr(report, "faithfulness", lambda *args, **kwargs: [])
        patch.setattr(report, "sanity_check", recorded("sanity"))
        html = report.build_report(classifier, evaluation, np.zeros((40, 28, 28), np.uint8), n=20,
                                   gallery_indices=np.arange(40))
    return html, seen


def test_the_report_gallery_shows_at_most_twelve_of_the_given_images(report_parts):
    """A page's filter may hold hundreds of mistakes: the report explains the first GALLERY_SIZE."""
    assert list(report_parts[1]["gallery"]) == list(range(12))


def test_the_report_sanity_check_runs_on_the_first_eight_sampled_images(report_parts):
    """Sanity maps are recomputed at every depth: only SANITY_IMAGES of the sample go through them."""
    assert len(report_parts[1]["sanity"]) == 8


def test_the_report_carries_plotly_inline_once_and_needs_no_network(report_parts):
    """The file opens offline: plotly.js inline (once), no CDN script."""
    html = report_parts[0]
    inline, from_cdn = html.count("* plotly.js v"), 'src="https://cdn.plot.ly' in html
    assert (inline, from_cdn) == (1, False)


def test_the_report_escapes_the_model_name_and_class_names(report_parts):
    """An uploaded file's or a class's name is text in the report, never markup that runs when it is opened."""
    html = report_parts[0]
    raw, escaped = html.count(HOSTILE), html.count("&lt;img src=x onerror=alert(1)&gt;")
    assert raw == 0 and escaped >= 3  # the title, the heading, the model row, the per-class table


# --- tables.py (home: tests/test_models_page.py or tests/test_recipes.py) ---


def test_the_recipe_table_names_the_plateau_callback_with_the_schedule():
    """The Models page's schedule column says the documented resnet18 recipe reduces its rate on a plateau."""
    documented = recipe_table("resnet18")[0]
    assert documented["schedule"] == "constant 0.003; ReduceLROnPlateau(x0.316, patience 3)"


# --- explain/compare.py (home: tests/test_compare.py) ---


def test_the_compare_grid_opens_on_the_layer_before_the_cam_layer_and_the_cam_layer():
    """The model's own CAM layer is always a default column (the last two of third-last, second-last, CAM layer)."""
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for name in ("c1", "c2", "c3", "c4"):
        x = keras.layers.Conv2D(2, 1, activation="relu", name=name)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    classifier = Classifier(model, "tiny", "unit_scale", ("a", "b", "c"), None, "c4", source="test")
    assert default_grid_layers(classifier) == ["c3", "c4"]


def test_rank_methods_puts_the_largest_margin_over_random_first(monkeypatch):
    """"Best first": the method that beats the random baseline by most leads; random (no margin) comes last."""
    rows = [{"method": "gradcam", "deletion_vs_random": 0.1}, {"method": "random", "deletion_vs_random": None},
            {"method": "layercam", "deletion_vs_random": 0.3}, {"method": "eigencam", "deletion_vs_random": -0.2}]
    monkeypatch.setattr(compare, "faithfulness", lambda *args, **kwargs: rows)
    ranked = compare.rank_methods(None, np.zeros((1, 8, 8, 3), np.uint8), ["gradcam", "layercam", "eigencam", "random"],
                                  ["c4"])
    assert [row["method"] for row in ranked] == ["layercam", "gradcam", "eigencam", "random"]


def test_more_than_five_models_are_refused():
    """The comparison takes 2 to 5 models, as the page and its docstring say."""
    evaluation = Evaluation(np.array([0, 1]), np.eye(3, dtype=np.float32)[[0, 1]], ("a", "b", "c"))
    with pytest.raises(EipvizError, match="2 to 5"):
        compare.compare_models(list("abcdef"), [evaluation] * 6)


# --- explain/gallery.py (home: tests/test_gallery_sheet.py) ---


def _red_left_blue_right_gallery():
    """Test image 1 is red on the left, blue on the right; it is blue (c2) and taken for red (c0) at 70%."""
    classifier = classifier_of(tiny_model())
    halves = np.zeros((8, 8, 3), np.uint8)
    halves[:, :4, 0], halves[:, 4:, 2] = 255, 255
    images = np.stack([np.zeros((8, 8, 3), np.uint8), halves])
    probabilities = np.array([[0.1, 0.8, 0.1], [0.7, 0.1, 0.2]], np.float32)
    return classifier, Evaluation(np.array([1, 2]), probabilities, classifier.class_names), images


def test_the_gallery_shows_the_predicted_class_cam_then_the_true_class_cam():
    """Column 2 explains what the model said (red: the left half), column 3 what it should have said (right)."""
    classifier, evaluation, images = _red_left_blue_right_gallery()
    (item,) = gallery_items(classifier, evaluation, images, [1])
    assert item.predicted_cam[:, :4].mean() > item.predicted_cam[:, 4:].mean()
    assert item.true_cam[:, 4:].mean() > item.true_cam[:, :4].mean()


def test_a_gallery_item_is_captioned_with_its_own_test_images_confidence():
    """Item for test index 1 shows index 1's confidence (70%), not that of the first image of the page."""
    classifier, evaluation, images = _red_left_blue_right_gallery()
    (item,) = gallery_items(classifier, evaluation, images, [1])
    assert item.caption == "#1: true c2, predicted c0 (70%)"


# --- explain/overlay.py (home: tests/test_gallery_sheet.py) ---


def test_a_sheet_caption_is_drawn_past_its_first_words():
    """Captions that differ only in the predicted class draw different sheets (captions are cut at 70 characters)."""
    row = [[np.zeros((8, 8, 3), np.uint8)] * 3]
    assert not np.array_equal(gallery_sheet(row, ["#12: true cat, predicted dog (97%)"]),
                              gallery_sheet(row, ["#12: true cat, predicted frog (97%)"]))


# --- explain/predict.py (home: tests/test_uploads.py) ---


def test_the_top_classes_are_the_most_probable_first():
    """The Upload page's and ``eipviz cam``'s top-5 list: highest probability first."""
    explanation = ImageExplanation(np.array([0.1, 0.6, 0.3], np.float32), 1, np.zeros((2, 2)), np.zeros((2, 2, 3)))
    assert [row["class"] for row in explanation.top(("a", "b", "c"), k=2)] == ["b", "c"]


# --- explain/timeline.py (home: tests/test_timeline.py) ---


def test_a_stored_timeline_of_another_cam_layer_starts_afresh(tmp_path):
    """A resumed run whose CAM layer changed must not append maps of one layer to those of another."""
    path = tmp_path / TIMELINE_FILE
    images, labels = np.zeros((2, 8, 8, 3), np.uint8), np.arange(2)
    write_timeline(path, Timeline(np.arange(2), images, labels, ("a", "b"), "old", np.array([1]),
                                  np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 3, 3), np.uint8), np.zeros(1),
                                  np.zeros(1)))
    fresh = start_timeline(path, images, labels, np.arange(2), ("a", "b"), "new", keep_epochs=1)
    assert (fresh.layer, len(fresh.epochs)) == ("new", 0)


# --- attribution/graph.py (home: tests/test_classifier.py, tests/test_cams.py) ---


def test_probabilities_of_large_logits_are_finite():
    """Softmax shifts by the largest logit: an uploaded model with logits of 1,000 still gets [1, 0], not NaN."""
    np.testing.assert_allclose(softmax(np.array([[1000.0, 0.0], [0.0, 0.0]])), [[1.0, 0.0], [0.5, 0.5]])


def test_guided_backprop_keeps_a_capped_relu_as_it_is():
    """Only plain ReLUs become guided ReLUs: a ReLU6 in a guided probe still caps at 6 (the forward pass is the
    model's)."""
    inputs = keras.Input((2,))
    capped = keras.layers.ReLU(max_value=6.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")(capped))
    x = np.array([[10.0, 10.0]], np.float32)
    _, logits = probe_model(model, INPUT, guided=True)([x, np.zeros_like(x)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), [[12.0]])


# --- attribution/input_gradients.py (home: tests/test_cam_formulas.py) ---


def test_integrated_gradients_use_the_midpoint_rule():
    """On a quadratic logit the midpoint sum is exact even with 4 steps (a left sum would miss a quarter)."""
    inputs = keras.Input((2, 2, 1))
    squared = keras.layers.Flatten()(keras.layers.Multiply()([inputs, inputs]))
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")(squared))
    cam = make_cam(model, "integrated-gradients")
    x = np.array([[[[1.0], [2.0]], [[3.0], [-1.0]]]], np.float32)
    attributions, error = integrated_gradients(cam, x, np.array([0]), np.zeros((2, 2, 1), np.float32), steps=4)
    np.testing.assert_allclose(attributions, x ** 2, rtol=1e-5)
    assert error.max() < 1e-5


def test_integrated_gradients_keep_each_images_worst_completeness_error_over_the_views(monkeypatch):
    """With aug_smooth, the error shown for an image is the worst of its six views, never the best."""
    returned = []

    def recorded(cam, inputs, classes, reference, steps):
        errors = np.array([0.1, 0.9]) * (len(returned) + 1) % 1.0  # each view ranks the two images differently
        returned.append(errors)
        return np.zeros_like(inputs), errors

    monkeypatch.setattr(input_gradients, "integrated_gradients", recorded)
    cam = make_cam(tiny_model(), "integrated-gradients")
    cam(np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)), [0, 1], aug_smooth=True)
    assert len(returned) > 1
    np.testing.assert_allclose(cam.completeness_error, np.max(returned, axis=0))


def test_smoothgrad_averages_the_gradients_of_its_noisy_copies():
    """SmoothGrad is the mean of |gradient| over the copies (1 and 3 give 2), not their largest."""
    cam = make_cam(tiny_model(), "smoothgrad")
    cam.samples = 2

    def gradients(noisy, classes):
        grads = np.ones_like(noisy)
        grads[1::2] *= 3  # each image's second noisy copy
        return None, None, grads, classes

    cam.gradients = gradients
    maps = cam.layer_maps(None, None, np.zeros((1, 8, 8, 3), np.float32), np.array([0]))
    np.testing.assert_allclose(maps, np.full((1, 8, 8), 2.0))


# --- curves_import/tbevents.py (home: tests/test_curves_import.py) ---


def test_an_epoch_lr_tag_is_the_learning_rate_of_either_writer():
    """tf.keras 2 logged ``epoch_lr``: it is the run's learning_rate, never ``lr`` or ``val_lr``."""
    assert epoch_metric_name("epoch_lr", True) == epoch_metric_name("epoch_lr", False) == "learning_rate"


@pytest.mark.parametrize("folder", ["validation", "val", "eval"])
def test_val_and_eval_folders_hold_the_validation_writers_files(folder):
    """An ``eval/`` writer's epoch_loss is val_loss, and its run is the folder above it."""
    path = Path("run") / folder / "events.out.tfevents.1"
    assert tbevents._is_validation(tbevents.EventFile(path, [], 0, 0))
    assert tbevents.run_directory(path) == Path("run")


# --- access.py (home: tests/test_viewer_mode.py) ---


def test_the_mode_and_the_editors_address_are_read_regardless_of_case(monkeypatch):
    """EIPVIZ_MODE=Viewer is viewer mode, and Alice@School.org signs in as the listed alice@school.org."""
    monkeypatch.setenv(MODE_VARIABLE, "Viewer")
    assert access_mode() == VIEWER
    monkeypatch.setenv(EDITORS_VARIABLE, "alice@school.org")
    assert is_editor(" Alice@School.org")


# --- cli/options.py (home: tests/test_cli_foundation.py) ---


@pytest.mark.parametrize("text", ["-0.1", "1.5", "nan"])
def test_an_opacity_or_confidence_outside_0_to_1_is_refused(text):
    """``--alpha`` / ``--min-confidence`` take 0 to 1; NaN is refused too."""
    with pytest.raises(argparse.ArgumentTypeError):
        unit_interval(text)


def test_a_runs_checkpoint_given_as_a_file_is_fed_as_that_run_trained(tmp_path):
    """``--model runs/RUN/best.keras``: the run's preprocessing, not unit_scale (the default for other files)."""
    store = RunStore(tmp_path)
    run_id = store.create_run(name="r", model="resnet20v1", recipe="fast", status="finished",
                              hyperparameters={"preprocessing": "channel_standardize"})
    checkpoint = _saved(store.run_dir(run_id), 10, "best.keras")
    assert load_for_cli(str(checkpoint)).preprocessing == "channel_standardize"


# --- app_pages/common.py (home: tests/test_page_helpers.py) ---


def test_markdown_link_and_image_syntax_is_escaped():
    """A run named ``![x](https://…)`` shows as text: no remote image in every viewer's browser."""
    assert common.literal("![x](https://e.com/a.png)") == r"\!\[x\](https\://e.com/a.png)"


def test_a_widget_whose_value_streamlit_dropped_gets_its_default_again(monkeypatch):
    """Back from another page, Streamlit has dropped the layer box's value: it is set to the model's default."""
    state = {"mis-layer-of": "zoo:mnist14k"}  # the same model as last time, but no "mis-layer" any more
    monkeypatch.setattr(common, "st", SimpleNamespace(session_state=state))
    common.default_for_model("mis-layer", "zoo:mnist14k", "conv3")
    assert state["mis-layer"] == "conv3"
