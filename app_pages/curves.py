"""Curves page: overlay trained, imported and documented runs; group them, compare their hyperparameters;
import Keras logs, TensorBoard event files and W&B/MLflow CSVs."""

import pandas as pd
import streamlit as st

from app_pages.common import (
    can_write,
    default_for,
    keep_across_pages,
    literal,
    page_run_store,
    read_only_note,
    show_error,
)
from app_pages.timeline_view import timeline_section
from eipviz.curves import (
    DIRECTIONS,
    all_curve_runs,
    default_selection,
    import_log,
    metric_direction,
    runs_table,
    tidy_csv,
)
from eipviz.curves_import import parse_text, read_uploads, upload_run_name
from eipviz.errors import EipvizError
from eipviz.plots import SHORT_SERIES, curves_figure, hyperparameters_figure
from eipviz.run_compare import (
    BANDS,
    differing_hyperparameters,
    filter_runs,
    group_fields,
    group_runs,
    hyperparameter_table,
)
from eipviz.training.store import ACTIVE, name_from, run_label

DEFAULT_METRICS = ["val_accuracy", "val_loss"]
MAX_AXES = 8  # parallel-coordinates axes drawn at first; more are picked by hand

st.title("Curves")
store = page_run_store()


IMPORT_ROUND = "log-import-round"  # in the form's keys: bumped by an import, so the next one starts empty
IMPORT_MESSAGES = "log-import-messages"  # what an import said, shown after the rerun that empties the form


def import_form() -> None:
    """Paste or upload a log, event files or a history CSV and store it as an imported run (selected at once).
    A successful import empties the form: a file left in the uploader made the next upload a refused pair."""
    for kind, message in st.session_state.pop(IMPORT_MESSAGES, []):
        getattr(st, kind)(message)
    round_ = st.session_state.get(IMPORT_ROUND, 0)
    pasted = st.text_area("Paste a log", height=150, key=f"log-text-{round_}",
                          placeholder="Epoch 1/20\n60000/60000 [====] - 10s - loss: 0.41 - acc: 0.93 - ...")
    uploaded = st.file_uploader("…or upload: a console log, CSVLogger .csv, History .json, W&B/MLflow history .csv, "
                                "or a TensorBoard run's events.out.tfevents.* files (train and validation together)",
                                accept_multiple_files=True, key=f"log-file-{round_}")
    name = st.text_input("Name (optional)", key=f"log-name-{round_}", placeholder="defaults to the file name")
    if st.button("Import", key="log-import"):
        try:
            if uploaded and pasted.strip():  # one run is imported: the other input would be left out unsaid
                raise EipvizError("Paste a log or upload files, not both: clear one of them, then import.")
            if uploaded:
                parsed = read_uploads([(file.name, file.getvalue()) for file in uploaded])
                source = ", ".join(file.name for file in uploaded)
                default_name = upload_run_name([file.name for file in uploaded])
            else:
                parsed, source = parse_text(pasted), "pasted log"
                default_name = source
            run_id = import_log(store, parsed, name.strip() or name_from(default_name), source=source)
        except EipvizError as error:
            show_error(error)
            return
        st.session_state["curve-runs"] = [*st.session_state.get("curve-runs", []), run_id]  # show it at once
        keep_across_pages("curve-runs")
        st.session_state[IMPORT_MESSAGES] = [("success", f"Imported {len(parsed.epochs)} epochs as run {run_id}."),
                                             *(("warning", warning) for warning in parsed.warnings)]
        st.session_state[IMPORT_ROUND] = round_ + 1
        st.rerun()


if can_write():
    with st.expander("Import a run: a Keras log, TensorBoard event files, a W&B or MLflow CSV"):
        import_form()

# The filter always; runs and metrics once picked (an untouched selection follows the newest runs).
keep_across_pages("curve-filter")
runs = all_curve_runs(store, rows_of=())  # names, kinds and statuses; the selected runs' epochs are read below
by_id = {run.id: run for run in runs}
defaults = default_selection(runs)
if "curve-runs" in st.session_state:  # drop runs deleted since (a stale id would make the widget raise)
    st.session_state["curve-runs"] = [i for i in st.session_state["curve-runs"] if i in by_id]
    defaults = None
# Values are run ids and labels are unique: Streamlit matches options by label, so two runs with the
# same name would collapse into one.
pattern = st.text_input("Filter runs by name", key="curve-filter",
                        placeholder="e.g. seed or mnist14k*fast or seed[12]",
                        help="Runs whose name contains this, ignoring case. Shell-style wildcards: * any text, "
                             "? one character, [12] one of. Not a regular expression.")
matching = filter_runs(runs, pattern)


def select_matching():
    st.session_state["curve-runs"] = [run.id for run in matching]
    keep_across_pages("curve-runs")


if pattern and matching:
    st.button(f"Select the {len(matching)} matching runs", key="curve-select-matching", on_click=select_matching)
elif pattern:
    st.caption("No run's name matches the filter.")
selected_ids = st.multiselect("Runs", list(by_id), default=defaults, key="curve-runs",
                              format_func=lambda i: f"{run_label(by_id[i])} [{by_id[i].kind}]",
                              on_change=keep_across_pages, args=("curve-runs",))
# Only the selected runs' epochs: reading every run's took 0.25 s a rerun at 300 runs. One deleted since the list
# above is left out.
read = {run.id: run for run in all_curve_runs(store, rows_of=selected_ids) if run.id in selected_ids}
selected_ids = [i for i in selected_ids if i in read]
by_id.update(read)
matching_ids = {run.id for run in matching}
shown_ids = [i for i in selected_ids if i in matching_ids]
if pattern and len(shown_ids) < len(selected_ids):
    st.caption(f"{len(shown_ids)} of the {len(selected_ids)} selected runs match the filter and are shown.")
# Of every selected run, filtered out or not, and those already chosen: a filter that hides all runs for a moment
# must not drop the metrics picked (Streamlit drops a chosen value that is no longer an option).
metrics_available = sorted({m for i in selected_ids for m in by_id[i].metric_names}
                           | set(st.session_state.get("curve-metrics", [])))
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
if "curve-metrics" not in st.session_state:
    st.session_state["curve-metrics"] = [m for m in DEFAULT_METRICS if m in metrics_available] or metrics_available[:1]
metrics = c1.multiselect("Metrics", metrics_available, key="curve-metrics", on_change=keep_across_pages,
                         args=("curve-metrics",))
smoothing = c2.slider("Smoothing (debiased EMA)", 0.0, 0.95, 0.0, 0.05, key="curve-smoothing",
                      help=f"Series of fewer than {SHORT_SERIES} epochs are drawn raw, points shown, never smoothed.")
log_y = c3.toggle("log y", key="curve-log")
x_axis = c4.radio("x axis", ["epoch", "wall time"], key="curve-x")
g1, g2, g3, g4 = st.columns([2, 1, 2, 1])
chosen_runs = [by_id[i] for i in shown_ids]
group_by = g1.selectbox("Group runs by", ["(no grouping)", *group_fields(chosen_runs)], key="curve-group")
band = g2.radio("Band", BANDS, key="curve-band", horizontal=True, disabled=group_by == "(no grouping)")
best_options = metrics_available or ["val_accuracy"]
best_metric = g3.selectbox("Best epoch by", best_options, key="curve-best",
                           index=best_options.index("val_accuracy") if "val_accuracy" in best_options else 0)
direction = g4.radio("Better is", DIRECTIONS, key=f"curve-direction-{best_metric}", horizontal=True,
                     index=DIRECTIONS.index(metric_direction(best_metric)))


def chart():
    fresh = {run.id: run for run in all_curve_runs(store, rows_of=shown_ids)}
    chosen = [fresh[i] for i in shown_ids if i in fresh]
    if not chosen or not metrics:
        st.info("Select runs and metrics to compare.")
        return
    groups = None if group_by == "(no grouping)" else group_runs(chosen, group_by)
    st.plotly_chart(curves_figure(chosen, metrics, smoothing, log_y, x_axis, groups=groups, band=band,
                                  best_metric=best_metric, direction=direction), key="curves")
    if x_axis == "wall time" and any(not any("wall_time" in r for r in run.rows) for run in chosen):
        st.caption("Runs without wall-clock times (imported and documented logs) are left out on this axis.")
    st.dataframe(pd.DataFrame(runs_table(chosen, best_metric, direction)), hide_index=True, key="curve-summary")
    st.download_button("Download selected runs as CSV", tidy_csv(chosen), file_name="curves.csv", mime="text/csv")


def hyperparameters():
    chosen = [by_id[i] for i in shown_ids]
    if not chosen:
        return
    st.subheader("Hyperparameters")
    rows = hyperparameter_table(chosen, best_metric, direction)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="curve-hparams")  # click a header to sort
    names = differing_hyperparameters(chosen)
    target = f"best {best_metric}"
    if len(chosen) >= 2 and names:
        axes = names
        if len(names) > MAX_AXES:  # runs of two models differ in most settings: two dozen axes were illegible
            default_for("curve-axes", repr(names), names[:MAX_AXES])  # other runs: their first axes again
            axes = st.multiselect(f"Axes ({len(names)} hyperparameters differ)", names, key="curve-axes")
        if axes:
            st.plotly_chart(hyperparameters_figure(rows, axes, target), key="curve-parcoords")
            st.caption(f"One axis per hyperparameter that differs between the selected runs, then "
                       f"{literal(target)}; drag along an axis to pick a range.")
        else:
            st.caption("Pick at least one axis to draw the hyperparameters against the best value.")
    elif len(chosen) >= 2 and any(run.hyperparameters for run in chosen):
        st.caption("The selected runs share every hyperparameter stored for them.")


# Redrawn every 3 s only while a shown run trains: an auto-refresh in flight can swallow a click on a widget
# outside it (the Train page's timeline toggle lost about one click in five to its 2 s refresh).
st.fragment(chart, run_every=3 if any(by_id[i].status in ACTIVE for i in shown_ids) else None)()
hyperparameters()

trained = [i for i in shown_ids if by_id[i].kind == "trained"]
if trained:
    st.subheader("Explanations across epochs")
    picked = st.selectbox("Run", trained, format_func=lambda i: run_label(by_id[i]), key="curve-timeline-run")

    def timeline():
        # Keyed by run, so each run's slider keeps its own epoch and follows its own newest one.
        timeline_section(store, store.get_run(picked), f"curve-timeline-{picked}")

    # A training run's timeline grows an epoch at a time: redrawn with the chart while it trains.
    st.fragment(timeline, run_every=3 if by_id[picked].status in ACTIVE else None)()

editable = [by_id[i] for i in selected_ids if by_id[i].kind != "reference"]
if not can_write():
    read_only_note("importing logs, renaming and deleting runs")
elif editable:
    with st.expander("Rename or delete a run"):
        target = by_id[st.selectbox("Run", [r.id for r in editable], format_func=lambda i: run_label(by_id[i]),
                                    key="edit-run")]
        new_name = st.text_input("New name", value=target.name, key=f"edit-name-{target.id}")
        a, b = st.columns(2)
        # Keyed by run: a run deleted in another session makes the selectbox fall back to another run, and a
        # click on the button drawn for the deleted one must not act on that one.
        if a.button("Rename", key=f"edit-rename-{target.id}"):
            try:
                store.rename_run(target.id, new_name)
                st.rerun()
            except EipvizError as error:
                show_error(error)
        # Asked first, naming the run: one click deleted it and its folder, and said nothing.
        with b.popover("Delete", icon=":material/delete:"):
            st.markdown(f"Delete **{literal(target.name)}** (`{target.id}`) and its files? This cannot be undone.")
            if st.button(f"Delete {literal(target.name)} and its files", key=f"edit-delete-{target.id}",
                         type="primary"):
                try:
                    with st.spinner("Waiting for its worker to exit…"):  # a run that has just finished: seconds
                        store.delete_run(target.id)
                    st.toast(f"Deleted {literal(target.name)} ({target.id}).")
                    st.rerun()
                except EipvizError as error:
                    show_error(error)
