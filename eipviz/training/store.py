"""Durable record of runs and their per-epoch metrics (SQLite in WAL mode).

Several worker processes and the app share one ``runs.sqlite``; every write
is a short transaction, so concurrent runs never corrupt it.
"""

import json
import os
import secrets
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eipviz.errors import EipvizError

DEFAULT_RUNS_DIR = "runs"
RUNS_DIR_VARIABLE = "EIPVIZ_RUNS_DIR"
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'trained',       -- trained | imported | reference
    name TEXT NOT NULL,
    model TEXT,
    recipe TEXT,
    hyperparameters TEXT NOT NULL DEFAULT '{}', -- JSON
    status TEXT NOT NULL,                       -- queued | running | finished | failed | cancelled
    pid INTEGER,
    backend TEXT,
    device TEXT,
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    best_val_accuracy REAL,
    best_epoch INTEGER,
    error TEXT,
    source TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,                     -- 1-based, as Keras prints it
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, epoch, name)
);
CREATE TABLE IF NOT EXISTS progress (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER, batch INTEGER, batches INTEGER, loss REAL, updated REAL
);
"""


@dataclass
class Run:
    """One row of the runs table."""

    id: str
    kind: str
    name: str
    model: str | None
    recipe: str | None
    hyperparameters: dict
    status: str
    pid: int | None
    backend: str | None
    device: str | None
    created: float
    started: float | None
    ended: float | None
    best_val_accuracy: float | None
    best_epoch: int | None
    error: str | None
    source: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_VARIABLE, DEFAULT_RUNS_DIR))


class RunStore:
    """Runs and metrics under one folder: ``runs.sqlite`` plus a sub-folder per run."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise EipvizError(f"Cannot use the runs folder {self.root}: {error}. "
                              f"Choose a writable folder (--runs-dir or {RUNS_DIR_VARIABLE}).") from error

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.root / "runs.sqlite", timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            with db:  # one transaction, committed or rolled back
                yield db
        finally:
            db.close()

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    # -- runs ---------------------------------------------------------------

    def create_run(self, *, name: str, model: str | None = None, recipe: str | None = None,
                   hyperparameters: dict | None = None, kind: str = "trained", status: str = "queued",
                   source: str | None = None, run_id: str | None = None) -> str:
        """Insert a run and make its folder; return its id.

        A name already in use gets a counter (``name (2)``): runs started with the same
        settings would otherwise be told apart only by their ids.
        """
        run_id = run_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{model or kind}-{secrets.token_hex(2)}"
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            taken = {row[0] for row in db.execute("SELECT name FROM runs")}
            name = unique_name(name, taken)
            db.execute(
                "INSERT INTO runs (id, kind, name, model, recipe, hyperparameters, status, created, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, name, model, recipe, json.dumps(hyperparameters or {}), status, time.time(), source),
            )
        return run_id

    def update_run(self, run_id: str, **fields) -> None:
        """Set columns of a run (``hyperparameters`` may be a dict)."""
        if "hyperparameters" in fields:
            fields["hyperparameters"] = json.dumps(fields["hyperparameters"])
        columns = ", ".join(f"{key} = ?" for key in fields)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*fields.values(), run_id))

    def get_run(self, run_id: str) -> Run:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise EipvizError(f"No run {run_id!r} in {self.root}.")
        return _to_run(row)

    def list_runs(self, kinds=None) -> list[Run]:
        """All runs, newest first, optionally only some kinds."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC").fetchall()
        runs = [_to_run(row) for row in rows]
        return [run for run in runs if kinds is None or run.kind in kinds]

    def delete_run(self, run_id: str) -> None:
        run = self.get_run(run_id)
        if run.active:
            raise EipvizError(f"Run {run_id} is still {run.status}; stop it before deleting.")
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # -- metrics ------------------------------------------------------------

    def add_epoch(self, run_id: str, epoch: int, metrics: dict) -> None:
        """Store one completed epoch (a repeated epoch replaces the earlier values)."""
        rows = [(run_id, int(epoch), name, None if value is None else float(value))
                for name, value in metrics.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)

    def epoch_rows(self, run_id: str) -> list[dict]:
        """Per-epoch rows ``{"epoch": e, name: value, ...}`` in epoch order."""
        with self._connect() as db:
            rows = db.execute("SELECT epoch, name, value FROM metrics WHERE run_id = ? ORDER BY epoch",
                              (run_id,)).fetchall()
        by_epoch: dict[int, dict] = {}
        for epoch, name, value in rows:
            by_epoch.setdefault(epoch, {"epoch": epoch})[name] = value
        return list(by_epoch.values())

    def completed_epochs(self, run_id: str) -> int:
        with self._connect() as db:
            (last,) = db.execute("SELECT MAX(epoch) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        return int(last or 0)

    # -- in-epoch progress --------------------------------------------------

    def set_progress(self, run_id: str, epoch: int, batch: int, batches: int, loss: float | None) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, epoch, batch, batches, loss, time.time()))

    def clear_progress(self, run_id: str) -> None:
        """Forget a run's in-epoch progress (a resumed run has none until its worker's first batch)."""
        with self._connect() as db:
            db.execute("DELETE FROM progress WHERE run_id = ?", (run_id,))

    def progress(self, run_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM progress WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    # -- liveness -----------------------------------------------------------

    def reap_dead_workers(self) -> list[str]:
        """Mark active runs whose worker process is gone as failed; return their ids."""
        dead = []
        for run in self.list_runs(kinds=("trained",)):
            if run.active and run.pid and not worker_alive(run.pid):
                tail = log_tail(self.run_dir(run.id) / "worker.log")
                self.update_run(run.id, status="failed", ended=time.time(),
                                error=f"The worker (pid {run.pid}) died without finishing"
                                      f" (killed or out of memory).\n{tail}".strip())
                dead.append(run.id)
        return dead


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (k)`` with the smallest k >= 2 that is not taken."""
    if name not in taken:
        return name
    return next(f"{name} ({k})" for k in range(2, len(taken) + 3) if f"{name} ({k})" not in taken)


def run_label(run) -> str:
    """How a widget names a run: unique even when two runs share a name (Streamlit matches options by label)."""
    return run.name if run.kind == "reference" else f"{run.name} · {run.id}"


def _to_run(row) -> Run:
    data = dict(row)
    data["hyperparameters"] = json.loads(data["hyperparameters"] or "{}")
    return Run(**data)


def worker_alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) eipviz process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        if "\nState:\tZ" in status:
            return False
        return b"eipviz" in cmdline  # the pid was reused by another program
    return True


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
