"""Curves arithmetic on hand-made runs: debiased smoothing, best epoch, the runs table and the tidy CSV."""

import csv
import io
import math

import pytest

from eipviz.curves import (
    PALETTE,
    CurveRun,
    best_epoch,
    debiased_ema,
    metric_direction,
    runs_table,
    spreadsheet_text,
    store_runs,
    tidy_csv,
    training_seconds,
)

HEADER = "run_id,run_name,kind,epoch,metric,value\n"


def make_run(rows, run_id="run-a", name="run a", kind="trained", status="finished"):
    return CurveRun(id=run_id, name=name, kind=kind, rows=rows, status=status,
                    duration_s=training_seconds(rows, None, None))


# -- debiased_ema ----------------------------------------------------------------------------------------------------


def test_ema_with_zero_smoothing_returns_the_values_unchanged():
    assert debiased_ema([1.0, 5.0, 2.0], 0.0) == [1.0, 5.0, 2.0]


def test_ema_of_an_empty_series_is_empty():
    assert debiased_ema([], 0.6) == []


def test_ema_matches_hand_computed_debiased_values():
    # w = 0.5: averages 0.5, 1.25, 2.625 divided by 1 - 0.5**t = 0.5, 0.75, 0.875.
    assert debiased_ema([1.0, 2.0, 4.0], 0.5) == pytest.approx([1.0, 5 / 3, 3.0])


def test_ema_starts_at_the_first_value_not_at_zero():
    assert debiased_ema([7.0], 0.9) == pytest.approx([7.0])


def test_ema_of_a_constant_series_stays_constant():
    """Without the 1 - w^t correction a 0.9 EMA of 2s would start at 0.2 and creep up."""
    assert debiased_ema([2.0, 2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0, 2.0])


def test_ema_passes_none_through_without_advancing_the_average():
    assert debiased_ema([1.0, None, 2.0, 4.0], 0.5) == pytest.approx([1.0, None, 5 / 3, 3.0])


def test_ema_passes_a_leading_none_through_and_starts_at_the_first_number():
    assert debiased_ema([None, 3.0, 3.0], 0.8) == pytest.approx([None, 3.0, 3.0])


def test_ema_passes_nan_and_infinity_through_without_advancing_the_average():
    smoothed = debiased_ema([1.0, math.nan, 2.0, math.inf, 4.0], 0.5)
    assert math.isnan(smoothed[1]) and smoothed[3] == math.inf
    assert [smoothed[0], smoothed[2], smoothed[4]] == pytest.approx([1.0, 5 / 3, 3.0])


# -- best_epoch ------------------------------------------------------------------------------------------------------


def test_best_epoch_is_the_highest_val_accuracy():
    run = make_run([{"epoch": 1, "val_accuracy": 0.5, "val_loss": 0.2},
                    {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.9},
                    {"epoch": 3, "val_accuracy": 0.7, "val_loss": 0.5}])
    assert best_epoch(run) == (2, "val_accuracy", 0.9)


def test_best_epoch_takes_the_earliest_of_tied_epochs():
    run = make_run([{"epoch": 1, "val_accuracy": 0.4}, {"epoch": 2, "val_accuracy": 0.8},
                    {"epoch": 3, "val_accuracy": 0.8}])
    assert best_epoch(run) == (2, "val_accuracy", 0.8)


def test_best_epoch_falls_back_to_the_lowest_val_loss():
    run = make_run([{"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.3}, {"epoch": 3, "val_loss": 0.6}])
    assert best_epoch(run) == (2, "val_loss", 0.3)


def test_best_epoch_skips_missing_and_non_finite_values():
    run = make_run([{"epoch": 1, "val_accuracy": math.nan}, {"epoch": 2, "val_accuracy": 0.4},
                    {"epoch": 3, "val_accuracy": None}, {"epoch": 4, "val_accuracy": math.inf}])
    assert best_epoch(run) == (2, "val_accuracy", 0.4)


def test_best_epoch_uses_val_loss_when_val_accuracy_has_no_finite_value():
    run = make_run([{"epoch": 1, "val_accuracy": math.nan, "val_loss": 0.7},
                    {"epoch": 2, "val_accuracy": None, "val_loss": 0.5}])
    assert best_epoch(run) == (2, "val_loss", 0.5)


def test_best_epoch_is_none_without_validation_metrics():
    assert best_epoch(make_run([{"epoch": 1, "loss": 0.5, "accuracy": 0.8}])) is None
    assert best_epoch(make_run([])) is None


# -- runs_table ------------------------------------------------------------------------------------------------------


def test_runs_table_row_has_best_and_final_values_rounded_epochs_and_duration():
    run = make_run([{"epoch": 1, "val_accuracy": 0.51234, "val_loss": 1.2, "wall_time": 10.04},
                    {"epoch": 2, "val_accuracy": 0.81239, "val_loss": 0.8, "wall_time": 20.06},
                    {"epoch": 3, "val_accuracy": 0.79991, "val_loss": 0.9, "wall_time": 30.08}],
                   status="running")
    assert runs_table([run]) == [{
        "run": "run a", "id": "run-a", "kind": "trained", "status": "running", "best_metric": "val_accuracy",
        "best_value": 0.8124, "best_epoch": 2, "final_value": 0.7999, "epochs done": 3, "duration_s": 30.1,
    }]


def test_runs_table_keeps_four_significant_digits_of_small_values():
    run = make_run([{"epoch": 1, "val_loss": 3.21e-5}, {"epoch": 2, "val_loss": 4.567e-5}])
    row = runs_table([run])[0]
    assert (row["best_value"], row["final_value"]) == (3.21e-5, 4.567e-5)


def test_runs_table_reports_val_loss_when_there_is_no_val_accuracy():
    run = make_run([{"epoch": 1, "val_loss": 0.61}, {"epoch": 2, "val_loss": 0.42}, {"epoch": 3, "val_loss": 0.5}])
    row = runs_table([run])[0]
    assert (row["best_metric"], row["best_value"], row["best_epoch"], row["final_value"]) == ("val_loss", 0.42, 2, 0.5)


def test_runs_table_final_value_is_the_last_recorded_one_when_the_last_epoch_lacks_the_metric():
    run = make_run([{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "loss": 0.3}])
    row = runs_table([run])[0]
    assert (row["best_metric"], row["best_value"], row["final_value"]) == ("val_loss", 0.5, 0.5)


def test_training_time_is_the_last_wall_time_not_the_days_a_run_stood_stopped():
    rows = [{"epoch": 1, "wall_time": 90.0}, {"epoch": 2, "wall_time": 180.0}]  # resumed a day later
    assert training_seconds(rows, started=1000.0, ended=1000.0 + 86400 + 90) == 180.0
    assert training_seconds([{"epoch": 1}], started=1000.0, ended=1060.0) == 60.0
    assert training_seconds([], None, None) is None


def test_the_csv_download_defuses_names_a_spreadsheet_would_run_as_formulas():
    run = make_run([{"epoch": 1, "=cmd|' /C calc'!A0": 0.5, "val_loss": -0.25}], name='=HYPERLINK("http://x")')
    rows = list(csv.DictReader(io.StringIO(tidy_csv([run]))))
    assert {row["run_name"] for row in rows} == {"'=HYPERLINK(\"http://x\")"}
    assert [row["metric"] for row in rows] == ["'=cmd|' /C calc'!A0", "val_loss"]
    assert rows[1]["value"] == "-0.25"  # numbers stay numbers


def test_runs_table_leaves_best_final_and_duration_empty_for_a_run_without_validation_or_wall_time():
    row = runs_table([make_run([{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.7}])])[0]
    assert row == {"run": "run a", "id": "run-a", "kind": "trained", "status": "finished", "best_metric": None,
                   "best_value": None, "best_epoch": None, "final_value": None, "epochs done": 2, "duration_s": None}


def test_runs_table_counts_zero_epochs_for_a_run_without_rows():
    row = runs_table([make_run([])])[0]
    assert row["epochs done"] == 0 and row["best_value"] is None and row["duration_s"] is None


def test_runs_table_keeps_one_row_per_run_in_order_even_when_names_repeat():
    runs = [make_run([{"epoch": 1, "val_accuracy": 0.1}], run_id="x1", name="same"),
            make_run([{"epoch": 1, "val_accuracy": 0.9}], run_id="x2", name="same")]
    assert [(row["id"], row["best_value"]) for row in runs_table(runs)] == [("x1", 0.1), ("x2", 0.9)]


# -- tidy_csv --------------------------------------------------------------------------------------------------------


def test_tidy_csv_of_no_runs_is_only_the_header():
    assert tidy_csv([]) == HEADER


def test_tidy_csv_writes_one_line_per_run_epoch_and_metric():
    runs = [make_run([{"epoch": 1, "loss": 0.5, "val_accuracy": 0.75}, {"epoch": 2, "loss": 0.25}]),
            make_run([{"epoch": 1, "loss": 2.0}], run_id="ref", name="documented", kind="reference")]
    assert tidy_csv(runs) == HEADER + (
        "run-a,run a,trained,1,loss,0.5\n"
        "run-a,run a,trained,1,val_accuracy,0.75\n"
        "run-a,run a,trained,2,loss,0.25\n"
        "ref,documented,reference,1,loss,2.0\n"
    )


def test_tidy_csv_writes_a_missing_value_as_an_empty_cell():
    assert tidy_csv([make_run([{"epoch": 3, "val_loss": None}])]) == HEADER + "run-a,run a,trained,3,val_loss,\n"


def test_tidy_csv_quotes_names_with_commas_so_it_reads_back_intact():
    text = tidy_csv([make_run([{"epoch": 1, "loss": 0.5}], name='lr 0.1, "fast"')])
    assert list(csv.DictReader(io.StringIO(text))) == [
        {"run_id": "run-a", "run_name": 'lr 0.1, "fast"', "kind": "trained", "epoch": "1", "metric": "loss",
         "value": "0.5"}]


# -- CurveRun --------------------------------------------------------------------------------------------------------


def test_metric_names_are_in_order_of_first_appearance_without_epoch_or_repeats():
    run = make_run([{"epoch": 1, "loss": 0.5, "accuracy": 0.8}, {"epoch": 2, "val_loss": 0.6, "loss": 0.4}])
    assert run.metric_names == ["loss", "accuracy", "val_loss"]


def test_metric_names_of_a_run_without_rows_is_empty():
    assert make_run([]).metric_names == []


def test_color_depends_only_on_the_run_id():
    first = make_run([], run_id="run-a", name="one", kind="trained")
    second = make_run([{"epoch": 1, "loss": 1.0}], run_id="run-a", name="two", kind="imported")
    assert first.color == second.color and first.color in PALETTE


def test_color_is_the_same_in_every_process():
    """A digest, not Python's per-process salted hash(): these values hold across reruns and restarts."""
    assert [make_run([], run_id=i).color for i in ("run-a", "run-b", "reference-resnet18")] == [
        "#d62728", "#bcbd22", "#1f77b4"]


def test_the_metrics_every_trained_run_records_default_to_their_own_better_direction():
    assert [metric_direction(name) for name in ("probe_deletion_auc", "probe_average_drop_pct", "epoch_seconds",
                                                "probe_insertion_auc", "probe_accuracy")] == [
        "min", "min", "min", "max", "max"]


def test_a_diverged_epochs_nan_survives_the_run_store_and_is_its_final_value(tmp_path):
    """SQLite stores a NaN as NULL: a diverged run's final loss showed as its last finite one."""
    from eipviz.curves import import_log
    from eipviz.keraslog import parse_log
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    log = "Epoch 1/3\n1/1 - loss: 0.5 - val_loss: 0.6\nEpoch 2/3\n1/1 - loss: nan - val_loss: nan\n" \
          "Epoch 3/3\n1/1 - loss: nan - val_loss: nan\n"
    run_id = import_log(store, parse_log(log), "diverged")
    rows = store.epoch_rows(run_id)
    assert rows[0]["loss"] == 0.5 and math.isnan(rows[1]["loss"]) and math.isnan(rows[2]["val_loss"])
    run = make_run(rows)
    assert math.isnan(runs_table([run], "val_loss")[0]["final_value"])
    assert best_epoch(run, "val_loss")[0] == 1  # NaN is never best


# -- guards the mutation review of 2026-11-27 found untested ---------------------------------------------------------


@pytest.mark.parametrize("name", ["@SUM(A1)", "+1", "-1", "\t=1", "\r=1"])
def test_spreadsheet_text_defuses_every_formula_start(name):
    assert spreadsheet_text(name) == "'" + name
    assert spreadsheet_text("run " + name) == "run " + name


def test_best_epoch_refuses_an_unknown_direction():
    with pytest.raises(ValueError, match="Unknown direction"):
        best_epoch(make_run([{"epoch": 1, "val_loss": 1.0}]), "val_loss", "up")


@pytest.mark.parametrize("metric", ["Loss", "val_MAE", "Val_Loss"])
def test_metric_direction_ignores_case(metric):
    assert metric_direction(metric) == "min"


def test_html_in_a_run_or_metric_name_is_shown_as_written_in_the_charts():
    """Plotly reads HTML in trace names and titles: a run named ``<a href=…>`` put a link in every legend."""
    from eipviz.plots import agreement_figure, curves_figure, hyperparameters_figure

    name = 'x <a href="https://example.org">click</a> <b>bold</b>'
    run = make_run([{"epoch": 1, "val<b>acc": 0.5}], name=name)
    figure = curves_figure([run], ["val<b>acc"])
    legend = next(trace.name for trace in figure.data if trace.showlegend is not False)
    assert "<" not in legend and "&lt;a href" in legend
    assert figure.layout.annotations[0].text == "val&lt;b&gt;acc"
    assert "<" not in "".join(agreement_figure([[1, 0], [0, 1]], [name, "y"]).data[0].x)
    rows = [{"opt": "<b>sgd</b>", "best": 0.5}, {"opt": "adam", "best": 0.6}]
    (axis, _) = hyperparameters_figure(rows, ["opt"], "best").data[0].dimensions
    assert "<b>sgd</b>" in axis.ticktext  # parcoords ticks are plain text to Plotly: escaped, they showed "&lt;"


def test_store_runs_reads_the_epochs_of_the_runs_asked_for_only(tmp_path):
    """The Curves page lists every run but reads the epochs of the selected ones (all of 300 runs took 0.25 s)."""
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)
    epochs = {1: {"val_accuracy": 0.5, "wall_time": 10.0}, 2: {"val_accuracy": 0.6, "wall_time": 20.0}}
    first = store.create_run(name="a", kind="imported", status="finished", epochs=epochs)
    other = store.create_run(name="b", kind="imported", status="finished", epochs={1: {"val_accuracy": 0.7}})
    runs = {run.id: run for run in store_runs(store, rows_of=[first])}
    assert [row["val_accuracy"] for row in runs[first].rows] == [0.5, 0.6] and runs[first].duration_s == 20.0
    assert runs[other].rows == [] and runs[other].duration_s is None and runs[other].name == "b"
    assert {run.id: run.rows for run in store_runs(store)} == {
        first: runs[first].rows, other: [{"epoch": 1, "val_accuracy": 0.7}]}


def test_the_page_opens_on_the_newest_runs_with_epochs_of_one_dataset_and_its_documented_run(tmp_path):
    """A cancelled run with no epochs and a CIFAR-10 documented run beside MNIST runs were the page's default."""
    from eipviz.curves import all_curve_runs, default_selection
    from eipviz.training.store import RunStore

    store = RunStore(tmp_path)

    def trained(model, status="finished", epochs=None):
        return store.create_run(name=model, model=model, status=status, epochs=epochs)

    older_mnist = trained("mnist14k", epochs={1: {"val_accuracy": 0.9}})
    trained("resnet18", epochs={1: {"val_accuracy": 0.5}})
    newer_mnist = trained("mnist14k", epochs={1: {"val_accuracy": 0.95}, 2: {"val_accuracy": 0.97}})
    trained("mnist14k", status="cancelled")  # the newest: stopped before its first epoch
    runs = all_curve_runs(store, rows_of=())  # as the page lists them: no epochs read
    assert default_selection(runs) == [newer_mnist, older_mnist, "reference-mnist14k"]
