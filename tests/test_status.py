"""Live-run progress read from a real run store (no worker): epochs done, batch progress, time left."""

import time

import pytest

from eipviz.training.status import RunProgress, format_duration, run_progress
from eipviz.training.store import RunStore


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path)


def new_run(store, epochs=10, epoch_seconds=()):
    """A running run of ``epochs`` epochs, with one stored epoch per entry of ``epoch_seconds``."""
    run_id = store.create_run(name="run", model="mnist14k", hyperparameters={"epochs": epochs}, status="running")
    for epoch, seconds in enumerate(epoch_seconds, start=1):
        store.add_epoch(run_id, epoch, {"loss": 1.0 / epoch, "epoch_seconds": seconds})
    return run_id


def progress_of(store, run_id):
    return run_progress(store, store.get_run(run_id))


def test_a_run_that_has_not_started_has_nothing_done_and_no_estimate(store):
    assert progress_of(store, new_run(store)) == RunProgress(epochs_done=0, epochs_total=10, batch=0, batches=0,
                                                             running_loss=None, eta_seconds=None)


def test_epochs_done_counts_the_stored_epochs(store):
    progress = progress_of(store, new_run(store, epochs=10, epoch_seconds=[5, 5, 5]))
    assert (progress.epochs_done, progress.epochs_total) == (3, 10)


def test_epochs_total_is_zero_when_the_run_does_not_say(store):
    run_id = store.create_run(name="run", status="running")
    assert progress_of(store, run_id).epochs_total == 0


def test_batch_progress_of_the_current_epoch_is_reported(store):
    run_id = new_run(store, epoch_seconds=[5, 5])
    store.set_progress(run_id, epoch=3, batch=50, batches=200, loss=0.7)
    progress = progress_of(store, run_id)
    assert (progress.batch, progress.batches, progress.running_loss) == (50, 200, 0.7)
    assert progress.epoch_fraction == 0.25


def test_batch_restarts_at_zero_when_the_progress_row_is_from_an_epoch_already_stored(store):
    run_id = new_run(store, epoch_seconds=[5, 5])
    store.set_progress(run_id, epoch=2, batch=200, batches=200, loss=0.3)  # epoch 2 finished, epoch 3 not begun
    progress = progress_of(store, run_id)
    assert (progress.epochs_done, progress.batch, progress.epoch_fraction) == (2, 0, 0.0)


def test_epoch_fraction_is_zero_without_a_batch_count(store):
    assert progress_of(store, new_run(store)).epoch_fraction == 0.0


def test_time_left_is_the_epochs_left_times_the_mean_of_the_last_three_epochs(store):
    # Last three epochs took 10, 20 and 30 s (mean 20); the slow first one is forgotten. 6 epochs left.
    progress = progress_of(store, new_run(store, epochs=10, epoch_seconds=[100, 10, 20, 30]))
    assert progress.eta_seconds == pytest.approx(6 * 20)


def test_time_left_averages_fewer_epochs_when_fewer_are_done(store):
    progress = progress_of(store, new_run(store, epochs=5, epoch_seconds=[100, 10, 30]))  # mean 20, 2 epochs left
    assert progress.eta_seconds == pytest.approx(40)


def test_the_runs_first_epoch_start_up_and_tracing_included_is_left_out_once_another_is_done(store):
    """Under TensorFlow the estimate said 1m 56s at epoch 3 of a run about 10 s from its end."""
    assert progress_of(store, new_run(store, epochs=4, epoch_seconds=[100, 10])).eta_seconds == pytest.approx(20)
    assert progress_of(store, new_run(store, epochs=4, epoch_seconds=[100])).eta_seconds == pytest.approx(300)


def test_time_left_deducts_the_part_of_the_current_epoch_already_done(store):
    run_id = new_run(store, epochs=10, epoch_seconds=[100, 10, 20, 30])
    store.set_progress(run_id, epoch=5, batch=50, batches=200, loss=0.5)
    assert progress_of(store, run_id).eta_seconds == pytest.approx((6 - 0.25) * 20)


def test_time_left_ignores_a_stale_progress_row(store):
    run_id = new_run(store, epochs=10, epoch_seconds=[100, 10, 20, 30])
    store.set_progress(run_id, epoch=4, batch=150, batches=200, loss=0.5)  # from the stored epoch 4
    assert progress_of(store, run_id).eta_seconds == pytest.approx(6 * 20)


def test_no_estimate_without_epoch_times(store):
    run_id = store.create_run(name="run", hyperparameters={"epochs": 10}, status="running")
    store.add_epoch(run_id, 1, {"loss": 0.5})
    progress = progress_of(store, run_id)
    assert progress.epochs_done == 1 and progress.eta_seconds is None


def test_time_left_is_never_negative(store):
    progress = progress_of(store, new_run(store, epochs=2, epoch_seconds=[10, 10, 10]))
    assert progress.eta_seconds == 0.0


# -- format_duration -------------------------------------------------------------------------------------------------


def test_duration_without_an_estimate_says_estimating():
    assert format_duration(None) == "estimating…"


@pytest.mark.parametrize("seconds, text", [
    (0, "0m 00s"),
    (7, "0m 07s"),
    (247, "4m 07s"),
    (3599, "59m 59s"),
])
def test_durations_under_an_hour_show_minutes_and_two_digit_seconds(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds, text", [
    (3600, "1h 00m"),
    (3900, "1h 05m"),
    (3959, "1h 05m"),  # seconds are dropped, not rounded into the minute
    (90000, "25h 00m"),  # no days
])
def test_durations_of_an_hour_or_more_show_hours_and_two_digit_minutes(seconds, text):
    assert format_duration(seconds) == text


def test_fractions_of_a_second_are_dropped():
    assert format_duration(59.9) == "0m 59s"


def test_a_stored_epochs_loss_is_not_shown_as_the_next_epochs(store):
    run_id = new_run(store, epoch_seconds=[5, 5])
    store.set_progress(run_id, epoch=2, batch=200, batches=200, loss=0.3)  # epoch 3 has not reported yet
    progress = progress_of(store, run_id)
    assert progress.running_loss is None and "loss" not in progress.label


def test_once_every_epoch_is_stored_the_bar_is_full_and_says_the_run_is_finishing(store):
    """It read "epoch 4/3: batch 0/8" until the worker recorded its end."""
    run_id = new_run(store, epochs=3, epoch_seconds=[5, 5, 5])
    progress = progress_of(store, run_id)
    assert progress.label == "all 3 epochs done: finishing…" and progress.epoch_fraction == 1.0


def test_the_first_epoch_has_an_estimate_from_its_batches_after_the_first(store):
    """No ETA until an epoch was stored: a one-epoch run never had one."""
    run_id = new_run(store, epochs=2)
    store.set_progress(run_id, epoch=1, batch=26, batches=100, loss=0.9, first_batch_ended=time.time() - 10)
    # Batches 2-26 (a quarter of the epoch) in 10 s: 30 s left of epoch 1, 40 s of epoch 2.
    assert progress_of(store, run_id).eta_seconds == pytest.approx(70, rel=0.01)


def test_the_first_epochs_estimate_counts_batches_after_the_first_compiled_call(store):
    """With steps_per_execution k, Keras' first batch end is batch k: dividing by batch - 1 halved the estimate
    (a reviewer's, k = 49 of 98)."""
    run_id = store.create_run(name="run", model="mnist14k", status="running",
                              hyperparameters={"epochs": 1, "steps_per_execution": 49})
    store.set_progress(run_id, epoch=1, batch=98, batches=196, loss=0.9, first_batch_ended=time.time() - 10)
    assert progress_of(store, run_id).eta_seconds == pytest.approx(20, rel=0.01)  # 49 batches in 10 s, 98 left


def test_the_first_batch_alone_gives_no_estimate(store):
    """It holds the worker's start-up and tracing: 25 s of JAX compiling made a 2-minute run's estimate 6h 42m."""
    run_id = new_run(store, epochs=30)
    store.set_progress(run_id, epoch=1, batch=1, batches=32, loss=2.5, first_batch_ended=time.time())
    store.update_run(run_id, claimed=time.time() - 25)
    assert progress_of(store, run_id).eta_seconds is None
