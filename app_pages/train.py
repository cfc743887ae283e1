"""Train page: start runs in worker processes and watch them live."""

import time

import streamlit as st

from app_pages.common import run_store
from eipviz.errors import EipvizError
from eipviz.plots import training_curves_figure
from eipviz.recipes import RECIPES, get_recipe
from eipviz.training.launcher import resume_run, start_training, stop_run
from eipviz.training.status import run_progress
from eipviz.zoo import MODELS

REFRESH_S = 2
SHOWN_RUNS = 6


st.title("Train")
st.caption("Training runs in a separate worker process: it keeps going if you reload or close this page.")

try:
    store = run_store()
except EipvizError as error:
    st.error(str(error))
    st.stop()

with st.form("start"):
    cols = st.columns([2, 1, 1, 1, 1])
    model = cols[0].selectbox("Model", list(MODELS), format_func=lambda n: f"{n} — {MODELS[n].title}")
    recipe = cols[1].radio("Recipe", list(RECIPES), horizontal=True)
    epochs = cols[2].number_input("Epochs (0 = recipe's)", min_value=0, max_value=500, value=0)
    batch_size = cols[3].number_input("Batch size (0 = recipe's)", min_value=0, max_value=4096, value=0)
    subset = cols[4].number_input("Subset (0 = all images)", min_value=0, max_value=60000, value=0, step=256)
    if st.form_submit_button("Start", type="primary"):
        try:
            run_id = start_training(store, model, recipe=recipe, epochs=epochs or None,
                                    batch_size=batch_size or None, subset=subset or None)
            st.success(f"Started run {run_id}.")
        except EipvizError as error:
            st.error(str(error))
    chosen = get_recipe(model, recipe)
    st.caption(f"{recipe} recipe: {chosen.optimizer}, lr {chosen.learning_rate:g}, batch {chosen.batch_size}, "
               f"{chosen.epochs} epochs. {chosen.assumptions}")


def _action_button(label, run_id, action, done_message):
    """A button that applies ``action(store, run_id)`` and reports the outcome."""
    if st.button(label, key=f"{label.lower()}-{run_id}"):
        try:
            action(store, run_id)
            st.toast(done_message)
        except EipvizError as error:
            st.error(str(error))


def _run_panel(run):
    progress = run_progress(store, run)
    header = f"**{run.name}** · `{run.id}` · {run.status}"
    if run.best_val_accuracy is not None:
        header += f" · best val acc {run.best_val_accuracy:.4f} (epoch {run.best_epoch})"
    st.markdown(header)
    if run.active:
        st.progress(progress.epoch_fraction, text=progress.label)
        _action_button("Stop", run.id, stop_run, f"Stopping {run.id} after its current batch…")
    elif run.status in ("cancelled", "failed"):
        if run.status == "failed":
            st.error(f"Run failed. {run.error or ''}".strip())
        _action_button("Resume", run.id, resume_run, f"Resuming {run.id}…")
    rows = store.epoch_rows(run.id)
    if rows:
        st.plotly_chart(training_curves_figure(rows), key=f"curves-{run.id}")
    else:
        st.caption("No completed epoch yet.")


@st.fragment(run_every=REFRESH_S)
def live_runs():
    store.reap_dead_workers()
    runs = store.list_runs(kinds=("trained",))[:SHOWN_RUNS]
    if not runs:
        st.info("No runs yet: pick a model and press Start.")
        return
    for run in runs:
        with st.container(border=True):
            _run_panel(run)
    st.caption(f"Refreshed {time.strftime('%H:%M:%S')}; every {REFRESH_S} s.")


st.subheader("Runs")
live_runs()
