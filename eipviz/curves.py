"""Browse and compare training curves: trained, imported and documented reference runs."""

import csv
import hashlib
import io
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from eipviz.access import require_write
from eipviz.keraslog import ParsedLog, parse_log
from eipviz.recipes import get_recipe
from eipviz.zoo import MODELS

REFERENCE_DIR = Path(__file__).resolve().parent / "reference_runs"
# Keras 2 logs say acc and lr; Keras 3 says accuracy and learning_rate. Compare like with like.
CANONICAL = {"acc": "accuracy", "val_acc": "val_accuracy", "lr": "learning_rate"}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


@dataclass
class CurveRun:
    id: str
    name: str
    kind: str  # trained | imported | reference
    rows: list  # [{"epoch": e, metric: value, ...}] with canonical metric names (empty: none, or not read)
    model: str | None = None
    status: str = "finished"
    source: str | None = None
    recipe: str | None = None
    hyperparameters: dict = field(default_factory=dict)
    duration_s: float | None = None  # training time: its last wall_time (summed over resumes), else start to end
    epoch_count: int | None = None  # epochs recorded, known where ``rows`` are not read; None: ``len(rows)``

    def __post_init__(self):
        if self.epoch_count is None:
            self.epoch_count = len(self.rows)

    @property
    def metric_names(self) -> list[str]:
        names = []
        for row in self.rows:
            names += [k for k in row if k != "epoch" and k not in names]
        return names

    @property
    def color(self) -> str:
        """Stable per run id, so a run keeps its colour between reruns and selections."""
        return PALETTE[int(hashlib.sha1(self.id.encode()).hexdigest(), 16) % len(PALETTE)]


def canonical_rows(parsed: ParsedLog) -> list[dict]:
    return [{CANONICAL.get(k, k): v for k, v in row.items()} for row in parsed.rows()]


REFERENCE_PREFIX = "reference-"  # a documented run's id: read from the seeds, never in the run store


def reference_runs() -> list[CurveRun]:
    """The five documented runs, parsed from the seeds and committed as CSV."""
    runs = []
    for name, spec in MODELS.items():
        path = REFERENCE_DIR / f"{name}.csv"
        text = "".join(line for line in path.read_text().splitlines(True) if not line.startswith("#"))
        runs.append(CurveRun(id=f"{REFERENCE_PREFIX}{name}", name=f"{name} (documented, seed {spec.seed_file[:3]})",
                             kind="reference", rows=canonical_rows(parse_log(text)), model=name,
                             source=f"../shared/seeds/{spec.seed_file}", recipe="documented",
                             hyperparameters=get_recipe(name, "documented").hyperparameters()))
    return runs


def store_runs(store, rows_of: Collection[str] | None = None) -> list[CurveRun]:
    """The store's trained and imported runs, newest first, with the epochs of those in ``rows_of`` (of all when
    None; the others' ``rows`` are left empty). The Curves page lists every run and draws the few selected:
    reading all epochs of 300 runs took 0.25 s, twice a rerun (2026-11-28)."""
    store.reap_dead_workers()
    listed = store.list_runs(kinds=("trained", "imported"))
    rows = store.epoch_rows_of([run.id for run in listed if rows_of is None or run.id in rows_of])
    counts = store.epoch_counts() if len(rows) < len(listed) else {}  # of the runs whose rows are not read
    return [CurveRun(run.id, run.name, run.kind, rows.get(run.id, []), run.model, run.status, run.source, run.recipe,
                     run.hyperparameters,
                     training_seconds(rows[run.id], run.started, run.ended) if run.id in rows else None,
                     epoch_count=None if run.id in rows else counts.get(run.id, 0))
            for run in listed]


def training_seconds(rows: list[dict], started: float | None, ended: float | None) -> float | None:
    """The last epoch's ``wall_time``, which sums every session of a resumed run; else end minus start, which
    would also count the days a run spent stopped before a resume."""
    wall_times = [row["wall_time"] for row in rows if row.get("wall_time") is not None]
    if wall_times:
        return wall_times[-1]
    return ended - started if started and ended else None


def all_curve_runs(store, rows_of: Collection[str] | None = None) -> list[CurveRun]:
    """The store's runs (their epochs read as ``store_runs`` says), then the documented ones (always with theirs)."""
    return store_runs(store, rows_of) + reference_runs()


def run_dataset(run: CurveRun) -> str | None:
    """The dataset a run's zoo model trains on; None for a model outside the zoo (an imported log has none)."""
    return MODELS[run.model].dataset if run.model in MODELS else None


def default_selection(runs: list[CurveRun]) -> list[str]:
    """Ids the Curves page (and ``eipviz curves``) opens with: the two newest trained runs that have epochs or
    are running, of the newest one's dataset, and the first documented run of that dataset; with no such run,
    the first documented run. ``runs`` are newest first, as ``all_curve_runs`` lists them.

    A run stopped before its first epoch draws nothing, and curves of two datasets compare nothing: a cancelled
    run with no epochs and a CIFAR-10 documented run beside MNIST runs were the page's default.
    """
    trained = [run for run in runs if run.kind == "trained" and (run.epoch_count or run.status == "running")]
    dataset = run_dataset(trained[0]) if trained else None
    newest = [run for run in trained if run_dataset(run) == dataset][:2]
    documented = [run for run in runs if run.kind == "reference" and (dataset is None or run_dataset(run) == dataset)]
    return [run.id for run in [*newest, *documented[:1]]]


def import_log(store, parsed: ParsedLog, name: str, source: str | None = None) -> str:
    """Save a parsed log as a finished run of kind "imported", with all its epochs or not at all, and its best
    epoch by validation accuracy; return its id (refused in viewer mode)."""
    require_write("Importing a log into the run store")
    rows = canonical_rows(parsed)
    validated = [(row["epoch"], row["val_accuracy"]) for row in rows
                 if isinstance(row.get("val_accuracy"), float) and math.isfinite(row["val_accuracy"])]
    best = max(validated, key=lambda pair: pair[1], default=(None, None))  # the first epoch of the highest
    # One transaction (as `runs` lists trained ones, with its best epoch): readers listed a finished run with no
    # epochs yet, and a killed import left one (a helper's stress test, 2026-11-28).
    return store.create_run(name=name, kind="imported", status="finished", source=source,
                            epochs={row.pop("epoch"): row for row in rows}, best_epoch=best[0],
                            best_val_accuracy=best[1])


def debiased_ema(values: list, smoothing: float) -> list:
    """TensorBoard's smoothing: an exponential moving average divided by (1 - w^t) to remove its start bias.

    Missing and non-finite values are passed through and do not advance the average.
    """
    if smoothing <= 0:
        return list(values)
    out, average, steps = [], 0.0, 0
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(value)
            continue
        steps += 1
        average = smoothing * average + (1 - smoothing) * value
        out.append(average / (1 - smoothing ** steps))
    return out


# Metrics where lower is better; every other metric (accuracy, AUC, IoU, F1 ...) is better higher.
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "mape", "msle", "hinge", "crossentropy", "divergence",
                   "poisson", "perplexity", "learning_rate", "wall_time", "seconds",
                   "deletion_auc", "average_drop")  # the timeline's probe_deletion_auc, probe_average_drop_pct
DIRECTIONS = ("max", "min")


def metric_direction(metric: str) -> str:
    """``"min"`` for loss-like metrics (``val_loss``, ``mae``, ``binary_crossentropy``), else ``"max"``."""
    name = metric.lower().removeprefix("val_")
    return "min" if any(part in name for part in LOWER_IS_BETTER) else "max"


def best_epoch(run: CurveRun, metric: str | None = None, direction: str | None = None) -> tuple | None:
    """(epoch, metric, value) of the run's best epoch, the earliest of ties; None without finite values.

    ``metric`` defaults to val_accuracy, else val_loss; ``direction`` (``"max"`` or ``"min"``) to the
    metric's own (``metric_direction``).
    """
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction. Received: direction={direction!r}; choose max or min.")
    for name in [metric] if metric else ["val_accuracy", "val_loss"]:
        points = [(row["epoch"], row[name]) for row in run.rows
                  if row.get(name) is not None and math.isfinite(row[name])]
        if points:
            pick = max if (direction or metric_direction(name)) == "max" else min
            epoch, value = pick(points, key=lambda p: p[1])
            return epoch, name, value
    return None


def final_value(run: CurveRun, metric: str) -> float | None:
    """The metric's last recorded value (validation every few epochs leaves the last epochs without one)."""
    return next((row[metric] for row in reversed(run.rows) if row.get(metric) is not None), None)


def significant(value: float | None, digits: int = 4) -> float | None:
    """``value`` to ``digits`` significant digits: a rate of 4e-5 must not show as 0 (NaN and infinities as
    they are: a diverged run's final loss is NaN)."""
    return None if value is None else float(f"{value:.{digits}g}")


def runs_table(runs: list[CurveRun], metric: str | None = None, direction: str | None = None) -> list[dict]:
    """Best value and epoch (of ``metric`` in ``direction``, see ``best_epoch``), final value, epochs done and
    training time per run."""
    rows = []
    for run in runs:
        best = best_epoch(run, metric, direction)
        shown_metric = best[1] if best else None
        rows.append({
            "run": run.name, "id": run.id, "kind": run.kind, "status": run.status, "best_metric": shown_metric,
            "best_value": None if best is None else significant(best[2]),
            "best_epoch": None if best is None else best[0],
            "final_value": None if shown_metric is None else significant(final_value(run, shown_metric)),
            "epochs done": len(run.rows),
            "duration_s": None if run.duration_s is None else round(run.duration_s, 1),
        })
    return rows


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """Text a spreadsheet shows as text: one starting like a formula (a run named ``=HYPERLINK(...)``) gets a
    leading ``'``, as OWASP advises against CSV injection; names come from whoever shares the app."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def tidy_csv(runs: list[CurveRun]) -> str:
    """All selected runs as one long table: run_id, run_name, kind, epoch, metric, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "run_name", "kind", "epoch", "metric", "value"])
    for run in runs:
        for row in run.rows:
            for metric, value in row.items():
                if metric != "epoch":
                    writer.writerow([run.id, spreadsheet_text(run.name), run.kind, row["epoch"],
                                     spreadsheet_text(metric), "" if value is None else value])
    return out.getvalue()
