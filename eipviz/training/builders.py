"""Turn a ``Recipe`` into Keras' own pieces. Backend-agnostic: no TensorFlow calls here."""

import keras

from eipviz.recipes import Recipe


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer, with a per-step schedule for one-cycle recipes."""
    learning_rate = recipe.learning_rate
    if recipe.schedule == "one_cycle":
        total = max(1, recipe.epochs * steps_per_epoch)
        warmup = int(total * recipe.warmup_fraction)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate / 10, decay_steps=max(1, total - warmup),
            warmup_target=recipe.learning_rate, warmup_steps=warmup, alpha=0.0,
        )
    kwargs = {"learning_rate": learning_rate}
    if recipe.weight_decay:
        kwargs["weight_decay"] = recipe.weight_decay
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=recipe.momentum, nesterov=recipe.nesterov, **kwargs)
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    return keras.optimizers.Adam(**kwargs)


def schedule_callbacks(recipe: Recipe) -> list[keras.callbacks.Callback]:
    """Per-epoch learning-rate callbacks, in the order the seeds used them."""
    callbacks = []
    if recipe.plateau:
        p = recipe.plateau
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=p.monitor, factor=p.factor, patience=p.patience, min_lr=p.min_lr, verbose=1))
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


def compile_model(model, recipe: Recipe, steps_per_epoch: int) -> None:
    model.compile(
        optimizer=make_optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
