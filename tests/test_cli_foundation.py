import argparse
import json

import pytest

from eipviz.cli.options import load_for_cli, unit_interval
from eipviz.errors import EipvizError
from eipviz.training.store import RunStore
from tests.conftest import ROOT, main_in_process, run_cli
from tests.test_uploads import _saved


def test_models_lists_every_model_with_matching_counts():
    out = main_in_process("models").stdout
    for name in ("resnet18", "sepconv59k", "mnist14k", "sepconv65k", "resnet20v1"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert "True" in line.split()
    assert "11192458" in out and "99.46%" in out


def test_summary_csv_has_the_receptive_field_columns():
    lines = main_in_process("summary", "sepconv65k", "--format", "csv").stdout.splitlines()
    assert lines[0] == "layer,type,output_shape,kernel,stride,dilation,jump,rf,documented_rf,rf_differs,params"
    row = next(line for line in lines if line.startswith("sepconv7,"))
    assert ",34,34,False," in row


def test_unknown_model_is_a_message_not_a_traceback():
    result = run_cli("summary", "vgg16", check=False)
    assert result.returncode == 2
    assert "Unknown model 'vgg16'" in result.stderr and "Traceback" not in result.stderr


def test_a_count_of_zero_images_is_refused_by_the_parser(capsys):
    import pytest

    from eipviz.cli import build_parser

    for command in (["report", "--model", "mnist14k", "--out", "r.html"], ["faithfulness", "--model", "mnist14k"],
                    ["sanity", "--model", "mnist14k"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--n", "0"])
        assert "--n: must be 1 or more, not 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sanity", "--model", "mnist14k", "--depths", "two"])
    assert "--depths: must be a whole number, not 'two'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["cam", "--test-images", "1", "--out", "maps"], ["gallery", "--out", "p.png"],
                                     ["report", "--out", "r.html"], ["faithfulness"], ["sanity"]])
def test_an_empty_layer_is_refused_by_the_parser_saying_how_to_see_the_layers(capsys, command):
    """``--layer ""`` meant the model's CAM layer, unsaid."""
    from eipviz.cli import build_parser

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([*command, "--model", "mnist14k", "--layer", ""])
    assert stop.value.code == 2
    assert "--layer: must name a layer, not ''; leave --layer out for the model's CAM layer (`python -m eipviz " \
           "layers MODEL` lists a zoo model's layers)" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["-0.1", "1.5", "nan"])
def test_an_opacity_or_confidence_outside_0_to_1_is_refused(text):
    """``--alpha`` / ``--min-confidence`` take 0 to 1; NaN is refused too."""
    with pytest.raises(argparse.ArgumentTypeError):
        unit_interval(text)


def test_a_report_into_a_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    from eipviz.cli import explain

    monkeypatch.setattr(explain, "load_model", lambda *args: (_ for _ in ()).throw(AssertionError("loaded")))
    result = main_in_process("report", "--model", "mnist14k", "--out", tmp_path, check=False)
    assert result.returncode == 2 and f"{tmp_path} is a folder" in result.stderr
    result = main_in_process("report", "--model", "mnist14k", "--out", tmp_path / "r.png", check=False)
    assert result.returncode == 2 and "name it .html (e.g. " in result.stderr  # it wrote HTML as r.png


def test_a_file_the_system_cannot_read_or_write_is_a_message_not_a_traceback(monkeypatch):
    from eipviz.cli import explain

    def unreadable(args):
        raise PermissionError(13, "Permission denied", "/data/log.txt")

    monkeypatch.setattr(explain, "cmd_methods", unreadable)
    result = main_in_process("methods", check=False)
    assert result.returncode == 1 and result.stderr == "error: [Errno 13] Permission denied: '/data/log.txt'\n"


def test_weights_of_a_run_checkpoint_are_fed_as_the_run_trained_and_weights_with_a_file_is_refused(tmp_path):
    import shutil

    from eipviz.cli.options import checkpoint_preprocessing
    from eipviz.loading import load_classifier
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path / "runs")
    run_id = store.create_run(name="r", model="resnet20v1", hyperparameters={"preprocessing": "pixel_mean"})
    checkpoint = store.run_dir(run_id) / "best.keras"
    shutil.copy(ROOT / "weights" / "resnet20v1.keras", checkpoint)
    assert checkpoint_preprocessing(checkpoint) == "pixel_mean"
    assert checkpoint_preprocessing(ROOT / "weights" / "resnet20v1.keras") is None  # no run store there
    with pytest.raises(EipvizError, match="--weights goes with a zoo model name"):
        load_classifier(str(checkpoint), weights=str(checkpoint))


def test_a_runs_checkpoint_given_as_a_file_is_fed_as_that_run_trained(tmp_path):
    """``--model runs/RUN/best.keras``: the run's preprocessing, not unit_scale (the default for other files)."""
    store = RunStore(tmp_path)
    run_id = store.create_run(name="r", model="resnet20v1", recipe="fast", status="finished",
                              hyperparameters={"preprocessing": "channel_standardize"})
    checkpoint = _saved(store.run_dir(run_id), 10, "best.keras")
    assert load_for_cli(str(checkpoint)).preprocessing == "channel_standardize"


def test_recipes_prints_the_models_pages_recipe_table(capsys):
    import csv
    import io

    from eipviz.cli import main
    from eipviz.tables import recipe_table

    assert main(["recipes", "mnist14k", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["recipe"] for row in rows] == [row["recipe"] for row in recipe_table("mnist14k")]
    assert main(["recipes", "nope"]) == 2 and "Unknown model 'nope'" in capsys.readouterr().err


def test_report_draws_the_gallery_page_its_options_name_as_the_pages_button_does(tmp_path, monkeypatch, data_dir):
    """``report`` takes the gallery's filters, page, method, layer and smoothing (the README promises the page's
    report is the CLI's with the page's choices); the library call is checked, not the slow report itself."""
    from eipviz import report
    from eipviz.cli import explain
    from eipviz.evaluation import evaluate_test_set
    from eipviz.explain.gallery import PAGE_SIZE
    from eipviz.loading import load_zoo_model

    given = {}
    monkeypatch.setattr(report, "build_report", lambda *args, **kwargs: given.update(kwargs) or "<html></html>")
    result = main_in_process("report", "--model", "mnist14k", "--true", "9", "--method", "layercam",
                             "--eigen-smooth", "--out", tmp_path / "r.html")
    assert result.returncode == 0 and (tmp_path / "r.html").read_text() == "<html></html>"
    wrong_nines = evaluate_test_set(load_zoo_model("mnist14k")).misclassified_indices(true_class=9)
    assert list(given["gallery_indices"]) == list(wrong_nines[:PAGE_SIZE])
    assert (given["gallery_method"], given["eigen_smooth"], given["aug_smooth"]) == ("layercam", True, False)
    assert given["gallery_note"].startswith("true class 9, predicted All")
    refused = main_in_process("report", "--run", "x", "--weights", "w.keras", "--out", tmp_path / "r.html",
                              check=False)
    assert refused.returncode == 2 and "--weights and --preprocessing go with --model" in refused.stderr
    assert explain  # the module the command lives in


def test_output_piped_into_a_reader_that_stopped_ends_quietly():
    """``python -m eipviz curves --csv - | head``: "error: [Errno 32] Broken pipe" was printed."""
    import subprocess
    import sys

    code = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
            "from eipviz.cli import main; sys.exit(main(['methods']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr == ""


def test_a_report_into_a_place_that_cannot_be_written_is_refused_before_any_work():
    """``os.access`` says yes to root everywhere: /proc took the whole report, then failed."""
    from eipviz.report import report_path

    with pytest.raises(EipvizError, match="Cannot write /proc/x.html"):
        report_path("/proc/x.html")


def _refused(*args) -> str:
    result = main_in_process(*args, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_a_negative_seed_is_refused_by_the_parser():
    """NumPy's ``default_rng(-5)`` raised a traceback in ``cam``, ``faithfulness`` and ``sanity``."""
    from eipviz.cli import build_parser

    for command in (["cam", "--model", "mnist14k", "--test-images", "2", "--out", "o"],
                    ["faithfulness", "--model", "mnist14k"], ["sanity", "--model", "mnist14k"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--seed", "-5"])


def test_output_and_input_paths_of_the_wrong_kind_are_said_before_any_work(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "afile is a file; --out takes the folder to write the overlay PNGs into" in _refused(
        "cam", "--model", "no-such-model", "--test-images", "2", "--out", afile)  # before the model is loaded
    _refused("cam", "--model", "no-such-model", "--test-images", "2", "--out", tmp_path / "new")
    assert not (tmp_path / "new").exists()  # a failed command leaves no empty folder
    assert f"{tmp_path} is a folder; give image files" in _refused(
        "cam", "--model", "mnist14k", "--image", tmp_path, "--out", tmp_path / "o")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip at all")
    assert "broken.keras is not a readable Keras model file (BadZipFile)" in _refused(
        "evaluate", "--model", "mnist14k", "--weights", broken)  # it said "File not found"


def test_cam_refuses_more_test_images_than_the_test_set_and_a_layer_not_offered(tmp_path, data_dir):
    assert "--test-images takes 1 to 10,000: the mnist test set has 10,000 images" in _refused(
        "cam", "--model", "mnist14k", "--test-images", "100000", "--out", tmp_path)
    for command in ("cam", "sanity"):
        extra = ["--test-images", "1", "--out", tmp_path] if command == "cam" else []
        refusal = _refused(command, "--model", "mnist14k", "--layer", "nosuch", *extra)
        assert "Unknown layer(s) nosuch. Choose from: conv1" in refusal


@pytest.mark.parametrize("option, value, message", [
    ("--methods", "gradcam,gradcam", "--methods names gradcam more than once"),
    ("--layers", ",", "--layers names nothing"),
])
def test_a_list_option_naming_nothing_or_a_name_twice_is_refused(option, value, message):
    assert message in _refused("faithfulness", "--model", "mnist14k", option, value)


def test_a_reading_command_refuses_a_named_folder_without_a_store_and_leaves_it_alone(tmp_path):
    typo = tmp_path / "rnus"
    for args in (["runs"], ["curves"], ["delete", "x"], ["rename", "x", "y"], ["ship", "--run", "x"]):
        assert f"No run store in {typo}" in _refused(*args, "--runs-dir", typo)
    assert not typo.exists()


def test_an_imported_log_is_listed_with_its_best_epoch_and_a_viewer_gets_no_csv(tmp_path, monkeypatch):
    log = tmp_path / "keras.log"
    log.write_text("Epoch 1/3\n1/1 - loss: 0.9 - val_accuracy: 0.55\nEpoch 2/3\n1/1 - loss: 0.8 - val_accuracy: 0.7\n"
                   "Epoch 3/3\n1/1 - loss: 0.7 - val_accuracy: 0.65\n")
    runs = tmp_path / "runs"
    main_in_process("import-log", log, "--store", "--runs-dir", runs)
    (row,) = json.loads(main_in_process("runs", "--runs-dir", runs, "--json").stdout)
    assert (row["best_epoch"], row["best_val_acc"]) == (2, "0.7000")
    monkeypatch.setenv("EIPVIZ_MODE", "viewer")
    result = main_in_process("import-log", log, "--store", "--runs-dir", runs, check=False)
    assert result.returncode == 2 and result.stdout == "" and "not allowed" in result.stderr


def test_an_empty_out_or_one_under_a_file_is_refused_before_any_work(tmp_path):
    """``--out ""`` meant the current folder: `timeline` and `cam` wrote their PNGs into the project (a helper's
    fuzz of the CLI, 2026-11-28); under a file the failure came after the work, as "[Errno 17] File exists"."""
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    for command in (["cam", "--test-images", "2"], ["gallery"], ["sanity"], ["compare-methods", "--test-index", "0"]):
        assert "--out is empty; name" in _refused(*command, "--model", "no-such-model", "--out", "")
        assert f"{afile} is a file, not a folder; --out cannot write under it" in _refused(
            *command, "--model", "no-such-model", "--out", afile / "deeper" / "x.png")
    assert "--out is empty" in _refused("timeline", "no-such-run", "--runs-dir", tmp_path, "--out", "")
    assert "g.jpg: --out writes a PNG; give a name ending in .png" in _refused(
        "gallery", "--model", "no-such-model", "--out", tmp_path / "g.jpg")


def test_a_command_refused_after_its_model_loaded_leaves_no_folders(tmp_path):
    """`png_out` made the parent folders before any work; `gallery --true 11` then failed and left them."""
    assert "Unknown class '11'" in _refused("gallery", "--model", "mnist14k", "--true", "11",
                                            "--out", tmp_path / "a" / "b" / "g.png")
    assert not (tmp_path / "a").exists()


def test_more_test_images_than_the_test_set_are_refused_before_the_work(tmp_path, data_dir):
    """They were cut to the whole test set: `faithfulness --n 10001` and `report --n 1e20` ran for minutes."""
    for command in (["faithfulness", "--methods", "gradcam"], ["sanity"], ["report", "--out", tmp_path / "r.html"]):
        assert "--n takes 1 to 10,000: the mnist test set has 10,000 images. Received: 10,001." in _refused(
            *command, "--model", "mnist14k", "--n", "10001")
    assert not (tmp_path / "r.html").exists()


def test_a_path_that_is_no_regular_file_is_not_called_missing(tmp_path):
    assert "Log file /dev/null is not a regular file" in _refused("import-log", "/dev/null")
    assert "Image /dev/null is not a regular file" in _refused(
        "cam", "--model", "mnist14k", "--image", "/dev/null", "--out", tmp_path)
    assert f"Log file {tmp_path / 'none.log'} not found" in _refused("import-log", tmp_path / "none.log")


def test_a_damaged_run_checkpoint_is_not_called_missing(tmp_path):
    """`evaluate --run` said Keras' "File not found" of a best.keras that is there but no zip."""
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    run_id = store.create_run(name="r", model="mnist14k", status="finished")
    (store.run_dir(run_id) / "best.keras").write_text("x")
    assert "best.keras is not a readable Keras model file (BadZipFile)" in _refused(
        "evaluate", "--run", run_id, "--runs-dir", tmp_path)


def test_a_backend_eipviz_does_not_run_on_is_one_line_not_a_traceback_nor_a_queued_run(tmp_path, monkeypatch):
    """Keras' refusal was a traceback; a `train --detach` queued a run whose worker died with no reason."""
    monkeypatch.setenv("KERAS_BACKEND", "nosuch")
    assert "KERAS_BACKEND='nosuch': eipviz runs on tensorflow or jax" in _refused(
        "train", "--model", "mnist14k", "--runs-dir", tmp_path, "--detach")
    assert not (tmp_path / "runs.sqlite").exists()
