"""A run's metric history exported as CSV from Weights & Biases, MLflow or TensorBoard.

W&B (``run.history()`` or the run's CSV export): one row per logged step, columns ``_step``,
``_runtime``, ``_timestamp``, ``epoch`` (or ``epoch/epoch`` from ``WandbMetricsLogger``) and the metrics
(``epoch/loss`` ... are read as ``loss``; ``batch/...`` columns are batch-level and left out). Rows are
merged per epoch; a metric an epoch logs again (a resumed run) keeps its later value, with a note. A panel
export of several runs (``<run> - <metric>`` columns) is refused, not merged.
MLflow (``get_metric_history`` or the UI's download): long rows ``key``, ``value``, ``step``,
``timestamp``. Epochs counted from 0 are shifted to Keras' 1-based count. TensorBoard's scalar download
(``Wall time,Step,Value``) holds one series and not its name: the name comes from the download's file name
(``run-validation-tag-epoch_loss.csv``: ``val_loss``), and its steps are numbered like the event files'.
"""

import csv
import io
import math
import re
from collections.abc import Sequence

from eipviz.curves_import.tbevents import VALIDATION_DIRS, epoch_metric_name, listing
from eipviz.errors import EipvizError
from eipviz.keraslog import INDEX_COLUMNS, ParsedLog, changes_values, repeated_epochs_warning

WANDB_MARKERS = ("_step", "_runtime", "_timestamp")
EPOCH_COLUMNS = ("epoch", "epoch/epoch", "Epoch")
STEP_COLUMNS = ("_step", "step", "Step")
SKIPPED_SUFFIXES = ("__MIN", "__MAX")
RUN_ID_COLUMNS = ("run_id", "run_uuid")  # MLflow's, in a long export of several runs
WANDB_RUN_SEPARATOR = " - "  # W&B panel exports name columns "<run> - <metric>"
TENSORBOARD_HEADER = ["Wall time", "Step", "Value"]
# TensorBoard's Scalars tab names a download run-<run>-tag-<tag>.csv ("/" in either becomes "_"); a browser
# adds " (1)" to a second download of the same name.
TENSORBOARD_DOWNLOAD_NAME = re.compile(r"^run-(?P<run>.*)-tag-(?P<tag>.+?)(?: \(\d+\))?\.csv$")
HEADER_CHARS = 64 * 1024  # below csv's field limit (128 KiB): a whole log on one line is no header


def _header(text: str) -> list[str]:
    """The first line's fields; [] when it is no CSV line."""
    head = text[:HEADER_CHARS + 1].lstrip("\ufeff")[:HEADER_CHARS]
    try:
        return next(csv.reader(head.splitlines()[:1]), [])
    except csv.Error:
        return []


def is_history_csv(text: str) -> bool:
    """True for a W&B, MLflow or TensorBoard history export (a CSVLogger file starts with ``epoch,`` instead)."""
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


def _step(text, line: int) -> int | None:
    """A row's step as a whole number (None when empty); an inf, nan or negative step is an error, not a row to
    guess at."""
    step = _float(text)
    if step is not None and not math.isfinite(step):
        raise EipvizError(f"Line {line} of the CSV has step {text!r}; steps must be whole numbers.")
    if step is not None and step < 0:
        raise EipvizError(f"Line {line} of the CSV has step {text}; steps count up from 0.")
    return None if step is None else int(step)


def _merge(by_epoch: dict[int, dict], epoch: int, values: dict, repeated: list[int]) -> None:
    """Add ``values`` to ``epoch``'s (rows of one epoch hold different metrics); an epoch whose metric gets another
    value, logged again by a resumed training, goes into ``repeated``: the later value is kept."""
    if changes_values(by_epoch.get(epoch, {}), values):
        repeated.append(epoch)
    by_epoch.setdefault(epoch, {}).update(values)


def parse_history_csv(text: str, file_name: str | None = None) -> ParsedLog:
    """The history as epochs; ``file_name`` names the metric of a TensorBoard scalar download."""
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        rows = list(reader)
    except csv.Error as error:
        raise EipvizError(f"The CSV cannot be read: {error}.") from error
    if not rows:
        raise EipvizError("The CSV has a header but no rows.")
    header = list(reader.fieldnames or [])
    _refuse_longer_rows(rows, len(header))
    if header == TENSORBOARD_HEADER:
        return _parse_tensorboard_download(rows, file_name)
    if {"key", "value", "step"} <= set(header):
        return _parse_long(rows)
    epoch_column = next((c for c in EPOCH_COLUMNS if c in header), None) or next(
        (c for c in STEP_COLUMNS if c in header), None)
    if epoch_column is None:
        looked_for = ", ".join(EPOCH_COLUMNS + STEP_COLUMNS)
        raise EipvizError(f"The CSV has no epoch or step column (looked for {looked_for}).")
    metrics = {}
    for column in header:
        if column in (epoch_column, *EPOCH_COLUMNS, *STEP_COLUMNS, *WANDB_MARKERS, *INDEX_COLUMNS) or \
                column.startswith(("batch/", "_")) or column.endswith(SKIPPED_SUFFIXES):
            continue
        metrics[column] = column.rsplit(WANDB_RUN_SEPARATOR, 1)[-1].removeprefix("epoch/")
    _refuse_mixed_columns(metrics)
    by_epoch: dict[int, dict] = {}
    repeated: list[int] = []
    for line, row in enumerate(rows, start=2):
        epoch = _float(row.get(epoch_column))
        values = {name: v for column, name in metrics.items() if (v := _float(row.get(column))) is not None}
        if epoch is None or not values or not math.isfinite(epoch):
            continue  # a step that logged batch metrics only
        if epoch < 0:
            raise EipvizError(f"Line {line} of the CSV has {epoch_column} {row[epoch_column]}; it counts up from 0.")
        runtime = _float(row.get("_runtime"))
        if runtime is not None:
            values["wall_time"] = runtime
        _merge(by_epoch, int(epoch), values, repeated)
    return _to_parsed(by_epoch, repeated=repeated)


def _refuse_longer_rows(rows: list[dict], columns: int) -> None:
    """Raises for a row with more values than the header has names (``csv`` keeps them under ``None``); empty
    extras, from a trailing comma, are dropped."""
    for line, row in enumerate(rows, start=2):
        extra = row.pop(None, None)
        if extra and any(str(value).strip() for value in extra):
            raise EipvizError(f"Line {line} of the CSV has {columns + len(extra)} values but its header names "
                              f"{columns} columns.")


def _refuse_mixed_columns(metrics: dict[str, str]) -> None:
    """Raises when two columns would fill one metric (a W&B panel export of several runs): merged, their
    epochs would interleave runs."""
    runs = list(dict.fromkeys(c.rsplit(WANDB_RUN_SEPARATOR, 1)[0] for c in metrics if WANDB_RUN_SEPARATOR in c))
    if len(runs) > 1:
        raise EipvizError(f"The CSV holds {len(runs)} W&B runs ({listing(runs)}); export one run's history "
                          f"(or a panel showing only that run) and import it.")
    for name in dict.fromkeys(metrics.values()):
        columns = [column for column, target in metrics.items() if target == name]
        if len(columns) > 1:
            raise EipvizError(f"Columns {' and '.join(columns)} would both be read as {name}; keep one of them.")


def _parse_long(rows: list[dict]) -> ParsedLog:
    runs = list(dict.fromkeys(row[column] for row in rows for column in RUN_ID_COLUMNS if row.get(column)))
    if len(runs) > 1:  # merged, one run's values would overwrite the other's
        raise EipvizError(f"The CSV holds {len(runs)} MLflow runs ({listing(runs)}); export one run's metric "
                          f"history and import it.")
    by_epoch: dict[int, dict] = {}
    repeated: list[int] = []
    start = min((t for row in rows if (t := _float(row.get("timestamp"))) is not None), default=None)
    for line, row in enumerate(rows, start=2):
        step, value = _step(row.get("step"), line), _float(row.get("value"))
        if step is None or value is None or not row.get("key"):
            continue
        _merge(by_epoch, step, {row["key"]: value}, repeated)
        values = by_epoch[step]
        stamp = _float(row.get("timestamp"))
        if stamp is not None and start is not None:
            values["wall_time"] = max(values.get("wall_time", 0.0), (stamp - start) / 1000)  # MLflow: ms
    return _to_parsed(by_epoch, repeated=repeated)


def _tensorboard_download_metric(file_name: str | None) -> str:
    """The metric a TensorBoard scalar download holds, from the name TensorBoard gave the file."""
    match = TENSORBOARD_DOWNLOAD_NAME.match(file_name or "")
    if match is None:
        raise EipvizError("This is TensorBoard's scalar download (Wall time, Step, Value), which does not say "
                          "which metric it holds. Import the file under the name TensorBoard gave it "
                          "(run-train-tag-epoch_loss.csv, run-validation-tag-epoch_accuracy.csv ...), or import "
                          "the run's event files instead.")
    run, tag = match["run"], match["tag"]
    name = epoch_metric_name(tag, run.rsplit("_", 1)[-1] in VALIDATION_DIRS)
    if name is None:
        raise EipvizError(f"{file_name} holds the tag {tag}, which is not per epoch; keras.callbacks.TensorBoard "
                          f"logs epoch_loss, epoch_accuracy ... once per epoch.")
    return name


def _parse_tensorboard_download(rows: list[dict], file_name: str | None) -> ParsedLog:
    metric = _tensorboard_download_metric(file_name)
    start = min((t for row in rows if (t := _float(row["Wall time"])) is not None), default=0.0)
    by_step: dict[int, dict] = {}
    repeated: list[int] = []
    for line, row in enumerate(rows, start=2):
        step, value, wall = _step(row["Step"], line), _float(row["Value"]), _float(row["Wall time"])
        if step is not None and value is not None:
            _merge(by_step, step, {metric: value, **({} if wall is None else {"wall_time": round(wall - start, 3)})},
                   repeated)
    # Keras logs epoch metrics at step = epoch index, as the event files
    return _to_parsed(by_step, offset=1, repeated=repeated)


def _to_parsed(by_epoch: dict[int, dict], offset: int | None = None, repeated: Sequence[int] = ()) -> ParsedLog:
    """The epochs in order; ``offset`` is added to each (default: 1 when they count from 0, as Keras' 1-based
    count), and to the ``repeated`` ones the note names."""
    if not by_epoch:
        raise EipvizError("The CSV holds no per-epoch metric values.")
    if offset is None:
        offset = 1 if min(by_epoch) == 0 else 0
    parsed = ParsedLog()
    for epoch in sorted(by_epoch):
        parsed.add_epoch(epoch + offset, by_epoch[epoch])
    if repeated:
        parsed.warnings.append(repeated_epochs_warning(epoch + offset for epoch in repeated))
    return parsed
