"""A run's metric history exported as CSV from Weights & Biases or MLflow.

W&B (``run.history()`` or the run's CSV export): one row per logged step, columns ``_step``,
``_runtime``, ``_timestamp``, ``epoch`` (or ``epoch/epoch`` from ``WandbMetricsLogger``) and the metrics
(``epoch/loss`` ... are read as ``loss``; ``batch/...`` columns are batch-level and left out). Rows are
merged per epoch. MLflow (``get_metric_history`` or the UI's download): long rows ``key``, ``value``,
``step``, ``timestamp``. Epochs counted from 0 are shifted to Keras' 1-based count.
"""

import csv
import io
import math

from eipviz.errors import EipvizError
from eipviz.keraslog import ParsedLog

WANDB_MARKERS = ("_step", "_runtime", "_timestamp")
EPOCH_COLUMNS = ("epoch", "epoch/epoch", "Epoch")
STEP_COLUMNS = ("_step", "step", "Step")
SKIPPED_SUFFIXES = ("__MIN", "__MAX")


def _header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])


def is_history_csv(text: str) -> bool:
    """True for a W&B or MLflow history export (a CSVLogger file starts with ``epoch,`` instead)."""
    header = _header(text)
    return bool(set(header) & set(WANDB_MARKERS)) or {"key", "value", "step"} <= set(header) or (
        "Step" in header and not text.lstrip().startswith("epoch,"))


def _float(text) -> float | None:
    if text is None or str(text).strip() in ("", "None", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_history_csv(text: str) -> ParsedLog:
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise EipvizError("The CSV has a header but no rows.")
    header = list(rows[0])
    if {"key", "value", "step"} <= set(header):
        return _parse_long(rows)
    epoch_column = next((c for c in EPOCH_COLUMNS if c in header), None) or next(
        (c for c in STEP_COLUMNS if c in header), None)
    if epoch_column is None:
        looked_for = ", ".join(EPOCH_COLUMNS + STEP_COLUMNS)
        raise EipvizError(f"The CSV has no epoch or step column (looked for {looked_for}).")
    metrics = {}
    for column in header:
        if column in (epoch_column, *EPOCH_COLUMNS, *STEP_COLUMNS, *WANDB_MARKERS) or column.startswith(
                ("batch/", "_")) or column.endswith(SKIPPED_SUFFIXES):
            continue
        name = column.rsplit(" - ", 1)[-1]  # W&B panel exports name columns "<run> - <metric>"
        metrics[column] = name.removeprefix("epoch/")
    by_epoch: dict[int, dict] = {}
    for row in rows:
        epoch = _float(row.get(epoch_column))
        values = {name: v for column, name in metrics.items() if (v := _float(row.get(column))) is not None}
        if epoch is None or not values or not math.isfinite(epoch):
            continue  # a step that logged batch metrics only
        runtime = _float(row.get("_runtime"))
        if runtime is not None:
            values["wall_time"] = runtime
        by_epoch.setdefault(int(epoch), {}).update(values)
    return _to_parsed(by_epoch)


def _parse_long(rows: list[dict]) -> ParsedLog:
    by_epoch: dict[int, dict] = {}
    start = min((t for row in rows if (t := _float(row.get("timestamp"))) is not None), default=None)
    for row in rows:
        step, value = _float(row.get("step")), _float(row.get("value"))
        if step is None or value is None or not row.get("key"):
            continue
        values = by_epoch.setdefault(int(step), {})
        values[row["key"]] = value
        stamp = _float(row.get("timestamp"))
        if stamp is not None and start is not None:
            values["wall_time"] = max(values.get("wall_time", 0.0), (stamp - start) / 1000)  # MLflow: ms
    return _to_parsed(by_epoch)


def _to_parsed(by_epoch: dict[int, dict]) -> ParsedLog:
    if not by_epoch:
        raise EipvizError("The CSV holds no per-epoch metric values.")
    offset = 1 if min(by_epoch) == 0 else 0
    parsed = ParsedLog()
    for epoch in sorted(by_epoch):
        parsed.add_epoch(epoch + offset, by_epoch[epoch])
    return parsed
