"""Per-epoch scalars of ``keras.callbacks.TensorBoard`` event files, read by TensorBoard's own loader.

Keras writes ``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate`` ... at step = epoch - 1 into
``<logdir>/train/`` and the same tags for validation into ``<logdir>/validation/``; both become one run
(validation metrics get Keras' ``val_`` prefix). Batch-level and other tags are left out. Like
TensorBoard, a truncated or corrupt record ends the file: what came before it is kept, with a note.
"""

import math
from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from eipviz.errors import EipvizError
from eipviz.keraslog import ParsedLog

EPOCH_PREFIX = "epoch_"
VALIDATION_DIRS = ("validation", "val", "eval")
# Keras' validation writer alone logs these, so a lone uploaded file still says which writer it came from.
VALIDATION_ONLY_TAG = "_vs_iterations"
RECORD_FRAMING = 16  # each TFRecord: 8-byte length, 4-byte length CRC, the data, 4-byte data CRC


def is_event_file(path: Path) -> bool:
    return "tfevents" in path.name


def event_files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_event_file(p))


def _scalar(value) -> float | None:
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        array = tensor_util.make_ndarray(value.tensor)
        if array.size == 1 and array.dtype.kind in "fiu":  # not the model config Keras logs as text
            return float(array.reshape(()))
    return None


def _read_file(path: Path) -> tuple[list[tuple[str, int, float, float]], int]:
    """((tag, step, value, wall time) per scalar, bytes left unread) of one event file."""
    scalars, read = [], 0
    for record in RawEventFileLoader(str(path)).Load():
        read += len(record) + RECORD_FRAMING
        event = event_pb2.Event.FromString(record)
        for value in event.summary.value:
            number = _scalar(value)
            if number is not None:
                scalars.append((value.tag, int(event.step), number, float(event.wall_time)))
    return scalars, path.stat().st_size - read


def read_event_files(paths: list[Path], validation: list[bool] | None = None) -> ParsedLog:
    """One run from event files; ``validation[i]`` says file i is the validation writer's (default: its folder
    is named ``validation``, or it holds ``evaluation_*_vs_iterations`` tags)."""
    parsed = ParsedLog()
    by_epoch: dict[int, dict] = {}
    first_wall = math.inf
    last_wall: dict[int, float] = {}
    for index, path in enumerate(paths):
        try:
            scalars, unread = _read_file(path)
        except OSError as error:
            raise EipvizError(f"Cannot read {path.name}: {error}") from error
        if unread > 0:
            parsed.warnings.append(f"{path.name} ends in a truncated or corrupt record ({unread} bytes unread, as "
                                   f"when training stopped mid-write); what was readable before it is shown.")
        is_validation = (validation[index] if validation is not None else
                         any(part in VALIDATION_DIRS for part in path.parent.parts[-1:])
                         or any(VALIDATION_ONLY_TAG in tag for tag, *_ in scalars))
        for tag, step, value, wall in scalars:
            first_wall = min(first_wall, wall)
            if not tag.startswith(EPOCH_PREFIX):
                continue
            name = tag[len(EPOCH_PREFIX):]
            if name in ("learning_rate", "lr"):
                name = "learning_rate"  # one rate per epoch, whichever writer logged it
            elif is_validation:
                name = f"val_{name}"
            epoch = step + 1  # Keras logs epoch metrics at step = epoch index, from 0
            by_epoch.setdefault(epoch, {})[name] = value
            last_wall[epoch] = max(last_wall.get(epoch, 0.0), wall)
    if not by_epoch:
        raise EipvizError("No per-epoch scalars (epoch_loss, epoch_accuracy, ...) in these TensorBoard files. "
                          "eipviz reads what keras.callbacks.TensorBoard writes (its train/ and validation/ "
                          "folders).")
    for epoch in sorted(by_epoch):
        parsed.add_epoch(epoch, {**by_epoch[epoch], "wall_time": round(last_wall[epoch] - first_wall, 3)})
    return parsed


def read_run_folder(folder: Path) -> ParsedLog:
    files = event_files_under(folder)
    if not files:
        raise EipvizError(f"No TensorBoard event files (events.out.tfevents.*) under {folder}.")
    return read_event_files(files)
