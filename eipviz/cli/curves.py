"""The Curves page's comparison tools as ``curves``: the runs it would show (trained, imported and documented),
their summary and hyperparameter tables, groups as a mean with a band, and the tidy CSV. No Keras."""

import json
import math
import sys

from eipviz.cli.options import existing_store, print_table
from eipviz.errors import EipvizError


def cmd_curves(args) -> int:
    from eipviz.curves import DIRECTIONS, all_curve_runs, metric_direction, runs_table, tidy_csv
    from eipviz.run_compare import BANDS, hyperparameter_table

    if args.csv == "-" and args.json:
        raise EipvizError("--csv - and --json both write to standard output: give --csv a file name.")
    checked_choice(args.band, BANDS, "band", "--band")
    if args.direction is not None:
        checked_choice(args.direction, DIRECTIONS, "direction", "--direction")
    runs = shown_runs(all_curve_runs(existing_store(args.runs_dir)), args.runs, args.filter)
    metric = chosen_metric(runs, args.metric)
    direction = args.direction or metric_direction(metric)
    groups = group_rows(runs, args.group_by, metric, args.band) if args.group_by else None
    if args.csv == "-":  # the CSV alone: tables around it would break it
        sys.stdout.write(tidy_csv(runs))
        return 0
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as f:  # newline="": the CSV's own "\n", as given
            f.write(tidy_csv(runs))
        print(f"wrote {args.csv}: {len(runs)} run{'s' if len(runs) != 1 else ''}", file=sys.stderr)
    summary = runs_table(runs, metric, direction)
    hyperparameters = hyperparameter_table(runs, metric, direction) if args.hyperparameters else None
    if args.json:
        report: dict = {"metric": metric, "direction": direction, "runs": summary}
        if hyperparameters is not None:
            report["hyperparameters"] = hyperparameters
        if groups is not None:
            report["group_by"], report["band"], report["groups"] = args.group_by, args.band, groups
        print(json.dumps(without_nan(report), indent=2))
        return 0
    print(f"best epoch by {metric} ({direction} is better)")
    print_table(summary)
    if hyperparameters is not None:
        print("\nhyperparameters")
        print_table([shown_to_4_digits(row) for row in hyperparameters])
    if groups is not None:
        print(f"\n{metric} by {args.group_by}: mean and {args.band} band per epoch")
        print_table([shown_to_4_digits(row) for row in groups])
    return 0


def shown_runs(runs: list, run_ids: list[str] | None, pattern: str | None) -> list:
    """What the Curves page shows: the runs it opens with (``default_selection``), or those named (``--runs``),
    or with only a filter every run; then those whose name matches the filter (``filter_runs``)."""
    from eipviz.curves import default_selection
    from eipviz.run_compare import filter_runs

    by_id = {run.id: run for run in runs}
    if run_ids:
        unknown = [run_id for run_id in run_ids if run_id not in by_id]
        if unknown:
            raise EipvizError(f"Unknown run. Received: --runs {' '.join(unknown)}. Choose from: "
                              f"{', '.join(by_id)} (`python -m eipviz runs` lists the store's).")
        selected = [by_id[run_id] for run_id in dict.fromkeys(run_ids)]
    elif pattern:
        selected = runs
    else:
        selected = [by_id[run_id] for run_id in default_selection(runs)]
    shown = filter_runs(selected, pattern or "")
    if not shown:
        among = "the run" if len(selected) == 1 else f"the {len(selected)} runs"
        raise EipvizError(f"No run's name matches --filter {pattern!r} among {among} selected. "
                          "It is a glob (* any text, ? one character, [12] one of), matched anywhere in the name, "
                          "ignoring case.")
    return shown


def chosen_metric(runs: list, metric: str | None) -> str:
    """``metric`` if one of the runs records it; by default val_accuracy, else the first metric (as the page)."""
    available = sorted({name for run in runs for name in run.metric_names})
    if metric is None:
        return "val_accuracy" if "val_accuracy" in available or not available else available[0]
    return checked_choice(metric, available, "metric for these runs", "--metric")


def group_rows(runs: list, field: str, metric: str, band: str) -> list[dict]:
    """Per group (``group_runs``) and epoch: the mean of ``metric``, its band (``group_band``) and the number of
    runs with a value."""
    from eipviz.run_compare import group_band, group_fields, group_runs

    checked_choice(field, group_fields(runs), "group field", "--group-by")
    rows = []
    for label, members in group_runs(runs, field).items():
        curve = group_band(members, metric, band=band)
        rows += [{"group": label, "epoch": epoch, "mean": mean, "lower": lower, "upper": upper, "runs": count}
                 for epoch, mean, lower, upper, count in zip(curve["epoch"], curve["mean"], curve["lower"],
                                                             curve["upper"], curve["count"])]
    return rows


def checked_choice(value: str, choices, what: str, option: str) -> str:
    """``value`` if it is one of ``choices``; otherwise an EipvizError naming what was received and the choices."""
    if value not in choices:
        raise EipvizError(f"Unknown {what}. Received: {option}={value!r}. "
                          f"Choose one of: {', '.join(choices) or '(none: the runs record no metric)'}.")
    return value


def without_nan(value):
    """``value`` with NaN and infinities as None (``null``): JSON has no such numbers, and a diverged run's
    loss is one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: without_nan(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [without_nan(inner) for inner in value]
    return value


def shown_to_4_digits(row: dict) -> dict:
    """Floats to 4 significant digits, as the page shows them (a rate of 4e-5 stays 4e-5)."""
    from eipviz.curves import significant

    return {key: significant(value) if isinstance(value, float) and math.isfinite(value) else value
            for key, value in row.items()}


def register(sub) -> None:
    p = sub.add_parser("curves", help="compare runs as the Curves page does: summary and hyperparameter tables, "
                                      "groups with bands, the tidy CSV")
    p.add_argument("--runs-dir")
    p.add_argument("--runs", nargs="+", metavar="RUN_ID",
                   help="these runs, trained, imported or documented (reference-NAME); default: the page's "
                        "opening selection (the two newest trained runs and the first documented one)")
    p.add_argument("--filter", metavar="GLOB",
                   help="only runs whose name contains this, ignoring case (* any text, ? one character, "
                        "[12] one of); without --runs, every matching run")
    p.add_argument("--metric", help="the metric for best epoch, final value and groups (default val_accuracy)")
    p.add_argument("--direction", help="max or min is better (default: the metric's own, min for losses)")
    p.add_argument("--group-by", metavar="FIELD", help="model, recipe, kind or a stored hyperparameter")
    p.add_argument("--band", default="min-max", help="a group's band: min-max (default) or std (mean ± std)")
    p.add_argument("--csv", metavar="FILE", help="also write the runs as the page's tidy CSV (- : only the CSV, "
                                                 "to standard output)")
    p.add_argument("--hyperparameters", action="store_true", help="also print the hyperparameter table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_curves)
