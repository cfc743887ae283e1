"""Durable record of runs and their per-epoch metrics (SQLite in WAL mode).

Several worker processes and the app share one ``runs.sqlite``; every write
is a short transaction, so concurrent runs never corrupt it.
"""

import json
import math
import os
import secrets
import shutil
import sqlite3
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eipviz.access import require_write
from eipviz.errors import EipvizError

DEFAULT_RUNS_DIR = "runs"
RUNS_DIR_VARIABLE = "EIPVIZ_RUNS_DIR"
ACTIVE = ("queued", "running")
# A run the scheduler admitted but whose worker never said it started (the scheduler was killed between the
# two) joins the queue again after this long; a worker that turns up later finds its claim gone and exits.
CLAIM_GRACE_S = 300
# Runs waiting for a slot: submitted (``enqueue`` records the worker's environment, so a run that is still
# being created, between ``create_run`` and its submit, is never admitted without it) and not yet started.
WAITING = "status = 'queued' AND kind = 'trained' AND pid IS NULL AND env IS NOT NULL"
# How long after its run ends a worker process that has not exited yet still holds its slot.
SLOT_RELEASE_S = 600
# How long a Resume or a Delete waits for a run's ended worker to exit (TensorFlow's teardown takes seconds).
EXIT_WAIT_S = 60.0
STORE_FILE = "runs.sqlite"
SQL_VARIABLES = 900  # run ids read in one statement: SQLite before 3.32 allowed at most 999 "?"
# A run's folder while its row is deleted: a delete killed before its commit is undone, after it finished.
DELETING_PREFIX = ".deleting-"
# A trained run created but never submitted (its `train` killed between the two) is cancelled after this long,
# and a run's folder with no row (its creation killed) is removed, if empty, after this long.
UNFINISHED_CREATE_S = 120
# In a run's folder while a Stop is asked of its worker: a worker SIGTERM killed before it could catch it (Python
# starting, its first imports) ended as "failed", not "cancelled" (5 of 16 Stops pressed as a worker started).
STOP_FILE = "stop-requested"
SEEDS = 2**20  # a run's seed is below it; a resumed run's streams are drawn above (``worker.stream_seed``)
# Columns added after the first release: an older runs.sqlite gains them when opened.
_ADDED_COLUMNS = {("runs", "queued"): "REAL", ("runs", "slot"): "TEXT", ("runs", "claim"): "TEXT",
                  ("runs", "claimed"): "REAL", ("runs", "env"): "TEXT", ("progress", "first_batch_ended"): "REAL"}

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
    source TEXT,
    queued REAL,                                -- when it last joined the queue: its place in line
    slot TEXT,                                  -- the device slot the scheduler admitted it to
    claim TEXT,                                 -- the admission token its worker must present
    claimed REAL,
    env TEXT                                    -- JSON: the submitter's backend and data settings
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
    epoch INTEGER, batch INTEGER, batches INTEGER, loss REAL, updated REAL,
    first_batch_ended REAL                      -- when this worker's first batch ended (start-up and tracing)
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
    queued: float | None = None
    slot: str | None = None
    claim: str | None = None
    claimed: float | None = None
    env: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def kind_phrase(self) -> str:
        """"a trained run", "an imported run": its kind in a sentence."""
        return f"{'an' if self.kind[:1] in tuple('aeiou') else 'a'} {self.kind} run"

    @property
    def status_phrase(self) -> str:
        """Its status as the Train page says it: a ``cancelled`` run was stopped (Stop training), or stopped before
        it started (Cancel in the queue). The stored status stays ``cancelled``: the CLI and resume read it."""
        if self.status != "cancelled":
            return self.status
        return "stopped" if self.started is not None else "stopped before it started"

    @property
    def reason(self) -> str:
        """Why it failed, in one line: the stored error's first (a worker writes the exception there), or for a
        run stored before 2026-11-28 whose error begins with its traceback, that traceback's last line."""
        lines = [line for line in (self.error or "").splitlines() if line.strip()] or ["no reason recorded"]
        return lines[-1].strip() if lines[0].startswith(("Traceback", " ")) else lines[0]


WAL_ATTEMPTS = 100  # 10 s of retries for the one-time switch to WAL


def default_runs_dir() -> Path:
    """``EIPVIZ_RUNS_DIR``, or ``runs/`` when it is unset or empty (an empty one meant the current folder)."""
    return Path(os.environ.get(RUNS_DIR_VARIABLE) or DEFAULT_RUNS_DIR)


class RunStore:
    """Runs and metrics under one folder: ``runs.sqlite`` plus a sub-folder per run."""

    def __init__(self, root: str | os.PathLike | None = None):
        if root is not None and not str(root).strip():  # Path("") is the current folder: a store in the project
            raise EipvizError(f"The runs folder is empty; name a folder (--runs-dir or {RUNS_DIR_VARIABLE}).")
        self.root = Path(root) if root is not None else default_runs_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._use_write_ahead_log()
            with self._connect() as db:
                db.executescript(_SCHEMA)
                if _ADDED_COLUMNS.keys() - _columns(db):  # an older store: looked at again under the write lock,
                    db.execute("BEGIN IMMEDIATE")  # as several processes opening it at once each added them
                    for table, column in _ADDED_COLUMNS.keys() - _columns(db):
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {_ADDED_COLUMNS[table, column]}")
        except (OSError, sqlite3.Error) as error:
            raise EipvizError(f"Cannot use the runs folder {self.root}: {error}. "
                              f"Choose a writable folder (--runs-dir or {RUNS_DIR_VARIABLE}).") from error

    def _use_write_ahead_log(self) -> None:
        """Switch the store to WAL once (the file keeps the mode). The switch takes an exclusive lock without
        waiting on SQLite's busy timeout, so two processes opening a new store at once could get "database is
        locked"; it is retried, and connections no longer ask for it each time."""
        for attempt in range(WAL_ATTEMPTS):
            db = self._open()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.1)
            finally:
                db.close()

    def _open(self) -> sqlite3.Connection:
        """A new connection to the store's database, waiting up to 30 s on another process's lock."""
        return sqlite3.connect(self.root / STORE_FILE, timeout=30)

    @contextmanager
    def _connect(self):
        db = self._open()
        try:
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
                   source: str | None = None, epochs: dict[int, dict] | None = None,
                   best_epoch: int | None = None, best_val_accuracy: float | None = None) -> str:
        """Insert a run and make its folder; return its id.

        A name already in use gets a counter (``name (2)``): runs started with the same
        settings would otherwise be told apart only by their ids. An imported run comes with its ``epochs``
        and best epoch in the same transaction: no reader sees it finished without them, and a kill leaves
        all of it or nothing.
        """
        name = check_name(name)  # before the folder is made
        run_id = self._claim_run_dir(model or kind)
        try:
            with self._connect() as db:
                name = _free_name(db, name)
                now = time.time()
                db.execute(
                    "INSERT INTO runs (id, kind, name, model, recipe, hyperparameters, status, created, source,"
                    " queued, best_epoch, best_val_accuracy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, kind, name, model, recipe, json.dumps(hyperparameters or {}), status, now, source,
                     now if status == "queued" else None, best_epoch, best_val_accuracy),
                )
                db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", _metric_rows(run_id, epochs or {}))
        except BaseException:  # a locked database, say: nothing of the run is left
            self.run_dir(run_id).rmdir()
            raise
        return run_id

    def _claim_run_dir(self, label: str) -> str:
        """A new run id whose folder this call created: making the folder is atomic, so two processes creating
        runs in the same second never share an id (a short random suffix alone collided in CI)."""
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"
            try:
                self.run_dir(run_id).mkdir()
                return run_id
            except FileExistsError:
                continue

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

    def list_runs(self, kinds=None, statuses=None) -> list[Run]:
        """All runs, newest first, optionally only some kinds and statuses (chosen in SQL: the pages reap at
        every rerun, and runs are kept by hundreds)."""
        where = [(column, tuple(values)) for column, values in (("kind", kinds), ("status", statuses))
                 if values is not None]
        clause = " AND ".join(f"{column} IN ({', '.join('?' * len(values))})" for column, values in where)
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM runs {'WHERE ' + clause if where else ''} ORDER BY created DESC",
                              [value for _, values in where for value in values]).fetchall()
        return [_to_run(row) for row in rows]

    def rename_run(self, run_id: str, name: str) -> str:
        """Give a run a new name (blank keeps the old one); one another run has gets a counter, as a new run's
        does. Returns the name given."""
        require_write("Renaming a run")
        run = self.get_run(run_id)
        name = check_name(name) or run.name
        with self._connect() as db:
            name = _free_name(db, name, renamed=run_id)
            if not db.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id)).rowcount:
                raise EipvizError(f"No run {run_id!r} in {self.root}: it was deleted meanwhile.")
        return name

    def delete_run(self, run_id: str) -> None:
        """Remove a run that is not queued or training, with its folder, once its worker has exited: a worker
        holds its slot until then, so deleting its row earlier let a queued run start beside it."""
        require_write("Deleting a run")
        self.wait_for_exit(self.get_run(run_id), "delete it")  # an unknown run is an error, not a silent no-op
        trash = self.root / f"{DELETING_PREFIX}{run_id}"
        with self._connect() as db:  # the state checked in the same statement: a Resume may have come since
            deleted = db.execute(f"DELETE FROM runs WHERE id = ? AND status NOT IN {ACTIVE}", (run_id,)).rowcount
            if deleted and self.run_dir(run_id).exists():  # in the transaction: a kill leaves row and files or neither
                os.replace(self.run_dir(run_id), trash)
        if not deleted:
            raise EipvizError(f"Run {run_id} is still {self.get_run(run_id).status}; stop it before deleting.")
        shutil.rmtree(trash, ignore_errors=True)

    def wait_for_exit(self, run: Run, then: str) -> None:
        """Wait until an ended run's worker process has exited: it records its end seconds before (TensorFlow's
        teardown) and holds its slot, memory and folder until then. An active run is not waited for, nor one that
        ended over ``SLOT_RELEASE_S`` ago (``claim_queued``'s rule)."""
        if not run.ended or time.time() - run.ended > SLOT_RELEASE_S:  # its pid may be another process's by now
            return
        deadline = time.monotonic() + EXIT_WAIT_S
        while not run.active and run.pid and worker_alive(run.pid):
            if time.monotonic() > deadline:
                raise EipvizError(f"Run {run.id}'s worker (pid {run.pid}) has not exited after {EXIT_WAIT_S:.0f} s; "
                                  f"{then} once it has.")
            time.sleep(0.2)

    # -- the queue: every state change below is one transaction ---------------

    def enqueue(self, run_id: str, env: dict) -> None:
        """Put a run at the end of the queue (one already waiting keeps its place) with its worker's environment.

        One a worker has meanwhile (another submit got there first and it was admitted) is refused: enqueueing
        it cleared its pid and claim, so a second worker trained it beside the first in one slot.
        """
        with self._connect() as db:
            changed = db.execute(
                "UPDATE runs SET queued = CASE WHEN status = 'queued' AND queued IS NOT NULL THEN queued"
                " ELSE ? END, status = 'queued', env = ?, pid = NULL, slot = NULL,"
                " claim = NULL, claimed = NULL, error = NULL, ended = NULL"
                " WHERE id = ? AND status != 'running' AND NOT (status = 'queued' AND pid IS NOT NULL)",
                (time.time(), json.dumps(env), run_id)).rowcount
            if not changed:
                (status,) = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() or ("gone",)
                raise EipvizError(f"Run {run_id} is already {status}.")
        (self.run_dir(run_id) / STOP_FILE).unlink(missing_ok=True)  # an earlier Stop is no stop of its next worker

    def request_stop(self, run_id: str) -> None:
        """Note that its worker is asked to stop (``STOP_FILE``): a worker that dies after it ended cancelled."""
        (self.run_dir(run_id) / STOP_FILE).touch()

    def queued_runs(self) -> list[Run]:
        """Runs waiting for a slot, first in line first."""
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM runs WHERE {WAITING} ORDER BY queued, created").fetchall()
        return [_to_run(row) for row in rows]

    def claim_queued(self, slots: list[str], refusal=None, slots_needed=None, fits=None) -> list[Run]:
        """Admit the first queued runs to the free ``slots`` in one transaction; return them, claimed.

        A run counts against a slot from its claim until its worker process exits; a run trained outside
        the queue (a worker started by hand) takes a slot too. ``refusal(run)`` may return a reason why a
        waiting run can never start here, wherever it is in line; that run ends ``failed`` with it.
        ``slots_needed(run)`` (default 1): a run on several GPUs holds that many slots, stored comma-joined
        (``"gpu:0,gpu:1"``). A run waits, and the runs behind it with it, until that many slots are free and
        ``fits(run, admitted)`` (``admitted``: runs admitted earlier in this call) says it fits now.
        """
        admitted: list[Run] = []
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # no other process admits between our reads and our writes
            running = [row[0] for row in db.execute("SELECT slot FROM runs WHERE status = 'running'")]
            # A worker that has recorded its end still holds its memory until its process exits (TensorFlow's
            # teardown takes seconds): its slot frees only then.
            ending = [row[0] for row in db.execute(
                "SELECT slot, pid FROM runs WHERE status NOT IN ('queued', 'running') AND slot IS NOT NULL"
                " AND pid IS NOT NULL AND ended > ?", (time.time() - SLOT_RELEASE_S,)) if worker_alive(row[1])]
            held = [part for slot in running + ending for part in (slot or "").split(",")]  # by hand: one
            busy = set(held)
            free = [slot for slot in slots if slot not in busy][:max(0, len(slots) - len(held))]
            waiting = db.execute(f"SELECT * FROM runs WHERE {WAITING} ORDER BY queued, created").fetchall()
            now = time.time()
            for row in waiting:
                run = _to_run(row)
                reason = refusal(run) if refusal else None
                if reason:
                    db.execute("UPDATE runs SET status = 'failed', ended = ?, error = ? WHERE id = ?",
                               (now, reason, run.id))
                    continue
                needed = slots_needed(run) if slots_needed else 1
                if needed > len(free) or (fits and not fits(run, admitted)):
                    break  # first come, first served: a run waiting for two GPUs or for memory is not overtaken
                slot, token = ",".join(free[:needed]), secrets.token_hex(8)
                del free[:needed]
                db.execute("UPDATE runs SET status = 'running', slot = ?, claim = ?, claimed = ? WHERE id = ?",
                           (slot, token, now, run.id))
                run.status, run.slot, run.claim, run.claimed = "running", slot, token, now
                admitted.append(run)
        return admitted

    def record_launch(self, run_id: str, claim: str, pid: int) -> None:
        """Note the pid of the worker started for a claim (unless the claim was cancelled meanwhile)."""
        with self._connect() as db:
            db.execute("UPDATE runs SET pid = ? WHERE id = ? AND claim = ? AND status = 'running'",
                       (pid, run_id, claim))

    def fail_claim(self, run_id: str, claim: str | None, error: str) -> None:
        """End an admitted run as failed, with ``error``, unless its claim was cancelled meanwhile."""
        with self._connect() as db:
            db.execute("UPDATE runs SET status = 'failed', ended = ?, error = ? WHERE id = ? AND claim = ?"
                       " AND status = 'running'", (time.time(), error, run_id, claim))

    def start_claimed(self, run_id: str, claim: str, pid: int) -> bool:
        """A worker takes up its claim; False when the claim is no longer the run's (cancelled or re-admitted)."""
        with self._connect() as db:
            taken = db.execute("UPDATE runs SET pid = ? WHERE id = ? AND claim = ? AND status = 'running'",
                               (pid, run_id, claim)).rowcount
        return taken == 1

    def cancel_queued(self, run_id: str) -> bool:
        """Cancel a run that has not started; False when it is no longer waiting."""
        with self._connect() as db:
            cancelled = db.execute("UPDATE runs SET status = 'cancelled', ended = ?, claim = NULL WHERE id = ?"
                                   " AND (status = 'queued' OR (status = 'running' AND pid IS NULL))",
                                   (time.time(), run_id)).rowcount
        return cancelled == 1

    def requeue_lost_claims(self, grace_s: float = CLAIM_GRACE_S) -> list[str]:
        """Return runs admitted over ``grace_s`` ago that never got a worker to the queue, first in line."""
        with self._connect() as db:
            lost = [row[0] for row in db.execute(
                "SELECT id FROM runs WHERE status = 'running' AND pid IS NULL AND claimed < ?",
                (time.time() - grace_s,))]
            for run_id in lost:
                db.execute("UPDATE runs SET status = 'queued', slot = NULL, claim = NULL, claimed = NULL"
                           " WHERE id = ? AND status = 'running' AND pid IS NULL", (run_id,))
        return lost

    def tidy_interrupted(self) -> None:
        """Finish what a killed process left half done: a delete (its folder removed, or put back when its row
        was not deleted), a creation (an empty folder with no row), a `train` killed before its submit (the run
        cancelled, so it can be resumed or deleted: it waited in no queue for ever). A helper's stress test
        found each (2026-11-28)."""
        entries = list(self.root.iterdir())  # one look at the folder: the reaper calls this on every poll
        trash = [entry for entry in entries if entry.name.startswith(DELETING_PREFIX)]
        unsubmitted = ("status = 'queued' AND kind = 'trained' AND env IS NULL AND pid IS NULL AND created < ?",
                       time.time() - UNFINISHED_CREATE_S)
        with self._connect() as db:
            stuck = db.execute(f"SELECT 1 FROM runs WHERE {unsubmitted[0]}", unsubmitted[1:]).fetchone()
            if trash or stuck:
                db.execute("BEGIN IMMEDIATE")  # a delete in flight commits (or is rolled back) before the look
            ids = {row[0] for row in db.execute("SELECT id FROM runs")}
            for folder in trash:
                if (run_id := folder.name.removeprefix(DELETING_PREFIX)) in ids:  # killed before its commit
                    os.replace(folder, self.run_dir(run_id))
            if stuck:
                db.execute(f"UPDATE runs SET status = 'cancelled', ended = ? WHERE {unsubmitted[0]}",
                           (time.time(), *unsubmitted[1:]))
        for folder in trash:
            shutil.rmtree(folder, ignore_errors=True)  # those put back are gone from here
        for folder in entries:
            if folder.name not in ids and not folder.name.startswith(".") and folder.is_dir() \
                    and time.time() - folder.stat().st_mtime > UNFINISHED_CREATE_S:
                try:
                    folder.rmdir()  # only an empty one: never files, whatever made them
                except OSError:
                    pass

    # -- metrics ------------------------------------------------------------

    def add_epoch(self, run_id: str, epoch: int, metrics: dict) -> None:
        """Store one completed epoch (a repeated epoch replaces the earlier values)."""
        self.add_epochs(run_id, {epoch: metrics})

    def add_epochs(self, run_id: str, metrics_by_epoch: dict[int, dict]) -> None:
        """Store several epochs in one transaction: all of them or, on an error, none."""
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", _metric_rows(run_id, metrics_by_epoch))

    def epoch_rows(self, run_id: str) -> list[dict]:
        """Per-epoch rows ``{"epoch": e, name: value, ...}`` in epoch order."""
        return self.epoch_rows_of([run_id])[run_id]

    def epoch_rows_of(self, run_ids: list[str]) -> dict[str, list[dict]]:
        """``epoch_rows`` of each of ``run_ids`` (``[]`` for one without epochs), read in one query."""
        by_run: dict[str, dict[int, dict]] = {run_id: {} for run_id in run_ids}
        with self._connect() as db:
            for start in range(0, len(run_ids), SQL_VARIABLES):  # SQLite caps the variables in one statement
                chunk = run_ids[start:start + SQL_VARIABLES]
                rows = db.execute(f"SELECT run_id, epoch, name, value FROM metrics WHERE run_id IN"
                                  f" ({', '.join('?' * len(chunk))}) ORDER BY run_id, epoch", chunk)
                for run_id, epoch, name, value in rows:
                    by_run[run_id].setdefault(epoch, {"epoch": epoch})[name] = \
                        float(value) if isinstance(value, str) else value
        return {run_id: list(by_epoch.values()) for run_id, by_epoch in by_run.items()}

    def epoch_counts(self) -> dict[str, int]:
        """How many epochs each run with any has recorded (a run without one is absent), read from the metrics'
        index alone: the Curves page lists hundreds of runs without reading their epochs."""
        with self._connect() as db:
            return dict(db.execute("SELECT run_id, COUNT(DISTINCT epoch) FROM metrics GROUP BY run_id").fetchall())

    def drop_epochs_after(self, run_id: str, epoch: int) -> None:
        """Forget a run's epochs after ``epoch`` (a restart trains them again), and its best if it was one."""
        with self._connect() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ? AND epoch > ?", (run_id, epoch))
            db.execute("UPDATE runs SET best_epoch = NULL, best_val_accuracy = NULL WHERE id = ? AND best_epoch > ?",
                       (run_id, epoch))

    def completed_epochs(self, run_id: str) -> int:
        with self._connect() as db:
            (last,) = db.execute("SELECT MAX(epoch) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        return int(last or 0)

    # -- in-epoch progress --------------------------------------------------

    def set_progress(self, run_id: str, epoch: int, batch: int, batches: int, loss: float | None,
                     first_batch_ended: float | None = None) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO progress (run_id, epoch, batch, batches, loss, updated, "
                       "first_batch_ended) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, epoch, batch, batches, loss, time.time(), first_batch_ended))

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
        """Mark active runs whose worker process is gone as failed (cancelled when it was asked to stop: a
        worker the Stop's signal killed before it could catch it); return their ids.

        Runs admitted long ago whose worker never started go back to the queue (``requeue_lost_claims``).
        """
        self.requeue_lost_claims()
        self.tidy_interrupted()
        dead = []
        for run in self.list_runs(kinds=("trained",), statuses=ACTIVE):
            if run.pid and not worker_alive(run.pid):
                if (self.run_dir(run.id) / STOP_FILE).exists():  # the Stop's signal ended it
                    status, error = "cancelled", None
                else:
                    tail = log_tail(self.run_dir(run.id) / "worker.log")
                    status = "failed"
                    error = f"The worker (pid {run.pid}) died without finishing (killed or out of memory).\n{tail}"
                with self._connect() as db:  # unless it recorded its end (or was queued again) since the look
                    changed = db.execute(f"UPDATE runs SET status = ?, ended = ?, error = ? WHERE id = ?"
                                         f" AND pid = ? AND status IN {ACTIVE}",
                                         (status, time.time(), error and error.strip(), run.id, run.pid)).rowcount
                if changed:
                    dead.append(run.id)
        return dead


def _columns(db) -> set[tuple[str, str]]:
    """(table, column) of the runs and progress tables."""
    return {(table, row[1]) for table in ("runs", "progress") for row in db.execute(f"PRAGMA table_info({table})")}


def _metric_rows(run_id: str, metrics_by_epoch: dict[int, dict]) -> list[tuple]:
    return [(run_id, int(epoch), name, _stored_value(value))
            for epoch, metrics in metrics_by_epoch.items() for name, value in metrics.items()]


def _stored_value(value) -> float | str | None:
    """A metric as the store keeps it: SQLite stores a NaN as NULL, so a diverged epoch's ``nan`` is kept as
    the text ``'nan'`` (``epoch_rows`` reads it back as a float) rather than lost as a missing value."""
    if value is None:
        return None
    value = float(value)
    return "nan" if math.isnan(value) else value


def _free_name(db, name: str, renamed: str | None = None) -> str:
    """``name``, or ``unique_name``'s ``name (k)`` when another run has it, in a write transaction begun here: no
    other process takes the same name before this one's write (the caller's, in the same transaction). The run
    being ``renamed`` may keep its own name."""
    db.execute("BEGIN IMMEDIATE")
    return unique_name(name, {row[0] for row in db.execute("SELECT name FROM runs WHERE id IS NOT ?", (renamed,))})


MAX_NAME_CHARS = 200
# Control characters (line breaks, tabs) split the CLI's tables, line and paragraph separators too; format
# characters are invisible or, as U+202E, make a name read as another one.
_UNPRINTABLE = ("Cc", "Cf", "Zl", "Zp")
WORD_JOINER = "\u2060"  # what the pages put into shown names so that no address in them becomes a link


def _unprintable(character: str) -> bool:
    return unicodedata.category(character) in _UNPRINTABLE


def check_name(name: str) -> str:
    """A run's name as given (its ends trimmed), or ``EipvizError`` for one no table can show on a line."""
    name = name.replace(WORD_JOINER, "").strip()  # the pages put them in names shown, so a copied name has them
    unprintable = next((character for character in name if _unprintable(character)), None)
    if unprintable:
        raise EipvizError(f"A run name is one line of printable characters; {name!r} has {unprintable!r}.")
    if len(name) > MAX_NAME_CHARS:
        raise EipvizError(f"A run name is at most {MAX_NAME_CHARS} characters; this one has {len(name):,}.")
    return name


def name_from(text: str) -> str:
    """A run name made from a file's name (an import named by default), as ``check_name`` takes it: each character
    no table can show becomes a space, and a long one is cut ("…"). Names the user types are refused instead."""
    name = " ".join("".join(" " if _unprintable(character) else character
                            for character in text.replace(WORD_JOINER, "")).split())
    return name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS - 1] + "…"


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
