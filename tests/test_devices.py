"""Which GPUs the next run is pinned to, and the speed options a recipe carries (issue #24)."""

import pytest

from eipviz.errors import EipvizError
from eipviz.recipes import FAST, Recipe, parse_devices
from eipviz.training.devices import devices_for_next_run, training_precision, visible_gpus

TWO_GPUS = ["0", "1"]


def test_on_two_gpus_two_runs_get_distinct_devices_and_a_third_waits_queued():
    first = devices_for_next_run(TWO_GPUS, held=[])
    second = devices_for_next_run(TWO_GPUS, held=[first])
    assert first == ["0"] and second == ["1"]
    assert devices_for_next_run(TWO_GPUS, held=[first, second]) is None


def test_a_finished_run_frees_its_gpu_for_the_queued_one():
    assert devices_for_next_run(TWO_GPUS, held=[["1"]]) == ["0"]


def test_a_run_on_all_gpus_waits_until_every_one_is_free_and_then_holds_them_all():
    assert devices_for_next_run(TWO_GPUS, held=[["1"]], devices="all") is None
    assert devices_for_next_run(TWO_GPUS, held=[], devices="all") == ["0", "1"]
    assert devices_for_next_run(TWO_GPUS, held=[["0", "1"]]) is None


def test_without_a_gpu_every_run_trains_on_the_cpu_and_none_waits():
    assert devices_for_next_run([], held=[[], []]) == []


def test_a_run_asking_for_more_gpus_than_the_machine_has_is_refused():
    with pytest.raises(EipvizError, match="asks for 3 GPUs but this machine has 2"):
        devices_for_next_run(TWO_GPUS, held=[], devices=3)


def test_visible_gpus_follow_cuda_visible_devices_else_the_installed_ones():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, installed=["0", "1", "2", "3"]) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, installed=["0"]) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, installed=["0"]) == []
    assert visible_gpus({}, installed=["0", "1"]) == ["0", "1"]


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
