from dataclasses import replace

import keras
import numpy as np
import pytest

from eipviz.errors import EipvizError
from eipviz.recipes import DOCUMENTED, FAST, Augmentation, get_recipe
from eipviz.tables import recipe_table
from eipviz.training.builders import augmentation_layers, make_optimizer, schedule_callbacks


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


def test_seed_000_plateau_matches_its_logged_reductions():
    plateau = DOCUMENTED["resnet18"].plateau
    lr = DOCUMENTED["resnet18"].learning_rate
    # The log: 0.003 -> 0.0009486833 -> 0.0003 -> 0.0001 (floored at min_lr).
    steps = []
    for _ in range(3):
        lr = max(lr * plateau.factor, plateau.min_lr)
        steps.append(lr)
    assert steps == pytest.approx([0.0009486833, 0.0003, 0.0001], rel=1e-6)


def test_recipes_build_into_keras_pieces():
    callbacks = schedule_callbacks(DOCUMENTED["resnet20v1"])
    assert {type(c) for c in callbacks} == {keras.callbacks.ReduceLROnPlateau, keras.callbacks.LearningRateScheduler}
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


def test_every_model_has_a_documented_and_a_fast_recipe_citing_sources():
    for model, recipe in DOCUMENTED.items():
        assert recipe.source.startswith("../shared/seeds/") and FAST[model].schedule == "one_cycle"


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(EipvizError, match="documented, fast"):
        get_recipe("mnist14k", "slow")
