"""Importing curves people already have: TensorBoard event files from a real Keras training, W&B and MLflow CSVs."""

import shutil

import pytest

from eipviz.curves_import import parse_text, read_run_path, read_uploads
from eipviz.errors import EipvizError
from tests.conftest import run_cli

# One worker runs the whole module, so its module fixture is built once, not once per xdist worker.
pytestmark = pytest.mark.xdist_group("tensorboard")


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    """A real 3-epoch ``keras.callbacks.TensorBoard`` training of a tiny model: (log dir, History.history)."""
    import keras
    import numpy as np

    from eipviz.quiet import import_keras_quietly

    import_keras_quietly()
    logdir = tmp_path_factory.mktemp("tb")
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8, 8, 1), dtype="float32"), rng.integers(0, 2, 64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[keras.callbacks.TensorBoard(str(logdir))])
    return logdir, history.history


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
    files = [(path.name, path.read_bytes()) for path in sorted(logdir.rglob("*tfevents*"))]
    rows = read_uploads(files).rows()
    assert [r["val_loss"] for r in rows] == pytest.approx(history["val_loss"], rel=1e-6)
    assert [r["loss"] for r in rows] == pytest.approx(history["loss"], rel=1e-6)


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
    with pytest.raises(EipvizError, match="No per-epoch scalars"):
        read_run_path(bogus)


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
    at.file_uploader(key="log-file").set_value(files).run()
    at.button(key="log-import").click().run()
    assert not at.exception and any("Imported 3 epochs" in s.value for s in at.success)
    (run,) = RunStore(tmp_path).list_runs()
    rows = RunStore(tmp_path).epoch_rows(run.id)
    assert [r["val_accuracy"] for r in rows] == pytest.approx(history["val_accuracy"], rel=1e-6)
    assert run.id in at.multiselect(key="curve-runs").value
