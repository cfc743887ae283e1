"""Every page opens in AppTest without an exception."""

import json
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

TIMEOUT = 180  # the first run imports TensorFlow and builds models


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / page), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_no_pages_folder_beside_app_py():
    """Streamlit 1.67 turns a ``pages/`` folder beside the entry script into legacy multipage mode:
    page URLs then bypass app.py's st.navigation and every file there shows in the sidebar."""
    assert not (ROOT / "pages").exists()


def test_app_entry_runs():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_models_page_shows_counts_and_flags_wrong_seed_annotations():
    at = open_page("models.py")
    at.selectbox[0].select("sepconv59k").run()
    assert not at.exception
    assert any("sepconv2" in w.value for w in at.warning)
    assert at.metric[0].value == "58,965"


def test_train_page_starts_a_worker_and_shows_its_live_curves(tmp_path, monkeypatch, data_dir):
    from eipviz.training.store import RunStore
    from tests.test_training import wait_for

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = open_page("train.py")
    assert any("No runs yet" in i.value for i in at.info)
    at.selectbox[0].select("mnist14k")
    at.number_input[0].set_value(1)  # epochs
    at.number_input[1].set_value(64)  # batch size
    at.number_input[2].set_value(256)  # subset
    at.button[0].click().run()
    assert not at.exception
    assert any("Started run" in t.value for t in at.toast)

    store = RunStore(tmp_path)
    (run,) = store.list_runs()
    assert run.hyperparameters["subset"] == 256 and run.hyperparameters["epochs"] == 1
    wait_for(lambda: store.get_run(run.id).status == "finished", what="page-started run to finish")
    at.run()
    assert not at.exception
    assert any(run.id in e.label and "finished" in e.label for e in at.expander)
    at.session_state[f"run-panel-{run.id}"] = True  # its panel opened
    at.run()
    assert at.get("plotly_chart"), "the finished run shows its curves"


def _png(array) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_misclassified_page_shows_accuracy_confusion_and_a_gallery_for_shipped_weights(data_dir):
    at = open_page("misclassified.py")
    at.selectbox(key="mis-zoo").select("mnist14k").run()
    assert at.metric[0].value.endswith("%") and float(at.metric[0].value[:-1]) >= 99.46
    assert at.get("plotly_chart"), "confusion matrix"
    gallery = at.get("image")
    assert gallery, "gallery images"
    at.selectbox(key="mis-method").select("scorecam").run()
    assert not at.exception
    at.selectbox(key="mis-true").select("4").run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert all("true 4" in c for c in captions if c.startswith("#")), captions


def test_upload_page_predicts_and_overlays_a_good_image_and_rejects_a_bad_one(data_dir):
    import numpy as np

    at = open_page("upload.py")
    at.selectbox(key="up-zoo").select("mnist14k").run()
    digit = np.zeros((60, 40), np.uint8)
    digit[10:50, 18:22] = 255  # a tall "1", not 28x28: the page resizes it and says so
    uploader = next(u for u in at.file_uploader if "Images" in u.label)
    uploader.set_value([("one.png", _png(digit), "image/png"), ("fake.png", b"not an image", "image/png")]).run()
    assert not at.exception
    assert any("fake.png" in e.value for e in at.error)
    assert any("resized from 40x60 to 28x28" in c.value for c in at.caption)
    assert at.get("plotly_chart") and at.get("image")


def test_uploading_a_model_with_a_lambda_layer_is_refused_with_a_message(tmp_path, data_dir):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x)))
    path = tmp_path / "lambda.keras"
    model.save(path)
    at = open_page("upload.py")
    at.file_uploader(key="up-model-file").set_value(("lambda.keras", path.read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="up-use-model").click().run()
    assert not at.exception
    assert any("Lambda" in e.value for e in at.error)


def test_curves_page_overlays_reference_runs_and_imports_an_uploaded_log(tmp_path, monkeypatch):
    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = open_page("curves.py")
    at.multiselect(key="curve-runs").set_value(["reference-mnist14k", "reference-resnet20v1"]).run()
    assert not at.exception
    assert at.get("plotly_chart")
    summary = at.dataframe[0].value
    assert list(summary["best_value"]) == [0.9947, 0.8809] and list(summary["best_epoch"])[0] == 16

    log = b"Epoch 1/2\n1/1 - loss: 0.9 - val_accuracy: 0.5\nEpoch 2/2\n1/1 - loss: 0.5 - val_accuracy: 0.75\n"
    at.file_uploader(key="log-file-0").set_value(("mylog.txt", log, "text/plain")).run()
    at.button(key="log-import").click().run()
    assert not at.exception
    assert any("Imported 2 epochs" in s.value for s in at.success)
    imported = next(o for o in at.multiselect(key="curve-runs").options if "mylog.txt" in o)
    (run,) = RunStore(tmp_path).list_runs()
    assert imported.startswith("mylog.txt · ") and run.id in imported
    # A freshly imported log is drawn at once, beside what was selected before.
    assert at.multiselect(key="curve-runs").value == ["reference-mnist14k", "reference-resnet20v1", run.id]

    at.file_uploader(key="log-file-1").set_value(("noise.txt", b"\x00\x01garbage", "text/plain")).run()
    at.button(key="log-import").click().run()
    assert any("binary" in e.value for e in at.error) and not at.exception


def test_runs_of_two_models_get_their_first_eight_differing_hyperparameters_as_axes(tmp_path, monkeypatch):
    """Runs of two models differ in most settings: two dozen overlapping axes were unreadable."""
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = open_page("curves.py")
    at.multiselect(key="curve-runs").set_value(["reference-mnist14k", "reference-resnet18"]).run()
    axes = at.multiselect(key="curve-axes")
    assert len(axes.options) > 8 and axes.value == axes.options[:8] and axes.value[:2] == ["epochs", "schedule"]
    (chart,) = [c for c in at.get("plotly_chart") if c.key == "curve-parcoords"]
    assert len(json.loads(chart.proto.spec)["data"][0]["dimensions"]) == 8 + 1  # and the target's


def test_curves_page_smoothing_log_axis_and_wall_time_do_not_break(tmp_path, monkeypatch):
    """The chart draws the debiased EMA over the raw curve, on log y axes, against epochs or wall time."""
    import json

    from eipviz.curves import debiased_ema, reference_runs
    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    store = RunStore(tmp_path)
    trained = store.create_run(name="trained", model="mnist14k", status="finished")
    # 12 epochs: a series shorter than SHORT_SERIES (10) is drawn raw and never smoothed
    accuracy = [0.2, 0.6, 0.4, 0.8, 0.5, 0.7, 0.65, 0.75, 0.72, 0.8, 0.78, 0.82]
    wall_time = [10.0 + 15 * i for i in range(12)]
    for epoch, (value, seconds) in enumerate(zip(accuracy, wall_time), start=1):
        store.add_epoch(trained, epoch, {"val_accuracy": value, "val_loss": 1.0 / epoch, "wall_time": seconds})
    documented = [row["val_accuracy"] for row in next(r for r in reference_runs() if r.id == "reference-resnet18").rows]

    def first_panel(at):
        """(label, x, y) of every trace in the val_accuracy panel: named curves and the unnamed faded raw ones."""
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert spec["layout"]["annotations"][0]["text"] == "val_accuracy"
        return spec, [(t.get("name"), t["x"], t["y"]) for t in spec["data"]
                      if t.get("xaxis", "x") == "x" and t.get("mode") == "lines"]

    at = open_page("curves.py")
    at.multiselect(key="curve-runs").set_value([trained, "reference-resnet18"]).run()
    at.slider(key="curve-smoothing").set_value(0.6).run()
    at.toggle(key="curve-log").set_value(True).run()
    assert not at.exception
    spec, traces = first_panel(at)
    assert spec["layout"]["yaxis"]["type"] == "log" and spec["layout"]["yaxis2"]["type"] == "log"
    assert spec["layout"]["xaxis"]["title"]["text"] == "epoch"
    curves = {name: (x, y) for name, x, y in traces if name}
    assert curves[f"trained · {trained}"][0] == list(range(1, 13))
    assert curves[f"trained · {trained}"][1] == pytest.approx(debiased_ema(accuracy, 0.6))
    reference = next(y for name, _, y in traces if name and "resnet18" in name)
    assert len(documented) == 50 and reference == pytest.approx(debiased_ema(documented, 0.6))
    raw = [y for name, _, y in traces if not name]  # the faded unsmoothed curves stay underneath
    assert accuracy in raw and documented in raw

    at.radio(key="curve-x").set_value("wall time").run()
    assert not at.exception
    spec, traces = first_panel(at)
    assert spec["layout"]["xaxis"]["title"]["text"] == "wall time (s)"
    assert spec["layout"]["yaxis"]["type"] == "log"
    curves = {name: (x, y) for name, x, y in traces if name}
    assert list(curves) == [f"trained · {trained}"]  # the documented run has no wall-clock times: left out
    assert curves[f"trained · {trained}"][0] == wall_time
    assert curves[f"trained · {trained}"][1] == pytest.approx(debiased_ema(accuracy, 0.6))
    assert any("left out" in caption.value for caption in at.caption)


def test_runs_with_the_same_name_stay_apart_in_plot_csv_rename_and_delete(tmp_path, monkeypatch):
    """Streamlit matches options by label: two runs named alike once collapsed into one, so the chart,
    the CSV and the summary showed one run twice and a delete could hit the other run."""
    import csv
    import io
    import json

    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    store = RunStore(tmp_path)
    name = "mnist14k fast (8 ep, 2048 img)"
    first = store.create_run(name=name, model="mnist14k", status="finished")
    second = store.create_run(name=name, model="mnist14k", status="finished")
    store.update_run(second, name=name)  # a run renamed to a name in use, or one stored before names were unique
    for epoch, value in enumerate([0.11, 0.22], start=1):
        store.add_epoch(first, epoch, {"val_accuracy": value, "val_loss": 1.0})
    for epoch, value in enumerate([0.71, 0.82, 0.93], start=1):
        store.add_epoch(second, epoch, {"val_accuracy": value, "val_loss": 0.5})

    downloads = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, data, mimetype, kind, filename=None):
        if mimetype == "text/csv":
            downloads.append(data.decode() if isinstance(data, bytes) else data)
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    at = open_page("curves.py")
    assert set(at.multiselect(key="curve-runs").value) >= {first, second}, "both are selected by default"

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    panels = spec["layout"]["annotations"]  # subplot titles, in panel order: val_accuracy comes first
    assert panels[0]["text"] == "val_accuracy"
    traces = {t["name"]: t["y"] for t in spec["data"]
              if t.get("xaxis", "x") == "x" and t.get("name") and "best" not in t["name"]}
    assert traces[f"{name} · {first}"] == [0.11, 0.22]
    assert traces[f"{name} · {second}"] == [0.71, 0.82, 0.93]

    summary = at.dataframe[0].value.set_index("id")
    assert summary.loc[first, "best_value"] == 0.22 and summary.loc[second, "best_value"] == 0.93

    rows = list(csv.DictReader(io.StringIO(downloads[-1])))
    accuracy = {(r["run_id"], r["epoch"]): float(r["value"]) for r in rows
                if r["metric"] == "val_accuracy" and r["run_id"] in (first, second)}
    assert accuracy == {(first, "1"): 0.11, (first, "2"): 0.22,
                        (second, "1"): 0.71, (second, "2"): 0.82, (second, "3"): 0.93}

    at.selectbox(key="edit-run").select(second).run()
    at.text_input(key=f"edit-name-{second}").set_value("the good one").run()
    at.button(key=f"edit-rename-{second}").click().run()
    assert not at.exception
    assert store.get_run(second).name == "the good one" and store.get_run(first).name == name

    at.selectbox(key="edit-run").select(first).run()
    at.button(key=f"edit-delete-{first}").click().run()
    assert not at.exception
    assert [run.id for run in store.list_runs()] == [second]


def test_a_delete_clicked_for_a_run_deleted_elsewhere_deletes_no_other_run(tmp_path, monkeypatch):
    """Another session deletes the picked run: the selectbox falls back to another run, and the click on the
    Delete drawn for the deleted one must not delete that one."""
    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    store = RunStore(tmp_path)
    ids = {name: store.create_run(name=name, kind="imported", status="finished") for name in ("a", "b", "c")}
    for run_id in ids.values():
        store.add_epochs(run_id, {1: {"val_accuracy": 0.5}})
    at = open_page("curves.py")
    at.multiselect(key="curve-runs").set_value(list(ids.values())).run()
    at.selectbox(key="edit-run").set_value(ids["b"]).run()
    RunStore(tmp_path).delete_run(ids["b"])  # another session
    at.button(key=f"edit-delete-{ids['b']}").click().run()
    assert not at.exception
    assert sorted(run.name for run in store.list_runs()) == ["a", "c"]


def test_a_delete_on_curves_asks_first_naming_the_run_and_says_it_is_done(tmp_path, monkeypatch):
    """One click on Delete removed the run and its folder, and said nothing."""
    from eipviz.training.store import RunStore
    from tests.test_train_page import in_delete_popover

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    store = RunStore(tmp_path)
    run_id = store.create_run(name="alpha", kind="imported", status="finished")
    store.add_epochs(run_id, {1: {"val_accuracy": 0.5}})
    at = open_page("curves.py")
    at.multiselect(key="curve-runs").set_value([run_id]).run()
    confirm = in_delete_popover(at, f"edit-delete-{run_id}")
    assert confirm is not None and confirm.label == "Delete alpha and its files"
    confirm.click().run()
    assert not at.exception and store.list_runs() == [] and not (tmp_path / run_id).exists()
    assert [toast.value for toast in at.toast] == [f"Deleted alpha ({run_id})."]


def test_new_runs_never_share_a_name(tmp_path):
    from eipviz.training.launcher import create_training_run
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    ids = [create_training_run(store, "mnist14k", "fast", epochs=8, subset=2048) for _ in range(3)]
    assert [store.get_run(i).name for i in ids] == [
        "mnist14k fast (8 ep, 2048 img)", "mnist14k fast (8 ep, 2048 img) (2)", "mnist14k fast (8 ep, 2048 img) (3)"]
    assert store.rename_run(ids[2], "mnist14k fast (8 ep, 2048 img)") == "mnist14k fast (8 ep, 2048 img) (3)"
    assert store.rename_run(ids[0], "mnist14k fast (8 ep, 2048 img) (2)") == "mnist14k fast (8 ep, 2048 img) (2) (2)"
    assert store.rename_run(ids[2], "  ") == "mnist14k fast (8 ep, 2048 img) (3)"  # blank keeps the name
    assert len({run.name for run in store.list_runs()}) == 3


def test_runs_created_at_once_by_two_processes_never_share_a_name(tmp_path):
    """The name is picked inside the insert's write transaction."""
    from eipviz.training.store import RunStore

    script = ("import sys\nfrom eipviz.training.store import RunStore\n"
              "store = RunStore(sys.argv[1])\n"
              "for _ in range(60): store.create_run(name='same', kind='imported', status='finished')\n")
    workers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT) for _ in range(2)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    names = [run.name for run in RunStore(tmp_path).list_runs()]
    assert len(names) == 120 and len(set(names)) == 120


def test_two_runs_drawing_the_same_id_suffix_in_one_second_get_distinct_ids_and_folders(tmp_path, monkeypatch):
    """The id's random suffix has 65,536 values; 120 runs made within a second collided in CI. The folder is
    claimed atomically, so a drawn id already taken is drawn again."""
    from eipviz.training import store as store_module

    suffixes = iter(["beef", "beef", "beef", "cafe"])
    monkeypatch.setattr(store_module.secrets, "token_hex", lambda _n: next(suffixes))
    monkeypatch.setattr(store_module.time, "strftime", lambda _format: "20261127-230000")
    store = store_module.RunStore(tmp_path)
    first = store.create_run(name="a", kind="imported", status="finished")
    second = store.create_run(name="b", kind="imported", status="finished")
    assert (first, second) == ("20261127-230000-imported-beef", "20261127-230000-imported-cafe")
    assert {run.name for run in store.list_runs()} == {"a", "b"}


def test_curves_page_groups_seeds_into_bands_filters_by_name_and_compares_hyperparameters(tmp_path, monkeypatch):
    """Three seeds of two learning rates: grouped by learning rate, each group is a mean over a band; the name
    filter (a glob) narrows the runs; the hyperparameter table and the parallel-coordinates plot cover the runs
    shown."""
    import json

    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    store = RunStore(tmp_path)
    ids = []
    for seed, lr, accuracy in ((1, 0.1, [0.2, 0.5, 0.6]), (2, 0.1, [0.4, 0.7, 0.8]), (3, 0.01, [0.1, 0.2, 0.3])):
        run_id = store.create_run(name=f"lr{lr} seed{seed}", model="mnist14k", recipe="fast", status="finished",
                                  hyperparameters={"learning_rate": lr, "seed": seed})
        for epoch, value in enumerate(accuracy, start=1):
            store.add_epoch(run_id, epoch, {"val_accuracy": value, "val_loss": 1 - value})
        ids.append(run_id)

    at = open_page("curves.py")
    at.multiselect(key="curve-runs").set_value(ids).run()
    at.selectbox(key="curve-group").select("learning_rate").run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    means = {t["name"]: t["y"] for t in spec["data"]
             if "mean of" in (t.get("name") or "") and t.get("xaxis", "x") == "x"}
    assert list(means) == ["learning_rate=0.1 (mean of 2)", "learning_rate=0.01 (mean of 1)"]
    assert means["learning_rate=0.1 (mean of 2)"] == pytest.approx([0.3, 0.6, 0.7])
    assert any(t.get("fill") == "tonexty" for t in spec["data"])

    hparams = at.dataframe[1].value
    assert list(hparams["learning_rate"]) == [0.1, 0.1, 0.01] and list(hparams["best val_accuracy"]) == [0.6, 0.8, 0.3]
    parcoords = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    assert parcoords["type"] == "parcoords"
    assert [d["label"] for d in parcoords["dimensions"]] == ["learning_rate", "seed", "best val_accuracy"]

    at.radio(key="curve-direction-val_accuracy").set_value("min").run()  # flip: the worst epoch is the best
    assert list(at.dataframe[1].value["best val_accuracy"]) == [0.2, 0.4, 0.1]

    at.text_input(key="curve-filter").set_value("SEED[12]").run()
    assert not at.exception
    assert list(at.dataframe[1].value["id"]) == ids[:2]
    assert any("2 of the 3 selected runs" in c.value for c in at.caption)
    at.text_input(key="curve-filter").set_value("(.|.)*!").run()  # a regex that froze the server: plain text
    assert not at.exception and not at.error
    assert any("0 of the 3 selected runs" in c.value for c in at.caption)


def test_curves_page_imports_a_mid_run_excerpt_and_shows_the_parsers_guess(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = open_page("curves.py")
    log = b"50000/50000 [====] - 678s - loss: 1.7 - val_acc: 0.51\nEpoch 2/200\n50000/50000 [====] - 701s - loss: 1.3\n"
    at.file_uploader(key="log-file-0").set_value([("excerpt.txt", log, "text/plain")]).run()
    at.button(key="log-import").click().run()
    assert any("Imported 2 epochs" in s.value for s in at.success)
    assert any("a guess" in w.value for w in at.warning)


def _computed_on_click_app():
    import streamlit as st

    from app_pages.common import computed_on_click
    from eipviz.errors import EipvizError

    n = st.number_input("n", 0, 10, 1, key="n")

    def compute(progress):
        progress(0.5, "halfway")
        if n == 0:
            raise EipvizError("n must be positive")
        return n * 10

    st.write(f"result {computed_on_click('Go', 'result', int(n), compute, button_key='go')}")


def test_a_computed_result_shows_until_its_inputs_change_and_a_failure_is_only_its_message():
    at = AppTest.from_function(_computed_on_click_app, default_timeout=TIMEOUT).run()
    assert at.markdown[-1].value == "result None"  # nothing before the click
    at.button(key="go").click().run()
    assert at.markdown[-1].value == "result 10"
    assert at.run().markdown[-1].value == "result 10"  # kept across reruns
    at.number_input(key="n").set_value(2).run()
    assert at.markdown[-1].value == "result None"  # computed for other inputs: hidden
    at.number_input(key="n").set_value(0).run()
    at.button(key="go").click().run()
    assert [e.value for e in at.error] == ["n must be positive"] and not at.exception
    assert at.markdown[-1].value == "result None"


def test_a_first_run_on_a_desktop_serves_without_asking_for_an_email(tmp_path):
    """Streamlit asks for an email on a first run where DISPLAY is set and no credentials file exists; `make run`
    sat at that prompt before serving. The project's config switches it off (server.showEmailPrompt)."""
    script = ("import streamlit.config as config\n"
              "from streamlit.runtime import credentials\n"
              "config.get_config_options(force_reparse=True)\n"
              "credentials.check_credentials()\n"
              "print('serving')\n")
    desktop = {"HOME": str(tmp_path), "DISPLAY": ":0", "PATH": "/usr/bin:/bin"}  # no STREAMLIT_* settings either
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=desktop, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Email" not in result.stdout, result.stdout + result.stderr
    assert result.stdout.strip().endswith("serving")


def test_an_import_given_a_blank_name_takes_the_default_one(tmp_path, monkeypatch):
    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = open_page("curves.py")
    at.text_area(key="log-text-0").set_value("Epoch 1/1\n1/1 - loss: 0.5 - accuracy: 0.8\n")
    at.text_input(key="log-name-0").set_value("   ")
    at.button(key="log-import").click().run()
    assert not at.exception
    assert [run.name for run in RunStore(tmp_path).list_runs()] == ["pasted log"]  # was "   "


def test_a_store_opened_while_another_process_switches_it_to_wal_retries_rather_than_failing(tmp_path, monkeypatch):
    """The switch to WAL does not wait on SQLite's busy timeout: a second process opening a new store at the same
    moment got "database is locked" (seen once under load)."""
    import sqlite3

    from eipviz.training import store as store_module

    real_connect, refusals = sqlite3.connect, iter([True, True])

    class BusyOnce:
        def __init__(self, *args, **kwargs):
            self.db = real_connect(*args, **kwargs)

        def execute(self, sql, *args):
            if sql == "PRAGMA journal_mode=WAL" and next(refusals, False):
                raise sqlite3.OperationalError("database is locked")
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

        def __enter__(self):
            return self.db.__enter__()

        def __exit__(self, *exc):
            return self.db.__exit__(*exc)

    monkeypatch.setattr(store_module.sqlite3, "connect", BusyOnce)
    monkeypatch.setattr(store_module.time, "sleep", lambda _s: None)
    store = store_module.RunStore(tmp_path)
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / store_module.STORE_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.create_run(name="a", kind="imported", status="finished")
