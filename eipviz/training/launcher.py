"""Plan, create, start (through the run queue), stop and resume training runs."""

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from eipviz.access import require_write
from eipviz.data import TRAINING_IMAGES
from eipviz.errors import EipvizError
from eipviz.recipes import RECIPES, Augmentation, Recipe, get_recipe, trained_batch_size
from eipviz.training.memory import check_memory, training_memory_mb
from eipviz.training.queue import RunQueue, launch_worker, run_slots, stop_run
from eipviz.training.store import SEEDS, RunStore
from eipviz.zoo import get_spec

__all__ = ["RunQueue", "check_resumable", "create_training_run", "launch_worker", "memory_estimate_mb",
           "plan_summary", "planned_recipe", "resume_run", "start_training", "stop_run"]


def planned_recipe(model: str, recipe: str = "documented", epochs: int | None = None,
                   batch_size: int | None = None, augment: bool = True, settings: Mapping[str, Any] | None = None,
                   **speed: Any) -> Recipe:
    """The recipe a run started with these choices trains with: the named one with the overrides applied.

    ``speed``: ``devices``, ``mixed_precision``, ``steps_per_execution`` (see ``Recipe.with_overrides``);
    ``settings``: any other fields by name, applied last (``Recipe.with_settings``).
    """
    chosen = get_recipe(model, recipe).with_overrides(epochs=epochs, batch_size=batch_size, settings=settings,
                                                      **speed)
    return chosen if augment else replace(chosen, augmentation=Augmentation())


def plan_summary(recipe: Recipe, subset: int | None = None) -> str:
    """One line saying how a run will train, e.g. for the Train page's caption under its inputs.

    ``fast recipe: sgd, lr 0.1, batch 128, 2 epochs on 2,048 images (16 steps an epoch; BatchNorm
    statistics re-estimated before each validation).`` followed by the recipe's assumptions.
    """
    batch = f"batch {recipe.batch_size}"
    if subset and trained_batch_size(subset, recipe.batch_size) < recipe.batch_size:
        # Whose batch it replaces: a batch size typed on the Train page was called the recipe's.
        named = RECIPES.get(recipe.name, {}).get(recipe.model)
        whose = "the recipe's is" if named and named.batch_size == recipe.batch_size else "you asked"
        batch = f"batch {subset:,} (the whole subset; {whose} {recipe.batch_size:,})"
    text = f"{recipe.name} recipe: {recipe.optimizer}, lr {recipe.learning_rate:g}, {batch}, " \
           f"{_count(recipe.epochs, 'epoch')}"
    if subset:
        steps = recipe.steps_per_epoch(subset)
        text += f" on {_count(subset, 'image')} ({_count(steps, 'step')} an epoch"
        if steps * recipe.batch_size < subset:  # full batches only (ImageBatches)
            text += f" of {steps * recipe.batch_size:,} images drawn anew each epoch"
        if recipe.precise_bn_batches(steps):
            text += "; BatchNorm statistics re-estimated before each validation"
        text += ")"
    return f"{text}. {recipe.assumptions}".strip()


def _count(number: int, noun: str) -> str:
    """``1 image``, ``2,048 images``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def memory_estimate_mb(model: str, recipe: Recipe) -> float:
    """Estimated peak memory in MB of training ``model`` with ``recipe`` (``eipviz.training.memory``)."""
    spec = get_spec(model)
    return round(training_memory_mb(spec.documented_params.total, recipe.batch_size, math.prod(spec.input_shape)))


def create_training_run(store: RunStore, model: str, recipe: str = "documented", epochs: int | None = None,
                        batch_size: int | None = None, subset: int | None = None, seed: int = 0,
                        augment: bool = True, name: str | None = None, settings: Mapping[str, Any] | None = None,
                        **speed: Any) -> str:
    """Record a queued run with every hyperparameter; return its id. ``RunQueue.submit`` has it started."""
    require_write("Starting a run")
    chosen = planned_recipe(model, recipe, epochs, batch_size, augment, settings, **speed)
    check_subset(model, subset)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEEDS:  # the worker failed on it
        raise EipvizError(f"A seed is a whole number from 0 to {SEEDS - 1:,}. Received: {seed!r}.")
    hyperparameters = {**chosen.hyperparameters(), "subset": subset, "seed": seed,
                       "memory_estimate_mb": memory_estimate_mb(model, chosen)}
    label = name or f"{model} {recipe} ({chosen.epochs} ep" + (f", {subset} img" if subset else "") + ")"
    return store.create_run(name=label, model=model, recipe=recipe, hyperparameters=hyperparameters)


def check_subset(model: str, subset: int | None) -> None:
    """Refuse a subset the model's training set cannot give: a larger one was trained on the whole set while
    the run's name, caption and hyperparameters said more images."""
    if subset is None:
        return
    if isinstance(subset, bool) or not isinstance(subset, int):
        raise EipvizError(f"A subset is a number of images. Received: {subset!r}.")
    available = TRAINING_IMAGES[get_spec(model).dataset]
    if not 1 <= subset <= available:
        raise EipvizError(f"A subset is 1 to {available:,} images: {model}'s training set has {available:,}. "
                          f"Received: {subset:,}.")


def start_training(store: RunStore, model: str, **options) -> str:
    """Create a run and queue it (it starts when a slot is free); return the run id.

    Refused, creating nothing, when the machine lacks the memory the run needs or ``EIPVIZ_MAX_RUNS`` is
    not a number of runs (a run created then would wait for ever).
    """
    require_write("Starting a run")
    planning = {key: value for key, value in options.items() if key not in ("subset", "seed", "name")}
    chosen = planned_recipe(model, **planning)
    check_memory(model, memory_estimate_mb(model, chosen))
    run_slots()
    run_id = create_training_run(store, model, **options)
    RunQueue(store).submit(run_id)
    return run_id


def check_resumable(store: RunStore, run_id: str) -> None:
    run = store.get_run(run_id)
    if run.kind != "trained":
        raise EipvizError(f"Run {run_id} is {run.kind_phrase}; only trained runs resume.")
    if run.status not in ("cancelled", "failed"):
        raise EipvizError(f"Run {run_id} is {run.status}; only cancelled or failed runs resume.")


def resume_run(store: RunStore, run_id: str) -> None:
    """Queue a cancelled or failed run again; its worker continues from ``last.keras``."""
    require_write("Resuming a run")
    store.reap_dead_workers()
    check_resumable(store, run_id)
    RunQueue(store).submit(run_id)
