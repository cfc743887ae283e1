import json

import numpy as np
from PIL import Image

from tests.conftest import main_in_process, run_cli


def test_cam_writes_overlays_and_prints_the_top5(tmp_path, data_dir):
    image = tmp_path / "seven.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 30), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    result = main_in_process("cam", "--model", "mnist14k", "--image", str(image), "--method", "layercam",
                     "--class", "7", "--out", str(out))
    (report,) = json.loads(result.stdout)
    assert report["explained_class"] == "7" and len(report["top"]) == 5
    overlay = Image.open(out / "seven-layercam.png")
    assert overlay.mode == "RGB" and overlay.size[0] >= 128


def test_cam_on_a_bad_image_is_one_message(tmp_path, data_dir):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    result = run_cli(  # the real command: one process start in this file
        "cam", "--model", "mnist14k", "--image", str(bad), "--out", str(tmp_path), check=False)
    assert result.returncode == 2 and "bad.png" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_prints_accuracy_and_per_class_json(data_dir):
    report = json.loads(main_in_process("evaluate", "--model", "mnist14k").stdout)
    assert report["n"] == 10000 and report["accuracy"] >= 0.9946
    assert set(report["per_class_accuracy"]) == {str(d) for d in range(10)}


def test_evaluate_without_shipped_weights_says_what_to_do(weights_dir, capsys):
    from eipviz.cli import main

    assert main(["evaluate", "--model", "mnist14k"]) == 2  # in-process: weights/ is empty for this test only
    assert "Train" in capsys.readouterr().err


def test_faithfulness_cli_prints_a_table_and_json_with_the_random_baseline(data_dir):
    result = main_in_process("faithfulness", "--model", "mnist14k", "--methods", "gradcam,layercam", "--n", "8",
                             "--json")
    rows = json.loads(result.stdout)
    assert [row["method"] for row in rows] == ["gradcam", "layercam", "random"]
    progress = result.stderr.splitlines()  # on stderr, so the JSON on stdout stays whole
    assert progress[0] == "[  0%] gradcam" and "[ 50%] layercam" in progress and progress[-1] == "[100%] done"
    for row in rows:
        assert 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1 and row["n"] == 8
        assert "road_combined" in row and "road_vs_random" in row
    table = main_in_process("faithfulness", "--model", "mnist14k", "--methods", "gradcam", "--n", "4",
                    "--metrics", "deletion,drop").stdout
    header = table.splitlines()[0].split()
    assert header == ["method", "deletion_auc", "average_drop_pct", "increase_in_confidence_pct", "n",
                      "deletion_vs_random", "average_drop_vs_random", "increase_in_confidence_vs_random"]


def test_unknown_metrics_and_methods_are_one_message_each():
    result = main_in_process("faithfulness", "--model", "mnist14k", "--metrics", "deletion,roads", check=False)
    assert result.returncode == 2 and "'roads'" in result.stderr and "deletion, insertion, drop, road" in result.stderr
    result = main_in_process("sanity", "--model", "mnist14k", "--methods", "gradcam,gradkam", check=False)
    assert result.returncode == 2 and "gradkam" in result.stderr and "Traceback" not in result.stderr


def test_sanity_cli_prints_a_table_and_json(data_dir):
    result = main_in_process("sanity", "--model", "mnist14k", "--methods", "gradcam", "--n", "4", "--depths", "2")
    assert result.stderr.splitlines()[-1].startswith("[100%] ")  # it said how far it had got
    header, row = result.stdout.splitlines()
    assert header.split() == ["method", "cascade_spearman", "spearman_randomised", "ssim_randomised",
                              "random_logit_spearman", "random_logit_ssim", "verdict"]
    assert row.startswith("gradcam") and ("passes" in row or "fails" in row)
    (report,) = json.loads(main_in_process("sanity", "--model", "mnist14k", "--methods", "random", "--n", "4",
                                   "--depths", "2", "--json").stdout)
    assert report["method"] == "random" and isinstance(report["passed"], bool)
    assert [point["randomised_layers"] for point in report["curve"]] == [1, report["layers_with_weights"]]


def test_import_log_prints_csv_and_stores_a_run(tmp_path):
    from eipviz.training.store import RunStore
    from tests.conftest import seed_file

    seed = seed_file("002")
    result = main_in_process("import-log", str(seed), "--store", "--name", "seed two", "--runs-dir", str(tmp_path))
    lines = result.stdout.splitlines()
    assert lines[0] == "epoch,loss,acc,val_loss,val_acc,lr" and len(lines) == 21
    (run,) = RunStore(tmp_path).list_runs()
    assert run.kind == "imported" and run.name == "seed two"


def test_import_log_of_noise_is_one_message(tmp_path):
    noise = tmp_path / "noise.log"
    noise.write_bytes(b"\x89PNG\x00\x00 not a log")
    result = main_in_process("import-log", str(noise), check=False)
    assert result.returncode == 2 and "binary" in result.stderr and "Traceback" not in result.stderr


def test_methods_lists_every_attribution_method_with_the_slow_ones_marked(capsys):
    from eipviz.attribution.methods import METHODS, SLOW_METHODS
    from eipviz.cli import main

    assert main(["methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["method"] for row in rows] == list(METHODS)
    assert {row["method"] for row in rows if row["slow"]} == set(SLOW_METHODS) >= {"scorecam", "ablationcam",
                                                                                   "smoothgrad", "integrated-gradients"}


def test_cam_takes_any_method_with_both_smoothing_options(tmp_path, data_dir, capsys):
    from eipviz.cli import main

    image = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (28, 28), dtype=np.uint8)).save(image)
    assert main(["cam", "--model", "mnist14k", "--image", str(image), "--method", "guided-gradcam",
                 "--aug-smooth", "--eigen-smooth", "--out", str(tmp_path)]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert Image.open(report["overlay"]).mode == "RGB"


def test_cam_with_an_unknown_method_names_the_choices(tmp_path, data_dir, capsys):
    from eipviz.cli import main

    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    assert main(["cam", "--model", "mnist14k", "--image", str(image), "--method", "gradcam3",
                 "--out", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "gradcam3" in message and "integrated-gradients" in message
