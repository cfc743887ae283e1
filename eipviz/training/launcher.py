"""Start, stop and resume training workers as detached OS processes."""

import math
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

from eipviz.errors import EipvizError
from eipviz.recipes import Augmentation, Recipe, get_recipe
from eipviz.training.builders import precise_bn_batches
from eipviz.training.store import RunStore, worker_alive

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def planned_recipe(model: str, recipe: str = "documented", epochs: int | None = None,
                   batch_size: int | None = None, augment: bool = True) -> Recipe:
    """The recipe a run started with these choices trains with: the named one with the overrides applied."""
    chosen = get_recipe(model, recipe).with_overrides(epochs=epochs, batch_size=batch_size)
    return chosen if augment else replace(chosen, augmentation=Augmentation())


def plan_summary(recipe: Recipe, subset: int | None = None) -> str:
    """One line saying how a run will train, e.g. for the Train page's caption under its inputs.

    ``fast recipe: sgd, lr 0.1, batch 128, 2 epochs on 2,048 images (16 steps an epoch; BatchNorm
    statistics re-estimated before each validation).`` followed by the recipe's assumptions.
    """
    text = f"{recipe.name} recipe: {recipe.optimizer}, lr {recipe.learning_rate:g}, batch {recipe.batch_size}, " \
           f"{recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''}"
    if subset:
        steps = math.ceil(subset / recipe.batch_size)
        text += f" on {subset:,} images ({steps} step{'s' if steps != 1 else ''} an epoch"
        if precise_bn_batches(recipe, steps):
            text += "; BatchNorm statistics re-estimated before each validation"
        text += ")"
    return f"{text}. {recipe.assumptions}".strip()


def create_training_run(store: RunStore, model: str, recipe: str = "documented", epochs: int | None = None,
                        batch_size: int | None = None, subset: int | None = None, seed: int = 0,
                        augment: bool = True, name: str | None = None) -> str:
    """Record a queued run with every hyperparameter; return its id."""
    chosen = planned_recipe(model, recipe, epochs, batch_size, augment)
    if subset is not None and subset < 1:
        raise EipvizError("--subset must be a positive number of training images.")
    hyperparameters = {**chosen.hyperparameters(), "subset": subset, "seed": seed}
    label = name or f"{model} {recipe} ({chosen.epochs} ep" + (f", {subset} img" if subset else "") + ")"
    return store.create_run(name=label, model=model, recipe=recipe, hyperparameters=hyperparameters)


def launch_worker(store: RunStore, run_id: str) -> int:
    """Start ``python -m eipviz train --run-id`` in its own session; return its pid.

    The worker resumes by itself when the run already has ``last.keras``.
    """
    log = open(store.run_dir(run_id) / "worker.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "eipviz", "train", "--run-id", run_id, "--runs-dir", str(store.root.resolve())],
        cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: survives the app's restarts
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    # A finished child stays a zombie until its parent waits for it (Popen only reaps others at the
    # next Popen): a thread blocked in wait() reaps it the moment it exits, at no cost meanwhile.
    threading.Thread(target=process.wait, name=f"wait-worker-{process.pid}", daemon=True).start()
    store.update_run(run_id, pid=process.pid)
    return process.pid


def start_training(store: RunStore, model: str, **options) -> str:
    """Create a run and start its worker; return the run id."""
    run_id = create_training_run(store, model, **options)
    launch_worker(store, run_id)
    return run_id


def stop_run(store: RunStore, run_id: str) -> None:
    """Ask a worker to finish its batch, save ``last.keras`` and mark the run cancelled."""
    run = store.get_run(run_id)
    if not run.active or not run.pid or not worker_alive(run.pid):
        raise EipvizError(f"Run {run_id} is {run.status}; there is no worker to stop.")
    os.kill(run.pid, signal.SIGTERM)


def check_resumable(store: RunStore, run_id: str) -> None:
    run = store.get_run(run_id)
    if run.kind != "trained":
        raise EipvizError(f"Run {run_id} is a {run.kind} run; only trained runs resume.")
    if run.status not in ("cancelled", "failed"):
        raise EipvizError(f"Run {run_id} is {run.status}; only cancelled or failed runs resume.")


def resume_run(store: RunStore, run_id: str) -> int:
    """Continue a cancelled or failed run from ``last.keras`` in a new worker; return its pid."""
    store.reap_dead_workers()
    check_resumable(store, run_id)
    store.update_run(run_id, status="queued", error=None)
    store.clear_progress(run_id)  # the batch it stopped at is no progress of the new worker
    return launch_worker(store, run_id)
