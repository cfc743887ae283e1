"""The speed options a recipe carries (issue #24); which GPUs a run is pinned to is tests/test_queue.py's."""

import pytest

from eipviz.errors import EipvizError
from eipviz.recipes import FAST, Recipe, parse_devices
from eipviz.training.devices import training_precision


def test_mixed_precision_is_off_on_a_cpu():
    assert training_precision(True) == "float32" and training_precision(False) == "float32"


def test_devices_are_a_positive_number_or_all_and_anything_else_names_what_it_received():
    assert parse_devices("2") == 2 and parse_devices("all") == "all"
    for bad in ("0", "two", "-1"):
        with pytest.raises(EipvizError, match="Received: devices="):
            parse_devices(bad)
    with pytest.raises(EipvizError, match="steps_per_execution must be a positive integer"):
        FAST["resnet20v1"].with_overrides(steps_per_execution=0)


def test_speed_options_are_stored_with_the_run_and_older_runs_take_their_defaults():
    recipe = FAST["resnet20v1"].with_overrides(devices="all", mixed_precision=True, steps_per_execution=4)
    stored = recipe.hyperparameters()
    assert (stored["devices"], stored["mixed_precision"], stored["steps_per_execution"]) == ("all", True, 4)
    assert Recipe.from_hyperparameters(stored) == recipe
    for name in ("devices", "mixed_precision", "steps_per_execution"):
        del stored[name]
    older = Recipe.from_hyperparameters(stored)
    assert (older.devices, older.mixed_precision, older.steps_per_execution) == (1, False, 1)
