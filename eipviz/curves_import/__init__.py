"""Import curves people already have: Keras console logs, CSVLogger and History JSON (``eipviz.keraslog``),
TensorBoard event files and folders (``tbevents``), W&B, MLflow and TensorBoard history CSVs (``history_csv``).

Each reader returns a ``ParsedLog``; its ``warnings`` say what was guessed, skipped or unreadable.
"""

import tempfile
from pathlib import Path

from eipviz.curves_import.history_csv import is_history_csv, parse_history_csv
from eipviz.curves_import.tbevents import (
    TRAIN_DIR,
    VALIDATION_DIRS,
    event_files_under,
    is_event_file,
    read_event_files,
    read_run_folder,
)
from eipviz.errors import EipvizError, no_file_error
from eipviz.keraslog import MAX_LOG_BYTES, ParsedLog, decode_log, parse_log

__all__ = ["read_run_path", "read_uploads", "parse_text", "upload_run_name"]


def parse_text(text: str, file_name: str | None = None) -> ParsedLog:
    """A pasted or uploaded text: a W&B/MLflow/TensorBoard history CSV, else anything ``parse_log`` reads.
    ``file_name``, where known, names the metric of a TensorBoard scalar download."""
    return parse_history_csv(text, file_name) if is_history_csv(text) else parse_log(text)


def read_run_path(path: str | Path) -> ParsedLog:
    """A log file, an event file, or one TensorBoard run folder (``train/`` and ``validation/`` merged)."""
    path = Path(path)
    if path.is_dir():
        return read_run_folder(path)
    if not path.is_file():
        raise no_file_error(path, "Log file")
    if is_event_file(path):
        return read_event_files([path])
    if path.stat().st_size > MAX_LOG_BYTES:
        raise EipvizError(f"{path.name} is larger than {MAX_LOG_BYTES // 2**20} MB; that is not a training log.")
    return parse_text(decode_log(path.read_bytes()), path.name)


def read_uploads(files: list[tuple[str, bytes]]) -> ParsedLog:
    """Uploaded files as one run: event files together (their names may carry ``train/``, ``validation/``),
    or a single text log."""
    events = [(name, data) for name, data in files if "tfevents" in name]
    others = [name for name, _ in files if "tfevents" not in name]
    if events and others:  # one run is imported: the other files would be left out unsaid
        raise EipvizError(f"Upload a TensorBoard run's event files alone: {', '.join(others)} "
                          f"{'is not an event file' if len(others) == 1 else 'are not event files'}. "
                          f"Import {'it' if len(others) == 1 else 'them'} on {'its' if len(others) == 1 else 'their'} "
                          f"own.")
    if events:
        with tempfile.TemporaryDirectory() as folder:
            for index, (name, data) in enumerate(events):
                parts = [p for p in Path(name).parts if p not in ("", "/", "..")]
                target = Path(folder, str(index), *parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return read_event_files(event_files_under(Path(folder)),
                                    folders_known=any(len(Path(name).parts) > 1 for name, _ in events))
    if len(files) != 1:  # name them: a file left in the uploader by an earlier import was otherwise a riddle
        uploaded = f"; {len(files)} are uploaded: {', '.join(name for name, _ in files)}. Remove all but one" \
            if files else ""
        raise EipvizError(f"Upload one log file, or TensorBoard event files (events.out.tfevents.*){uploaded}.")
    name, data = files[0]
    return parse_text(decode_log(data), Path(name).name)


def upload_run_name(names: list[str]) -> str:
    """The name an imported upload gets when none is given: a TensorBoard run's folder (the part of an event
    file's name before ``train/`` or ``validation/``, when the browser kept it), else "TensorBoard run"; a log's
    file name."""
    events = [Path(name) for name in names if "tfevents" in name]
    if not events:
        return Path(names[0]).name
    folders = [part for part in events[0].parts[:-1] if part not in (TRAIN_DIR, *VALIDATION_DIRS)]
    return folders[-1] if folders else "TensorBoard run"
