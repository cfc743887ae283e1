"""Many runs at once: glob filter, groups with bands, the hyperparameter table, honest smoothing and best epochs."""

import json
import subprocess
import sys

import pytest

from eipviz.curves import CurveRun, best_epoch, debiased_ema, metric_direction
from eipviz.plots import SHORT_SERIES, curves_figure, hyperparameters_figure
from eipviz.run_compare import (
    filter_runs,
    flat_hyperparameters,
    group_band,
    group_fields,
    group_runs,
    hyperparameter_table,
    mean_run,
)
from tests.conftest import ROOT


def run(run_id, values, model="mnist14k", lr=0.1, name=None):
    rows = [{"epoch": e, "val_accuracy": v, "val_loss": 1 - v} for e, v in enumerate(values, start=1)]
    return CurveRun(run_id, name or run_id, "trained", rows, model=model, recipe="fast",
                    hyperparameters={"learning_rate": lr, "seed": int(run_id[-1]), "plateau": {"factor": 0.5}},
                    duration_s=12.34)


SEEDS = [run("a-seed1", [0.2, 0.5, 0.6]), run("a-seed2", [0.4, 0.7, 0.8]), run("b-seed3", [0.1, 0.2, 0.3], lr=0.01)]


def test_the_filter_matches_a_glob_anywhere_in_run_names_ignoring_case():
    assert [r.id for r in filter_runs(SEEDS, "A-SEED")] == ["a-seed1", "a-seed2"]
    assert [r.id for r in filter_runs(SEEDS, "seed[13]")] == ["a-seed1", "b-seed3"]
    assert [r.id for r in filter_runs(SEEDS, "b*3")] == ["b-seed3"]
    assert filter_runs(SEEDS, "") == SEEDS


def test_the_filter_reads_regular_expression_syntax_as_plain_text():
    named = [run("x-seed1", [0.5], name="lr0.1 (seed 1)"), run("y-seed2", [0.5], name="lr011 seed2")]
    assert [r.id for r in filter_runs(named, "0.1 (")] == ["x-seed1"]  # "." and "(" are literal
    assert filter_runs(named, r"seed\d") == [] and filter_runs(named, "seed(") == []


FILTER_IN_A_CHILD = """
from eipviz.curves import CurveRun
from eipviz.run_compare import filter_runs
runs = [CurveRun(name, name, "trained", []) for name in ["resnet18 (documented, seed 000)", "(.|.)x!", "a" * 2000]]
print([r.name for r in filter_runs(runs, "(.|.)*!")], [r.name for r in filter_runs(runs, "*a" * 200 + "!")])
"""


def test_a_catastrophic_regular_expression_finishes_at_once_as_a_filter():
    """``(.|.)*!`` backtracked for minutes on a 31-character name while holding the GIL, so every session froze
    (and a thread could not be timed out: the waiting thread never got the GIL back), hence a child process.
    As a glob it is plain text, and a long run of wildcards stays linear too."""
    try:
        child = subprocess.run([sys.executable, "-c", FILTER_IN_A_CHILD], cwd=ROOT, capture_output=True, text=True,
                               timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the run filter was still matching after 60 s")
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "['(.|.)x!'] []"


def test_runs_group_by_a_hyperparameter_in_order_of_first_appearance():
    assert "learning_rate" in group_fields(SEEDS) and "plateau.factor" in group_fields(SEEDS)
    groups = group_runs(SEEDS, "learning_rate")
    assert {label: [r.id for r in members] for label, members in groups.items()} == {
        "learning_rate=0.1": ["a-seed1", "a-seed2"], "learning_rate=0.01": ["b-seed3"]}


def test_a_group_band_is_the_mean_with_its_min_max_or_standard_deviation():
    minmax = group_band(SEEDS[:2], "val_accuracy")
    assert minmax["x"] == [1, 2, 3] and minmax["mean"] == pytest.approx([0.3, 0.6, 0.7])
    assert minmax["lower"] == [0.2, 0.5, 0.6] and minmax["upper"] == [0.4, 0.7, 0.8] and minmax["count"] == [2, 2, 2]
    std = group_band(SEEDS[:2], "val_accuracy", band="std")
    assert std["upper"] == pytest.approx([0.4, 0.7, 0.8]) and std["lower"] == pytest.approx([0.2, 0.5, 0.6])


def test_on_the_wall_time_axis_a_group_is_averaged_by_epoch_at_its_mean_time():
    """Two runs never share a wall time: grouped by time itself, every point was one run's value."""
    fast = CurveRun("f", "f", "trained", [{"epoch": e, "val_accuracy": v, "wall_time": 10.0 * e}
                                          for e, v in ((1, 0.2), (2, 0.4))])
    slow = CurveRun("s", "s", "trained", [{"epoch": e, "val_accuracy": v, "wall_time": 30.0 * e}
                                          for e, v in ((1, 0.4), (2, 0.6))])
    band = group_band([fast, slow], "val_accuracy", x_axis="wall time")
    assert band["x"] == [20.0, 40.0] and band["mean"] == pytest.approx([0.3, 0.5]) and band["count"] == [2, 2]
    assert band["lower"] == [0.2, 0.4] and band["upper"] == [0.4, 0.6]


def test_on_the_wall_time_axis_a_group_of_runs_of_different_lengths_never_goes_back_in_time():
    """A slow run that ends early: the mean time of whoever reached an epoch jumped back from 550 s to 110 s."""
    slow = CurveRun("s", "s", "trained", [{"epoch": e, "val_accuracy": 0.5, "wall_time": 100.0 * e}
                                          for e in range(1, 11)])
    fast = CurveRun("f", "f", "trained", [{"epoch": e, "val_accuracy": 0.5, "wall_time": 10.0 * e}
                                          for e in range(1, 21)])
    xs = group_band([slow, fast], "val_accuracy", x_axis="wall time")["x"]
    assert all(later > earlier for earlier, later in zip(xs, xs[1:]))
    assert xs[:2] == [55.0, 110.0] and xs[10] - xs[9] == 10.0  # the mean step, then the fast run's alone


def test_the_grouped_figure_smooths_the_mean_and_stars_the_means_best_epoch():
    values = [0.1, 0.5, 0.2, 0.6, 0.3, 0.7, 0.4, 0.8, 0.5, 0.9, 0.6, 0.65]
    members = [run("g-seed1", values), run("g-seed2", [v + 0.02 for v in values])]
    groups = group_runs(members, "learning_rate")

    def mean_and_stars(smoothing):
        spec = json.loads(curves_figure(members, ["val_accuracy"], smoothing, groups=groups).to_json())
        mean = next(t["y"] for t in spec["data"] if "mean of" in (t.get("name") or ""))
        return mean, [t for t in spec["data"] if t.get("marker", {}).get("symbol") == "star"]

    raw, stars = mean_and_stars(0.0)
    smoothed, _ = mean_and_stars(0.9)
    assert raw == pytest.approx([v + 0.01 for v in values]) and smoothed != pytest.approx(raw)
    assert [(star["x"], star["name"]) for star in stars] == [([10], "best epoch 10")]


def test_a_band_counts_only_the_members_that_reached_an_epoch():
    band = group_band([run("x1", [0.2, 0.4]), run("x2", [0.4])], "val_accuracy")
    assert band["mean"] == pytest.approx([0.3, 0.4]) and band["count"] == [2, 1]


def test_a_groups_legend_counts_only_the_members_that_have_the_metric():
    """A run stopped before validating made "mean of 3" a mean of two."""
    stopped = CurveRun("a-seed9", "a-seed9", "trained", [{"epoch": 1, "loss": 0.9, "val_accuracy": float("nan")}],
                       model="mnist14k", recipe="fast", hyperparameters={"learning_rate": 0.1})
    members = [*SEEDS[:2], stopped]
    spec = json.loads(curves_figure(members, ["val_accuracy"], groups=group_runs(members, "learning_rate")).to_json())
    assert [t["name"] for t in spec["data"] if "mean of" in (t.get("name") or "")] == [
        "learning_rate=0.1 (mean of 2; 1 without val_accuracy)"]


def test_hovering_a_groups_mean_counts_the_runs_at_that_epoch_in_words():
    members = [run("x1", [0.2, 0.4]), run("x2", [0.4])]
    spec = json.loads(curves_figure(members, ["val_accuracy"], groups=group_runs(members, "model")).to_json())
    (mean,) = [t for t in spec["data"] if "mean of" in (t.get("name") or "")]
    assert [mean["hovertemplate"].replace("%{customdata}", str(n)) for n in mean["customdata"]] == [
        "%{y} (mean of 2 runs)<extra>model=mnist14k (mean of 2)</extra>",
        "%{y} (mean of 1 run)<extra>model=mnist14k (mean of 2)</extra>"]


def test_the_grouped_figure_draws_members_faded_a_band_and_a_mean_per_group():
    groups = group_runs(SEEDS, "learning_rate")
    spec = json.loads(curves_figure(SEEDS, ["val_accuracy"], groups=groups).to_json())
    means = {t["name"]: t["y"] for t in spec["data"] if "mean of" in (t.get("name") or "")}
    assert list(means) == ["learning_rate=0.1 (mean of 2)", "learning_rate=0.01 (mean of 1)"]
    assert means["learning_rate=0.1 (mean of 2)"] == pytest.approx([0.3, 0.6, 0.7])
    assert sum(t.get("fill") == "tonexty" for t in spec["data"]) == 2
    assert sum(t.get("opacity") == 0.2 for t in spec["data"]) == 3  # every member, faded


def test_the_hyperparameter_table_has_every_hyperparameter_best_final_and_duration():
    rows = hyperparameter_table(SEEDS)
    assert rows[1] == {"run": "a-seed2", "id": "a-seed2", "kind": "trained", "model": "mnist14k", "recipe": "fast",
                       "learning_rate": 0.1, "plateau.factor": 0.5, "seed": 2, "best val_accuracy": 0.8,
                       "best epoch": 3, "final val_accuracy": 0.8, "epochs done": 3, "duration_s": 12.3}


def test_the_epochs_setting_is_not_overwritten_by_the_epochs_a_stopped_run_did():
    stopped = CurveRun("s", "s", "trained", [{"epoch": 1, "val_accuracy": 0.3}], hyperparameters={"epochs": 30})
    (row,) = hyperparameter_table([stopped])
    assert (row["epochs"], row["epochs done"]) == (30, 1)


def test_a_hyperparameter_of_several_kinds_is_one_text_column_a_table_can_hold():
    """``devices`` 1 beside "all": pyarrow refused the column, a traceback in the server's log (a helper's walk)."""
    import pandas as pd
    import pyarrow as pa

    runs = [CurveRun(f"r{i}", f"r{i}", "trained", [], hyperparameters={"devices": devices, "lr": lr})
            for i, (devices, lr) in enumerate([(1, 0.1), ("all", 1), (None, 0.5)])]
    rows = hyperparameter_table(runs)
    assert [row["devices"] for row in rows] == ["1", "all", None]
    assert [row["lr"] for row in rows] == [0.1, 1, 0.5]  # numbers of both kinds stay numbers
    pa.Table.from_pandas(pd.DataFrame(rows))


def test_parallel_coordinates_has_an_axis_per_varying_hyperparameter_then_the_target():
    rows = hyperparameter_table(SEEDS)
    fig = hyperparameters_figure(rows, ["learning_rate", "plateau.factor", "seed"], "best val_accuracy")
    (trace,) = fig.data
    assert trace.type == "parcoords"
    assert [d.label for d in trace.dimensions] == ["learning_rate", "seed", "best val_accuracy"]  # factor is shared
    assert list(trace.dimensions[-1].values) == [0.6, 0.8, 0.3]


def test_metric_direction_and_a_flipped_best_epoch():
    assert metric_direction("val_loss") == "min" and metric_direction("val_mae") == "min"
    assert metric_direction("val_accuracy") == "max" and metric_direction("auc") == "max"
    r = run("d1", [0.2, 0.9, 0.5])
    assert best_epoch(r, "val_loss") == (2, "val_loss", pytest.approx(0.1))
    assert best_epoch(r, "val_accuracy", "min") == (1, "val_accuracy", 0.2)


def test_smoothing_never_moves_a_past_point_as_new_epochs_arrive():
    """TensorBoard's issue #3493: its smoothed curve changed for past steps as training went on."""
    values = [0.9, 0.5, 0.7, 0.3, 0.4, 0.2, 0.25, 0.1, 0.15, 0.12, 0.11, 0.08]
    full = debiased_ema(values, 0.8)
    for k in range(1, len(values)):
        assert debiased_ema(values[:k], 0.8) == pytest.approx(full[:k])


def test_a_two_point_series_is_drawn_raw_not_smoothed():
    """TensorBoard's issue #1127: its smoothed 2-point line does not end at the second point."""
    assert debiased_ema([1.0, 0.0], 0.6)[-1] != 0.0  # what TensorBoard's (and our) EMA does
    spec = json.loads(curves_figure([run("s1", [0.4, 0.9])], ["val_accuracy"], smoothing=0.6).to_json())
    (curve,) = [t for t in spec["data"] if t.get("name") == "s1 · s1"]
    assert curve["y"] == [0.4, 0.9] and "markers" in curve["mode"]
    assert not [t for t in spec["data"] if t.get("opacity") == 0.25]  # no faded raw copy: nothing was smoothed


def test_a_series_of_ten_points_or_more_is_smoothed_over_its_faded_raw_curve():
    values = [0.1 * (i % 3) + 0.05 * i for i in range(SHORT_SERIES)]
    spec = json.loads(curves_figure([run("l1", values)], ["val_accuracy"], smoothing=0.6).to_json())
    (curve,) = [t for t in spec["data"] if t.get("name") == "l1 · l1"]
    assert curve["y"] == pytest.approx(debiased_ema(values, 0.6)) and curve["mode"] == "lines"


# -- guards the mutation review of 2026-11-27 found untested ---------------------------------------------------------


def curve(rows, **fields):
    return CurveRun(fields.pop("id", "r"), fields.pop("name", "r"), "trained", rows, **fields)


def test_prose_and_provenance_are_no_hyperparameters():
    hyper = {"epochs": 3, "assumptions": "prose", "source": "seed 000", "name": "x", "model": "m",
             "plateau": {"factor": 0.5}}
    assert flat_hyperparameters(curve([], hyperparameters=hyper)) == {"epochs": 3, "plateau.factor": 0.5}


def test_on_the_wall_time_axis_an_epoch_without_a_wall_time_does_not_count():
    a = curve([{"epoch": 1, "acc": 0.5, "wall_time": 10.0}, {"epoch": 2, "acc": 0.7, "wall_time": 20.0}], id="a")
    b = curve([{"epoch": 1, "acc": 0.6, "wall_time": 12.0}, {"epoch": 2, "acc": 0.9}], id="b")
    band = group_band([a, b], "acc", x_axis="wall time")
    assert band["count"] == [2, 1] and band["mean"] == pytest.approx([0.55, 0.7])
    assert band["x"] == pytest.approx([11.0, 21.0])


def test_the_wall_time_axis_never_goes_back_when_no_member_has_both_epochs():
    slow = curve([{"epoch": 1, "acc": 0.5, "wall_time": 100.0}, {"epoch": 2, "acc": 0.6, "wall_time": 200.0}], id="s")
    fast = curve([{"epoch": 1, "acc": 0.5, "wall_time": 1.0}, {"epoch": 3, "acc": 0.7, "wall_time": 2.0}], id="f")
    xs = group_band([slow, fast], "acc", x_axis="wall time")["x"]
    assert xs == sorted(xs) and xs == pytest.approx([50.5, 150.5, 150.5])


def test_a_diverged_member_does_not_poison_the_group_mean():
    diverged = curve([{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": float("nan")}], id="d")
    healthy = curve([{"epoch": 1, "val_loss": 0.8}, {"epoch": 2, "val_loss": 0.5}], id="h")
    assert mean_run("g", [diverged, healthy]).rows == [{"epoch": 1, "val_loss": pytest.approx(0.9)},
                                                        {"epoch": 2, "val_loss": 0.5}]


def test_the_hyperparameter_table_takes_the_lowest_loss_as_best():
    (row,) = hyperparameter_table([curve([{"epoch": e, "val_loss": v} for e, v in [(1, 1.0), (2, 0.5), (3, 0.8)]])],
                                  metric="val_loss")
    assert row["best val_loss"] == 0.5 and row["best epoch"] == 2


def test_the_hyperparameters_drawn_are_those_that_differ_what_people_tune_first():
    from eipviz.run_compare import differing_hyperparameters

    a = CurveRun(id="a", name="a", kind="trained", rows=[],
                 hyperparameters={"zeta": 1, "seed": 0, "learning_rate": 0.1, "shared": "x", "plateau": {"f": 0.5}})
    b = CurveRun(id="b", name="b", kind="trained", rows=[],
                 hyperparameters={"zeta": 2, "seed": 1, "learning_rate": 0.2, "shared": "x"})
    assert differing_hyperparameters([a, b]) == ["learning_rate", "seed", "plateau.f", "zeta"]
