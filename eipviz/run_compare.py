"""Many runs at once, as W&B compares them, locally: a glob filter over names, groups drawn as a mean with a
band, and a hyperparameter table (the parallel-coordinates plot is drawn from it in ``plots``)."""

import fnmatch
import math
import re
import statistics

from eipviz.curves import CurveRun, best_epoch, final_value, metric_direction

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


# Drawn first among the hyperparameters that differ: what people tune.
TUNED_FIRST = ("learning_rate", "batch_size", "epochs", "optimizer", "schedule", "weight_decay", "label_smoothing",
               "momentum", "subset", "seed")


def differing_hyperparameters(runs: list[CurveRun]) -> list[str]:
    """The hyperparameters whose values are not the same in every run (one a run lacks counts as differing), the
    ``TUNED_FIRST`` ones first, then by name: the axes worth drawing (25 axes of one value each said nothing)."""
    flats = [flat_hyperparameters(run) for run in runs]
    keys = sorted({key for flat in flats for key in flat},
                  key=lambda key: (TUNED_FIRST.index(key) if key in TUNED_FIRST else len(TUNED_FIRST), key))
    return [key for key in keys if len({repr(flat.get(key)) for flat in flats}) > 1]


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


def group_legend(label: str, runs: list[CurveRun], metric: str) -> str:
    """A group's name in a panel's legend, counting the members its mean is of: ``"model=x (mean of 3)"``, or
    ``"model=x (mean of 2; 1 without val_loss)"`` where some member has no finite value of ``metric`` (a run
    stopped before validating said "mean of 3" for a mean of two)."""
    having = sum(any(_finite(row.get(metric)) for row in run.rows) for run in runs)
    without = len(runs) - having
    return f"{label} (mean of {having}{f'; {without} without {metric}' if without else ''})"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def group_band(runs: list[CurveRun], metric: str, x_axis: str = "epoch", band: str = "min-max") -> dict:
    """Per epoch: the members' mean, a band around it and how many members have a value; ``x`` is the epoch,
    or on the ``"wall time"`` axis the members' mean time to that epoch (``_mean_times``; each run's own times
    never coincide, so values at the same time would be no group at all).

    ``band`` is ``"min-max"`` (the members' range) or ``"std"`` (mean ± population standard deviation).
    Only finite values count (with a wall time, on that axis); an epoch where no member has one is left out.
    """
    if band not in BANDS:
        raise ValueError(f"Unknown band. Received: band={band!r}; choose one of {', '.join(BANDS)}.")
    values: dict[int, list[float]] = {}
    times: list[dict[int, float]] = []  # per run: epoch -> its wall time
    for run in runs:
        times.append({})
        for row in run.rows:
            y, time = row.get(metric), row.get("wall_time")
            if y is None or not math.isfinite(y) or (x_axis != "epoch" and time is None):
                continue
            values.setdefault(row["epoch"], []).append(y)
            times[-1][row["epoch"]] = time
    epochs = sorted(values)
    mean = [statistics.fmean(values[e]) for e in epochs]
    if band == "min-max":
        lower, upper = [min(values[e]) for e in epochs], [max(values[e]) for e in epochs]
    else:
        spread = [statistics.pstdev(values[e]) for e in epochs]
        lower, upper = [m - s for m, s in zip(mean, spread)], [m + s for m, s in zip(mean, spread)]
    xs = epochs if x_axis == "epoch" else _mean_times(epochs, times)
    return {"epoch": epochs, "x": xs, "mean": mean, "lower": lower, "upper": upper,
            "count": [len(values[e]) for e in epochs]}


def _mean_times(epochs: list[int], times: list[dict[int, float]]) -> list[float]:
    """Each epoch's x on the wall-time axis: the first the members' mean time, then each the one before plus the
    mean time the members that have both took between them. The mean time of whoever reached an epoch would go
    back where a slow run ends early and only fast runs remain."""
    xs: list[float] = []
    for epoch in epochs:
        reached = [run[epoch] for run in times if epoch in run]
        if not xs:
            xs.append(statistics.fmean(reached))
            continue
        before = epochs[len(xs) - 1]
        steps = [run[epoch] - run[before] for run in times if epoch in run and before in run]
        xs.append(xs[-1] + max(0.0, statistics.fmean(steps) if steps else statistics.fmean(reached) - xs[-1]))
    return xs


def mean_run(label: str, runs: list[CurveRun]) -> CurveRun:
    """A group's mean curve as one run: each metric's mean over the members that have it at that epoch. Its best
    epoch (``best_epoch``) is the group's."""
    by_epoch: dict[int, dict[str, list[float]]] = {}
    for run in runs:
        for row in run.rows:
            for name, value in row.items():
                if name != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    by_epoch.setdefault(row["epoch"], {}).setdefault(name, []).append(value)
    rows = [{"epoch": epoch, **{name: statistics.fmean(values) for name, values in metrics.items()}}
            for epoch, metrics in sorted(by_epoch.items())]
    return CurveRun(id=f"group:{label}", name=label, kind="group", rows=rows)


def _mixes_types(values: list) -> bool:
    """True when a column's values are of several kinds (``devices`` 1 and "all"): written as text, since a
    table column is of one type (pyarrow refused the column, a traceback in the server's log)."""
    kinds = {"number" if type(value) in (int, float) else type(value) for value in values if value is not None}
    return len(kinds) > 1


def hyperparameter_table(runs: list[CurveRun], metric: str = "val_accuracy",
                         direction: str | None = None) -> list[dict]:
    """One row per run: name, id, kind, model, recipe, every stored hyperparameter (a column each, missing
    where a run has none), the best and final ``metric``, the best epoch, epochs done and training time. The
    ``epochs`` column is the setting; how many a run has done is ``epochs done``. A column whose values are of
    several kinds (``devices`` 1 and "all") is written as text."""
    hypers = {run.id: flat_hyperparameters(run) for run in runs}
    columns = sorted({key for hyper in hypers.values() for key in hyper})
    mixed = {key for key in columns if _mixes_types([hyper.get(key) for hyper in hypers.values()])}
    rows = []
    for run in runs:
        hyper = {key: str(value) if key in mixed and value is not None else value
                 for key, value in hypers[run.id].items()}
        best = best_epoch(run, metric, direction or metric_direction(metric))
        row: dict = {"run": run.name, "id": run.id, "kind": run.kind, "model": run.model, "recipe": run.recipe}
        for key in columns:
            row[key] = hyper.get(key)
            if key == "epochs":  # what was asked beside what was done
                row["epochs done"] = len(run.rows)
        row.setdefault("epochs done", len(run.rows))
        rows.append({
            **row,
            f"best {metric}": None if best is None else best[2], "best epoch": None if best is None else best[0],
            f"final {metric}": final_value(run, metric),
            "duration_s": None if run.duration_s is None else round(run.duration_s, 1),
        })
    return rows
