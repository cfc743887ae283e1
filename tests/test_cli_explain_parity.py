"""The explanation commands give what the pages give: each is checked against the library call its page makes."""

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from eipviz.evaluation import dataset_test_split, evaluate_test_set, sample_test_images
from eipviz.loading import load_run_checkpoint, load_zoo_model
from eipviz.training.store import RunStore
from tests.conftest import ROOT, main_in_process


def png(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)


def png_array(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)


def shipped_as_run(store: RunStore, model: str, preprocessing: str) -> str:
    """A trained run whose best checkpoint is the shipped ``model`` (its stored predictions beside it)."""
    run_id = store.create_run(name=f"{model} fast", model=model, status="finished",
                              hyperparameters={"preprocessing": preprocessing})
    shutil.copy(ROOT / "weights" / f"{model}.keras", store.run_dir(run_id) / "best.keras")
    shutil.copy(ROOT / "weights" / f"{model}.predictions.npz", store.run_dir(run_id) / "best.predictions.npz")
    return run_id


@pytest.fixture
def large_photo(tmp_path, data_dir):
    """A 1200x800 colour photo (CIFAR-10 test image 3, enlarged): the Upload page shrinks it on reading."""
    images, _ = dataset_test_split(load_zoo_model("sepconv59k"))
    path = tmp_path / "big.png"
    Image.fromarray(images[3]).resize((1200, 800), Image.Resampling.BICUBIC).save(path)
    return path


# -- cam: the Upload page ----------------------------------------------------------------------------------


def test_cam_scores_a_large_image_as_the_upload_page_does_and_prints_its_notes(large_photo, tmp_path):
    from eipviz.images import read_image, read_upload

    result = main_in_process("cam", "--model", "mnist14k", "--image", large_photo, "--out", tmp_path / "out")
    (report,) = json.loads(result.stdout)
    classifier = load_zoo_model("mnist14k")
    data = large_photo.read_bytes()
    page = classifier.probabilities([read_upload(data, "big.png", max(classifier.input_size[:2])).pixels])[0]
    expected = [round(float(page[k]), 6) for k in np.argsort(-page)[:5]]
    assert [row["probability"] for row in report["top"]] == expected  # top-5, as the page
    full_size = classifier.probabilities([read_image(data)])[0]  # what the CLI used to decode
    assert not np.allclose(page, full_size, atol=1e-5)
    notes = result.stderr.splitlines()
    assert notes[0] == f"note: {large_photo}: resized from 1200x800 to 28x28; converted to grayscale to fit the model."
    assert notes[1].startswith(f"note: {large_photo} may not suit a MNIST model: colour photo")


def test_cam_of_a_run_checkpoint_is_fed_with_the_runs_preprocessing(large_photo, tmp_path):
    from eipviz.images import read_upload

    store = RunStore(tmp_path / "runs")
    run_id = shipped_as_run(store, "sepconv59k", "channel_standardize")
    run = load_run_checkpoint(store, run_id)
    pixels = read_upload(large_photo.read_bytes(), "big.png", 32).pixels
    expected = run.probabilities([pixels])[0]
    unit_scale = load_zoo_model("sepconv59k", preprocessing="unit_scale").probabilities([pixels])[0]
    assert not np.allclose(expected, unit_scale, atol=1e-3)
    for source in (["--run", run_id, "--runs-dir", store.root], ["--model", store.run_dir(run_id) / "best.keras"]):
        (report,) = json.loads(main_in_process("cam", *source, "--image", large_photo, "--top", "10",
                                               "--out", tmp_path / "out").stdout)
        assert {row["index"]: row["probability"] for row in report["top"]} == pytest.approx(
            dict(enumerate(expected.tolist())), abs=1e-6), source


def test_cam_run_with_a_preprocessing_is_refused(tmp_path, data_dir):
    result = main_in_process("cam", "--run", "20261127-000000-x", "--preprocessing", "unit_scale",
                             "--test-images", "1", "--out", tmp_path, check=False)
    assert result.returncode == 2 and "--preprocessing go with --model" in result.stderr


def test_cam_test_images_are_the_upload_pages_draw_with_its_top_k_and_opacity(tmp_path, data_dir):
    from eipviz.data import sample_images
    from eipviz.explain.overlay import png_bytes
    from eipviz.explain.predict import explain_images

    reports = json.loads(main_in_process("cam", "--model", "mnist14k", "--test-images", "2", "--seed", "3",
                                         "--top", "2", "--alpha", "0.8", "--class", "1", "7",
                                         "--out", tmp_path).stdout)
    drawn = sample_images("mnist", 2, 3)
    assert [report["image"] for report in reports] == [name for name, _ in drawn]
    assert [report["explained_class"] for report in reports] == ["1", "7"]
    assert all(len(report["top"]) == 2 for report in reports)
    expected = explain_images(load_zoo_model("mnist14k"), [image for _, image in drawn], class_indices=[1, 7],
                              alpha=0.8)
    for report, explanation in zip(reports, expected):
        assert np.array_equal(png(report["overlay"]), png_array(png_bytes(explanation.overlay)))


def test_cam_refuses_a_class_count_that_fits_neither_all_images_nor_each(tmp_path, data_dir):
    result = main_in_process("cam", "--model", "mnist14k", "--test-images", "3", "--class", "1", "2",
                             "--out", tmp_path, check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "one per image (3)" in result.stderr


# -- gallery and the confusion matrix: the Misclassified page ------------------------------------------------


def test_gallery_writes_the_pages_png_export_of_the_same_items(tmp_path, data_dir):
    from eipviz.explain.gallery import (
        COLUMN_LABELS,
        PAGE_SIZE,
        gallery_items,
        gallery_note,
        gallery_page,
        gallery_png_sheet,
        sheet_header,
    )
    from eipviz.explain.overlay import png_bytes

    out = tmp_path / "page.png"
    summary = json.loads(main_in_process("gallery", "--model", "mnist14k", "--true", "9", "--confidence", "0.3",
                                         "0.95", "--method", "layercam", "--aug-smooth", "--out", out).stdout)
    classifier = load_zoo_model("mnist14k")
    images, _ = dataset_test_split(classifier)
    evaluation = evaluate_test_set(classifier)
    indices = evaluation.misclassified_indices(true_class=9, min_confidence=0.3, max_confidence=0.95)
    _, pages = gallery_page(indices, 1, PAGE_SIZE)
    shown, _ = gallery_page(indices, 1, PAGE_SIZE)
    items = gallery_items(classifier, evaluation, images, shown, method="layercam", aug_smooth=True)
    note = gallery_note("9", "All", 0.3, 0.95, 1, pages)
    sheet = gallery_png_sheet(items, header=sheet_header(classifier, "layercam", None, note, ("aug_smooth",)),
                              column_labels=COLUMN_LABELS)
    assert np.array_equal(png(out), png_array(png_bytes(sheet)))
    assert summary["count"] == len(indices) and summary["pages"] == pages and summary["filters"] == note
    assert [row["index"] for row in summary["shown"]] == shown.tolist()
    assert [(row["true"], row["predicted"]) for row in summary["shown"]] == [
        (item.true_class, item.predicted_class) for item in items]


@pytest.mark.parametrize("arguments, message", [
    (["--true", "cat"], "Unknown class 'cat'"),
    (["--predicted", "10"], "Unknown class '10'"),
    (["--confidence", "0.9", "0.5"], "LOW at most HIGH"),
    (["--page", "99"], "Page 99 is past the last"),
], ids=["unknown class", "class index out of range", "confidence reversed", "page past the last"])
def test_gallery_bad_filters_are_one_message_and_exit_2(arguments, message, tmp_path, data_dir):
    result = main_in_process("gallery", "--model", "mnist14k", *arguments, "--out", tmp_path / "p.png", check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p.png").exists()


def test_gallery_into_a_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    from eipviz.cli import explain

    monkeypatch.setattr(explain, "load_model", lambda args: (_ for _ in ()).throw(AssertionError("loaded")))
    result = main_in_process("gallery", "--model", "mnist14k", "--out", tmp_path, check=False)
    assert result.returncode == 2 and f"{tmp_path} is a folder" in result.stderr


def test_gallery_confidence_outside_0_to_1_is_refused_by_the_parser(capsys):
    from eipviz.cli import build_parser

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["gallery", "--model", "mnist14k", "--confidence", "0", "1.5", "--out", "p.png"])
    assert stop.value.code == 2 and "--confidence: must be from 0 to 1, not 1.5" in capsys.readouterr().err


def test_evaluate_confusion_is_the_pages_matrix_rows_true_columns_predicted(data_dir):
    from eipviz.plots import confusion_values

    report = json.loads(main_in_process("evaluate", "--model", "mnist14k", "--confusion").stdout)["confusion_matrix"]
    matrix = evaluate_test_set(load_zoo_model("mnist14k")).confusion_matrix()
    assert report["classes"] == [str(k) for k in range(10)]
    assert report["counts"] == matrix.tolist() and report["row_percent"] == confusion_values(matrix, "row %")
    assert report["row_percent"][0][0] is None  # the diagonal is masked, as on the page


# -- faithfulness ranking and the sanity strip: below the gallery ---------------------------------------------


def test_faithfulness_ranks_methods_and_layers_as_the_pages_compute_and_rank(data_dir):
    from eipviz.explain.compare import rank_methods

    rows = json.loads(main_in_process("faithfulness", "--model", "mnist14k", "--methods", "gradcam,layercam,saliency",
                                      "--layers", "conv7,class_maps1x1", "--rank-by", "insertion", "--n", "4",
                                      "--json").stdout)
    classifier = load_zoo_model("mnist14k")
    expected = rank_methods(classifier, sample_test_images(classifier, 4), ["gradcam", "layercam", "saliency"],
                            ["conv7", "class_maps1x1"], "insertion")
    assert [(row["method"], row["layer"]) for row in rows] == [(row["method"], row["layer"]) for row in expected]
    assert [row["insertion_vs_random"] for row in rows] == pytest.approx(
        [row["insertion_vs_random"] for row in expected], nan_ok=True)
    table = main_in_process("faithfulness", "--model", "mnist14k", "--methods", "gradcam", "--layers", "conv7",
                            "--n", "2").stdout
    assert table.splitlines()[0].split()[:3] == ["method", "layer", "deletion_auc"]  # deletion by default


def test_faithfulness_refuses_layer_with_layers_metrics_with_ranking_and_an_unknown_layer(data_dir):
    for arguments, message in ((["--layer", "conv7", "--layers", "conv6"], "not both"),
                               (["--layers", "conv7", "--metrics", "drop"], "--metrics goes without"),
                               (["--rank-by", "roads"], "'roads'"),
                               (["--layers", "conv7,conv99"], "Unknown layer(s) conv99")):
        result = main_in_process("faithfulness", "--model", "mnist14k", "--n", "2", *arguments, check=False)
        assert result.returncode == 2 and message in result.stderr, (arguments, result.stderr)


def test_sanity_out_writes_the_pages_strip_of_maps(tmp_path, data_dir):
    from eipviz.explain.overlay import png_bytes
    from eipviz.explain.sanity import sanity_check, sanity_strip, sanity_strip_sheet

    out = tmp_path / "strip.png"
    main_in_process("sanity", "--model", "mnist14k", "--methods", "gradcam", "--n", "2", "--depths", "2", "--out", out)
    classifier = load_zoo_model("mnist14k")
    images = sample_test_images(classifier, 2)
    results = sanity_check(classifier, images, ["gradcam"], depths=2)
    assert [caption for caption, _ in sanity_strip(results[0])][0] == "trained"
    assert np.array_equal(png(out), png_array(png_bytes(sanity_strip_sheet(classifier, images[0], results))))


# -- compare-methods and compare-models: the Compare page ------------------------------------------------------


def test_compare_methods_prints_each_maps_aucs_and_writes_the_grid(tmp_path, data_dir):
    from eipviz.explain.compare import method_grid, method_grid_sheet
    from eipviz.explain.overlay import png_bytes

    out = tmp_path / "grid.png"
    report = json.loads(main_in_process("compare-methods", "--model", "mnist14k", "--test-index", "12", "--methods",
                                        "gradcam,saliency,random", "--layers", "conv7,class_maps1x1", "--class", "3",
                                        "--json", "--out", out).stdout)
    classifier = load_zoo_model("mnist14k")
    images, _ = dataset_test_split(classifier)
    target, scores = method_grid(classifier, images[12], ["gradcam", "saliency", "random"],
                                 ["conv7", "class_maps1x1"], 3)
    assert report["explained_class"] == "3" and target == 3
    assert [(row["method"], row["layer"], row["deletion_auc"], row["insertion_auc"]) for row in report["scores"]] == [
        (s.method, s.layer, round(s.deletion_auc, 4), round(s.insertion_auc, 4)) for s in scores]
    image_name = report["image"]
    assert image_name == "test #12, true 9"
    assert np.array_equal(png(out), png_array(png_bytes(method_grid_sheet(classifier, images[12], target, scores,
                                                                          image_name))))


def test_compare_methods_defaults_are_the_pages_and_a_bad_index_is_a_message(large_photo, tmp_path):
    from eipviz.explain.compare import GRID_METHODS, default_grid_layers, method_grid
    from eipviz.images import read_upload

    report = json.loads(main_in_process("compare-methods", "--model", "sepconv59k", "--image", large_photo, "--json",
                                        "--out", tmp_path / "grid.png").stdout)
    classifier = load_zoo_model("sepconv59k")
    layers = default_grid_layers(classifier)
    assert [(row["method"], row["layer"]) for row in report["scores"]] == [
        (method, layer) for method in GRID_METHODS for layer in layers]
    _, scores = method_grid(classifier, read_upload(large_photo.read_bytes(), "big.png", 32).pixels, ["gradcam"],
                            layers[-1:])
    assert report["scores"][1]["deletion_auc"] == round(scores[0].deletion_auc, 4)  # read as the page reads uploads
    result = main_in_process("compare-methods", "--model", "mnist14k", "--test-index", "10000", "--out",
                             tmp_path / "g.png", check=False)
    assert result.returncode == 2 and "from 0 to 9999" in result.stderr


def test_compare_models_of_shipped_weights_and_a_run_as_the_page_compares_them(tmp_path, data_dir):
    from eipviz.explain.compare import compare_models, disagreement_rows, disagreement_sheet
    from eipviz.explain.overlay import png_bytes

    store = RunStore(tmp_path / "runs")
    run_id = shipped_as_run(store, "sepconv59k", "channel_standardize")
    out = tmp_path / "compared"
    report = json.loads(main_in_process("compare-models", "--models", f"resnet20v1,{run_id}", "--runs-dir",
                                        store.root, "--disputed", "3", "--out", out).stdout)
    classifiers = [load_zoo_model("resnet20v1"), load_run_checkpoint(store, run_id)]
    evaluations = [evaluate_test_set(classifier) for classifier in classifiers]
    names = ("resnet20v1", f"sepconv59k fast · {run_id}")
    comparison = compare_models(names, evaluations)
    assert [(m["name"], m["accuracy"]) for m in report["models"]] == [
        (name, round(accuracy, 6)) for name, accuracy in zip(names, comparison.accuracies)]
    assert report["both_wrong"] == [{"models": list(names), "count": int(comparison.both_wrong[0, 1])}]
    shown = comparison.disagreements[:3]
    assert [row["index"] for row in report["most_disputed"]] == shown.tolist()
    images, labels = dataset_test_split(classifiers[0])
    rows = disagreement_rows(classifiers, evaluations, images, shown, size=160)
    assert [[a["predicted"] for a in row["answers"]] for row in report["most_disputed"]] == [
        [answer.predicted_class for answer in answers] for answers in rows]
    sheet = disagreement_sheet(names, images, labels, classifiers[0].class_names, shown, rows)
    assert np.array_equal(png(out / "disputed.png"), png_array(png_bytes(sheet)))
    with (out / "both_wrong.csv").open() as handle:
        assert [[int(c) for c in row[1:]] for row in list(csv.reader(handle))[1:]] == comparison.both_wrong.tolist()


@pytest.mark.parametrize("models, message", [
    ("mnist14k", "Compare 2 to 5 models. Received: 1"),
    ("mnist14k,vgg16", "Unknown model 'vgg16'"),
    ("mnist14k,resnet20v1", "different test sets"),
], ids=["one model", "unknown name", "two datasets"])
def test_compare_models_bad_choices_are_one_message(models, message, tmp_path, data_dir):
    result = main_in_process("compare-models", "--models", models, "--runs-dir", tmp_path, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr



def test_cam_writes_one_overlay_per_image_even_when_two_files_share_a_name(tmp_path, data_dir):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("L", (28, 28), 40 if folder == "a" else 200).save(tmp_path / folder / "x.png")
    report = json.loads(main_in_process("cam", "--model", "mnist14k", "--image", tmp_path / "a" / "x.png",
                                        tmp_path / "b" / "x.png", "--out", tmp_path / "out").stdout)
    assert [Path(entry["overlay"]).name for entry in report] == ["x-gradcam.png", "x-gradcam-2.png"]
