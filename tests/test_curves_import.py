"""Importing curves people already have: TensorBoard event files from a real Keras training, W&B, MLflow and TensorBoard
CSVs."""

import re
import shutil
import struct
from pathlib import Path

import pytest

from eipviz.curves_import import parse_text, read_run_path, read_uploads, tbevents
from eipviz.curves_import.history_csv import parse_history_csv
from eipviz.curves_import.tbevents import epoch_metric_name
from eipviz.errors import EipvizError
from tests.conftest import run_cli

# One worker runs the whole module, so its module fixture is built once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("tensorboard")


def fit_with_tensorboard(logdir, epochs: int, initial_epoch: int = 0, seed: int = 0) -> dict:
    """A real ``keras.callbacks.TensorBoard`` training of a tiny model into ``logdir``: its History.history."""
    import keras
    import numpy as np

    from eipviz.quiet import import_keras_quietly

    import_keras_quietly()
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8, 8, 1), dtype="float32"), rng.integers(0, 2, 64)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, initial_epoch=initial_epoch, batch_size=16, validation_split=0.25,
                        verbose=0, callbacks=[keras.callbacks.TensorBoard(str(logdir))])
    return history.history


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    """A real 3-epoch training: (log dir, History.history)."""
    logdir = tmp_path_factory.mktemp("tb")
    return logdir, fit_with_tensorboard(logdir, epochs=3)


@pytest.fixture(scope="module")
def retrained_run(tensorboard_run, tmp_path_factory):
    """The 3-epoch log dir with a second, 2-epoch training written into it: (log dir, the second History)."""
    logdir = tmp_path_factory.mktemp("retrained") / "run"
    shutil.copytree(tensorboard_run[0], logdir)
    return logdir, fit_with_tensorboard(logdir, epochs=2, seed=1)


def event_uploads(logdir) -> list[tuple[str, bytes]]:
    """The run's event files as the upload widget gives them: bare names, no folders."""
    return [(path.name, path.read_bytes()) for path in sorted(logdir.rglob("*tfevents*"))]


def test_a_keras_tensorboard_folder_is_one_run_with_train_and_validation_merged(tensorboard_run):
    logdir, history = tensorboard_run
    parsed = read_run_path(logdir)
    rows = parsed.rows()
    assert [r["epoch"] for r in rows] == [1, 2, 3] and parsed.warnings == []
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [r[name] for r in rows] == pytest.approx(history[name], rel=1e-6), name
    assert [r["lr"] for r in rows] == pytest.approx([0.1] * 3)
    walls = [r["wall_time"] for r in rows]
    assert walls == sorted(walls) and walls[0] >= 0


def test_uploaded_event_files_merge_even_without_their_folder_names(tensorboard_run):
    logdir, history = tensorboard_run
    rows = read_uploads(event_uploads(logdir)).rows()
    assert [r["val_loss"] for r in rows] == pytest.approx(history["val_loss"], rel=1e-6)
    assert [r["loss"] for r in rows] == pytest.approx(history["loss"], rel=1e-6)


def test_event_files_uploaded_with_another_file_are_refused_naming_it(tensorboard_run):
    """One run is imported: the other file was left out, unsaid, while the run's source named it."""
    logdir, _ = tensorboard_run
    with pytest.raises(EipvizError, match=r"event files alone: other_run.csv is not an event file"):
        read_uploads([*event_uploads(logdir), ("other_run.csv", b"epoch,loss\n0,0.5\n")])


def test_an_upload_without_a_name_is_named_after_its_run_folder_or_its_file():
    from eipviz.curves_import import upload_run_name

    assert upload_run_name(["my-run/train/events.out.tfevents.1.host.0.v2"]) == "my-run"
    assert upload_run_name(["events.out.tfevents.1.host.0.v2"]) == "TensorBoard run"
    assert upload_run_name(["logs/history.csv"]) == "history.csv"


def test_a_truncated_event_file_gives_what_is_readable_and_a_note(tensorboard_run, tmp_path):
    logdir, history = tensorboard_run
    copy = tmp_path / "run"
    shutil.copytree(logdir, copy)
    (train,) = (copy / "train").glob("*tfevents*")
    data = train.read_bytes()
    train.write_bytes(data[:-7])  # the last record cut short, as when training is killed mid-write
    parsed = read_run_path(copy)
    assert any("truncated" in w and train.name in w for w in parsed.warnings)
    rows = parsed.rows()
    assert [r["val_loss"] for r in rows] == pytest.approx(history["val_loss"], rel=1e-6)  # validation intact
    assert [r["loss"] for r in rows[:2]] == pytest.approx(history["loss"][:2], rel=1e-6)


def test_a_file_that_is_not_an_event_file_is_a_clear_error(tmp_path):
    bogus = tmp_path / "events.out.tfevents.123.host"
    bogus.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(EipvizError, match="No per-epoch scalars could be read: events.out.tfevents.123.host has a "
                                          "truncated or corrupt record"):
        read_run_path(bogus)


def test_an_event_file_corrupt_before_its_first_epoch_says_it_is_corrupt(tensorboard_run, tmp_path):
    (train,) = (tensorboard_run[0] / "train").glob("*tfevents*")
    data = bytearray(train.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    data[8 + 4 + length + 4 + 8 + 4 + 2] ^= 0xFF  # a byte of the second record's data: its checksum fails
    copy = tmp_path / train.name
    copy.write_bytes(bytes(data))
    with pytest.raises(EipvizError, match=f"{train.name} has a truncated or corrupt record after {length + 16} bytes"):
        read_run_path(copy)


def test_a_second_training_into_the_same_log_dir_replaces_the_first_with_a_note(retrained_run):
    logdir, history = retrained_run
    parsed = read_run_path(logdir)
    rows = parsed.rows()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["loss"] for r in rows] == pytest.approx(history["loss"], rel=1e-6)
    assert [r["val_loss"] for r in rows] == pytest.approx(history["val_loss"], rel=1e-6)
    assert rows[0]["wall_time"] < 1.0  # counted from the second training's start, not the first's
    (warning,) = parsed.warnings
    assert "2 trainings" in warning and "only the newest" in warning


def test_uploaded_event_files_of_two_trainings_give_the_newest(retrained_run):
    logdir, history = retrained_run
    parsed = read_uploads(event_uploads(logdir))
    assert [r["val_accuracy"] for r in parsed.rows()] == pytest.approx(history["val_accuracy"], rel=1e-6)
    assert any("2 trainings" in w for w in parsed.warnings)


def test_a_resumed_training_continues_the_run(tensorboard_run, tmp_path):
    logdir, history = tensorboard_run
    shutil.copytree(logdir, tmp_path / "run")
    resumed = fit_with_tensorboard(tmp_path / "run", epochs=5, initial_epoch=3)
    parsed = read_run_path(tmp_path / "run")
    assert [r["loss"] for r in parsed.rows()] == pytest.approx(history["loss"] + resumed["loss"], rel=1e-6)
    assert parsed.warnings == []


def test_a_folder_holding_several_runs_is_refused_naming_them(tensorboard_run, tmp_path):
    for name in ("a", "b"):
        shutil.copytree(tensorboard_run[0], tmp_path / "fit" / name)
    with pytest.raises(EipvizError, match=r"holds 2 TensorBoard runs \(a, b\); import one of them"):
        read_run_path(tmp_path / "fit")


def test_the_cli_imports_a_tensorboard_folder_and_stores_it(tensorboard_run, tmp_path):
    logdir, history = tensorboard_run
    result = run_cli("import-log", str(logdir), "--store", "--runs-dir", str(tmp_path), "--name", "tb run")
    lines = result.stdout.splitlines()
    assert lines[0].split(",")[0] == "epoch" and "val_accuracy" in lines[0] and len(lines) == 4
    assert "stored as run" in result.stderr
    from eipviz.training.store import RunStore

    (run,) = RunStore(tmp_path).list_runs()
    assert run.name == "tb run" and run.kind == "imported"


WANDB = """_step,_runtime,_timestamp,epoch/epoch,epoch/loss,epoch/val_loss,epoch/val_accuracy,batch/batch_step,\
batch/loss
0,3.1,1700000003.1,,,,,0,2.3
1,6.2,1700000006.2,0,1.5,1.2,0.61,,
2,9.0,1700000009.0,,,,,10,1.1
3,12.4,1700000012.4,1,0.9,0.8,0.74,,
"""

MLFLOW = """key,value,timestamp,step
loss,1.5,1700000000000,0
val_accuracy,0.61,1700000000000,0
loss,0.9,1700000005000,1
val_accuracy,0.74,1700000005000,1
"""


def test_a_wandb_history_csv_gives_one_row_per_epoch_without_batch_rows():
    rows = parse_text(WANDB).rows()
    assert rows == [{"epoch": 1, "loss": 1.5, "val_loss": 1.2, "val_accuracy": 0.61, "wall_time": 6.2},
                    {"epoch": 2, "loss": 0.9, "val_loss": 0.8, "val_accuracy": 0.74, "wall_time": 12.4}]


def test_an_mlflow_metric_history_csv_is_read_per_step():
    rows = parse_text(MLFLOW).rows()
    assert rows == [{"epoch": 1, "loss": 1.5, "val_accuracy": 0.61, "wall_time": 0.0},
                    {"epoch": 2, "loss": 0.9, "val_accuracy": 0.74, "wall_time": 5.0}]


def test_a_csvlogger_file_is_still_read_as_one():
    assert parse_text("epoch,loss\n0,0.5\n1,0.4\n").rows() == [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]


def test_a_whole_log_on_one_line_longer_than_the_csv_field_limit_is_read_as_a_log():
    epochs = 2500
    text = " ".join(f"Epoch {e}/{epochs} 10/10 - 1s - loss: {1 / e:.4f} - val_loss: {2 / e:.4f}"
                    for e in range(1, epochs + 1))
    assert len(text) > 131072  # csv's default field limit
    rows = parse_text(text).rows()
    assert len(rows) == epochs and rows[-1] == {"epoch": epochs, "loss": 0.0004, "val_loss": 0.0008}


@pytest.mark.parametrize("step", ["inf", "nan"])
def test_an_mlflow_step_that_is_not_a_number_is_a_clear_error(step):
    with pytest.raises(EipvizError, match=f"Line 4 of the CSV has step '{step}'"):
        parse_text(MLFLOW.replace("loss,0.9,1700000005000,1", f"loss,0.9,1700000005000,{step}"))


@pytest.mark.parametrize("text, message", [
    (MLFLOW.replace("loss,0.9,1700000005000,1", "loss,0.9,1700000005000,-1"), "Line 4 of the CSV has step -1; "
                                                                              "steps count up from 0."),
    (WANDB.replace("3,12.4,1700000012.4,1,", "3,12.4,1700000012.4,-1,"), "Line 5 of the CSV has epoch/epoch -1; "
                                                                          "it counts up from 0."),
    ("Wall time,Step,Value\n1.0,-2,0.5\n", "Line 2 of the CSV has step -2; steps count up from 0.")],
    ids=["mlflow", "wandb", "tensorboard download"])
def test_a_negative_epoch_or_step_in_a_history_csv_is_refused_naming_its_line(text, message):
    with pytest.raises(EipvizError, match=f"^{re.escape(message)}$"):
        parse_text(text, "run-train-tag-epoch_loss.csv")


@pytest.mark.parametrize("text, losses", [
    (MLFLOW + "loss,0.8,1700000009000,1\n", [1.5, 0.8]),  # a resumed MLflow run logs step 1 again
    (WANDB + "4,15.0,1700000015.0,1,0.85,,,,\n", [1.5, 0.85]),
    ("Wall time,Step,Value\n1.0,0,0.5\n2.0,1,0.4\n3.0,1,0.35\n", [0.5, 0.35])],
    ids=["mlflow", "wandb", "tensorboard download"])
def test_a_history_csv_epoch_logged_again_keeps_the_later_value_and_says_so(text, losses):
    parsed = parse_text(text, "run-train-tag-epoch_loss.csv")
    assert [r["loss"] for r in parsed.rows()] == losses
    assert parsed.warnings == ["Epoch(s) 2 appear twice with different values, as a training resumed from a "
                               "checkpoint logs them again; the later ones were kept."]


def test_a_wandb_panel_export_of_several_runs_is_refused_naming_them():
    panel = ("Step,runA - epoch/val_loss,runA - epoch/val_loss__MIN,runB - epoch/val_loss,runB - epoch/val_loss__MIN\n"
             "0,0.9,0.9,0.5,0.5\n1,0.8,0.8,0.4,0.4\n2,0.7,0.7,,\n")
    with pytest.raises(EipvizError, match=r"2 W&B runs \(runA, runB\)"):
        parse_text(panel)


def test_two_columns_for_one_metric_are_refused_rather_than_merged():
    with pytest.raises(EipvizError, match="Columns epoch/loss and loss would both be read as loss"):
        parse_text("_step,epoch,epoch/loss,loss\n0,0,0.5,0.7\n1,1,0.4,0.6\n")


def test_a_row_longer_than_the_header_is_a_clear_error_unless_its_extra_values_are_empty():
    assert parse_text("_step,epoch,loss\n0,0,0.9,\n1,1,0.7\n").rows() == [{"epoch": 1, "loss": 0.9},
                                                                         {"epoch": 2, "loss": 0.7}]
    with pytest.raises(EipvizError, match="Line 2 of the CSV has 4 values but its header names 3 columns"):
        parse_text("_step,epoch,loss\n0,0,0.9,0.8\n")


def test_an_mlflow_export_of_several_runs_is_refused_rather_than_merged():
    with pytest.raises(EipvizError, match=r"2 MLflow runs \(aaa, bbb\)"):
        parse_text("run_id,key,value,step,timestamp\naaa,loss,0.9,0,1700000005100\nbbb,loss,0.5,0,1700000105100\n")


def test_the_index_column_of_a_pandas_dump_of_a_wandb_history_is_no_metric():
    text = ",_step,_runtime,epoch,loss\n0,0,5.1,0,0.9\n1,1,9.0,1,0.7\n"
    assert parse_text(text).columns == ["epoch", "loss", "wall_time"]


# TensorBoard's own CSV download (its scalars plugin writes it with csv.writer: \r\n line ends).
TENSORBOARD_CSV = "Wall time,Step,Value\r\n1700000000.25,0,0.9\r\n1700000001.5,1,0.8\r\n"


@pytest.mark.parametrize("file_name, metric", [
    ("run-train-tag-epoch_loss.csv", "loss"),
    ("run-validation-tag-epoch_accuracy.csv", "val_accuracy"),
    ("run-fit_20240101-120000_validation-tag-epoch_loss (1).csv", "val_loss"),  # a nested run, downloaded twice
])
def test_a_tensorboard_scalar_download_is_named_by_its_file_name(file_name, metric):
    rows = read_uploads([(file_name, TENSORBOARD_CSV.encode())]).rows()
    assert rows == [{"epoch": 1, metric: 0.9, "wall_time": 0.0}, {"epoch": 2, metric: 0.8, "wall_time": 1.25}]


def test_a_tensorboard_scalar_download_read_from_disk_is_named_too(tmp_path):
    path = tmp_path / "run-train-tag-epoch_learning_rate.csv"
    path.write_text(TENSORBOARD_CSV)
    assert read_run_path(path).rows() == [{"epoch": 1, "wall_time": 0.0, "lr": 0.9},
                                          {"epoch": 2, "wall_time": 1.25, "lr": 0.8}]


def test_a_tensorboard_scalar_download_without_its_name_is_refused():
    with pytest.raises(EipvizError, match="does not say which metric it holds"):
        parse_text(TENSORBOARD_CSV)


def test_a_tensorboard_scalar_download_of_a_batch_tag_is_refused():
    with pytest.raises(EipvizError, match="batch_loss, which is not per epoch"):
        read_uploads([("run-train-tag-batch_loss.csv", TENSORBOARD_CSV.encode())])


def test_two_logs_uploaded_together_are_refused_naming_both():
    """A file an earlier import left in the uploader made the next upload a pair: the message must say which."""
    log = b"Epoch 1/1\n1/1 - loss: 0.5 - accuracy: 0.8\n"
    with pytest.raises(EipvizError, match=r"2 are uploaded: first\.log, second\.log\. Remove all but one"):
        read_uploads([("first.log", log), ("second.log", log)])


def test_the_curves_page_empties_its_import_form_after_an_import_so_the_next_file_imports(tmp_path, monkeypatch):
    """A browser adds a file to those already in the uploader: the imported one must be gone by then."""
    from streamlit.testing.v1 import AppTest

    from eipviz.training.store import RunStore
    from tests.conftest import ROOT

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app_pages" / "curves.py"), default_timeout=180)
    at.run()
    log = b"Epoch 1/2\n1/1 - loss: 0.9 - val_accuracy: 0.5\nEpoch 2/2\n1/1 - loss: 0.5 - val_accuracy: 0.75\n"
    at.file_uploader[0].set_value([("first.log", log, "text/plain")]).run()
    at.text_input[0].set_value("first").run()
    at.button(key="log-import").click().run()
    assert not at.exception and any("Imported 2 epochs" in s.value for s in at.success)
    assert not at.file_uploader[0].value and at.text_input[0].value == ""  # an empty form for the next import
    at.file_uploader[0].set_value([("second.log", log, "text/plain")]).run()
    at.button(key="log-import").click().run()
    assert not at.exception and not at.error
    assert sorted(run.name for run in RunStore(tmp_path).list_runs()) == ["first", "second.log"]


def test_the_curves_page_imports_uploaded_event_files_as_one_run(tensorboard_run, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from eipviz.training.store import RunStore
    from tests.conftest import ROOT

    logdir, history = tensorboard_run
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app_pages" / "curves.py"), default_timeout=180)
    at.run()
    files = [(f"{path.parent.name}/{path.name}", path.read_bytes(), "application/octet-stream")
             for path in sorted(logdir.rglob("*tfevents*"))]
    at.file_uploader(key="log-file-0").set_value(files).run()
    at.button(key="log-import").click().run()
    assert not at.exception and any("Imported 3 epochs" in s.value for s in at.success)
    (run,) = RunStore(tmp_path).list_runs()
    rows = RunStore(tmp_path).epoch_rows(run.id)
    assert [r["val_accuracy"] for r in rows] == pytest.approx(history["val_accuracy"], rel=1e-6)
    assert run.id in at.multiselect(key="curve-runs").value


def test_a_validation_file_opened_after_the_train_files_last_event_is_the_same_training():
    """Older tf.keras writes no validation event during the epoch: a one-epoch run's validation file opens
    after the train file's last write, and must not count as a second training."""
    from pathlib import Path

    from eipviz.curves_import.tbevents import EventFile, _trainings

    def file(name, opened, last):
        return EventFile(Path(name), [("epoch_loss", 0, 1.0, opened)], 0, 0, opened, last)

    train, validation = file("a/train/ev", 0.0, 1.0), file("a/validation/ev", 1.5, 1.6)
    writer = {Path("a/train/ev"): False, Path("a/validation/ev"): True,
              Path("b/train/ev"): False, Path("b/validation/ev"): True}
    assert _trainings([train, validation], writer) == [[train, validation]]
    again = [file("b/train/ev", 5.0, 6.0), file("b/validation/ev", 6.5, 6.6)]
    assert _trainings([train, validation, *again], writer) == [[train, validation], again]


def test_an_epoch_lr_tag_is_the_learning_rate_of_either_writer():
    """tf.keras 2 logged ``epoch_lr``: it is the run's learning_rate, never ``lr`` or ``val_lr``."""
    assert epoch_metric_name("epoch_lr", True) == epoch_metric_name("epoch_lr", False) == "learning_rate"


@pytest.mark.parametrize("folder", ["validation", "val", "eval"])
def test_val_and_eval_folders_hold_the_validation_writers_files(folder):
    """An ``eval/`` writer's epoch_loss is val_loss, and its run is the folder above it."""
    path = Path("run") / folder / "events.out.tfevents.1"
    assert tbevents._is_validation(tbevents.EventFile(path, [], 0, 0))
    assert tbevents.run_directory(path) == Path("run")


def write_events(path, scalars, extra_records=()):
    """An event file of ``(tag, step, value, wall time)`` scalars, then ``extra_records`` raw, well framed."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        writer = RecordWriter(file)
        for tag, step, value, wall in scalars:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            writer.write(event_pb2.Event(wall_time=wall, step=step, summary=summary).SerializeToString())
        for record in extra_records:
            writer.write(record)
    return path


def test_concurrent_writers_uploaded_without_folders_are_refused_not_merged(tmp_path):
    """A custom loop's ``train/`` and ``validation/`` writers log the same tags at the same time: uploaded by name
    only, which is which is unknown (merged, one would overwrite the other)."""
    for folder, offset in (("train", 0.0), ("validation", 0.5)):
        write_events(tmp_path / "run" / folder / f"events.out.tfevents.1.{folder}",
                     [("epoch_loss", step, 1.0 / (step + 1) + offset, 100.0 + step) for step in range(3)])
    files = sorted((tmp_path / "run").rglob("*tfevents*"))
    with pytest.raises(EipvizError, match="which one is the validation writer's is unknown"):
        read_uploads([(path.name, path.read_bytes()) for path in files])
    with_folders = read_uploads([(f"{path.parent.name}/{path.name}", path.read_bytes()) for path in files])
    assert [r["val_loss"] for r in with_folders.rows()] == pytest.approx([1.5, 1.0, 0.5 + 1 / 3])
    assert read_run_path(tmp_path / "run").rows() == with_folders.rows()


def test_a_training_and_its_resumption_uploaded_without_folders_are_still_one_run(tmp_path):
    """One writer's files one after the other (a resumed run logs its last epoch again): not refused."""
    first = write_events(tmp_path / "events.out.tfevents.1.a", [("epoch_loss", 0, 0.9, 100.0),
                                                                ("epoch_loss", 1, 0.8, 101.0)])
    again = write_events(tmp_path / "events.out.tfevents.2.b", [("epoch_loss", 1, 0.7, 200.0),
                                                                ("epoch_loss", 2, 0.6, 201.0)])
    parsed = read_uploads([(path.name, path.read_bytes()) for path in (first, again)])
    assert [r["loss"] for r in parsed.rows()] == pytest.approx([0.9, 0.7, 0.6])


def test_an_epoch_a_resumed_training_logs_again_keeps_the_later_value_and_says_so(tmp_path):
    """As a resumed CSVLogger file: the run continues, and the value replaced is named, not dropped unsaid."""
    write_events(tmp_path / "run" / "train" / "events.out.tfevents.1.a", [("epoch_loss", 0, 0.9, 100.0),
                                                                          ("epoch_loss", 1, 0.8, 101.0)])
    write_events(tmp_path / "run" / "train" / "events.out.tfevents.2.b", [("epoch_loss", 1, 0.7, 200.0),
                                                                          ("epoch_loss", 2, 0.6, 201.0)])
    parsed = read_run_path(tmp_path / "run")
    assert [r["loss"] for r in parsed.rows()] == pytest.approx([0.9, 0.7, 0.6])
    assert parsed.warnings == ["Epoch(s) 2 appear twice with different values, as a training resumed from a "
                               "checkpoint logs them again; the later ones were kept."]


def test_a_well_framed_record_that_is_no_event_ends_the_file_with_a_note(tmp_path):
    path = write_events(tmp_path / "events.out.tfevents.2", [("epoch_loss", 0, 0.9, 1.0), ("epoch_loss", 1, 0.8, 2.0)],
                        extra_records=[b"\xff" * 21])
    parsed = read_run_path(path)
    assert [r["loss"] for r in parsed.rows()] == pytest.approx([0.9, 0.8])
    assert "truncated or corrupt record" in parsed.warnings[0] and "37 bytes unread" in parsed.warnings[0]


def test_a_tensor_declaring_billions_of_values_is_skipped_without_building_it():
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

    from eipviz.curves_import.tbevents import _scalar

    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=10**10)])
    bomb = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=[1.0])
    assert len(bomb.SerializeToString()) < 50  # 40 GB of float32 if built
    assert _scalar(summary_pb2.Summary.Value(tag="epoch_loss", tensor=bomb)) is None
    scalar = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.5])
    assert _scalar(summary_pb2.Summary.Value(tag="epoch_loss", tensor=scalar)) == 0.5


def test_importing_an_event_folder_from_the_cli_prints_no_tensorflow_start_up_lines(tensorboard_run):
    """TensorBoard's reader imports TensorFlow, whose C++ lines ("All log messages before absl::InitializeLog()
    ...") went to the terminal; the warnings eipviz itself gives still do."""
    from tests.conftest import run_cli

    logdir, _ = tensorboard_run
    result = run_cli("import-log", str(logdir))
    assert result.stdout.startswith("epoch,") and "absl" not in result.stderr and "oneDNN" not in result.stderr


def test_wandb_batch_columns_stay_out_even_on_rows_that_carry_the_epoch():
    parsed = parse_history_csv("_step,_runtime,epoch,batch/loss,epoch/loss\n"
                               "0,1.0,0,2.0,\n1,2.0,0,1.5,1.4\n")
    assert parsed.metric_names == ["loss", "wall_time"] and parsed.epochs == {1: {"loss": 1.4, "wall_time": 2.0}}
