"""Train page: start runs in worker processes and watch them live."""

import time

import streamlit as st

from app_pages.common import can_write, literal, page_run_store, read_only_note, show_error, visible_message
from app_pages.timeline_view import timeline_section
from eipviz.errors import EipvizError
from eipviz.plots import training_curves_figure
from eipviz.recipes import RECIPES
from eipviz.training.launcher import RunQueue, check_subset, plan_summary, planned_recipe, resume_run, start_training
from eipviz.training.status import run_progress
from eipviz.training.store import run_label
from eipviz.zoo import MODELS

REFRESH_S = 2
SHOWN_RUNS = 6  # finished runs listed here; the Curves page has them all


st.title("Train")
st.caption("Training runs in a separate worker process: it keeps going if you reload or close this page. "
           "Runs beyond the free slots wait in a queue and start in order.")

store = page_run_store()


def start_form() -> None:
    """Model, recipe and overrides, a caption saying what Start will run, and Start (which queues the run)."""
    # Plain widgets, not a form: the caption below describes what Start will run as the inputs change.
    cols = st.columns([2, 1, 1, 1, 1])
    model = cols[0].selectbox("Model", list(MODELS), format_func=lambda n: f"{n} — {MODELS[n].title}",
                              key="train-model")
    recipe = cols[1].radio("Recipe", list(RECIPES), horizontal=True, key="train-recipe")
    # No bounds in the browser: a number outside them stays red there and never reaches the app, so Start ran the
    # last valid one. Checked here instead (the recipe refuses what it cannot train), with Start off until fixed.
    epochs = cols[2].number_input("Epochs (0 = recipe's)", value=0, step=1, key="train-epochs")
    batch_size = cols[3].number_input("Batch size (0 = recipe's)", value=0, step=1, key="train-batch")
    subset = cols[4].number_input("Subset (0 = all images)", value=0, step=256, key="train-subset")
    try:
        check_subset(model, subset or None)
        st.caption(plan_summary(planned_recipe(model, recipe, epochs or None, batch_size or None), subset or None))
        plan_ok = True
    except EipvizError as error:
        # The library's limits are the CLI's too (its numbers start at 1); this form's 0 means "the recipe's".
        st.warning(f"{visible_message(str(error))} Here 0 keeps the recipe's epochs or batch size, and a subset "
                   "of 0 is all the images.")
        plan_ok = False
    if st.button("Start", type="primary", disabled=not plan_ok):
        try:
            run_id = start_training(store, model, recipe=recipe, epochs=epochs or None,
                                    batch_size=batch_size or None, subset=subset or None)
            waiting = queue.status()
            position = waiting.position(run_id)
            if position is None or (position == 1 and len(waiting.running) < len(waiting.slots)):
                st.toast(f"Started run {run_id}.")  # the run's own panel below says the rest
            else:
                st.toast(f"Queued run {run_id}: position {position}; it starts when a slot frees.")
        except EipvizError as error:
            show_error(error)


queue = RunQueue(store)
if can_write():
    start_form()
else:
    read_only_note("starting, stopping and changing runs")


def _action_button(label, run_id, action, done_message, key=None, **options) -> bool:
    """A button that applies ``action(store, run_id)`` and reports the outcome; True once applied."""
    if st.button(label, key=key or f"{label.lower()}-{run_id}", **options):
        try:
            action(store, run_id)
            st.toast(done_message)
            return True
        except EipvizError as error:
            show_error(error)
    return False


def _curves(run):
    rows = store.epoch_rows(run.id)
    if rows:
        st.plotly_chart(training_curves_figure(rows), key=f"curves-{run.id}")
    else:
        st.caption("No completed epoch yet.")


def _cancel(store, run_id):
    queue.cancel(run_id)


def _queued_panel(run, position: int | None, waiting: int):
    """A run waiting for a slot: its place in line and Cancel."""
    text, cancel = st.columns([5, 1], vertical_alignment="center")
    place = f"position {position} of {waiting}" if position else "starting"  # admitted since the list was read
    text.markdown(f"**{literal(run.name)}** · `{run.id}` · queued · {place}")
    if can_write():
        with cancel:
            _action_button("Cancel", run.id, _cancel, f"Cancelled {run.id} before it started.",
                           icon=":material/cancel:", width="stretch")


def _active_panel(run):
    progress = run_progress(store, run)
    st.markdown(f"**{literal(run.name)}** · `{run.id}` · {run.status}" + ("" if run.pid else " · starting its worker…"))
    bar, stop = st.columns([5, 1], vertical_alignment="bottom")
    bar.progress(progress.epoch_fraction, text=progress.label)
    if can_write():
        with stop:
            # Through the queue: a run admitted whose worker has not started yet is cancelled outright.
            _action_button("Stop training", run.id, _cancel, f"Stopping {run.id} after its current batch…",
                           icon=":material/stop_circle:", width="stretch")
    _curves(run)
    # A toggle, not an expander: a collapsed expander's images were still rebuilt at every refresh and sent,
    # and a tab that fetched one after the next epoch's replaced it got a 404 (broken image) under load.
    if st.toggle("Explanations across epochs", key=f"show-timeline-{run.id}"):
        timeline_section(store, run, f"timeline-{run.id}")


def _finished_label(run) -> str:
    """``name · id · status · best epoch 8 (val acc 0.9648)``: a finished run collapsed to one line. The best
    epoch is the one ``best.keras`` holds, by the recipe's monitor (a loss, for some): its val accuracy is shown,
    which another epoch may beat."""
    best = "" if run.best_epoch is None else \
        f" · best epoch {run.best_epoch}" + ("" if run.best_val_accuracy is None else
                                            f" (val acc {run.best_val_accuracy:.4f})")
    return f"{literal(run_label(run))} · {run.status_phrase}{best}"


def _rename(run_id: str) -> None:
    """Rename on click, before the page reruns, so the box can show the name given (with a counter when another
    run has it; the old one for a blank box): it kept what was typed."""
    key = f"name-{run_id}"
    try:
        given = store.rename_run(run_id, st.session_state[key])
    except EipvizError as error:
        st.session_state[f"rename-error-{run_id}"] = str(error)
        return
    st.session_state[key] = st.session_state[f"{key}-stored"] = given
    st.toast(f"Renamed {run_id} to {literal(given)}.")


def _delete(store, run_id):
    with st.spinner("Waiting for its worker to exit…"):  # a run that has just finished: seconds at most
        store.delete_run(run_id)


def _finished_panel(run) -> bool:
    """One collapsed line per run; its curves, Resume, rename and delete inside. True when it changed."""
    # Its open state reaches the script (on_change): a closed panel's figure and timeline were built and sent at
    # every rerun, six of them, for curves nobody saw. Streamlit names an expander by its label as well as its key,
    # so a renamed run's panel was a new one, closed: an open panel's state is handed on by its key.
    key = f"run-panel-{run.id}"
    if st.session_state.get(key):
        st.session_state[key] = True
    with st.expander(_finished_label(run), key=key, on_change="rerun") as panel:
        if run.status == "failed":
            st.error(f"Run failed: {literal(visible_message(run.reason))}")
            if can_write():  # the traceback or log tail, as text; viewers are not shown the server's paths
                st.code(run.error or "", language=None)
        if panel.open:
            _curves(run)
        # The toggle drawn even when closed: a widget not drawn loses its value.
        if st.toggle("Explanations across epochs", key=f"show-timeline-{run.id}") and panel.open:
            timeline_section(store, run, f"timeline-{run.id}")
        if not can_write():
            return False
        resume, name, rename, delete = st.columns([1, 3, 1, 1], vertical_alignment="bottom")
        changed = False
        with resume:
            if run.status in ("cancelled", "failed"):
                changed |= _action_button("Resume", run.id, resume_run, f"Resuming {run.id}…")
        if st.session_state.get(f"name-{run.id}-stored") != run.name:  # renamed elsewhere: show its new name
            st.session_state[f"name-{run.id}"] = st.session_state[f"name-{run.id}-stored"] = run.name
        name.text_input("Name", key=f"name-{run.id}")
        rename.button("Rename", key=f"rename-{run.id}", on_click=_rename, args=(run.id,))
        if f"rename-error-{run.id}" in st.session_state:
            st.error(st.session_state.pop(f"rename-error-{run.id}"))
        # Asked first, naming the run: one click deleted it and its folder.
        with delete.popover("Delete", icon=":material/delete:"):
            st.markdown(f"Delete **{literal(run.name)}** (`{run.id}`), its checkpoints and curves? "
                        "This cannot be undone.")
            changed |= _action_button(f"Delete {literal(run.name)} and its files", run.id, _delete,
                                      f"Deleted {literal(run.name)} ({run.id}).", key=f"delete-{run.id}",
                                      type="primary")
    return changed


def live_runs(shown_active: tuple[str, ...]):
    """Active runs, refreshed while there are any; when one ends or starts, the whole page reruns to move it."""
    store.reap_dead_workers()
    queue.wake()  # runs wait but the scheduler is gone (killed): start it again
    active = [run for run in store.list_runs(kinds=("trained",)) if run.active]
    if tuple(run.id for run in active) != shown_active:
        st.rerun()  # scope "app": the run moves between the live and the finished lists
    if not active:
        st.caption("No run is training now." + (" Pick a model and press Start." if can_write() else ""))
        return
    status = queue.status()
    for run in sorted(active, key=lambda r: (r.status != "running", status.position(r.id) or 0)):
        with st.container(border=True):
            if run.status == "queued":
                _queued_panel(run, status.position(run.id), len(status.queued))
            else:
                _active_panel(run)
    st.caption(f"Refreshed {time.strftime('%H:%M:%S')}; every {REFRESH_S} s.")


st.subheader("Runs")
store.reap_dead_workers()
runs = store.list_runs(kinds=("trained",))
shown_active = tuple(run.id for run in runs if run.active)
# Refreshed only while runs are active: an auto-refresh in flight can swallow a click outside the fragment
# (about one click in five on a finished run's timeline toggle, in the browser suite).
st.fragment(live_runs, run_every=REFRESH_S if shown_active else None)(shown_active)
ended = [run for run in runs if not run.active]
finished, older = ended[:SHOWN_RUNS], {run.id: run for run in ended[SHOWN_RUNS:]}
if finished:
    st.markdown("**Finished, stopped and failed runs**")
    # Older ones one at a time: without this, a stopped run past the newest few could no longer be resumed.
    picked = st.selectbox(f"{len(older)} older runs", list(older), index=None, key="older-run",
                          placeholder="Pick an older run to open it here", format_func=lambda i: _finished_label(
                              older[i])) if older else None
    shown = finished + ([older[picked]] if picked in older else [])
    if any([_finished_panel(run) for run in shown]):
        st.rerun()
elif not runs:
    st.info("No runs yet." + (" Pick a model and press Start." if can_write() else ""))
