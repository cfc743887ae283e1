"""Turn a ``Recipe`` into Keras' own pieces. Backend-agnostic: no TensorFlow calls here."""

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import keras

from eipviz.recipes import OPTIMIZERS, Recipe, monitor_mode

# One Keras class per recipe optimizer name; Recipe has already refused any other name.
OPTIMIZER_CLASSES: dict[str, type[keras.optimizers.Optimizer]] = {
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
}


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer, with a per-step schedule for one-cycle recipes."""
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    if recipe.schedule == "one_cycle":
        total = max(1, recipe.epochs * steps_per_epoch)
        warmup = int(total * recipe.warmup_fraction)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate / 10, decay_steps=max(1, total - warmup),
            warmup_target=recipe.learning_rate, warmup_steps=warmup, alpha=0.0,
        )
    options: dict[str, Any] = {"learning_rate": learning_rate, "weight_decay": recipe.weight_decay or None}
    if recipe.optimizer == "sgd":
        options.update(momentum=recipe.momentum, nesterov=recipe.nesterov)
    return OPTIMIZER_CLASSES[recipe.optimizer](**options)


def schedule_callbacks(recipe: Recipe) -> list[keras.callbacks.Callback]:
    """Per-epoch learning-rate callbacks, in the order the seeds used them."""
    callbacks = []
    if recipe.plateau:
        p = recipe.plateau
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=p.monitor, mode=monitor_mode(p.monitor), factor=p.factor, patience=p.patience,
            min_lr=p.min_lr, verbose=1))
    if recipe.schedule == "inverse_time":
        callbacks.append(keras.callbacks.LearningRateScheduler(recipe.learning_rate_at_epoch, verbose=1))
    return callbacks


def augmentation_layers(recipe: Recipe) -> list[keras.layers.Layer]:
    """Keras preprocessing layers for the recipe's augmentation, in a fixed order."""
    a = recipe.augmentation
    layers = []
    if a.width_shift or a.height_shift:
        layers.append(keras.layers.RandomTranslation(a.height_shift, a.width_shift, fill_mode=a.fill_mode,
                                                     interpolation=a.interpolation))
    if a.zoom:
        layers.append(keras.layers.RandomZoom(a.zoom, fill_mode=a.fill_mode))
    if a.rotation_degrees:
        layers.append(keras.layers.RandomRotation(a.rotation_degrees / 360.0, fill_mode=a.fill_mode))
    if a.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    if a.erasing_probability:
        p = a.erasing_probability
        layers.append(keras.layers.RandomErasing(factor=(p, p), scale=a.erasing_scale, value_range=(0, 255)))
    return layers


def best_value(epoch_rows: Iterable[Mapping[str, Any]], monitor: str) -> float | None:
    """The best value of ``monitor`` over stored epoch rows, in its direction; None when none logged it."""
    values = [float(row[monitor]) for row in epoch_rows
              if row.get(monitor) is not None and math.isfinite(float(row[monitor]))]
    if not values:
        return None
    return min(values) if monitor_mode(monitor) == "min" else max(values)


def best_checkpoint(recipe: Recipe, filepath: str | os.PathLike,
                    completed_epochs: Iterable[Mapping[str, Any]] = ()) -> keras.callbacks.ModelCheckpoint:
    """A ``ModelCheckpoint`` that keeps the best epoch by the recipe's ``checkpoint_monitor``.

    ``completed_epochs`` are a resumed run's stored rows: their best value is the bar a new
    epoch must beat, so resuming never overwrites a better ``best.keras``. For example, with
    ``checkpoint_monitor="val_loss"`` and stored val_loss 0.9 then 0.6, the callback is in
    ``"min"`` mode and saves only an epoch below 0.6.
    """
    monitor = recipe.checkpoint_monitor
    return keras.callbacks.ModelCheckpoint(
        filepath, monitor=monitor, mode=monitor_mode(monitor), save_best_only=True,
        initial_value_threshold=best_value(completed_epochs, monitor),
    )


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> None:
    """Compile with the recipe's optimizer and label-smoothed cross-entropy, reporting accuracy."""
    model.compile(
        optimizer=make_optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )


assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)
