"""Curves page: overlay trained, imported and documented runs; import Keras logs."""

import pandas as pd
import streamlit as st

from app_pages.common import can_write, read_only_note, run_store
from eipviz.curves import all_curve_runs, default_selection, import_log, runs_table, tidy_csv
from eipviz.errors import EipvizError
from eipviz.keraslog import parse_log, parse_log_bytes
from eipviz.plots import curves_figure
from eipviz.training.store import run_label

DEFAULT_METRICS = ["val_accuracy", "val_loss"]

st.title("Curves")
store = run_store()


def import_form() -> None:
    """Paste or upload a Keras log and store it as an imported run (selected at once)."""
    pasted = st.text_area("Paste a log", height=150, key="log-text",
                          placeholder="Epoch 1/20\n60000/60000 [====] - 10s - loss: 0.41 - acc: 0.93 - ...")
    uploaded = st.file_uploader("…or upload one (console log, CSVLogger .csv, History .json)",
                                type=["txt", "log", "csv", "json", "md", "html"], key="log-file")
    name = st.text_input("Name (optional)", key="log-name", placeholder="defaults to the file name")
    if st.button("Import", key="log-import"):
        try:
            parsed = parse_log_bytes(uploaded.getvalue()) if uploaded else parse_log(pasted)
            source = uploaded.name if uploaded else "pasted log"
            run_id = import_log(store, parsed, name or source, source=source)
            st.session_state["curve-runs"] = [*st.session_state.get("curve-runs", []), run_id]  # show it at once
            st.success(f"Imported {len(parsed.epochs)} epochs as run {run_id}.")
        except EipvizError as error:
            st.error(str(error))


if can_write():
    with st.expander("Import a Keras log (paste or upload)"):
        import_form()

runs = all_curve_runs(store)
by_id = {run.id: run for run in runs}
defaults = default_selection(runs)
if "curve-runs" in st.session_state:  # drop runs deleted since (a stale id would make the widget raise)
    st.session_state["curve-runs"] = [i for i in st.session_state["curve-runs"] if i in by_id]
    defaults = None
# Values are run ids and labels are unique: Streamlit matches options by label, so two runs with the
# same name would collapse into one.
selected_ids = st.multiselect("Runs", list(by_id), default=defaults, key="curve-runs",
                              format_func=lambda i: f"{run_label(by_id[i])} [{by_id[i].kind}]")
metrics_available = sorted({m for i in selected_ids for m in by_id[i].metric_names})
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
metrics = c1.multiselect("Metrics", metrics_available, key="curve-metrics",
                         default=[m for m in DEFAULT_METRICS if m in metrics_available] or metrics_available[:1])
smoothing = c2.slider("Smoothing (debiased EMA)", 0.0, 0.95, 0.0, 0.05, key="curve-smoothing")
log_y = c3.toggle("log y", key="curve-log")
x_axis = c4.radio("x axis", ["epoch", "wall time"], key="curve-x")


@st.fragment(run_every=3)
def chart():
    fresh = {run.id: run for run in all_curve_runs(store)}
    chosen = [fresh[i] for i in selected_ids if i in fresh]
    if not chosen or not metrics:
        st.info("Select runs and metrics to compare.")
        return
    st.plotly_chart(curves_figure(chosen, metrics, smoothing, log_y, x_axis), key="curves")
    if x_axis == "wall time" and any(not any("wall_time" in r for r in run.rows) for run in chosen):
        st.caption("Runs without wall-clock times (imported and documented logs) are left out on this axis.")
    st.dataframe(pd.DataFrame(runs_table(chosen)), hide_index=True)
    st.download_button("Download selected runs as CSV", tidy_csv(chosen), file_name="curves.csv", mime="text/csv")


chart()

editable = [by_id[i] for i in selected_ids if by_id[i].kind != "reference"]
if not can_write():
    read_only_note("importing logs, renaming and deleting runs")
elif editable:
    with st.expander("Rename or delete a run"):
        target = by_id[st.selectbox("Run", [r.id for r in editable], format_func=lambda i: run_label(by_id[i]),
                                    key="edit-run")]
        new_name = st.text_input("New name", value=target.name, key=f"edit-name-{target.id}")
        a, b = st.columns(2)
        if a.button("Rename", key="edit-rename"):
            try:
                store.rename_run(target.id, new_name)
                st.rerun()
            except EipvizError as error:
                st.error(str(error))
        if b.button("Delete", key="edit-delete", type="secondary"):
            try:
                store.delete_run(target.id)
                st.rerun()
            except EipvizError as error:
                st.error(str(error))
