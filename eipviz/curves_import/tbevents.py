"""Per-epoch scalars of ``keras.callbacks.TensorBoard`` event files, read by TensorBoard's own loader.

Keras writes ``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate`` ... at step = epoch - 1 into
``<logdir>/train/`` and the same tags for validation into ``<logdir>/validation/``; both become one run
(validation metrics get Keras' ``val_`` prefix). Batch-level and other tags are left out. Like
TensorBoard, a truncated or corrupt record ends the file: what came before it is kept, with a note.

Each ``fit()`` opens new files; a training into a log dir used before starts its steps at 0 again, and
only the newest training is read (with a note). A resumed ``fit(initial_epoch=...)`` continues it: epochs
it logs again replace the earlier values (with a note where they differ). A folder holding several run folders
is refused.
"""

import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from google.protobuf.message import DecodeError
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from eipviz.errors import EipvizError
from eipviz.keraslog import ParsedLog, changes_values, repeated_epochs_warning

EPOCH_PREFIX = "epoch_"
TRAIN_DIR = "train"
VALIDATION_DIRS = ("validation", "val", "eval")
# Keras' validation writer alone logs these, so a lone uploaded file still says which writer it came from.
VALIDATION_ONLY_TAG = "_vs_iterations"
RECORD_FRAMING = 16  # each TFRecord: 8-byte length, 4-byte length CRC, the data, 4-byte data CRC
MAX_LISTED = 8  # names an error or warning lists before it counts the rest


@dataclass
class EventFile:
    """The scalars of one event file and when it was written."""

    path: Path
    scalars: list[tuple[str, int, float, float]]  # (tag, step, value, wall time)
    bytes_read: int
    bytes_unread: int  # after a truncated or corrupt record
    opened: float = math.inf  # wall time of its first event after the header (inf: none readable)
    last_written: float = -math.inf

    @property
    def starts_training(self) -> bool:
        """True when its epochs start at step 0: a new ``fit()``, not a resumed one."""
        steps = [step for tag, step, *_ in self.scalars if tag.startswith(EPOCH_PREFIX)]
        return bool(steps) and min(steps) == 0

    def corruption_note(self) -> str:
        return (f"{self.path.name} has a truncated or corrupt record after {self.bytes_read} bytes "
                f"({self.bytes_unread} bytes unread, as when training stopped mid-write)")


def is_event_file(path: Path) -> bool:
    return "tfevents" in path.name


def event_files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_event_file(p))


def run_directory(path: Path) -> Path:
    """The run an event file belongs to: Keras writes ``<run>/train/`` and ``<run>/validation/``."""
    return path.parent.parent if path.parent.name in (TRAIN_DIR, *VALIDATION_DIRS) else path.parent


def epoch_metric_name(tag: str, is_validation: bool) -> str | None:
    """Keras' History name of a per-epoch tag (``epoch_loss`` of the validation writer: ``val_loss``); None
    for other tags."""
    if not tag.startswith(EPOCH_PREFIX):
        return None
    name = tag[len(EPOCH_PREFIX):]
    if name in ("learning_rate", "lr"):
        return "learning_rate"  # one rate per epoch, whichever writer logged it
    return f"val_{name}" if is_validation else name


def listing(names: list[str]) -> str:
    """Names joined with commas, the rest counted, so a message stays short."""
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _scalar(value) -> float | None:
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        if math.prod(dim.size for dim in value.tensor.tensor_shape.dim) != 1:  # never build a tensor to learn it is
            return None  # no scalar: a few bytes may declare billions of values, filled in by make_ndarray
        array = tensor_util.make_ndarray(value.tensor)
        if array.size == 1 and array.dtype.kind in "fiu":  # not the model config Keras logs as text
            return float(array.reshape(()))
    return None


def _read_file(path: Path) -> EventFile:
    file = EventFile(path, [], 0, 0)
    try:
        for record in RawEventFileLoader(str(path)).Load():
            try:
                event = event_pb2.Event.FromString(record)
            except DecodeError:  # well framed, yet no event: corrupt, like a bad checksum, so the file ends here
                break
            file.bytes_read += len(record) + RECORD_FRAMING
            if not event.HasField("file_version"):  # stamped in whole seconds: too coarse to order trainings
                file.opened = min(file.opened, event.wall_time)
                file.last_written = max(file.last_written, event.wall_time)
            for value in event.summary.value:
                number = _scalar(value)
                if number is not None:
                    file.scalars.append((value.tag, int(event.step), number, float(event.wall_time)))
        file.bytes_unread = path.stat().st_size - file.bytes_read
    except OSError as error:
        raise EipvizError(f"Cannot read {path.name}: {error}") from error
    return file


def _trainings(files: list[EventFile], writer: dict[Path, bool]) -> list[list[EventFile]]:
    """The files grouped per training, oldest first. Keras opens new files for each ``fit()``: a file whose
    epochs start at step 0, opened after every earlier file was last written, starts a new training if the
    current one already has a file of its writer (``writer[path]``: the validation writer's); a resumed
    ``fit(initial_epoch=...)`` continues the one before. (The validation writer of a one-epoch run may open
    after the train writer's last event: that is the same training.)"""
    trainings: list[list[EventFile]] = []
    last_written = -math.inf
    for file in sorted(files, key=lambda f: f.opened):
        writers = {writer[other.path] for other in trainings[-1]} if trainings else set()
        if not trainings or (file.starts_training and file.opened > last_written and writer[file.path] in writers):
            trainings.append([])
        trainings[-1].append(file)
        last_written = max(last_written, file.last_written)
    return trainings


def _newest_training(files: list[EventFile], writer: dict[Path, bool], parsed: ParsedLog) -> list[EventFile]:
    trainings = _trainings(files, writer)
    if len(trainings) > 1:
        newest = trainings[-1]
        started = datetime.fromtimestamp(min(f.opened for f in newest)).strftime("%Y-%m-%d %H:%M:%S")
        older = [f.path.name for training in trainings[:-1] for f in training]
        parsed.warnings.append(f"These event files hold {len(trainings)} trainings (their epochs start again at 1); "
                               f"only the newest, started {started}, is shown. Left out: {listing(older)}.")
    return trainings[-1] if trainings else []


def _is_validation(file: EventFile) -> bool:
    """Its folder is named ``validation``, or it holds ``evaluation_*_vs_iterations`` tags."""
    return file.path.parent.name in VALIDATION_DIRS or any(VALIDATION_ONLY_TAG in tag for tag, *_ in file.scalars)


def read_event_files(paths: list[Path], folders_known: bool = True) -> ParsedLog:
    """One run from event files, its newest training only. Without ``folders_known`` (a browser upload keeps
    file names only), files that log the same epoch tag at the same step and carry no validation tag are
    refused: one of them may be the validation writer's, and merged its values would overwrite the other's."""
    parsed = ParsedLog()
    files = [_read_file(path) for path in paths]
    is_validation = {file.path: _is_validation(file) for file in files}
    if not folders_known and not any(is_validation.values()):
        _refuse_unknown_writers(files)
    kept = _newest_training(files, is_validation, parsed)
    by_epoch: dict[int, dict] = {}
    first_wall = min((wall for file in kept for *_, wall in file.scalars), default=0.0)
    last_wall: dict[int, float] = {}
    repeated = []
    for file in kept:  # oldest first: a resumed training's files come after those it continues
        for tag, step, value, wall in file.scalars:
            name = epoch_metric_name(tag, is_validation[file.path])
            if name is None:
                continue
            epoch = step + 1  # Keras logs epoch metrics at step = epoch index, from 0
            if changes_values(by_epoch.get(epoch, {}), {name: value}):
                repeated.append(epoch)
            by_epoch.setdefault(epoch, {})[name] = value
            last_wall[epoch] = max(last_wall.get(epoch, 0.0), wall)
    notes = [file.corruption_note() for file in kept if file.bytes_unread > 0]
    if not by_epoch:
        raise EipvizError(_no_scalars_message(notes))
    parsed.warnings += [f"{note}; what was readable before it is shown." for note in notes]
    if repeated:
        parsed.warnings.append(repeated_epochs_warning(repeated))
    for epoch in sorted(by_epoch):
        parsed.add_epoch(epoch, {**by_epoch[epoch], "wall_time": round(last_wall[epoch] - first_wall, 3)})
    return parsed


def _refuse_unknown_writers(files: list[EventFile]) -> None:
    """Two files written at the same time, logging one epoch tag at one step: Keras' train and validation
    writers (or a custom loop's). One after the other, they are a training and its resumption or next run."""
    logged: dict[tuple[str, int], EventFile] = {}
    for file in files:
        for tag, step, *_ in file.scalars:
            other = logged.setdefault((tag, step), file)
            if tag.startswith(EPOCH_PREFIX) and other is not file and \
                    other.opened <= file.last_written and file.opened <= other.last_written:
                raise EipvizError(
                    f"{other.path.name} and {file.path.name} both log {tag} at step {step}, and without their folders "
                    f"(a browser upload drops them) which one is the validation writer's is unknown. Upload the "
                    f"train/ folder's files alone, or import the run's folder: python -m eipviz import-log FOLDER.")


def _no_scalars_message(corruption_notes: list[str]) -> str:
    if corruption_notes:
        return (f"No per-epoch scalars could be read: {'; '.join(corruption_notes)}. Copy the files again, or "
                f"check they are the event files keras.callbacks.TensorBoard wrote.")
    return ("No per-epoch scalars (epoch_loss, epoch_accuracy, ...) in these TensorBoard files. eipviz reads what "
            "keras.callbacks.TensorBoard writes (its train/ and validation/ folders).")


def read_run_folder(folder: Path) -> ParsedLog:
    """One TensorBoard run folder (or its ``train/`` or ``validation/``); a folder of several runs is refused
    rather than merged."""
    files = event_files_under(folder)
    if not files:
        raise EipvizError(f"No TensorBoard event files (events.out.tfevents.*) under {folder}.")
    runs = sorted({run_directory(path) for path in files})
    if len(runs) > 1:
        names = [os.path.relpath(run, folder) for run in runs]
        raise EipvizError(f"{folder} holds {len(runs)} TensorBoard runs ({listing(names)}); import one of them, "
                          f"e.g. {runs[-1]}.")
    return read_event_files(files)
