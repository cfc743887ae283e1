"""Turn a Keras training log into a per-epoch table.

Accepts console logs of Keras 2.x, tf.keras 2.x and Keras 3 (progress bars,
``verbose=2`` lines, callback announcements), the same logs wrapped in
markdown or HTML, CSVLogger files (any of its separators), ``History.history``
as JSON, as printed, or as a pandas CSV.

Rules: an epoch counts only when its final metrics line is present (a
truncated epoch is not an epoch); a repeated epoch replaces the earlier
one, with a note where its values differ; learning rates come from
``LearningRateScheduler`` lines (that epoch), ``ReduceLROnPlateau`` lines
(the following epochs) or an ``lr`` / ``learning_rate`` metric, and form
the ``lr`` column, last.

Logs as people paste them (the corpus in tests/data/real_logs/): lines
glued together (``acc: 0.9933Epoch 00015: val_loss did not improve``, or a
whole log on one line), markdown headings or comments in front of lines
(``# Epoch 16/20``), an excerpt that starts mid-run (its first metrics line
is the epoch before the first ``Epoch k/N``), Keras 3's last progress line
printed before a callback message and the epoch's final line after it,
``evaluate`` lines after training, several ``fit()`` calls in one log (the
last is read). Wherever the parser guesses or skips, ``ParsedLog.warnings``
says so, quoting the lines.
"""

import codecs
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
# tf.keras 2.0-2.8 said "reducing learning rate to" (also when it raised it), later versions "setting".
_SCHEDULER = re.compile(rf"LearningRateScheduler (?:setting|reducing) learning rate to\s*({_NUMBER})", re.IGNORECASE)
_PLATEAU = re.compile(rf"ReduceLROnPlateau reducing learning rate to\s*({_NUMBER})", re.IGNORECASE)
_COUNTER = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\b")
_KERAS2_BAR = re.compile(r"\[=+\]")  # a finished Keras 2 progress bar; Keras 3 draws ``━``
_UNKNOWN_TOTAL = re.compile(r"^\s*\d+\s*/\s*Unknown\b")  # steps of a dataset whose size Keras does not know
# Lost line breaks glue Keras lines together: break before an epoch header or callback message that
# follows text on its line, after an epoch header, and before a progress counter (``1875/1875 [==``).
# Within one line only (``[ \t]``, not ``\s``): ``Epoch 1/3`` above a ``[1m469/469`` line is no glued counter.
_BEFORE_EPOCH = re.compile(r"(?<=\S)[ \t]*(?=Epoch[ \t]+\d+[ \t]*(?:/[ \t]*\d+|:))")
_AFTER_HEADER = re.compile(r"(Epoch[ \t]+\d+[ \t]*/[ \t]*\d+)[ \t]+(?=\S)")
_BEFORE_COUNTER = re.compile(r"(?<=\S)[ \t]+(?=\d+[ \t]*/[ \t]*\d+[ \t]*(?:\[|━))")
_LEADING_MARKS = "#>•`* \t"  # markdown headings and quotes, comment signs, bullets, code ticks
MAX_QUOTED = 12  # lines a warning quotes before it summarises
_BLOCK_TAGS = re.compile(r"<\s*(?:br|/?p|/?div|/?tr|/?td|/?th|/?li|/?pre|/?table|/?h\d)\b[^>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[A-Za-z][^<>\n]*>")  # a tag, not tqdm's "[00:01<00:00" up to a later ">"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Keras 3 colours its progress bar in terminals
# The same colours pasted from Kaggle or GitHub, their escape character lost: ``[1m469/469[0m [32m━━``.
_BARE_COLOUR = re.compile(r"\[(?:\d{1,3}(?:;\d{1,3})*)?m")
_NUMPY_SCALAR = re.compile(r"\bnp\.(?:float|int)\d*\(([^()]*)\)")
_BARE_INFINITY = re.compile(r"([-+]?)\binf\b")
LR_NAMES = ("lr", "learning_rate")
MAX_LOG_BYTES = 50 * 1024 * 1024
INDEX_COLUMNS = ("", "Unnamed: 0")  # the row index ``DataFrame.to_csv`` writes (as pandas reads it back)
CSV_SEPARATORS = ",;\t"  # CSVLogger's ``separator`` option; "," by default


@dataclass
class ParsedLog:
    """Per-epoch metrics in printed order, plus learning rates where known."""

    epochs: dict = field(default_factory=dict)  # epoch (1-based) -> {metric: value}
    metric_names: list = field(default_factory=list)  # as printed, first appearance
    learning_rates: dict = field(default_factory=dict)  # epoch -> lr
    warnings: list = field(default_factory=list)  # what the parser guessed or skipped, for the user

    def add_epoch(self, epoch: int, metrics: dict) -> None:
        metrics.pop("epoch", None)  # a History or CSV column of epoch numbers: the epoch itself, not a metric
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


def changes_values(earlier: dict, later: dict) -> bool:
    """True when ``later`` gives a metric of ``earlier`` another value (NaN is NaN; ``wall_time`` says when, not
    what): an epoch logged again by a resumed training, whose values replace the earlier ones."""
    return any(name != "wall_time" and name in earlier and not (
        earlier[name] == value or (math.isnan(earlier[name]) and math.isnan(value))) for name, value in later.items())


def repeated_epochs_warning(epochs) -> str:
    """The note for epochs logged twice with different values. Every importer keeps one rule: a training resumed
    from a checkpoint (``fit(initial_epoch=...)``) continues the run and its values replace those it logs again;
    a count that starts again at the first epoch is a new training, and the last one is read."""
    listed = ", ".join(str(epoch) for epoch in sorted(set(epochs)))
    return (f"Epoch(s) {listed} appear twice with different values, as a training resumed from a checkpoint logs "
            f"them again; the later ones were kept.")


def parse_log(text: str) -> ParsedLog:
    """Parse any supported log text; raise ``EipvizError`` saying why when nothing is found."""
    if "\x00" in text:
        raise EipvizError("This is a binary file, not a training log.")
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise EipvizError("The log is empty.")
    if stripped.startswith("{"):
        parsed = _parse_history_json(stripped)
    elif stripped.lower().startswith(tuple(f"epoch{separator}" for separator in CSV_SEPARATORS)):
        parsed = _parse_csvlogger(stripped, separator=stripped[len("epoch")])
    elif table := _history_table(stripped):
        parsed = _parse_csvlogger(table)
    else:
        parsed = _parse_console(stripped)
    if not parsed.epochs:
        raise EipvizError(
            "No epochs found. eipviz reads Keras console logs (lines like 'Epoch 3/20' followed by "
            "'... - loss: 0.41 - accuracy: 0.93'), CSVLogger files and History JSON.")
    return parsed


def parse_log_bytes(data: bytes) -> ParsedLog:
    """Decode uploaded bytes as UTF-8 (or Latin-1) and parse them."""
    return parse_log(decode_log(data))


def decode_log(data: bytes) -> str:
    """Uploaded bytes as text (UTF-16 with its BOM, UTF-8, else Latin-1); raise ``EipvizError`` for binary
    or huge files."""
    if len(data) > MAX_LOG_BYTES:
        raise EipvizError(f"The file is larger than {MAX_LOG_BYTES // 2**20} MB; that is not a training log.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # PowerShell's ``>`` writes UTF-16
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise EipvizError(f"The file starts as UTF-16 text but is not: {error}") from error
    if b"\x00" in data[:4096]:
        raise EipvizError("This is a binary file, not a training log.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _clean_lines(text: str) -> list[str]:
    """Undo the wrapping of markdown and HTML, split progress updates, drop indentation."""
    text = _BARE_COLOUR.sub("", _ANSI.sub("", text))
    text = _BLOCK_TAGS.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    text = html.unescape(text).replace("\\_", "_")
    text = text.replace("|", "\n").replace("\r", "\n").replace("\x08", "\n")
    text = _BEFORE_COUNTER.sub("\n", _AFTER_HEADER.sub("\\1\n", _BEFORE_EPOCH.sub("\n", text)))
    lines = []
    for line in text.split("\n"):
        line = line.strip(_LEADING_MARKS).strip()
        if line:
            lines.append(line)
    return lines


def _metrics_of(line: str) -> tuple[dict, int | None] | None:
    """(``name: value`` pairs, steps per epoch or None) of a final epoch metrics line; None for other lines."""
    if "ETA:" in line or _CALLBACK.match(line) or _UNKNOWN_TOTAL.match(line):
        return None  # a progress update; Keras 3 ends an epoch of unknown length with ``N/N``
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
    return pairs, int(counter.group(2)) if counter else None


def _quote(lines: list[str]) -> str:
    shown = [f"'{line[:100]}'" for line in lines[:MAX_QUOTED]]
    more = f" and {len(lines) - MAX_QUOTED} more" if len(lines) > MAX_QUOTED else ""
    return "; ".join(shown) + more


def _last_fit(lines: list[str], parsed: ParsedLog) -> list[str]:
    """The lines of the last ``fit()`` call: a header ``Epoch 1/N`` after a later epoch starts a new one."""
    starts, highest = [], 0
    for index, line in enumerate(lines):
        if header := _EPOCH_HEADER.match(line):
            epoch = int(header.group(1))
            if epoch == 1 and highest > 1:
                starts.append(index)
            highest = max(highest, epoch)
    if not starts:
        return lines
    parsed.warnings.append(
        f"The log holds {len(starts) + 1} trainings (its epoch count restarts at 'Epoch 1/N' {len(starts)} "
        f"time(s)); only the last one was read. Split the log to import the others.")
    return lines[starts[-1]:]


def _parse_console(text: str) -> ParsedLog:
    parsed = ParsedLog()
    lines = _last_fit(_clean_lines(text), parsed)
    header_at = [(i, int(m.group(1))) for i, line in enumerate(lines) if (m := _EPOCH_HEADER.match(line))]
    first_header, first_epoch = header_at[0] if header_at else (None, 0)
    current = None  # the epoch whose metrics we expect: set by its header (or scheduler line)
    block: tuple | None = None  # (metric names, steps) of the line taken for ``current`` since its header
    callback_since = False  # a callback message came after that line (Keras 3 prints the final line after)
    after_final = False  # that line is Keras 2's final one, so its callback messages come after it
    headers: dict[int, str] = {}  # epoch -> header line, to report epochs that never got metrics
    orphans: list[tuple[dict, int | None, str]] = []  # metrics lines above the first header
    callbacks_before_header: set[int] = set()
    plateau: dict[int, float] = {}  # first epoch -> rate announced by ReduceLROnPlateau
    skipped: list[str] = []
    unnumbered = 0
    for index, line in enumerate(lines):
        if header := _EPOCH_HEADER.match(line):
            current, block = int(header.group(1)), None
            headers[current] = line
            continue
        if callback := _CALLBACK.match(line):
            epoch, message = int(callback.group(1)), callback.group(2)
            callback_since = True
            if first_header is not None and index < first_header:
                callbacks_before_header.add(epoch)
            if match := _SCHEDULER.search(message):
                parsed.learning_rates[epoch] = _number(match.group(1))
                if current != epoch:
                    current, block = epoch, None  # printed as the epoch begins
            elif match := _PLATEAU.search(message):
                plateau[epoch + 1] = _number(match.group(1))
            continue
        found = _metrics_of(line)
        if found is None:
            continue
        metrics, steps = found
        if first_header is None:  # no headers at all: number the metrics lines in order
            unnumbered += 1
            parsed.add_epoch(unnumbered, metrics)
            continue
        if current is None:
            if index < first_header:
                orphans.append((metrics, steps, line))
            else:
                skipped.append(line)
            continue
        if block is None and current in parsed.epochs and parsed.epochs[current] != _without_rates(metrics):
            parsed.warnings.append(f"Epoch {current} appears twice with different values; "
                                   f"the later ones were kept: '{line[:100]}'.")
        if block is None or _completes(metrics, steps, block, callback_since and not after_final,
                                       parsed.epochs[current]):
            _add_with_schedule(parsed, current, metrics)
            # Keras 2 prints callback messages after the epoch's final line (its bar ``[====]``), Keras 3 before.
            block, callback_since, after_final = (set(metrics), steps), False, bool(_KERAS2_BAR.search(line))
        else:
            skipped.append(line)  # e.g. an evaluate() line after training
    if orphans and first_header is not None:
        _place_orphans(parsed, orphans, first_epoch, callbacks_before_header, skipped)
    if unnumbered:
        parsed.warnings.append(f"The log has no 'Epoch k/N' lines: its {unnumbered} metrics lines were "
                               f"numbered 1 to {unnumbered} in the order printed.")
    if skipped:
        parsed.warnings.append(f"{len(skipped)} metrics line(s) belong to no epoch and were skipped: "
                               f"{_quote(skipped)}.")
    missing = [line for epoch, line in sorted(headers.items()) if epoch not in parsed.epochs]
    if missing:
        parsed.warnings.append(f"{len(missing)} epoch(s) have a header but no final metrics line and were "
                               f"not counted: {_quote(missing)}.")
    _apply_plateau_rates(parsed, plateau)
    parsed.learning_rates = {e: lr for e, lr in parsed.learning_rates.items() if e in parsed.epochs}
    return parsed


def _completes(metrics: dict, steps: int | None, block: tuple, callback_since: bool, taken: dict) -> bool:
    """Whether a second metrics line since an epoch's header is that epoch's final line.

    Keras 3 prints the epoch's last progress line, then callback messages, then the final line: with
    validation it adds ``val_`` metrics; without, it repeats the values. An ``evaluate()`` line after
    training has the same names, other values and no callback message before it: it is not the epoch's.
    """
    names, block_steps = block
    if not set(metrics) >= names or (steps is not None and block_steps is not None and steps != block_steps):
        return False
    return set(metrics) > names or callback_since or _without_rates(metrics) == taken


def _without_rates(metrics: dict) -> dict:
    return {name: value for name, value in metrics.items() if name not in LR_NAMES}


def _add_with_schedule(parsed: ParsedLog, epoch: int, metrics: dict) -> None:
    """Add an epoch, keeping the rate a scheduler line announced for it unless the line reports one."""
    scheduled = parsed.learning_rates.get(epoch)
    parsed.add_epoch(epoch, dict(metrics))
    if scheduled is not None and epoch not in parsed.learning_rates:
        parsed.learning_rates[epoch] = scheduled


def _place_orphans(parsed: ParsedLog, orphans: list, first_epoch: int, callbacks: set, skipped: list) -> None:
    """An excerpt that starts mid-run: its metrics above the first ``Epoch k/N`` are epoch k - 1's.

    Keras 3 may print the epoch's last progress line and then its final line: the last line whose metrics
    include all the others' is the epoch's. Confirmed by a callback line naming epoch k - 1, it is not
    reported; otherwise the guess is.
    """
    epoch = first_epoch - 1
    if epoch < 1 or epoch in parsed.epochs:
        skipped.extend(line for _, _, line in orphans)
        return
    chosen = orphans[-1]
    skipped.extend(line for metrics, _, line in orphans[:-1] if not set(chosen[0]) >= set(metrics))
    _add_with_schedule(parsed, epoch, chosen[0])
    if epoch not in callbacks:
        parsed.warnings.append(f"The log starts mid-run: the metrics line above 'Epoch {first_epoch}/N' was "
                               f"taken as epoch {epoch} (a guess): '{chosen[2][:100]}'.")


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


def _parse_csvlogger(text: str, separator: str = ",") -> ParsedLog:
    """CSVLogger counts epochs from 0; our own per-epoch CSV counts from 1, as Keras prints them.

    CSVLogger writes ``NA`` for a metric an epoch lacks (validation every other epoch, or none) and a
    list for a metric with several values (``F1Score(average=None)``): both are left out. With
    ``append=True`` a file holds every training written to it: the last one is read, as in a console log; a
    training resumed from a checkpoint logs the epochs after it again, and its values replace theirs, with a note.
    A negative epoch is refused, naming its line.
    """
    parsed = ParsedLog()
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter=separator)
        rows, lines = [], []
        for row in reader:
            rows.append(row)
            lines.append(reader.line_num)
        epochs = [int(float(row.pop("epoch"))) for row in rows]
    except (ValueError, TypeError, KeyError, OverflowError, csv.Error) as error:  # OverflowError: an epoch of inf
        raise EipvizError(f"This looks like a CSV log but a row is malformed: {error}") from error
    negative = next((index for index, epoch in enumerate(epochs) if epoch < 0), None)
    if negative is not None:
        raise EipvizError(f"Line {lines[negative]} of the CSV has epoch {epochs[negative]}; epochs count up from 0.")
    # A new fit() starts again at 0; a resumed one repeats the epochs after its checkpoint (the later row wins).
    starts = [index for index in range(1, len(epochs)) if epochs[index] == 0]
    if starts:
        parsed.warnings.append(
            f"The file holds {len(starts) + 1} trainings (its epoch count restarts {len(starts)} time(s), as "
            f"CSVLogger(append=True) writes them); only the last one was read.")
        rows, epochs = rows[starts[-1]:], epochs[starts[-1]:]
    offset = 1 if epochs and epochs[0] == 0 else 0
    if epochs and epochs[0] > 1:
        parsed.warnings.append(
            f"The first row is epoch {epochs[0]}, read as Keras' 'Epoch {epochs[0]}/N'. If this file is "
            f"CSVLogger's (it counts from 0, so a resumed run's rows start above 0), Keras printed it as "
            f"'Epoch {epochs[0] + 1}/N'.")
    not_numbers: dict[str, str] = {}
    logged: dict[int, dict] = {}
    repeated = []
    for epoch, row in zip(epochs, rows, strict=True):
        metrics = {}
        for name, value in row.items():
            if not name or value in ("", None, "NA"):
                continue
            try:
                metrics[name] = _number(value)
            except ValueError:
                not_numbers.setdefault(name, value)
        if changes_values(logged.get(epoch, {}), metrics):
            repeated.append(epoch + offset)
        logged[epoch] = {**logged.get(epoch, {}), **metrics}  # a metric the later row lacks (NA) is kept
        parsed.add_epoch(epoch + offset, dict(logged[epoch]))
    if repeated:
        parsed.warnings.append(repeated_epochs_warning(repeated))
    for name, value in not_numbers.items():
        parsed.warnings.append(f"Column '{name}' holds values that are not numbers (such as "
                               f"'{value[:40]}'); they were left out.")
    return parsed


def _history_table(text: str) -> str | None:
    """``pd.DataFrame(history.history).to_csv()`` as a CSVLogger file: its row index (counting from 0, as
    CSVLogger's epochs) becomes the epoch column, or one is added (``index=False``, where every value must be a
    number). None for other text: a History table has a ``loss`` column and no epoch or step column, so a W&B
    runs table (``Name,State,…,loss``) or a ``step,loss`` export is not taken for one."""
    try:
        header = next(csv.reader([text.split("\n", 1)[0]]), [])
        if "loss" not in header or {name.lower() for name in header} & {"epoch", "step", "_step"}:
            return None
        rows = [row for row in csv.reader(io.StringIO(text)) if row][1:]
    except csv.Error:
        return None
    indexed = header[0] in INDEX_COLUMNS
    if not indexed and not all(_is_number(cell) for row in rows for cell in row):
        return None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if indexed:
        writer.writerows([["epoch", *header[1:]], *rows])
    else:
        writer.writerows([["epoch", *header], *([index, *row] for index, row in enumerate(rows))])
    return out.getvalue()


def _is_number(cell: str) -> bool:
    try:
        _number(cell)
    except ValueError:
        return cell.strip() == ""
    return True


def _parse_history_json(text: str) -> ParsedLog:
    try:
        history = json.loads(text)
    except json.JSONDecodeError as error:
        try:  # printed, not dumped: print(history.history)
            history = json.loads(_python_repr_as_json(text))
        except json.JSONDecodeError:
            raise EipvizError(f"This looks like JSON but is not valid: {error}") from error
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise EipvizError("JSON logs must be a Keras History.history object: {metric: [value per epoch]}.")
    parsed = ParsedLog()
    length = max((len(v) for v in history.values()), default=0)
    epochs_of = {name: _history_epochs(len(values), length) for name, values in history.items()}
    _warn_history_placement(parsed, {name: len(values) for name, values in history.items()}, epochs_of, length)
    per_epoch: dict[int, dict] = {epoch: {} for epoch in range(1, length + 1)}
    for name, values in history.items():
        for index, (epoch, value) in enumerate(zip(epochs_of[name] or [], values)):
            if value is None:
                continue
            try:
                per_epoch[epoch][name] = float(value)
            except (TypeError, ValueError):
                raise EipvizError(f"History JSON values must be numbers: {name}[{index}] is "
                                  f"{json.dumps(value)[:60]}.") from None
    for epoch, metrics in per_epoch.items():
        parsed.add_epoch(epoch, metrics)
    return parsed


def _python_repr_as_json(text: str) -> str:
    """``print(history.history)``'s text as JSON: quotes, NumPy 2's ``np.float32(0.5)``, ``nan`` and ``inf``."""
    text = _NUMPY_SCALAR.sub(r"\1", text).replace("'", '"')
    return _BARE_INFINITY.sub(r"\1Infinity", re.sub(r"\bnan\b", "NaN", text))


def _history_epochs(count: int, epochs: int) -> list[int] | None:
    """The epochs a History list of ``count`` values belongs to, in a training of ``epochs`` epochs; None when
    that is unknown.

    ``fit(validation_freq=k)`` validates after epochs k, 2k, …: ``epochs // k`` values. Where exactly one k
    fits, the values go there; where none or several do, the metric cannot be placed.
    """
    if count == epochs:
        return list(range(1, epochs + 1))
    every = [k for k in range(2, epochs + 1) if epochs // k == count] if count else []
    return list(range(every[0], epochs + 1, every[0])) if len(every) == 1 else None


def _warn_history_placement(parsed: ParsedLog, counts: dict, epochs_of: dict, epochs: int) -> None:
    """Say which metrics were put on every k-th epoch, and which could not be placed (an empty list is no news)."""
    placed: dict[int, list[str]] = {}
    for name, placement in epochs_of.items():
        if placement is not None and counts[name] != epochs:
            placed.setdefault(placement[0], []).append(name)
    for every, names in placed.items():
        parsed.warnings.append(f"{', '.join(names)}: {counts[names[0]]} values for {epochs} epochs, read as "
                               f"validated every {every} epochs (fit's validation_freq={every}).")
    unplaced = [name for name, placement in epochs_of.items() if placement is None and counts[name]]
    if unplaced:
        parsed.warnings.append(f"{', '.join(unplaced)}: fewer values than the {epochs} epochs and no "
                               f"validation_freq that fits, so which epochs they belong to is unknown; left out.")
