"""Turn a Keras training log into a per-epoch table.

Accepts console logs of Keras 2.x, tf.keras 2.x and Keras 3 (progress bars,
``verbose=2`` lines, callback announcements), the same logs wrapped in
markdown or HTML, CSVLogger files and ``History.history`` JSON.

Rules: an epoch counts only when its final metrics line is present (a
truncated epoch is not an epoch); a repeated epoch replaces the earlier
one; learning rates come from ``LearningRateScheduler`` lines (that
epoch), ``ReduceLROnPlateau`` lines (the following epochs) or an ``lr`` /
``learning_rate`` metric, and form the ``lr`` column, last.
"""

import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass, field

from eipviz.errors import EipvizError

_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)"
_PAIR = re.compile(rf"^\s*([A-Za-z_][\w./@\-]*)\s*:\s*({_NUMBER})\s*$", re.IGNORECASE)
_EPOCH_HEADER = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)\s*$")
_CALLBACK = re.compile(r"^\s*Epoch\s+0*(\d+)\s*:\s*(.*)$")
_SCHEDULER = re.compile(rf"LearningRateScheduler setting learning rate to\s*({_NUMBER})", re.IGNORECASE)
_PLATEAU = re.compile(rf"ReduceLROnPlateau reducing learning rate to\s*({_NUMBER})", re.IGNORECASE)
_COUNTER = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\b")
_BLOCK_TAGS = re.compile(r"<\s*(?:br|/?p|/?div|/?tr|/?td|/?th|/?li|/?pre|/?table|/?h\d)\b[^>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^>]+>")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Keras 3 colours its progress bar in terminals
LR_NAMES = ("lr", "learning_rate")
MAX_LOG_BYTES = 50 * 1024 * 1024


@dataclass
class ParsedLog:
    """Per-epoch metrics in printed order, plus learning rates where known."""

    epochs: dict = field(default_factory=dict)  # epoch (1-based) -> {metric: value}
    metric_names: list = field(default_factory=list)  # as printed, first appearance
    learning_rates: dict = field(default_factory=dict)  # epoch -> lr

    def add_epoch(self, epoch: int, metrics: dict) -> None:
        lr = next((metrics.pop(name) for name in LR_NAMES if name in metrics), None)
        for name in metrics:
            if name not in self.metric_names:
                self.metric_names.append(name)
        self.epochs[epoch] = metrics  # a repeated epoch: the later one wins
        if lr is not None:
            self.learning_rates[epoch] = lr

    @property
    def columns(self) -> list[str]:
        return ["epoch", *self.metric_names] + (["lr"] if self.learning_rates else [])

    def rows(self) -> list[dict]:
        """One dict per epoch, in epoch order, with every column (None where missing)."""
        return [{"epoch": epoch, **{name: self.epochs[epoch].get(name) for name in self.metric_names},
                 **({"lr": self.learning_rates.get(epoch)} if self.learning_rates else {})}
                for epoch in sorted(self.epochs)]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows():
            writer.writerow(["" if row[c] is None else _format(row[c]) for c in self.columns])
        return out.getvalue()


def _format(value) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _number(text: str) -> float:
    return float(text.lower().replace("+inf", "inf"))


def parse_log(text: str) -> ParsedLog:
    """Parse any supported log text; raise ``EipvizError`` saying why when nothing is found."""
    if "\x00" in text:
        raise EipvizError("This is a binary file, not a training log.")
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise EipvizError("The log is empty.")
    if stripped.startswith("{"):
        parsed = _parse_history_json(stripped)
    elif stripped.lower().startswith("epoch,"):
        parsed = _parse_csvlogger(stripped)
    else:
        parsed = _parse_console(stripped)
    if not parsed.epochs:
        raise EipvizError(
            "No epochs found. eipviz reads Keras console logs (lines like 'Epoch 3/20' followed by "
            "'... - loss: 0.41 - accuracy: 0.93'), CSVLogger files and History JSON.")
    return parsed


def parse_log_bytes(data: bytes) -> ParsedLog:
    """Decode uploaded bytes as UTF-8 (or Latin-1) and parse them."""
    if len(data) > MAX_LOG_BYTES:
        raise EipvizError(f"The file is larger than {MAX_LOG_BYTES // 2**20} MB; that is not a training log.")
    if b"\x00" in data[:4096]:
        raise EipvizError("This is a binary file, not a training log.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_log(text)


def _clean_lines(text: str) -> list[str]:
    """Undo the wrapping of markdown and HTML, split progress updates, drop indentation."""
    text = _ANSI.sub("", text)
    text = _BLOCK_TAGS.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    text = html.unescape(text).replace("\\_", "_")
    text = text.replace("|", "\n").replace("\r", "\n").replace("\x08", "\n")
    lines = []
    for line in text.split("\n"):
        line = line.strip().strip("`*").strip()
        if line.startswith(">"):
            line = line.lstrip("> ").strip()
        if line:
            lines.append(line)
    return lines


def _metrics_of(line: str) -> dict | None:
    """``name: value`` pairs of a final epoch metrics line, or None for any other line."""
    if "ETA:" in line or _CALLBACK.match(line):
        return None
    counter = _COUNTER.match(line)
    if counter and counter.group(1) != counter.group(2):
        return None  # a Keras 3 progress update, not the epoch's end
    pairs = {}
    for segment in line.split(" - ")[1:]:  # Keras prints every metric after a " - "
        match = _PAIR.match(segment)
        if match:
            pairs[match.group(1)] = _number(match.group(2))
    if not any("loss" in name for name in pairs):  # fit always reports a loss; noise does not
        return None
    return pairs


def _parse_console(text: str) -> ParsedLog:
    parsed = ParsedLog()
    lines = _clean_lines(text)
    has_headers = any(_EPOCH_HEADER.match(line) for line in lines)
    current = None  # the epoch whose metrics line we expect next
    plateau = {}  # first epoch -> rate announced by ReduceLROnPlateau
    for line in lines:
        header = _EPOCH_HEADER.match(line)
        if header:
            current = int(header.group(1))
            continue
        callback = _CALLBACK.match(line)
        if callback:
            epoch, message = int(callback.group(1)), callback.group(2)
            if match := _SCHEDULER.search(message):
                parsed.learning_rates[epoch] = _number(match.group(1))
                current = epoch  # printed as the epoch begins
            elif match := _PLATEAU.search(message):
                plateau[epoch + 1] = _number(match.group(1))
            continue
        metrics = _metrics_of(line)
        if metrics is None:
            continue
        if current is None:
            if has_headers:
                continue  # e.g. a model.evaluate line after training
            current = max(parsed.epochs, default=0) + 1
        scheduled = parsed.learning_rates.get(current)
        parsed.add_epoch(current, metrics)
        if scheduled is not None and current not in parsed.learning_rates:
            parsed.learning_rates[current] = scheduled
        current = None
    _apply_plateau_rates(parsed, plateau)
    parsed.learning_rates = {e: lr for e, lr in parsed.learning_rates.items() if e in parsed.epochs}
    return parsed


def _apply_plateau_rates(parsed: ParsedLog, plateau: dict) -> None:
    """A plateau reduction holds from the next epoch until another rate is announced."""
    if not plateau:
        return
    rate = None
    for epoch in sorted(parsed.epochs):
        if epoch in plateau:
            rate = plateau[epoch]
        if epoch in parsed.learning_rates:
            continue
        if rate is not None:
            parsed.learning_rates[epoch] = rate


def _parse_csvlogger(text: str) -> ParsedLog:
    """CSVLogger counts epochs from 0; our own per-epoch CSV counts from 1, as Keras prints them."""
    parsed = ParsedLog()
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
        offset = 1 if rows and int(float(rows[0]["epoch"])) == 0 else 0
        for row in rows:
            epoch = int(float(row.pop("epoch")))
            parsed.add_epoch(epoch + offset, {k: _number(v) for k, v in row.items() if k and v not in ("", None)})
    except (ValueError, TypeError, KeyError, csv.Error) as error:
        raise EipvizError(f"This looks like a CSV log but a row is malformed: {error}") from error
    return parsed


def _parse_history_json(text: str) -> ParsedLog:
    try:
        history = json.loads(text)
    except json.JSONDecodeError as error:
        raise EipvizError(f"This looks like JSON but is not valid: {error}") from error
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise EipvizError("JSON logs must be a Keras History.history object: {metric: [value per epoch]}.")
    parsed = ParsedLog()
    length = max((len(v) for v in history.values()), default=0)
    for index in range(length):
        parsed.add_epoch(index + 1, {name: float(values[index]) for name, values in history.items()
                                     if index < len(values) and values[index] is not None})
    return parsed
