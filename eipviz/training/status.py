"""What a live run is doing right now: epoch progress and time left."""

from dataclasses import dataclass

from eipviz.training.store import Run, RunStore


@dataclass(frozen=True)
class RunProgress:
    epochs_done: int
    epochs_total: int
    batch: int  # batches done in the current epoch
    batches: int
    running_loss: float | None
    eta_seconds: float | None  # None until there is something to estimate from

    @property
    def epoch_fraction(self) -> float:
        if self.finishing:
            return 1.0
        return self.batch / self.batches if self.batches else 0.0

    @property
    def finishing(self) -> bool:
        """Every epoch is stored; the worker is writing its last files and has not said "finished" yet."""
        return bool(self.epochs_total) and self.epochs_done >= self.epochs_total

    @property
    def label(self) -> str:
        """``epoch 3/10: batch 120/782, loss 0.8123 · ETA 4m 07s``, the text of the Train page's progress bar."""
        if self.finishing:  # "epoch 4/3" until the worker recorded its end
            return f"all {self.epochs_total} epochs done: finishing…"
        loss = "" if self.running_loss is None else f", loss {self.running_loss:.4f}"
        return (f"epoch {self.epochs_done + 1}/{self.epochs_total}: batch {self.batch}/{self.batches or '?'}"
                f"{loss} · ETA {format_duration(self.eta_seconds)}")


def run_progress(store: RunStore, run: Run) -> RunProgress:
    """Progress of ``run`` from its stored epochs and throttled batch progress."""
    rows = store.epoch_rows(run.id)
    total = int(run.hyperparameters.get("epochs") or 0)
    done = len(rows)
    live = store.progress(run.id) or {}
    batch, batches, loss = live.get("batch") or 0, live.get("batches") or 0, live.get("loss")
    if live.get("epoch") != done + 1:  # the progress row is of an epoch already stored: its loss too
        batch, loss = 0, None
    # The run's first epoch holds its start-up and tracing (about 25 s under JAX): left out once another is done.
    seconds = [row["epoch_seconds"] for row in rows[1:] or rows if row.get("epoch_seconds")]
    per_epoch = sum(seconds[-3:]) / len(seconds[-3:]) if seconds else None
    first = live.get("first_batch_ended")
    # Keras reports a batch end per compiled call: the first after `steps_per_execution` batches.
    first_batches = int(run.hyperparameters.get("steps_per_execution") or 1)
    if per_epoch is None and batch > first_batches and batches and first and live.get("updated", 0) > first:
        # The first epoch: its batches after the first call. Timed from the worker's start, JAX's tracing in
        # batch 1 made a 2-minute run's first estimate 6 h 42 m (a helper's walk, 2026-11-28).
        per_epoch = (live["updated"] - first) * batches / (batch - first_batches)
    eta = None if per_epoch is None else max(0.0, (total - done - (batch / batches if batches else 0.0)) * per_epoch)
    return RunProgress(done, total, batch, batches, loss, eta)


def format_duration(seconds: float | None) -> str:
    """``1h 05m`` or ``4m 07s``; "estimating…" while there is nothing to estimate from."""
    if seconds is None:
        return "estimating…"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
