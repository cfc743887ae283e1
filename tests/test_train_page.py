"""The Train page and the launcher behind it (issue #23 items 4 and 8)."""

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from eipviz.plots import training_curves_figure
from eipviz.training import queue
from eipviz.training.launcher import create_training_run, launch_worker, resume_run
from eipviz.training.status import run_progress
from eipviz.training.store import RunStore
from tests.conftest import ROOT

TIMEOUT = 180  # the first run imports TensorFlow


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    return RunStore(tmp_path)


@pytest.fixture
def no_workers(monkeypatch):
    """Start no scheduler: runs stay queued with no worker."""
    monkeypatch.setattr(queue, "ensure_scheduler", lambda store: None)


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _finished_run(store, name="tiny", accuracies=(0.5, 0.75)):
    run_id = store.create_run(name=name, model="mnist14k", recipe="fast", status="finished",
                              hyperparameters={"epochs": len(accuracies)})
    for epoch, accuracy in enumerate(accuracies, start=1):
        store.add_epoch(run_id, epoch, {"val_accuracy": accuracy, "loss": 1.0 / epoch})
    store.update_run(run_id, best_val_accuracy=max(accuracies), best_epoch=len(accuracies))
    return run_id


def test_recipe_caption_describes_the_chosen_model_and_overrides_before_start(store, no_workers):
    at = open_page()
    at.selectbox[0].select("mnist14k")
    at.radio[0].set_value("fast")
    at.number_input[0].set_value(2)  # epochs
    at.number_input[2].set_value(2048)  # subset
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert "fast recipe: sgd, lr 0.1, batch 128, 2 epochs on 2,048 images (16 steps an epoch" in captions
    assert "BatchNorm statistics re-estimated" in captions


def test_start_announces_the_run_in_a_toast_not_a_lasting_banner(store, no_workers):
    at = open_page()
    at.selectbox[0].select("mnist14k")
    at.button[0].click().run()
    (run,) = store.list_runs()
    assert any(run.id in toast.value for toast in at.toast)
    assert not at.success
    at.run()
    assert not at.success and not at.toast


def test_an_active_run_has_a_labelled_stop_button(store, no_workers):
    run_id = create_training_run(store, "mnist14k", "fast", epochs=2, subset=256)
    store.update_run(run_id, status="running")  # admitted; its worker is starting
    at = open_page()
    assert at.button(key=f"stop training-{run_id}").label == "Stop training"


def test_finished_runs_collapse_to_one_line_with_their_best_accuracy(store):
    run_id = _finished_run(store)
    at = open_page()
    (panel,) = at.expander
    assert panel.label == f"tiny · {run_id} · finished · best epoch 2 (val acc 0.7500)"


def test_a_run_the_user_stopped_reads_stopped_as_its_button_and_heading_say(store):
    """Stop training, under "Finished, stopped and failed runs", left a run that read "cancelled"."""
    stopped, never_started = _finished_run(store, name="stopped"), _finished_run(store, name="waited")
    store.update_run(stopped, status="cancelled", started=time.time())
    store.update_run(never_started, status="cancelled", started=None)  # cancelled while queued
    at = open_page()
    labels = [panel.label for panel in at.expander]
    assert f"stopped · {stopped} · stopped · best epoch 2 (val acc 0.7500)" in labels
    assert f"waited · {never_started} · stopped before it started · best epoch 2 (val acc 0.7500)" in labels
    assert not any("cancelled" in label for label in labels)
    assert store.get_run(stopped).status == "cancelled"  # what the CLI and resume read
    assert at.button(key=f"resume-{stopped}")


def test_a_finished_runs_curves_are_drawn_only_while_its_panel_is_open(store):
    """Six closed panels built and sent six figures at every rerun, for curves nobody saw."""
    run_id = _finished_run(store)
    at = open_page()
    assert not at.get("plotly_chart")
    at.session_state[f"run-panel-{run_id}"] = True  # what a click on the panel sets
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 1


def test_a_run_name_is_shown_as_written_not_as_markdown(store, no_workers):
    """A name is text an editor typed: as markdown it could load a remote image into every viewer's page."""
    name = "![x](https://evil.example/x.png) *big* :red[alarm]"
    finished = _finished_run(store, name=name)
    queued = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64, name=name)
    at = open_page()
    escaped = "\\!\\[x\\](https\u2060\\://evil.example/x.png) \\*big\\* \\:red\\[alarm\\]"  # no link either
    assert at.expander[0].label.startswith(f"{escaped} · {finished}")
    assert any(f"**{escaped} (2)** · `{queued}`" in block.value for block in at.markdown), \
        [block.value for block in at.markdown]


def test_a_finished_run_is_renamed_and_deleted_on_the_train_page(store):
    run_id = _finished_run(store)
    at = open_page()
    at.text_input(key=f"name-{run_id}").set_value("renamed")
    at.button(key=f"rename-{run_id}").click().run()
    assert store.get_run(run_id).name == "renamed"
    assert at.expander[0].label.startswith(f"renamed · {run_id}")
    at.button(key=f"delete-{run_id}").click().run()
    assert store.list_runs() == [] and not (store.root / run_id).exists()
    assert not at.expander


def in_delete_popover(at, key):
    """The widget keyed ``key`` when it sits in a popover labelled Delete (a confirmation), else None."""
    popovers = [block for block in at.main if getattr(block, "type", None) == "popover"
                and block.proto.popover.label == "Delete"]
    return next((node for popover in popovers for node in popover if getattr(node, "key", None) == key), None)


def test_delete_asks_first_naming_the_run_and_says_it_is_done(store):
    """One click on Delete removed the run and its folder."""
    run_id = _finished_run(store, name="alpha")
    at = open_page()
    confirm = in_delete_popover(at, f"delete-{run_id}")
    assert confirm is not None and confirm.label == "Delete alpha and its files"
    assert (store.root / run_id).exists()  # opening the popover deletes nothing: drawing it did not
    confirm.click().run()
    assert store.list_runs() == [] and not (store.root / run_id).exists()
    assert [toast.value for toast in at.toast] == [f"Deleted alpha ({run_id})."]


def test_the_name_box_shows_the_name_a_rename_gave_and_a_rename_made_elsewhere(store):
    """It kept what was typed: "alpha" while the run was stored as "alpha (2)"."""
    taken, run_id = _finished_run(store, name="alpha"), _finished_run(store, name="beta")
    at = open_page()
    at.text_input(key=f"name-{run_id}").set_value("alpha")
    at.button(key=f"rename-{run_id}").click().run()
    assert store.get_run(run_id).name == "alpha (2)" and at.text_input(key=f"name-{run_id}").value == "alpha (2)"
    RunStore(store.root).rename_run(taken, "gamma")  # another session
    at.run()
    assert at.text_input(key=f"name-{taken}").value == "gamma"


def test_a_rename_keeps_the_panel_open_and_shows_the_name_as_written(store):
    """The panel's label is the name, and Streamlit names an expander by its label too: keyed or not, a renamed
    run's panel was a new one, closed. The toast read markdown."""
    run_id = _finished_run(store)
    at = open_page()
    at.session_state[f"run-panel-{run_id}"] = True  # what a click on the panel sets
    at.run()
    at.text_input(key=f"name-{run_id}").set_value("**bold** :red[hi]")
    at.button(key=f"rename-{run_id}").click().run()
    assert at.toast[0].value == f"Renamed {run_id} to \\*\\*bold\\*\\* \\:red\\[hi\\]."
    assert at.expander[0].label.startswith("\\*\\*bold")
    assert at.expander[0].proto.expanded and len(at.get("plotly_chart")) == 1  # open, its curves drawn
    at.session_state[f"run-panel-{run_id}"] = False  # closed by a click: it stays closed
    at.run()
    assert not at.expander[0].proto.expanded and not at.get("plotly_chart")


def test_runs_past_the_newest_six_can_still_be_opened_and_resumed(store):
    """Only the six newest ended runs had panels: an older stopped run could no longer be resumed."""
    oldest = _finished_run(store, name="oldest")
    store.update_run(oldest, status="cancelled")
    for k in range(6):
        _finished_run(store, name=f"newer {k}")
    at = open_page()
    assert not any(expander.label.startswith("oldest") for expander in at.expander)
    at.selectbox(key="older-run").set_value(oldest).run()
    assert not at.exception and any(expander.label.startswith(f"oldest · {oldest}") for expander in at.expander)
    assert at.button(key=f"resume-{oldest}")


def test_epoch_axes_tick_whole_epochs():
    figure = training_curves_figure([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}])
    assert figure.layout.xaxis.dtick == 1 and figure.layout.xaxis.tick0 == 1
    long_run = training_curves_figure([{"epoch": e, "loss": 1.0 / e} for e in range(1, 51)])
    assert long_run.layout.xaxis.dtick == 5


def test_a_resumed_run_does_not_show_where_its_last_worker_stopped(store, no_workers):
    run_id = create_training_run(store, "mnist14k", "fast", epochs=4, subset=256, batch_size=64)
    store.add_epoch(run_id, 1, {"loss": 1.0, "epoch_seconds": 3.0})
    store.set_progress(run_id, 2, 3, 4, 0.9)  # stopped at batch 3 of epoch 2
    store.update_run(run_id, status="cancelled")
    resume_run(store, run_id)
    progress = run_progress(store, store.get_run(run_id))
    assert (progress.epochs_done, progress.batch, progress.running_loss) == (1, 0, None)


def test_a_finished_worker_leaves_no_zombie_behind(store, data_dir):
    run_id = create_training_run(store, "mnist14k", "fast", epochs=1, subset=64)
    pid = launch_worker(store, run_id)
    proc = Path(f"/proc/{pid}")
    deadline = time.time() + 240
    while proc.exists() and time.time() < deadline:
        status = (proc / "status").read_text() if proc.exists() else ""
        if "\nState:\tZ" in status:
            time.sleep(1.0)  # a zombie: only a wait() by this process removes it
            if proc.exists():
                pytest.fail(f"worker {pid} exited but stays a zombie child of the app process")
        time.sleep(0.5)
    assert not proc.exists(), f"worker {pid} still running after 240 s"
    assert store.get_run(run_id).status == "finished"
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped


def test_a_subset_the_models_training_set_cannot_give_is_said_before_start(store, no_workers):
    at = open_page()
    at.selectbox[0].select("resnet18")
    at.number_input[2].set_value(60_000)  # subset: CIFAR-10 has 50,000 training images
    at.run()
    assert any("A subset is 1 to 50,000 images" in warning.value for warning in at.warning)
    assert at.button[0].disabled


@pytest.mark.parametrize(("field", "value", "limit"), [
    ("train-epochs", -5, "epochs must be a whole number from 1 to 10,000"),
    ("train-batch", -1, "batch_size must be a whole number from 1 to 65,536"),
    ("train-subset", -256, "A subset is 1 to 60,000 images"),
])
def test_a_refused_number_is_said_with_the_forms_own_zero(store, no_workers, field, value, limit):
    """The limits said "1 to ..." (the CLI's, which shares them) under labels where 0 is the recipe's value."""
    at = open_page()
    at.selectbox(key="train-model").select("mnist14k")
    at.number_input(key=field).set_value(value).run()
    (warning,) = at.warning
    assert limit in warning.value
    assert warning.value.endswith("Here 0 keeps the recipe's epochs or batch size, and a subset of 0 is all "
                                  "the images.")


def test_a_number_the_recipe_cannot_take_turns_start_off_instead_of_running_the_recipes(store, no_workers):
    """The browser kept an out-of-range number red without sending it: Start ran the recipe's 50 epochs."""
    at = open_page()
    at.number_input(key="train-epochs").set_value(-5).run()
    assert any("epochs must be a whole number from 1 to 10,000" in warning.value for warning in at.warning)
    assert at.button[0].disabled
    at.number_input(key="train-epochs").set_value(10_000).run()
    assert any("10,000 epochs" in caption.value for caption in at.caption) and not at.button[0].disabled


def test_the_caption_of_a_subset_smaller_than_a_batch_gives_the_batch_trained_on(store, no_workers):
    at = open_page()
    at.selectbox(key="train-model").select("mnist14k")
    at.number_input(key="train-subset").set_value(1).run()
    captions = " ".join(c.value for c in at.caption)
    assert "batch 1 (the whole subset; the recipe's is 128)" in captions and "on 1 image (1 step an epoch" in captions


def test_the_caption_of_a_subset_smaller_than_a_typed_batch_says_the_batch_was_asked_for(store, no_workers):
    """It called the batch size typed the recipe's: "batch 100 (the whole subset; the recipe's is 4096)"."""
    at = open_page()
    at.selectbox(key="train-model").select("mnist14k")
    at.number_input(key="train-batch").set_value(4096)
    at.number_input(key="train-subset").set_value(100).run()
    captions = " ".join(c.value for c in at.caption)
    assert "batch 100 (the whole subset; you asked 4,096)" in captions and "recipe's is" not in captions
