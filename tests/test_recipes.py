from dataclasses import replace

import keras
import numpy as np
import pytest

from eipviz.errors import EipvizError
from eipviz.recipes import DOCUMENTED, FAST, Augmentation, Plateau, Recipe, get_recipe, monitor_mode, parse_setting
from eipviz.tables import recipe_table
from eipviz.training.builders import (
    ResumedPlateau,
    augmentation_layers,
    best_checkpoint,
    best_value,
    make_optimizer,
    schedule_callbacks,
)


def test_seed_004_schedule_gives_0_0025_at_the_second_epoch():
    assert get_recipe("resnet20v1").learning_rate_at_epoch(1) == pytest.approx(0.0025, abs=1e-12)


def test_seed_002_schedule_gives_0_0022744503_at_the_second_epoch():
    assert get_recipe("mnist14k").learning_rate_at_epoch(1) == pytest.approx(0.0022744503, abs=1e-10)


def test_seed_001_schedule_matches_its_logged_rates():
    recipe = get_recipe("sepconv59k")
    for epoch, logged in ((1, 0.0030557678), (2, 0.0024721879), (10, 0.0009779951)):
        assert recipe.learning_rate_at_epoch(epoch) == pytest.approx(logged, rel=1e-6)


def test_seed_004_recipe_reads_as_documented():
    recipe = DOCUMENTED["resnet20v1"]
    assert (recipe.optimizer, recipe.learning_rate, recipe.batch_size, recipe.epochs) == ("rmsprop", 3e-3, 32, 50)
    assert recipe.preprocessing == "pixel_mean"
    assert recipe.plateau.factor == pytest.approx(0.1 ** 0.5) and recipe.plateau.patience == 5
    assert recipe.plateau.min_lr == 0.5e-6
    aug = recipe.augmentation
    assert (aug.width_shift, aug.horizontal_flip, aug.zoom, aug.rotation_degrees, aug.erasing_probability) == (
        0.1, True, 0.1, 10, 0.1)
    assert recipe.source.endswith("004_87f52f0e225470ae.txt")


def learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_seed_000_plateau_drives_keras_through_its_logged_reductions():
    recipe = DOCUMENTED["resnet18"]  # factor sqrt(0.1), patience 3, min_lr 1e-4
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch=1), loss="mse")
    (plateau,) = schedule_callbacks(recipe)
    plateau.set_model(model)
    plateau.on_train_begin()
    # Two improving epochs, then val_loss never improves again.
    val_losses = [1.0, 0.8] + [0.8] * 13
    rates = []
    for epoch, val_loss in enumerate(val_losses):
        plateau.on_epoch_end(epoch, logs={"val_loss": val_loss})
        rates.append(learning_rate(model))
    # A reduction every `patience` epochs without improvement: the seed's log reads
    # 0.003 -> 0.0009486833 -> 0.0003 -> 0.0001, and min_lr holds it there.
    assert rates[:4] == pytest.approx([0.003] * 4)
    assert rates[4:7] == pytest.approx([0.0009486833] * 3, rel=1e-6)
    assert rates[7:10] == pytest.approx([0.0003] * 3, rel=1e-6)
    assert rates[10:] == pytest.approx([0.0001] * 5, rel=1e-6)
    assert min(rates) >= np.float32(recipe.plateau.min_lr)


def test_a_resumed_run_goes_on_with_the_plateau_it_had_waited_on():
    """Stopped after two epochs without improvement (patience 3), the run reduces at its first epoch back, as
    the uninterrupted run does; Keras alone would wait three more."""
    recipe = DOCUMENTED["resnet18"]  # factor sqrt(0.1), patience 3, min_lr 1e-4
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch=1), loss="mse")
    completed = [{"epoch": 1, "val_loss": 1.0, "learning_rate": 0.003},
                 {"epoch": 2, "val_loss": 1.1, "learning_rate": 0.003},
                 {"epoch": 3, "val_loss": 1.2, "learning_rate": 0.003}]
    (plateau,) = schedule_callbacks(recipe, completed)
    plateau.set_model(model)
    plateau.on_train_begin()
    assert (plateau.best, plateau.wait) == (1.0, 2)
    plateau.on_epoch_end(3, logs={"val_loss": 1.3})
    assert learning_rate(model) == pytest.approx(0.0009486833, rel=1e-6)


def test_recipes_build_into_keras_pieces():
    callbacks = schedule_callbacks(DOCUMENTED["resnet20v1"])
    assert {type(c) for c in callbacks} == {ResumedPlateau, keras.callbacks.LearningRateScheduler}
    assert isinstance(callbacks[0], keras.callbacks.ReduceLROnPlateau)
    layers = augmentation_layers(DOCUMENTED["resnet20v1"])
    assert [type(layer).__name__ for layer in layers] == [
        "RandomTranslation", "RandomZoom", "RandomRotation", "RandomFlip", "RandomErasing"]
    optimizer = make_optimizer(FAST["resnet20v1"], steps_per_epoch=100)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)


def test_nearest_interpolation_shifts_whole_pixels_and_bilinear_blurs():
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")

    def shifted(interpolation):
        shift = Augmentation(width_shift=0.125, height_shift=0.125, fill_mode="reflect", interpolation=interpolation)
        (layer,) = augmentation_layers(replace(FAST["resnet20v1"], augmentation=shift))
        return np.asarray(layer(images, training=True))

    assert (shifted("nearest") % 1 == 0).all()  # whole-pixel moves keep the integer pixel values
    assert (shifted("bilinear") % 1 != 0).mean() > 0.5  # most pixels become mixtures of neighbours


def test_the_recipe_table_lists_transforms_not_their_settings():
    augmentation = {row["recipe"]: row["augmentation"] for row in recipe_table("resnet20v1")}
    assert augmentation["fast"] == "width_shift, height_shift, horizontal_flip"  # not interpolation, fill_mode
    assert Augmentation(fill_mode="reflect", interpolation="nearest").transforms() == []


def test_the_recipe_table_names_the_plateau_callback_with_the_schedule():
    """The Models page's schedule column says the documented resnet18 recipe reduces its rate on a plateau."""
    documented = recipe_table("resnet18")[0]
    assert documented["schedule"] == "constant 0.003; ReduceLROnPlateau(x0.316, patience 3)"


def test_every_model_has_a_documented_and_a_fast_recipe_citing_sources():
    for model, recipe in DOCUMENTED.items():
        assert recipe.source.startswith("../shared/seeds/") and FAST[model].schedule == "one_cycle"


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(EipvizError, match="documented, fast"):
        get_recipe("mnist14k", "slow")


@pytest.mark.parametrize(("argument", "value"), [
    ("optimizer", "adamw2"), ("schedule", "cosine"), ("checkpoint_monitor", "val_f1"),
])
def test_an_unknown_recipe_value_is_one_error_naming_it(argument, value):
    with pytest.raises(EipvizError, match=rf"Unknown {argument}\. Received: {argument}='{value}'\. Choose one of"):
        replace(DOCUMENTED["mnist14k"], **{argument: value})


@pytest.mark.parametrize(("text", "expected"), [
    ("learning_rate=0.4", ("learning_rate", 0.4)), (" epochs = 60 ", ("epochs", 60)),
    ("nesterov=False", ("nesterov", False)), ("schedule=None", ("schedule", None)),
    ("schedule=one_cycle", ("schedule", "one_cycle")), ("devices=all", ("devices", "all")),
])
def test_a_setting_reads_its_value_as_a_literal_else_as_text(text, expected):
    assert parse_setting(text) == expected


@pytest.mark.parametrize("text", ["learning_rate", "=0.4", ""])
def test_a_setting_without_a_name_and_an_equals_sign_is_one_error(text):
    with pytest.raises(EipvizError, match="FIELD=VALUE"):
        parse_setting(text)


def test_settings_change_only_the_named_fields_and_are_checked_like_the_recipe():
    fast = FAST["resnet20v1"]
    large_batch = fast.with_settings({"batch_size": 512, "learning_rate": 0.4, "precise_bn_below_steps": 0})
    assert (large_batch.batch_size, large_batch.learning_rate, large_batch.precise_bn_below_steps) == (512, 0.4, 0)
    assert replace(large_batch, batch_size=32, learning_rate=0.15, precise_bn_below_steps=100) == fast
    assert fast.with_settings({}) == fast
    with pytest.raises(EipvizError, match=r"Unknown setting\. Received: setting='lr'\. Choose one of: 'optimizer'"):
        fast.with_settings({"lr": 0.4})
    with pytest.raises(EipvizError, match="Unknown setting"):
        fast.with_settings({"augmentation": Augmentation()})  # nested: not settable by name
    with pytest.raises(EipvizError, match=r"learning_rate takes int or float\. Received: learning_rate='fast'"):
        fast.with_settings({"learning_rate": "fast"})
    with pytest.raises(EipvizError, match=r"epochs takes int\. Received: epochs=True"):
        fast.with_settings({"epochs": True})
    with pytest.raises(EipvizError, match=r"Received: optimizer='lamb'"):
        fast.with_settings({"optimizer": "lamb"})
    with pytest.raises(EipvizError, match=r"batch_size must be a whole number from 1 to 65,536\. Received: "
                                          r"batch_size=0"):
        fast.with_settings({"batch_size": 0})
    with pytest.raises(EipvizError, match=r"epochs must be a whole number from 1 to 10,000\. Received: "
                                          r"epochs=100000000000000000000"):  # TensorFlow's overflow, in the worker
        fast.with_settings({"epochs": 10**20})


def test_interpolation_is_a_setting_of_the_augmentation_and_is_stored_with_the_run():
    """``--set interpolation=nearest``: whole-pixel shifts for a recipe with bilinear ones (resnet18's)."""
    fast = FAST["resnet18"]
    assert fast.augmentation.interpolation == "bilinear"
    nearest = fast.with_settings({"interpolation": "nearest", "learning_rate": 0.4})
    assert nearest.augmentation == replace(fast.augmentation, interpolation="nearest")
    assert nearest.learning_rate == 0.4 and replace(nearest, augmentation=fast.augmentation, learning_rate=0.1) == fast
    assert Recipe.from_hyperparameters(nearest.hyperparameters()) == nearest  # a resumed run keeps it
    with pytest.raises(EipvizError, match=r"^Recipe resnet18/fast: Unknown interpolation\. Received: "
                                          r"interpolation='cubic'\. Choose one of: 'bilinear', 'nearest'\.$"):
        fast.with_settings({"interpolation": "cubic"})
    with pytest.raises(EipvizError, match=r"interpolation takes str\. Received: interpolation=1"):
        fast.with_settings({"interpolation": 1})


def test_an_unknown_plateau_monitor_is_one_error_naming_it():
    with pytest.raises(EipvizError, match="Received: monitor='val_acc'"):
        Plateau(monitor="val_acc")


def test_a_stored_run_with_an_unknown_optimizer_does_not_become_adam():
    stored = {**FAST["mnist14k"].hyperparameters(), "optimizer": "adamw2"}
    with pytest.raises(EipvizError, match="optimizer='adamw2'"):
        Recipe.from_hyperparameters(stored)


def test_an_older_run_without_a_checkpoint_monitor_or_plateau_keys_still_loads():
    stored = DOCUMENTED["resnet18"].hyperparameters()
    del stored["checkpoint_monitor"], stored["plateau"]["min_lr"]
    rebuilt = Recipe.from_hyperparameters({**stored, "subset": None, "seed": 0})
    assert rebuilt.checkpoint_monitor == "val_accuracy" and rebuilt.plateau == Plateau(factor=0.1 ** 0.5, patience=3)


def test_losses_are_minimised_and_accuracies_maximised():
    assert [monitor_mode(name) for name in ("loss", "val_loss", "accuracy", "val_accuracy")] == [
        "min", "min", "max", "max"]
    with pytest.raises(EipvizError, match="monitor='val_f1'"):
        monitor_mode("val_f1")


def test_every_optimizer_name_builds_its_own_keras_class():
    built = {name: type(make_optimizer(replace(DOCUMENTED["mnist14k"], optimizer=name), steps_per_epoch=10))
             for name in ("sgd", "rmsprop", "adam")}
    assert built == {"sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}


def test_a_val_loss_checkpoint_keeps_the_lowest_epoch_and_a_resume_must_beat_it():
    recipe = replace(DOCUMENTED["mnist14k"], checkpoint_monitor="val_loss")
    stored = [{"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.6}, {"epoch": 3, "val_loss": 0.7}]
    checkpoint = best_checkpoint(recipe, "best.keras", stored)
    assert isinstance(checkpoint, keras.callbacks.ModelCheckpoint) and checkpoint.save_best_only
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.best) == ("val_loss", "min", 0.6)


def test_a_val_accuracy_checkpoint_keeps_the_highest_epoch_and_a_fresh_run_has_no_bar():
    stored = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.8}, {"epoch": 3, "loss": 1.0}]
    checkpoint = best_checkpoint(DOCUMENTED["mnist14k"], "best.keras", stored)
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.best) == ("val_accuracy", "max", 0.8)
    assert best_checkpoint(DOCUMENTED["mnist14k"], "best.keras").best is None


def test_a_run_stored_before_precise_batchnorm_resumes_without_it():
    from eipviz.recipes import Recipe

    stored = get_recipe("mnist14k", "fast").hyperparameters()
    del stored["precise_bn_below_steps"]
    assert Recipe.from_hyperparameters(stored).precise_bn_below_steps == 0
    assert get_recipe("mnist14k", "fast").precise_bn_below_steps == 100


@pytest.mark.parametrize(("setting", "message"), [
    ("learning_rate=-0.1", r"learning_rate must be a finite number in \(0, inf\)\. Received: learning_rate=-0\.1\."),
    ("learning_rate=0", r"learning_rate must be a finite number in \(0, inf\)"),
    ("learning_rate=1e999", r"learning_rate must be a finite number in \(0, inf\)\. Received: learning_rate=inf\."),
    ("warmup_fraction=2.0", r"warmup_fraction must be a finite number in \[0, 1\)\. Received: warmup_fraction=2\.0"),
    ("label_smoothing=1.5", r"label_smoothing must be a finite number in \[0, 1\)"),
    ("momentum=1.5", r"momentum must be a finite number in \[0, 1\)"),
    ("weight_decay=-0.01", r"weight_decay must be a finite number in \[0, inf\)"),
    ("decay=-1", r"decay must be a finite number in \[0, inf\)\. Received: decay=-1\."),
    ("precise_bn_below_steps=-1", r"precise_bn_below_steps must be a finite number in \[0, inf\)"),
])
def test_a_setting_out_of_its_range_is_refused_when_the_run_is_planned(setting, message):
    from eipviz.training.launcher import planned_recipe

    with pytest.raises(EipvizError, match=message):
        planned_recipe("mnist14k", "fast", settings=dict([parse_setting(setting)]))


def test_a_nan_or_infinite_rate_is_refused():
    for value in (float("nan"), float("inf")):
        with pytest.raises(EipvizError, match=r"learning_rate must be a finite number"):
            FAST["mnist14k"].with_settings({"learning_rate": value})


def test_a_per_step_schedule_is_refused_with_a_plateau_callback():
    from eipviz.training.launcher import planned_recipe

    with pytest.raises(EipvizError, match=r"Recipe resnet18/documented: schedule='one_cycle' sets the rate at every "
                                          r"step, so it cannot be combined with this recipe's ReduceLROnPlateau"):
        planned_recipe("resnet18", "documented", settings={"schedule": "one_cycle"})
    assert planned_recipe("resnet18", "documented", settings={"schedule": "inverse_time", "decay": 0.1}).plateau


def test_plateau_arguments_keras_would_refuse_are_refused_first():
    with pytest.raises(EipvizError, match=r"ReduceLROnPlateau: factor must be a finite number in \(0, 1\)"):
        Plateau(factor=1.0)
    with pytest.raises(EipvizError, match=r"ReduceLROnPlateau: min_lr must be a finite number in \[0, inf\)"):
        Plateau(min_lr=-1e-4)


def test_every_shipped_recipe_passes_its_own_range_checks():
    for recipes in (DOCUMENTED, FAST):
        for recipe in recipes.values():
            assert replace(recipe) == recipe


def test_the_cli_refuses_an_out_of_range_setting_in_one_line_and_queues_nothing(tmp_path):
    from eipviz.training.store import RunStore
    from tests.conftest import main_in_process

    refused = main_in_process("train", "--model", "resnet18", "--recipe", "documented", "--set", "schedule=one_cycle",
                              "--runs-dir", tmp_path, check=False)
    assert refused.returncode == 2 and "cannot be combined with this recipe's ReduceLROnPlateau" in refused.stderr
    refused = main_in_process("train", "--model", "mnist14k", "--set", "momentum=1.5", "--runs-dir", tmp_path,
                              check=False)
    assert refused.returncode == 2 and "momentum must be a finite number in [0, 1)" in refused.stderr
    assert "Traceback" not in refused.stderr and not RunStore(tmp_path).list_runs()


def test_devices_and_a_batch_size_set_by_name_are_judged_together():
    """``--devices 3 --set batch_size=96``: 96 splits across 3 devices, though the recipe's own 128 would not."""
    from eipviz.training.launcher import planned_recipe

    chosen = planned_recipe("mnist14k", "fast", devices=3, settings={"batch_size": 96})
    assert (chosen.devices, chosen.batch_size) == (3, 96)


# -- guards the second mutation review of 2026-11-27 found untested --------------------------------------------------


def test_zero_epochs_or_batch_size_keep_the_recipes_own():
    """``--epochs 0`` / ``--batch-size 0`` mean "the recipe's", as with_overrides' docstring says."""
    recipe = get_recipe("mnist14k", "fast")
    assert recipe.with_overrides(epochs=0, batch_size=0) == recipe


def test_a_setting_by_name_wins_over_the_plain_override():
    """``--epochs 3 --set epochs=5``: settings are applied last."""
    assert get_recipe("mnist14k", "fast").with_overrides(epochs=3, settings={"epochs": 5}).epochs == 5


def _rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_warms_up_from_a_tenth_of_the_peak_and_decays_to_zero_at_the_last_step():
    """The fast recipes' schedule: lr/10 -> lr over warmup_fraction of the steps, then cosine to 0 at the end."""
    recipe = FAST["mnist14k"].with_overrides(epochs=2)  # peak 0.1, warm-up 15%
    schedule = make_optimizer(recipe, steps_per_epoch=50)._learning_rate  # 100 steps, 15 of warm-up
    assert _rate(schedule, 0) == pytest.approx(0.01)
    assert _rate(schedule, 15) == pytest.approx(0.1)
    assert _rate(schedule, 100) == pytest.approx(0.0, abs=1e-7)


def _plateau_after(completed):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(DOCUMENTED["resnet18"], steps_per_epoch=1), loss="mse")
    (plateau,) = schedule_callbacks(DOCUMENTED["resnet18"], completed)  # patience 3
    plateau.set_model(model)
    plateau.on_train_begin()
    return plateau


def test_a_resumed_plateau_that_reduced_in_its_stored_epochs_waits_afresh():
    """Three stored epochs without improvement reduced the rate (patience 3): the replay's wait is back at 0, so
    the resumed run does not reduce again at its first epoch."""
    completed = [{"epoch": e, "val_loss": loss, "learning_rate": 0.003}
                 for e, loss in enumerate((1.0, 1.1, 1.2, 1.3), start=1)]
    assert _plateau_after(completed).wait == 0


def test_each_augmentation_layer_draws_from_its_own_seed():
    """seed, seed + 1, ...: one shared seed would tie the flip to the shift, the rotation to the zoom."""
    layers = augmentation_layers(DOCUMENTED["resnet20v1"], seed=5)
    assert [layer.seed for layer in layers] == [5, 6, 7, 8, 9]


def test_rotation_degrees_become_keras_fractions_of_a_full_turn():
    """resnet20v1's seed rotates by up to 10 degrees: RandomRotation's factor is 10/360 of a turn."""
    (rotation,) = [layer for layer in augmentation_layers(DOCUMENTED["resnet20v1"])
                   if isinstance(layer, keras.layers.RandomRotation)]
    assert rotation.factor == pytest.approx((-10 / 360, 10 / 360))


def test_a_diverged_epoch_is_no_bar_a_resumed_checkpoint_must_beat():
    """A NaN val_loss stored before a resume must not become best.keras' bar (nothing would ever beat NaN)."""
    assert best_value([{"val_loss": float("nan")}, {"val_loss": 0.6}], "val_loss") == 0.6
    assert best_value([{"val_accuracy": float("nan")}, {"val_accuracy": 0.3}], "val_accuracy") == 0.3


def test_an_epoch_is_full_batches_and_the_plan_says_how_many_images_it_draws():
    from eipviz.training.batches import ImageBatches
    from eipviz.training.launcher import plan_summary

    fast = FAST["mnist14k"]  # batch 128
    assert [fast.steps_per_epoch(n) for n in (2_048, 1_000, 100, 50_000)] == [16, 7, 1, 390]
    for images in (2_048, 1_000, 100):  # what the worker trains on
        assert len(ImageBatches(np.zeros((images, 1, 1, 1), np.uint8), np.zeros((images, 10)), 128)) == \
            fast.steps_per_epoch(images)
    assert "on 2,048 images (16 steps an epoch; BatchNorm" in plan_summary(fast, 2_048)
    assert "on 1,000 images (7 steps an epoch of 896 images drawn anew each epoch; BatchNorm" in \
        plan_summary(fast, 1_000)
