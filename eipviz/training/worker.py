"""The training worker: one OS process per run, recording everything in the run store."""

import csv
import importlib.util
import io
import os
import shutil
import time
import traceback

import keras
import numpy as np

from eipviz.atomic import write_text_atomically
from eipviz.classifier import Classifier
from eipviz.data import CLASS_NAMES, load_dataset
from eipviz.errors import EipvizError
from eipviz.recipes import Recipe, check_batch_split
from eipviz.training.batches import ImageBatches
from eipviz.training.builders import (
    EpochTensorBoard,
    PreciseBatchNorm,
    StopWhenLossDiverges,
    augmentation_layers,
    best_checkpoint,
    compile_model,
    schedule_callbacks,
)
from eipviz.training.devices import global_dtype_policy, replica_count, training_precision, training_scope
from eipviz.training.pipeline import (
    TrainingModel,
    build_before_fit,
    compute_output_in_float32,
    layer_dtype_policy,
    one_hot,
    partial_path,
    save_atomically,
    saved_model,
    with_channel_axis,
)
from eipviz.training.stop import StopFlag
from eipviz.training.store import SEEDS, Run, RunStore
from eipviz.training.timeline import ExplanationTimeline
from eipviz.zoo import build_model, get_spec

PROGRESS_INTERVAL_S = 0.5
TENSORBOARD_DIR = "tensorboard"  # in the run's folder
VALIDATION_BATCH = 256  # at most, on one device (validation_batch_size)


class TrainingCancelled(Exception):
    """Raised from a batch end once a stop was requested (SIGTERM or Ctrl-C)."""


class RunRecorder(keras.callbacks.Callback):
    """Stores each completed epoch, throttled in-epoch progress and ``last.keras``; ``record_best`` stores the
    epoch ``best.keras`` holds (the checkpoint calls it when it saves).

    Async-safe: Keras may run its batch hook on a callback thread. Otherwise, under JAX, Keras turns
    every step's logs into Python floats before the next step starts, so the host waits for the
    device each step (about 20% GPU utilisation on an H200, README). The hook only reads the stop flag
    (a cancel raised there reaches ``fit`` a step or two later) and writes progress through its own
    database connection.
    """

    async_safe = True

    def __init__(self, store: RunStore, run_id: str, steps_per_epoch: int, stop: StopFlag, wall_time_before: float):
        super().__init__()
        self.store, self.run_id = store, run_id
        self.steps = steps_per_epoch
        self.stop = stop
        self.wall_before = wall_time_before
        self.last_path = store.run_dir(run_id) / "last.keras"

    def on_train_begin(self, logs=None):
        self.train_start = time.time()
        self.last_progress = 0.0
        self.first_batch_ended: float | None = None  # the time to the first batch's end is start-up and tracing

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = time.time()
        # Read after the schedule callbacks have set this epoch's rate.
        self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.requested:
            raise TrainingCancelled()
        now = time.time()
        self.first_batch_ended = self.first_batch_ended or now
        if now - self.last_progress >= PROGRESS_INTERVAL_S or batch + 1 == self.steps:
            self.last_progress = now
            loss = (logs or {}).get("loss")
            self.store.set_progress(self.run_id, self.epoch + 1, batch + 1, self.steps,
                                    None if loss is None else float(loss), self.first_batch_ended)

    def on_epoch_end(self, epoch, logs=None):
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        metrics["learning_rate"] = self.learning_rate
        metrics["epoch_seconds"] = time.time() - self.epoch_start
        metrics["wall_time"] = self.wall_before + time.time() - self.train_start
        save_atomically(saved_model(self.model), self.last_path)  # before the epoch counts as done
        self.store.add_epoch(self.run_id, epoch + 1, metrics)

    def record_best(self, epoch, logs):
        """Store ``epoch`` as the run's best, with its validation accuracy, whichever monitor chose it."""
        val_accuracy = logs.get("val_accuracy")
        self.store.update_run(self.run_id, best_epoch=epoch + 1,
                              best_val_accuracy=None if val_accuracy is None else float(val_accuracy))


def best_file_epochs(completed: list[dict], best_epoch: int | None, best_path) -> list[dict]:
    """The stored epoch ``best.keras`` holds, as the bar a resumed run's epochs must beat: a worker killed between
    storing an improving epoch and saving it left the best file an epoch behind, and measured against every
    stored epoch no later one could replace it (a helper's kill test, 8 of 8 runs, 2026-11-28)."""
    if not best_path.exists():
        return []
    return [row for row in completed if row["epoch"] == best_epoch]


def resume_metrics_csv(path, completed: list[dict]) -> None:
    """Make ``metrics.csv`` (CSVLogger's, epochs from 0) hold exactly the ``completed`` epochs of the store before
    a run (re)starts: a worker killed between the store's write and CSVLogger's left it an epoch short, and a
    run restarted without ``last.keras`` would append its epochs after the old ones. Missing rows are filled
    from the store, which records every metric CSVLogger does; its header is kept."""
    if not path.exists():
        return
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        header, rows = reader.fieldnames, list(reader)
    if not header or "epoch" not in header:
        return
    by_epoch = {row["epoch"]: row for row in rows}
    kept = [by_epoch.get(str(stored["epoch"] - 1))
            or {name: stored.get(name, "NA") for name in header} | {"epoch": stored["epoch"] - 1}
            for stored in completed]
    if kept == rows:
        return
    with io.StringIO() as text:
        writer = csv.DictWriter(text, fieldnames=header)
        writer.writeheader()
        writer.writerows(kept)
        write_text_atomically(path, text.getvalue())


def recipe_of(run: Run) -> Recipe:
    """The recipe a run was created with, as stored (not as the code defines it today)."""
    return Recipe.from_hyperparameters(run.hyperparameters)


def _arrays(dataset_name: str, subset: int | None, seed: int, replicas: int = 1):
    """Training and validation images and labels: ``subset`` random training images and as many test images,
    each split trimmed to a multiple of ``replicas`` (``split_evenly``; the log says what was left out)."""
    ds = load_dataset(dataset_name)
    x_train, y_train, x_val, y_val = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if subset:
        picked = np.random.default_rng(seed).permutation(len(x_train))[:subset]
        x_train, y_train = x_train[picked], y_train[picked]
        x_val, y_val = x_val[:min(subset, len(x_val))], y_val[:min(subset, len(y_val))]
    if min(len(x_train), len(x_val)) < replicas:
        raise EipvizError(f"{min(len(x_train), len(x_val))} images cannot be split across {replicas} devices; "
                          f"train on at least {replicas} (--subset).")
    x_train_kept, y_train = split_evenly(x_train, y_train, replicas)
    x_val_kept, y_val = split_evenly(x_val, y_val, replicas)
    if len(x_train_kept) < len(x_train) or len(x_val_kept) < len(x_val):
        print(f"Left out {len(x_train) - len(x_train_kept)} of {len(x_train)} training and "
              f"{len(x_val) - len(x_val_kept)} of {len(x_val)} validation images, so that every batch splits "
              f"evenly across {replicas} devices.", flush=True)
    return x_train_kept, y_train, x_val_kept, y_val


def stream_seed(seed: int, resumed_at: int | None) -> int:
    """The seed of a run's random streams (shuffling, augmentation, initialisation): ``seed`` for a fresh run; a
    run resumed (from ``last.keras``) at epoch k draws new streams, never those of a fresh run with another seed
    (``seed + k`` did: seed 0 resumed at epoch 1 repeated seed 1's shuffles and augmentations), nor its own again
    (resumed inside its first epoch, k = 0, it replayed the batches it had trained on, in the same order)."""
    if resumed_at is None:
        return seed
    # Above the seeds people pick, and x 100 (the augmentation layers' seeds) still within 32 bits.
    return SEEDS + int(np.random.SeedSequence([seed, resumed_at]).generate_state(1)[0] % SEEDS)


def split_evenly(images: np.ndarray, labels: np.ndarray, replicas: int) -> tuple[np.ndarray, np.ndarray]:
    """The first images and labels, as many as the largest multiple of ``replicas``: at most ``replicas - 1``
    left out, so that every batch, the last one included, splits evenly across the devices (JAX refuses a batch
    it cannot split; TensorFlow's evaluation failed on one)."""
    kept = len(images) // replicas * replicas
    return images[:kept], labels[:kept]


def validation_batch_size(count: int, replicas: int) -> int:
    """The batch size to validate ``count`` images with: a multiple of ``replicas`` (so each batch splits evenly)
    of at most ``VALIDATION_BATCH``, the largest above half of it that divides ``count`` when there is one, so
    that every batch has one size: under JAX another size compiles the test step again (250 for 10,000 images).
    """
    largest = max(1, VALIDATION_BATCH // replicas) * replicas
    return next((size for size in range(largest, largest // 2, -replicas) if count % size == 0), largest)


def train_run(store: RunStore, run_id: str, verbose: int = 2, claim: str | None = None,
              stop: StopFlag | None = None) -> str:
    """Train (or resume) a stored run to the end; return its final status.

    With a ``claim`` (a worker the scheduler started) it trains only if the run still holds that
    claim, and returns ``"not claimed"`` otherwise: the run was cancelled, or admitted again after
    its scheduler died, and is another worker's. ``stop``: the flag the worker's command installed
    before importing Keras, installed again here (its handlers are this process's from now on); a new
    one when none is given.
    """
    stop = (stop or StopFlag()).install()
    if claim and not store.start_claimed(run_id, claim, os.getpid()):
        print(f"eipviz worker pid {os.getpid()}: run {run_id} no longer holds claim {claim}; not training it.",
              flush=True)
        return "not claimed"
    run = store.get_run(run_id)
    hp = run.hyperparameters
    seed = int(hp.get("seed", 0))
    run_dir = store.run_dir(run_id)
    last_path = run_dir / "last.keras"
    resumed = last_path.exists()  # saved at each epoch's end and at a Stop, so also a Stop inside epoch 1
    initial_epoch = store.completed_epochs(run_id) if resumed else 0
    store.drop_epochs_after(run_id, initial_epoch)  # a restart without last.keras trains them again
    if not resumed:  # the best of the epochs just dropped, and their TensorBoard events
        (run_dir / "best.keras").unlink(missing_ok=True)
        shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)
    for path in (run_dir / "best.keras", last_path):  # what a worker killed mid-save left
        partial_path(path).unlink(missing_ok=True)
    completed = store.epoch_rows(run_id)
    in_best_file = best_file_epochs(completed, store.get_run(run_id).best_epoch, run_dir / "best.keras")
    wall_before = completed[-1].get("wall_time", 0.0) if completed else 0.0

    resume_metrics_csv(run_dir / "metrics.csv", completed)
    store.update_run(run_id, status="running", pid=os.getpid(), backend=keras.backend.backend(),
                     started=run.started or time.time(), ended=None, error=None)
    store.clear_progress(run_id)  # a resumed run's row is where its last worker stopped
    precise_bn: list[PreciseBatchNorm] = []
    try:
        if run.model is None:
            raise EipvizError(f"Run {run_id} is {run.kind_phrase} with no model; only trained runs train.")
        recipe = recipe_of(run)  # inside the try: a stored recipe we cannot use fails the run, saying why
        # First: TensorFlow can only split a CPU into several devices before it runs anything.
        scope, device = training_scope(recipe.devices)
        print(f"eipviz worker pid {os.getpid()}: run {run_id}, {run.model}/{run.recipe}, "
              f"backend {keras.backend.backend()}, devices: {device}", flush=True)
        store.update_run(run_id, backend=keras.backend.backend(), device=device)
        spec = get_spec(run.model)
        streams = stream_seed(seed, initial_epoch if resumed else None)
        keras.utils.set_random_seed(streams)
        precision = training_precision(recipe.mixed_precision)
        # Augmentation seeds move on with the epoch a run resumes at, like the global seed above.
        augmentation = augmentation_layers(recipe, seed=streams * 100)
        with scope, global_dtype_policy(precision):  # the policy for the zoo model built (or loaded) below
            replicas = replica_count()
            check_batch_split(recipe.batch_size, replicas, where=f"Run {run_id} ({device}): ")  # "all" known now
            x_train, y_train, x_val, y_val = _arrays(spec.dataset, hp.get("subset"), seed, replicas)
            x_train, x_val = with_channel_axis(x_train), with_channel_axis(x_val)
            y_train, y_val = one_hot(y_train), one_hot(y_val)  # every zoo dataset has 10 classes
            batches = ImageBatches(x_train, y_train, recipe.batch_size, seed=streams)
            steps_per_epoch = len(batches)
            if resumed:
                print(f"Resuming from {last_path} at epoch {initial_epoch + 1}.", flush=True)
                classifier = keras.models.load_model(last_path)  # its layers keep the policy they were saved with
                compute_output_in_float32(classifier)
                model = TrainingModel(classifier, augmentation, recipe.preprocessing)
                compile_model(model, recipe, steps_per_epoch, optimizer=classifier.optimizer)
                # A Stop mid-epoch saved the optimizer's count part-way into the epoch it now trains again from
                # its start: a per-step schedule goes on from that epoch's first step, not ahead of it.
                model.optimizer.iterations.assign(initial_epoch * steps_per_epoch)
            else:
                classifier = build_model(run.model)
                compute_output_in_float32(classifier)
                model = TrainingModel(classifier, augmentation, recipe.preprocessing)
                compile_model(model, recipe, steps_per_epoch)
            build_before_fit(model, x_train, y_train)
        if stop.requested:  # stopped while it started: no first step to trace
            raise TrainingCancelled()
        recorder = RunRecorder(store, run_id, steps_per_epoch, stop, wall_before)
        timeline = ExplanationTimeline(Classifier(model.classifier, run_id, recipe.preprocessing,
                                                  CLASS_NAMES[spec.dataset], spec.dataset, spec.cam_layer,
                                                  source=str(last_path)),
                                       run_dir, initial_epoch)
        # Short runs only: recorded with the run, so its hyperparameters say how it was validated.
        bn_batches = recipe.precise_bn_batches(steps_per_epoch)
        # What the model computes in: a resumed one keeps the policy last.keras was saved with.
        store.update_run(run_id, hyperparameters={**hp, "precise_bn_batches": bn_batches,
                                                  "dtype_policy": layer_dtype_policy(classifier)})
        precise_bn = [PreciseBatchNorm(batches, bn_batches)] if bn_batches else []
        callbacks = [
            StopWhenLossDiverges(recipe.learning_rate),  # first: a diverged epoch's end reaches none that keeps it
            *schedule_callbacks(recipe, completed),
            *precise_bn,  # before validation, so the checkpoints below keep the statistics it validated
            timeline,  # before the recorder: it adds the probe set's metrics to the epoch's logs
            recorder,
            # Resumed runs must beat the epoch best.keras holds, by the recipe's monitor and direction.
            best_checkpoint(recipe, run_dir / "best.keras", in_best_file, on_save=recorder.record_best),
            keras.callbacks.CSVLogger(str(run_dir / "metrics.csv"), append=True),
        ]
        if importlib.util.find_spec("tensorboard") and importlib.util.find_spec("tensorflow"):
            callbacks.append(EpochTensorBoard(str(run_dir / TENSORBOARD_DIR)))
        # uint8 batches: augmentation and preprocessing run in the step.
        model.fit(batches, shuffle=False, validation_data=(x_val, y_val),  # ImageBatches draws its own order
                  validation_batch_size=validation_batch_size(len(x_val), replicas),
                  epochs=recipe.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose)
    except TrainingCancelled:
        for callback in precise_bn:  # the stopped model is evaluated and resumed as it would be at an epoch end
            callback.reestimate()
        save_atomically(saved_model(model), last_path)
        store.update_run(run_id, status="cancelled", ended=time.time())
        print("Stopped on request; saved last.keras.", flush=True)
        return "cancelled"
    except EipvizError as error:  # the user can fix it (unknown recipe value, missing data): keep the message
        store.update_run(run_id, status="failed", ended=time.time(), error=str(error))
        print(f"eipviz: {error}", flush=True)
        return "failed"
    except BaseException as error:
        # The exception first (``Run.reason``: a chained error's slice began with its cause), then the traceback.
        headline = f"{type(error).__name__}: {error}".splitlines()[0][:1000]
        tail = "".join(traceback.format_exception(error)[-6:])
        store.update_run(run_id, status="failed", ended=time.time(), error=f"{headline}\n{tail[-3000:]}")
        traceback.print_exc()
        return "failed"
    store.update_run(run_id, status="finished", ended=time.time())
    print(f"Finished run {run_id}.", flush=True)
    return "finished"
