"""Turn a ``Recipe`` into Keras' own pieces. Backend-agnostic: no TensorFlow calls here."""

import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from eipviz.errors import EipvizError
from eipviz.recipes import OPTIMIZERS, Recipe, monitor_mode
from eipviz.training.pipeline import RandomShift, TrainingModel, float32_copy, partial_path, saved_model

# One Keras class per recipe optimizer name; Recipe has already refused any other name.
OPTIMIZER_CLASSES: dict[str, type[keras.optimizers.Optimizer]] = {
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
}


def learning_rate(recipe: Recipe, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The recipe's rate: for a one-cycle recipe a per-step schedule over its epochs of ``steps_per_epoch``."""
    if recipe.schedule != "one_cycle":
        return recipe.learning_rate
    total = max(1, recipe.epochs * steps_per_epoch)
    warmup = int(total * recipe.warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.learning_rate / 10, decay_steps=max(1, total - warmup),
        warmup_target=recipe.learning_rate, warmup_steps=warmup, alpha=0.0,
    )


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer, with a per-step schedule for one-cycle recipes."""
    options: dict[str, Any] = {"learning_rate": learning_rate(recipe, steps_per_epoch),
                               "weight_decay": recipe.weight_decay or None}
    if recipe.optimizer == "sgd":
        options.update(momentum=recipe.momentum, nesterov=recipe.nesterov)
    return OPTIMIZER_CLASSES[recipe.optimizer](**options)


class ResumedPlateau(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` that goes on where a stopped run's left off: its best value, how long it has
    waited and its cooldown, replayed from the run's stored epochs (Keras starts them afresh at every ``fit``,
    so each resume of a run trained across sessions put off the next reduction by up to ``patience`` epochs).
    The learning rate itself comes back with the optimizer in ``last.keras``.
    """

    best: float | None  # Keras' own state, set in on_train_begin
    cooldown_counter: int
    wait: int

    def __init__(self, *args, completed_epochs: Iterable[Mapping[str, Any]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.completed = [(row.get(self.monitor), row.get("learning_rate")) for row in completed_epochs]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._set_monitor_op()
        for value, rate in self.completed:  # Keras' on_epoch_end, without touching the optimizer
            if value is None:
                continue
            if self.in_cooldown():
                self.cooldown_counter -= 1
                self.wait = 0
            if self._is_improvement(value, self.best):
                self.best, self.wait = value, 0
            elif not self.in_cooldown():
                self.wait += 1
                if self.wait >= self.patience and (rate is None or rate > np.float32(self.min_lr)):  # it reduced
                    self.cooldown_counter, self.wait = self.cooldown, 0


def schedule_callbacks(recipe: Recipe,
                       completed_epochs: Iterable[Mapping[str, Any]] = ()) -> list[keras.callbacks.Callback]:
    """Per-epoch learning-rate callbacks, in the order the seeds used them; ``completed_epochs``: a resumed
    run's stored rows, which the plateau callback goes on from."""
    callbacks: list[keras.callbacks.Callback] = []
    if recipe.plateau:
        p = recipe.plateau
        callbacks.append(ResumedPlateau(
            monitor=p.monitor, mode=monitor_mode(p.monitor), factor=p.factor, patience=p.patience,
            min_lr=p.min_lr, verbose=1, completed_epochs=completed_epochs))
    if recipe.schedule == "inverse_time":
        callbacks.append(keras.callbacks.LearningRateScheduler(recipe.learning_rate_at_epoch, verbose=1))
    return callbacks


def augmentation_layers(recipe: Recipe, seed: int | None = None) -> list[keras.layers.Layer]:
    """Keras preprocessing layers for the recipe's augmentation, in a fixed order.

    Each layer draws from its own seed generator (``seed``, ``seed + 1``, ...; None: Keras' global
    seed), so a run's augmentation is reproducible inside a traced or jitted training step. They
    compute in float32 whatever the policy: uint8 pixel values and whole-pixel shifts stay exact.
    Whole-pixel shifts (``interpolation="nearest"``) are ``RandomShift``, the same meaning as
    ``RandomTranslation`` computed several times faster; interpolated ones stay ``RandomTranslation``.
    """
    a = recipe.augmentation
    layers: list[keras.layers.Layer] = []

    def options() -> dict[str, Any]:
        return {"seed": None if seed is None else seed + len(layers), "dtype": "float32"}

    if a.width_shift or a.height_shift:
        if a.interpolation == "nearest" and a.fill_mode in RandomShift.FILL_MODES:
            layers.append(RandomShift(a.height_shift, a.width_shift, fill_mode=a.fill_mode, **options()))
        else:
            layers.append(keras.layers.RandomTranslation(a.height_shift, a.width_shift, fill_mode=a.fill_mode,
                                                         interpolation=a.interpolation, **options()))
    if a.zoom:
        layers.append(keras.layers.RandomZoom(a.zoom, fill_mode=a.fill_mode, **options()))
    if a.rotation_degrees:
        layers.append(keras.layers.RandomRotation(a.rotation_degrees / 360.0, fill_mode=a.fill_mode, **options()))
    if a.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", **options()))
    if a.erasing_probability:
        p = a.erasing_probability
        layers.append(keras.layers.RandomErasing(factor=(p, p), scale=a.erasing_scale, value_range=(0, 255),
                                                 **options()))
    return layers


def best_value(epoch_rows: Iterable[Mapping[str, Any]], monitor: str) -> float | None:
    """The best value of ``monitor`` over stored epoch rows, in its direction; None when none logged it."""
    values = [float(row[monitor]) for row in epoch_rows
              if row.get(monitor) is not None and math.isfinite(float(row[monitor]))]
    if not values:
        return None
    return min(values) if monitor_mode(monitor) == "min" else max(values)


class ClassifierCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that saves the zoo model inside a ``TrainingModel`` (never the training-only layers),
    computing in float32 (``float32_copy``) after mixed-precision training, and calls ``on_save(epoch, logs)``
    each time it saves, so what a run records as its best epoch is the one in the file.

    Reads the model through ``Callback.model``, which under JAX first copies the training state
    back into the variables. Async-safe (see ``RunRecorder``): ``best_checkpoint`` saves at epoch
    ends, so its batch hook does nothing.
    """

    async_safe = True

    def __init__(self, filepath: str | os.PathLike, *args,
                 on_save: Callable[[int, Mapping[str, Any]], None] | None = None, **kwargs):
        self.final_path = Path(filepath)
        # Keras writes the file in place: written beside it and renamed (``partial_path``), as ``save_atomically``.
        super().__init__(str(partial_path(self.final_path)), *args, **kwargs)
        self.on_save = on_save

    @property
    def model(self):
        return float32_copy(saved_model(super().model))

    def on_epoch_end(self, epoch, logs=None):
        best_before = self.best
        super().on_epoch_end(epoch, logs)
        # ModelCheckpoint assigns ``best`` exactly when it saves for an improvement (identity, not ==: NaN).
        if self.best is not best_before:
            os.replace(self.filepath, self.final_path)
            if self.on_save is not None:
                self.on_save(epoch, logs or {})


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """``TensorBoard`` with epoch scalars only (no graph, no profiling). Async-safe (see ``RunRecorder``):
    at ``update_freq="epoch"`` Keras pushes no summary writer for batches, so its batch hook writes nothing."""

    async_safe = True

    def __init__(self, log_dir: str):
        super().__init__(log_dir=log_dir, write_graph=False, update_freq="epoch", profile_batch=0)


class TrainingDiverged(EipvizError):
    """The loss became nan or infinite: the run cannot go on, and nothing after it is kept."""


class StopWhenLossDiverges(keras.callbacks.TerminateOnNaN):
    """Keras' ``TerminateOnNaN``, raising ``TrainingDiverged`` with what to do. A run whose loss became nan
    (a learning rate of 10^6) had finished as if sound: nan weights in ``best.keras``, every page's answers
    wrong. It raises before the epoch ends, so no checkpoint, timeline or epoch row holds them.

    Async-safe (see ``RunRecorder``): it reads each batch's loss on Keras' callback threads, so the step loop
    never waits for it; the error reaches ``fit`` a step later, or at the epoch's end. It reads nothing else
    there: under JAX the optimizer's state may be freed for the next step meanwhile ("Array has been deleted",
    a reviewer's race), so the message names the recipe's ``learning_rate``, given when it is made.
    """

    async_safe = True

    def __init__(self, learning_rate: float):
        super().__init__(raise_error=True)
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as error:
            raise self._diverged("loss", (logs or {})["loss"], f"batch {batch + 1}") from error

    def on_epoch_end(self, epoch, logs=None):
        """The validation loss too: the last step's update can leave nan weights behind a finite mean loss (a
        learning rate of 10^6: loss 1.0e9, val_loss nan), which the checkpoint after this would have kept."""
        for name, when in (("loss", "its mean"), ("val_loss", "validation")):
            value = (logs or {}).get(name)
            if value is not None and not np.isfinite(value):
                raise self._diverged(name, value, when)

    def _diverged(self, name: str, value, when: str) -> "TrainingDiverged":
        return TrainingDiverged(
            f"Training diverged: the {name} became {float(value)} in epoch {self.epoch + 1} ({when}). Start a new "
            f"run with a learning rate below this one's {self.learning_rate:g} (--set learning_rate=...); the "
            f"checkpoints keep the last sound epoch, if any.")


def best_checkpoint(recipe: Recipe, filepath: str | os.PathLike, completed_epochs: Iterable[Mapping[str, Any]] = (),
                    on_save: Callable[[int, Mapping[str, Any]], None] | None = None) -> ClassifierCheckpoint:
    """A checkpoint callback that keeps the best epoch by the recipe's ``checkpoint_monitor``.

    ``completed_epochs`` are a resumed run's stored rows: their best value is the bar a new
    epoch must beat, so resuming never overwrites a better ``best.keras``. For example, with
    ``checkpoint_monitor="val_loss"`` and stored val_loss 0.9 then 0.6, the callback is in
    ``"min"`` mode and saves only an epoch below 0.6. A ``TrainingModel`` saves its classifier.
    ``on_save(epoch, logs)`` runs after each save (the run store records the best epoch there).
    """
    monitor = recipe.checkpoint_monitor
    return ClassifierCheckpoint(
        filepath, monitor=monitor, mode=monitor_mode(monitor), save_best_only=True,
        initial_value_threshold=best_value(completed_epochs, monitor), on_save=on_save,
    )


def batch_norm_layers(model: keras.layers.Layer) -> list[keras.layers.BatchNormalization]:
    """Every ``BatchNormalization`` layer in ``model``, nested models included, in layer order."""
    found = []
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        else:
            found.extend(batch_norm_layers(layer))
    return found


def training_forward(model: keras.Model) -> Callable[[Any], None]:
    """A function that runs ``model(x, training=True)`` and keeps its state updates (BatchNorm's moving
    statistics, seed generators); weights are untouched.

    Under JAX it is one jit-compiled program: run eagerly, each op compiles on its own there, and the
    first re-estimation of a 2-epoch mnist14k run on two host devices took 25 of the run's 74 s.
    """
    if keras.backend.backend() != "jax":
        return lambda x: model(x, training=True)
    import jax

    @jax.jit
    def updated_state(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=True)[1]

    def forward(x):
        values = updated_state([v.value for v in model.trainable_variables],
                               [v.value for v in model.non_trainable_variables], x)
        for variable, value in zip(model.non_trainable_variables, values):
            variable.assign(value)

    return forward


def reestimate_batch_norm(model: keras.Model, batches: Iterable[Any],
                          forward: Callable[[Any], None] | None = None) -> int:
    """Set each BatchNorm layer's moving mean and variance to the average of its batch statistics.

    Runs ``model`` in training mode on each ``(x, y)`` of ``batches`` (through ``forward``, default
    ``training_forward(model)``) with momentum 0, so that Keras' own update leaves each batch's mean
    and variance as the moving ones, and averages them weighted by each batch's size (a last batch of
    one image would otherwise count as much as a full one, and its variance is zero). Weights are
    untouched. Returns the number of batches used.
    """
    layers = [layer for layer in batch_norm_layers(model) if layer.trainable and not layer.renorm]
    if not layers:
        return 0
    forward = forward or training_forward(model)
    momenta = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in layers]
    used, images = 0, 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        for used, batch in enumerate(batches, start=1):
            forward(batch[0])
            size = len(batch[0])
            images += size
            for (mean, variance), layer in zip(sums, layers):
                mean += size * keras.ops.convert_to_numpy(layer.moving_mean)
                variance += size * keras.ops.convert_to_numpy(layer.moving_variance)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if used:
        for (mean, variance), layer in zip(sums, layers):
            layer.moving_mean.assign(mean / images)
            layer.moving_variance.assign(variance / images)
    return used


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimates BatchNorm statistics on training batches before each validation inside ``fit``.

    With few steps an epoch, BatchNorm's moving averages (momentum 0.99) trail weights that change
    quickly, so validation, which uses them, sees statistics of earlier weights. Keras validates
    inside ``fit`` before ``on_epoch_end``, so this runs in ``on_test_begin`` (only during ``fit``):
    validation, ``ModelCheckpoint`` and ``last.keras`` then all see the same statistics.

    Example:
        model.fit(train, validation_data=val, epochs=8,
                  callbacks=[PreciseBatchNorm(train, num_batches=16)])
    """

    def __init__(self, batches: keras.utils.PyDataset, num_batches: int):
        super().__init__()
        self.batches = batches
        self.num_batches = min(num_batches, len(batches))
        self.in_fit = False
        self.forward: Callable[[Any], None] | None = None  # made once: under JAX, one compile per run

    def on_train_begin(self, logs=None):
        self.in_fit = True

    def on_train_end(self, logs=None):
        self.in_fit = False

    def on_test_begin(self, logs=None):
        if self.in_fit:  # a plain model.evaluate() leaves the statistics alone
            self.reestimate()

    def reestimate(self) -> int:
        """Re-estimate now (also before saving a stopped run); return the number of batches used."""
        self.forward = self.forward or training_forward(self.model)
        return reestimate_batch_norm(self.model, (self.batches[i] for i in range(self.num_batches)), self.forward)


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int,
                  optimizer: keras.optimizers.Optimizer | None = None) -> None:
    """Compile with the recipe's optimizer and label-smoothed cross-entropy, reporting accuracy.

    A ``TrainingModel`` also runs the recipe's ``steps_per_execution``, and its classifier is
    compiled with the same optimizer object, so a saved classifier carries the optimizer's state
    (momentum, step count) and a resumed run continues the same per-step schedule. ``optimizer``:
    a resumed model's own, instead of a fresh one; its one-cycle schedule is made again for
    ``steps_per_epoch`` (runs before 2026-11-28 counted a last short batch in each epoch).
    """
    if optimizer is None:
        optimizer = make_optimizer(recipe, steps_per_epoch)
    elif recipe.schedule == "one_cycle":
        optimizer.learning_rate = learning_rate(recipe, steps_per_epoch)

    def compile_one(target: keras.Model, **options: Any) -> None:
        target.compile(optimizer=optimizer,
                       loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                       metrics=["accuracy"], **options)

    if isinstance(model, TrainingModel):
        compile_one(model.classifier)
        compile_one(model, steps_per_execution=recipe.steps_per_execution)
    else:
        compile_one(model)


assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)
