"""Many runs at once, as W&B compares them, locally: a glob filter over names, groups drawn as a mean with a
band, and a hyperparameter table (the parallel-coordinates plot is drawn from it in ``plots``)."""

import fnmatch
import math
import re
import statistics

from eipviz.curves import CurveRun, best_epoch, metric_direction

GROUP_FIELDS = ("model", "recipe", "kind")
BANDS = ("min-max", "std")
# Hyperparameters that are prose or provenance, not settings to compare.
NOT_HYPERPARAMETERS = ("assumptions", "source", "name", "model")


def filter_runs(runs: list[CurveRun], pattern: str) -> list[CurveRun]:
    """The runs whose name contains the shell-style glob ``pattern``, ignoring case; all for an empty one.

    ``*`` is any text, ``?`` one character, ``[12]`` one of; plain text is a substring. Never a user's regular
    expression: one such as ``(.|.)*!`` backtracks for minutes while holding the GIL, freezing every session.
    ``fnmatch.translate`` escapes everything else and joins the ``*`` parts with atomic groups, so matching
    takes time linear in the name for any pattern (CPython bpo-40480).
    """
    if not pattern:
        return list(runs)
    compiled = re.compile(fnmatch.translate(f"*{pattern}*"), re.IGNORECASE)
    return [run for run in runs if compiled.match(run.name)]


def flat_hyperparameters(run: CurveRun) -> dict:
    """A run's hyperparameters, nested settings flattened (``plateau.factor``), prose left out."""
    flat: dict = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif prefix not in NOT_HYPERPARAMETERS:
            flat[prefix] = list(value) if isinstance(value, tuple) else value

    walk("", run.hyperparameters)
    return flat


def group_fields(runs: list[CurveRun]) -> list[str]:
    """What runs can be grouped by: model, recipe, kind, then every hyperparameter some run has."""
    keys = sorted({key for run in runs for key in flat_hyperparameters(run)})
    return [*GROUP_FIELDS, *keys]


def group_value(run: CurveRun, field: str) -> str:
    value = getattr(run, field) if field in GROUP_FIELDS else flat_hyperparameters(run).get(field)
    return "(none)" if value is None else str(value)


def group_runs(runs: list[CurveRun], field: str) -> dict[str, list[CurveRun]]:
    """Runs by their value of ``field`` (see ``group_fields``), groups in order of first appearance."""
    if field not in group_fields(runs):
        raise ValueError(f"Unknown group field. Received: field={field!r}; choose one of {group_fields(runs)}.")
    groups: dict[str, list[CurveRun]] = {}
    for run in runs:
        groups.setdefault(f"{field}={group_value(run, field)}", []).append(run)
    return groups


def group_band(runs: list[CurveRun], metric: str, x_axis: str = "epoch", band: str = "min-max") -> dict:
    """Per x (epoch or wall time): the members' mean, a band around it and how many members have a value.

    ``band`` is ``"min-max"`` (the members' range) or ``"std"`` (mean ± population standard deviation).
    Only finite values count; an x where no member has one is left out.
    """
    if band not in BANDS:
        raise ValueError(f"Unknown band. Received: band={band!r}; choose one of {', '.join(BANDS)}.")
    values: dict[float, list[float]] = {}
    for run in runs:
        for row in run.rows:
            x, y = row.get("epoch" if x_axis == "epoch" else "wall_time"), row.get(metric)
            if x is not None and y is not None and math.isfinite(y):
                values.setdefault(x, []).append(y)
    xs = sorted(values)
    mean = [statistics.fmean(values[x]) for x in xs]
    if band == "min-max":
        lower, upper = [min(values[x]) for x in xs], [max(values[x]) for x in xs]
    else:
        spread = [statistics.pstdev(values[x]) for x in xs]
        lower, upper = [m - s for m, s in zip(mean, spread)], [m + s for m, s in zip(mean, spread)]
    return {"x": xs, "mean": mean, "lower": lower, "upper": upper, "count": [len(values[x]) for x in xs]}


def hyperparameter_table(runs: list[CurveRun], metric: str = "val_accuracy",
                         direction: str | None = None) -> list[dict]:
    """One row per run: name, id, kind, model, recipe, every stored hyperparameter (a column each, missing
    where a run has none), the best and final ``metric``, the best epoch, epochs and duration."""
    columns = sorted({key for run in runs for key in flat_hyperparameters(run)})
    rows = []
    for run in runs:
        hyper = flat_hyperparameters(run)
        best = best_epoch(run, metric, direction or metric_direction(metric))
        final = next((row[metric] for row in reversed(run.rows) if row.get(metric) is not None), None)
        rows.append({
            "run": run.name, "id": run.id, "kind": run.kind, "model": run.model, "recipe": run.recipe,
            **{key: hyper.get(key) for key in columns},
            f"best {metric}": None if best is None else best[2], "best epoch": None if best is None else best[0],
            f"final {metric}": final, "epochs": len(run.rows),
            "duration_s": None if run.duration_s is None else round(run.duration_s, 1),
        })
    return rows
