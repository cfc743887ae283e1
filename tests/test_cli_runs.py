"""The Curves page's tools on the command line: ``curves`` (selection, filter, tables, groups, tidy CSV), ``rename``,
``delete``, and what ``runs --json`` and ``timeline`` report."""

import json
import re
import subprocess
import sys

import pytest

from eipviz.curves import all_curve_runs, tidy_csv
from eipviz.errors import EipvizError
from eipviz.training.store import RunStore
from tests.conftest import ROOT, main_in_process, run_with_timeline

# Two learning rates, two seeds each: (name, learning rate, seed, val_accuracy by epoch), oldest first.
RUNS = (("lr0.1 seed1", 0.1, 1, [0.2, 0.5, 0.6]), ("lr0.1 seed2", 0.1, 2, [0.4, 0.7, 0.8]),
        ("lr0.01 seed1", 0.01, 1, [0.1, 0.2, 0.3]), ("lr0.01 seed2", 0.01, 2, [0.3, 0.4, 0.5]))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A run store holding RUNS as finished trained runs, in editor mode; ``store.ids`` maps names to ids."""
    monkeypatch.delenv("EIPVIZ_MODE", raising=False)
    store = RunStore(tmp_path / "runs")
    store.ids = {}
    for name, lr, seed, accuracy in RUNS:
        run_id = store.create_run(name=name, model="mnist14k", recipe="fast", status="finished",
                                  hyperparameters={"learning_rate": lr, "seed": seed, "epochs": 3,
                                                   "plateau": {"factor": 0.5}})
        store.add_epochs(run_id, {epoch: {"val_accuracy": value, "val_loss": 1 - value, "wall_time": 2.0 * epoch}
                                  for epoch, value in enumerate(accuracy, start=1)})
        store.ids[name] = run_id
    return store


def curves(store, *args, check=True):
    return main_in_process("curves", "--runs-dir", store.root, *args, check=check)


def curves_json(store, *args) -> dict:
    return json.loads(curves(store, *args, "--json").stdout)


def shown_names(report: dict) -> list[str]:
    return [row["run"] for row in report["runs"]]


def test_curves_shows_the_pages_opening_selection_the_two_newest_trained_runs_and_their_datasets_documented(store):
    assert shown_names(curves_json(store)) == ["lr0.01 seed2", "lr0.01 seed1", "mnist14k (documented, seed 002)"]


def test_curves_filter_alone_shows_every_run_whose_name_matches_the_glob(store):
    assert shown_names(curves_json(store, "--filter", "LR0.1*")) == ["lr0.1 seed2", "lr0.1 seed1"]


def test_curves_filter_alone_reaches_the_documented_reference_runs(store):
    assert shown_names(curves_json(store, "--filter", "seed 00[34]")) == [
        "sepconv65k (documented, seed 003)", "resnet20v1 (documented, seed 004)"]


def test_curves_shows_the_named_runs_in_the_order_given(store):
    report = curves_json(store, "--runs", store.ids["lr0.1 seed1"], "reference-mnist14k", store.ids["lr0.01 seed2"])
    assert shown_names(report) == ["lr0.1 seed1", "mnist14k (documented, seed 002)", "lr0.01 seed2"]


def test_curves_filter_narrows_the_named_runs_as_the_page_narrows_its_selection(store):
    report = curves_json(store, "--runs", store.ids["lr0.1 seed1"], store.ids["lr0.01 seed1"], "--filter", "0.01")
    assert shown_names(report) == ["lr0.01 seed1"]


def test_curves_a_filter_that_matches_nothing_is_a_message(store):
    result = curves(store, "--filter", "nothing*like*this", check=False)
    assert result.returncode == 2 and "No run's name matches --filter 'nothing*like*this'" in result.stderr


def test_curves_a_filter_that_matches_the_one_named_run_not_says_so_in_the_singular(store):
    result = curves(store, "--runs", store.ids["lr0.1 seed1"], "--filter", "nothing", check=False)
    assert result.returncode == 2 and "among the run selected." in result.stderr, result.stderr


def test_curves_an_unknown_run_id_is_a_message_naming_what_it_received(store):
    result = curves(store, "--runs", "no-such-run", check=False)
    assert result.returncode == 2
    assert "Received: --runs no-such-run" in result.stderr and store.ids["lr0.1 seed1"] in result.stderr


def test_curves_summary_gives_best_and_final_value_epochs_done_and_training_time(store):
    (row,) = curves_json(store, "--runs", store.ids["lr0.1 seed2"])["runs"]
    assert (row["best_metric"], row["best_value"], row["best_epoch"]) == ("val_accuracy", 0.8, 3)
    assert (row["final_value"], row["epochs done"], row["duration_s"]) == (0.8, 3, 6.0)


def test_curves_summary_is_printed_as_a_table_naming_the_metric_and_direction(store):
    out = curves(store, "--runs", store.ids["lr0.1 seed2"]).stdout
    assert out.splitlines()[0] == "best epoch by val_accuracy (max is better)"
    assert out.splitlines()[1].split()[:3] == ["run", "id", "kind"] and "lr0.1 seed2" in out.splitlines()[2]


def test_curves_a_loss_metric_is_best_at_its_minimum_by_default(store):
    report = curves_json(store, "--runs", store.ids["lr0.1 seed2"], "--metric", "val_loss")
    assert report["direction"] == "min"
    assert (report["runs"][0]["best_value"], report["runs"][0]["best_epoch"]) == (pytest.approx(0.2), 3)


def test_curves_direction_flips_which_epoch_is_best(store):
    (row,) = curves_json(store, "--runs", store.ids["lr0.1 seed2"], "--direction", "min")["runs"]
    assert (row["best_value"], row["best_epoch"]) == (0.4, 1)


def test_curves_hyperparameters_gives_every_stored_setting_a_column(store):
    report = curves_json(store, "--runs", store.ids["lr0.1 seed1"], store.ids["lr0.01 seed2"], "--hyperparameters")
    rows = report["hyperparameters"]
    assert [row["learning_rate"] for row in rows] == [0.1, 0.01] and [row["seed"] for row in rows] == [1, 2]
    assert rows[0]["plateau.factor"] == 0.5 and [row["best val_accuracy"] for row in rows] == [0.6, 0.5]


def test_curves_hyperparameter_table_is_printed_only_when_asked(store):
    assert "plateau.factor" not in curves(store).stdout
    out = curves(store, "--hyperparameters").stdout
    assert "\nhyperparameters\n" in out and "plateau.factor" in out


def test_curves_group_by_gives_each_groups_mean_and_min_max_band_per_epoch(store):
    report = curves_json(store, "--filter", "lr", "--group-by", "learning_rate")
    rows = [row for row in report["groups"] if row["group"] == "learning_rate=0.1"]
    assert [row["epoch"] for row in rows] == [1, 2, 3] and all(row["runs"] == 2 for row in rows)
    assert [row["mean"] for row in rows] == pytest.approx([0.3, 0.6, 0.7])
    assert [(row["lower"], row["upper"]) for row in rows] == [(0.2, 0.4), (0.5, 0.7), (0.6, 0.8)]


def test_curves_std_band_is_the_mean_plus_or_minus_the_population_deviation(store):
    report = curves_json(store, "--filter", "lr0.01", "--group-by", "recipe", "--band", "std")
    first = report["groups"][0]  # epoch 1: 0.1 and 0.3
    assert (first["mean"], first["lower"], first["upper"]) == pytest.approx((0.2, 0.1, 0.3))


def test_curves_groups_are_printed_per_group_and_epoch(store):
    out = curves(store, "--filter", "lr", "--group-by", "learning_rate").stdout
    assert "val_accuracy by learning_rate: mean and min-max band per epoch" in out
    assert [line.split()[:2] for line in out.splitlines() if line.startswith("learning_rate=0.01 ")] == [
        ["learning_rate=0.01", "1"], ["learning_rate=0.01", "2"], ["learning_rate=0.01", "3"]]


@pytest.mark.parametrize("option, value, choice", [("--metric", "val_acc", "val_accuracy"),
                                                   ("--group-by", "lr", "learning_rate"),
                                                   ("--band", "iqr", "min-max"),
                                                   ("--direction", "up", "max")])
def test_curves_an_unknown_choice_is_a_message_naming_what_it_received_and_the_choices(store, option, value, choice):
    result = curves(store, option, value, check=False)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert f"Received: {option}='{value}'" in result.stderr and choice in result.stderr.split("Choose one of:")[1]


def test_curves_csv_file_is_the_pages_tidy_csv_of_the_same_runs(store, tmp_path):
    formula = store.create_run(name="=HYPERLINK(1)", kind="imported", status="finished")
    store.add_epochs(formula, {1: {"val_accuracy": 0.9}})
    chosen = [store.ids["lr0.1 seed1"], formula, "reference-mnist14k"]
    curves(store, "--runs", *chosen, "--csv", tmp_path / "curves.csv")
    by_id = {run.id: run for run in all_curve_runs(store)}
    written = (tmp_path / "curves.csv").read_bytes().decode()
    assert written == tidy_csv([by_id[run_id] for run_id in chosen]) and "'=HYPERLINK(1)" in written


def test_curves_csv_dash_writes_the_csv_alone_to_standard_output(store):
    chosen = [store.ids["lr0.1 seed1"], "reference-mnist14k"]
    by_id = {run.id: run for run in all_curve_runs(store)}
    assert curves(store, "--runs", *chosen, "--csv", "-").stdout == tidy_csv([by_id[run_id] for run_id in chosen])


def test_rename_prints_the_name_given_and_stores_it(store):
    run_id = store.ids["lr0.1 seed1"]
    assert main_in_process("rename", run_id, "baseline", "--runs-dir", store.root).stdout == "baseline\n"
    assert store.get_run(run_id).name == "baseline"


def test_rename_to_another_runs_name_gets_a_counter_and_says_so(store):
    result = main_in_process("rename", store.ids["lr0.1 seed1"], "lr0.1 seed2", "--runs-dir", store.root)
    assert result.stdout == "lr0.1 seed2 (2)\n" and "another run is named 'lr0.1 seed2'" in result.stderr
    assert store.get_run(store.ids["lr0.1 seed1"]).name == "lr0.1 seed2 (2)"


def test_delete_removes_the_run_and_its_folder(store):
    run_id = store.ids["lr0.1 seed1"]
    assert main_in_process("delete", run_id, "--runs-dir", store.root).stdout == f"deleted {run_id}\n"
    assert run_id not in {run.id for run in store.list_runs()} and not store.run_dir(run_id).exists()


def test_delete_refuses_a_running_run_with_the_stores_message(store):
    run_id = store.create_run(name="training", model="mnist14k", status="running")
    result = main_in_process("delete", run_id, "--runs-dir", store.root, check=False)
    assert result.returncode == 2 and f"Run {run_id} is still running; stop it before deleting." in result.stderr
    assert store.get_run(run_id).status == "running" and store.run_dir(run_id).exists()


@pytest.mark.parametrize("command, done", [(["rename", "new name"], "renamed"), (["delete"], "deleted"),
                                           (["cancel"], "cancelled")])
def test_a_documented_run_is_said_to_be_read_only_not_missing(store, command, done):
    """Documented runs appear in ``curves`` beside the store's, so their ids get tried here too."""
    result = main_in_process(command[0], "reference-mnist14k", *command[1:], "--runs-dir", store.root, check=False)
    assert result.returncode == 2
    assert f"'reference-mnist14k' is a documented run, read from the course write-ups: it cannot be {done}." \
        in result.stderr


@pytest.mark.parametrize("command, done", [
    (["train", "--detach", "--resume"], "resumed"), (["timeline", "--out", "maps"], "shown as a timeline"),
    (["evaluate", "--run"], "loaded with --run"), (["ship", "--run"], "shipped")])
def test_a_documented_run_is_said_to_have_curves_only_not_to_be_missing(store, tmp_path, monkeypatch, command, done):
    """``train --resume``, ``timeline`` and ``--run`` said "No run" of an id ``curves`` shows."""
    monkeypatch.chdir(tmp_path)
    result = main_in_process(*command, "reference-mnist14k", "--runs-dir", store.root, check=False)
    assert result.returncode == 2
    assert f"'reference-mnist14k' is a documented run, read from the course write-ups: it cannot be {done}. " \
           "It has curves only, no checkpoint or timeline" in result.stderr, result.stderr


@pytest.mark.parametrize("command", [["rename", "new name"], ["delete"]])
def test_viewer_mode_refuses_rename_and_delete(store, monkeypatch, command):
    run_id = store.ids["lr0.1 seed1"]
    monkeypatch.setenv("EIPVIZ_MODE", "viewer")
    result = main_in_process(command[0], run_id, *command[1:], "--runs-dir", store.root, check=False)
    assert result.returncode == 2 and "not allowed: this eipviz is shared read-only" in result.stderr
    assert store.get_run(run_id).name == "lr0.1 seed1" and store.run_dir(run_id).exists()


def test_runs_json_gives_each_runs_name_and_hyperparameters(store):
    listed = {row["id"]: row for row in json.loads(main_in_process("runs", "--json", "--runs-dir", store.root).stdout)}
    row = listed[store.ids["lr0.01 seed2"]]
    assert row["name"] == "lr0.01 seed2"
    assert row["hyperparameters"] == {"learning_rate": 0.01, "seed": 2, "epochs": 3, "plateau": {"factor": 0.5}}


def test_curves_rename_and_delete_import_no_keras(store):
    run_id = store.ids["lr0.1 seed1"]
    code = ("import sys; from eipviz.cli import main; "
            f"codes = [main(['curves', '--runs-dir', r'{store.root}', '--group-by', 'seed']), "
            f"main(['rename', '{run_id}', 'x', '--runs-dir', r'{store.root}']), "
            f"main(['delete', '{run_id}', '--runs-dir', r'{store.root}'])]; "
            "print('RESULT', *codes, 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split("RESULT")[1].split() == ["0", "0", "0", "False", "False"], result.stdout + result.stderr


def test_timeline_prints_probe_accuracy_deletion_auc_and_average_drop_per_epoch(store, tmp_path):
    from eipviz.explain.timeline import TIMELINE_FILE, read_timeline

    run_id = run_with_timeline(store, epochs=(1, 2))
    report = json.loads(main_in_process("timeline", run_id, "--out", tmp_path / "out", "--runs-dir",
                                        store.root).stdout)
    timeline = read_timeline(store.run_dir(run_id) / TIMELINE_FILE)
    assert [row["epoch"] for row in report["by_epoch"]] == [1, 2]
    assert [row["probe_accuracy"] for row in report["by_epoch"]] == pytest.approx(timeline.accuracy().tolist())
    assert [row["deletion_auc"] for row in report["by_epoch"]] == pytest.approx(timeline.deletion_auc.tolist())
    assert [row["average_drop_pct"] for row in report["by_epoch"]] == pytest.approx(
        timeline.average_drop_pct.tolist())


def test_train_resume_refuses_options_it_would_ignore(store):
    run_id = store.ids["lr0.1 seed1"]
    store.update_run(run_id, status="cancelled")
    result = main_in_process("train", "--resume", run_id, "--model", "resnet18", "--epochs", "9", "--detach",
                             "--runs-dir", store.root, check=False)
    assert result.returncode == 2 and "--model, --epochs cannot change them" in result.stderr
    assert store.get_run(run_id).status == "cancelled"  # nothing queued


def test_train_resume_refuses_a_recipe_even_the_default_one(store):
    """``--recipe documented`` went through unsaid: the default was compared, not whether it was typed."""
    run_id = store.ids["lr0.1 seed1"]
    store.update_run(run_id, status="cancelled")
    result = main_in_process("train", "--resume", run_id, "--recipe", "documented", "--detach",
                             "--runs-dir", store.root, check=False)
    assert result.returncode == 2 and "--recipe cannot change them" in result.stderr
    assert store.get_run(run_id).status == "cancelled"


@pytest.mark.parametrize("option", ["--epochs", "--batch-size"])
def test_train_refuses_zero_epochs_or_batch_size_rather_than_taking_the_recipes(store, option):
    with pytest.raises(SystemExit) as exit_:  # argparse's usage error: "must be 1 or more, not 0"
        main_in_process("train", "--model", "mnist14k", option, "0", "--detach", "--runs-dir", store.root)
    assert exit_.value.code == 2
    assert len(store.list_runs()) == len(RUNS)


def test_cancel_of_a_training_run_returns_once_it_has_stopped_so_a_resume_may_follow(store):
    """``cancel; train --resume`` was refused ("is running"): cancel returned before the worker's batch ended."""
    run_id = store.ids["lr0.1 seed1"]
    stops = (f"import signal, sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
             "from eipviz.training.store import RunStore\n"
             "def stop(*_):\n"
             "    time.sleep(1)  # the batch it finishes\n"
             f"    RunStore({str(store.root)!r}).update_run({run_id!r}, status='cancelled'); sys.exit(0)\n"
             "signal.signal(signal.SIGTERM, stop); print('ready', flush=True); time.sleep(60)")
    worker = subprocess.Popen([sys.executable, "-c", stops, "eipviz worker"], stdout=subprocess.PIPE, text=True)
    try:
        worker.stdout.readline()
        store.update_run(run_id, status="running", pid=worker.pid, slot="cpu")
        result = main_in_process("cancel", run_id, "--runs-dir", store.root)
        assert result.stdout.splitlines() == [f"stopping {run_id} after its current batch…", f"cancelled {run_id}"]
        assert store.get_run(run_id).status == "cancelled"
    finally:
        worker.kill()
        worker.wait()


def test_resuming_a_run_in_a_folder_without_a_store_makes_none(tmp_path):
    result = main_in_process("train", "--resume", "nosuch", "--runs-dir", tmp_path / "typo", check=False)
    assert result.returncode == 2 and "No run store in" in result.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("name, message", [
    ("line1\nline2", r"A run name is one line of printable characters; 'line1\\nline2' has '\\n'."),
    ("tab\there", r"has '\\t'"),
    ("abc\u202edcba", r"has '\\u202e'"),  # reads as "abcabcd"
    ("a\u2028b", r"has '\\u2028'"),  # a line separator
    ("x" * 201, "A run name is at most 200 characters; this one has 201."),
])
def test_a_name_no_table_can_show_on_one_line_is_refused(store, name, message):
    """A line break split the rows of ``runs`` and ``curves``; 5,000 characters made every table that wide."""
    run_id = store.ids["lr0.1 seed1"]
    result = main_in_process("rename", run_id, name, "--runs-dir", store.root, check=False)
    assert result.returncode == 2 and re.search(message, result.stderr), result.stderr
    assert store.get_run(run_id).name == "lr0.1 seed1"
    with pytest.raises(EipvizError, match=message):
        store.create_run(name=name, kind="imported", status="finished")
    assert len(store.list_runs()) == len(RUNS) and len([p for p in store.root.iterdir() if p.is_dir()]) == len(RUNS)


def test_an_import_named_after_a_long_or_odd_file_name_is_stored_under_a_fitted_name(tmp_path):
    """Named by default after its file, a 212-character or tabbed stem made the import fail (after the CSV)."""
    from eipviz.training.store import MAX_NAME_CHARS

    log = tmp_path / ("x" * 205 + "\tlog.csv")
    log.write_text("epoch,loss\n0,1.5\n1,1.2\n")
    result = main_in_process("import-log", log, "--store", "--runs-dir", tmp_path / "runs")
    (run,) = RunStore(tmp_path / "runs").list_runs()
    assert len(run.name) == MAX_NAME_CHARS and run.name.endswith("…") and "\t" not in run.name
    assert "stored as run" in result.stderr
    typed = main_in_process("import-log", log, "--store", "--name", "a\nb", "--runs-dir", tmp_path / "runs",
                            check=False)
    assert typed.returncode == 2 and typed.stdout == "" and "one line of printable characters" in typed.stderr


def test_a_followed_train_ended_by_sigterm_cancels_its_run_as_ctrl_c_does(tmp_path, monkeypatch):
    """It left the run training with nobody watching (`timeout 60 python -m eipviz train ...`)."""
    import os
    import signal
    import threading

    from eipviz.cli import runs as run_commands
    from eipviz.training.queue import RunQueue
    from eipviz.training.store import RunStore

    monkeypatch.setattr(RunQueue, "wake", lambda self: None)  # no scheduler: the run waits, queued
    store = RunStore(tmp_path)
    run_id = store.create_run(name="r", model="mnist14k", hyperparameters={"epochs": 1})
    store.enqueue(run_id, {})
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert run_commands._follow(store, run_id) == 130
    assert store.get_run(run_id).status == "cancelled"
    assert signal.getsignal(signal.SIGTERM) is before
