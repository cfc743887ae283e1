"""Commands over training runs and the curves people bring: ``train``, ``runs``, ``cancel``, ``rename``,
``delete``, ``scheduler``, ``timeline`` and ``import-log``. Only ``train --run-id`` (a worker) and ``timeline``
load Keras."""

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from eipviz.cli.options import existing_store, folder_out, positive_int, print_table, stored_run_id
from eipviz.errors import EipvizError, no_file_error


def cmd_train(args) -> int:
    from eipviz.recipes import parse_setting
    from eipviz.training.launcher import resume_run, start_training
    from eipviz.training.queue import RunQueue
    from eipviz.training.store import RunStore

    store = existing_store(args.runs_dir) if args.resume else RunStore(args.runs_dir)  # a new run may make one
    if args.run_id:  # a worker started by the scheduler: its output already goes to worker.log
        from eipviz.training.worker import train_run  # only here: submitting needs no Keras

        status = train_run(store, args.run_id, verbose=2, claim=args.claim, stop=args.stop)
        RunQueue(store).wake()  # the next queued run starts even if the scheduler was killed meanwhile
        return {"finished": 0, "cancelled": 130, "not claimed": 0}.get(status, 1)
    if args.resume:
        ignored = _run_options_given(args)
        if ignored:  # a resumed run trains as it was created
            raise EipvizError(f"--resume continues a run with its own model and recipe; {', '.join(ignored)} "
                              f"cannot change them. Start a new run with --model instead.")
        resume_run(store, stored_run_id(args.resume, "resumed"))
        run_id = args.resume
    elif args.model:
        run_id = start_training(store, args.model, recipe=args.recipe or "documented", epochs=args.epochs,
                                batch_size=args.batch_size, subset=args.subset, augment=not args.no_augment,
                                settings=dict(parse_setting(text) for text in args.set), **_speed_options(args))
    else:
        raise EipvizError("Name a model (--model NAME) or a run to resume (--resume RUN_ID).")
    position = RunQueue(store).status().position(run_id)
    print(f"run {run_id} in {store.root}: queued" + (f", position {position}" if position else ""), flush=True)
    return 0 if args.detach else _follow(store, run_id)


def _follow(store, run_id: str) -> int:
    """Print a submitted run's worker log until it ends; Ctrl-C or SIGTERM cancels it (or stops it after its
    batch): a followed `train` ended by SIGTERM (`timeout`, a job scheduler) left its run training unwatched."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: a KeyboardInterrupt below
    try:
        return _follow_until_ended(store, run_id)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _follow_until_ended(store, run_id: str) -> int:
    from eipviz.training.queue import RunQueue

    log = store.run_dir(run_id) / "worker.log"
    offset = log.stat().st_size if log.exists() else 0
    cancelled = False
    while True:
        try:
            store.reap_dead_workers()
            run = store.get_run(run_id)
            if run.status == "queued":
                RunQueue(store).wake()  # the scheduler was killed (or exited) while this run waited
            offset = _print_from(log, offset)
            if not run.active:
                break
            time.sleep(0.5)
        except KeyboardInterrupt:
            if not cancelled:
                cancelled = True
                print("cancelling…", file=sys.stderr, flush=True)
                try:
                    RunQueue(store).cancel(run_id)
                except EipvizError as error:  # it ended meanwhile
                    print(f"error: {error}", file=sys.stderr)
    run = store.get_run(run_id)
    if run.status == "failed":  # a worker killed, or a run the scheduler refused, wrote no log saying so
        print(f"error: run {run_id} failed: {run.reason}", file=sys.stderr)
    return {"finished": 0, "cancelled": 130}.get(run.status, 1)


def _print_from(path: Path, offset: int) -> int:
    """Print what a file gained after ``offset``; return its new end."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            added = f.read()
    except OSError:
        return offset
    sys.stdout.write(added.decode("utf-8", "replace"))
    sys.stdout.flush()
    return offset + len(added)


def _run_options_given(args) -> list[str]:
    """The options of a new run given on the command line (``--model``, ``--epochs`` …), as typed: ``--recipe
    documented`` too, though it is the default (a resumed run keeps the recipe it was created with)."""
    given = {"--model": args.model, "--recipe": args.recipe is not None, "--epochs": args.epochs,
             "--batch-size": args.batch_size, "--subset": args.subset, "--no-augment": args.no_augment,
             "--devices": args.devices, "--mixed-precision": args.mixed_precision,
             "--steps-per-execution": args.steps_per_execution, "--set": args.set}
    return [option for option, value in given.items() if value]


def _speed_options(args) -> dict:
    """--devices, --mixed-precision and --steps-per-execution as given; the recipe checks their values."""
    from eipviz.recipes import parse_devices

    chosen = {"devices": None if args.devices is None else parse_devices(args.devices),
              "mixed_precision": True if args.mixed_precision else None,
              "steps_per_execution": args.steps_per_execution}
    return {name: value for name, value in chosen.items() if value is not None}


def cmd_runs(args) -> int:
    from eipviz.training.queue import RunQueue

    store = existing_store(args.runs_dir)
    store.reap_dead_workers()
    queue = RunQueue(store)
    queue.wake()  # runs waiting with no scheduler (it was killed) start again
    status = queue.status()
    runs = store.list_runs()
    rows = []
    for run in runs:
        rows.append({
            "id": run.id, "name": run.name, "kind": run.kind, "model": run.model, "recipe": run.recipe,
            "status": run.status, "queue": status.position(run.id),
            "epochs": f"{store.completed_epochs(run.id)}/{run.hyperparameters.get('epochs', '?')}",
            "best_val_acc": None if run.best_val_accuracy is None else f"{run.best_val_accuracy:.4f}",
            "best_epoch": run.best_epoch, "device": run.device,
        })
    if args.json:
        print(json.dumps([{**row, "hyperparameters": run.hyperparameters} for run, row in zip(runs, rows)], indent=2))
    else:
        print_table(rows)
    return 0


def cmd_cancel(args) -> int:
    from eipviz.training.queue import RunQueue
    from eipviz.training.store import EXIT_WAIT_S

    store = existing_store(args.runs_dir)
    RunQueue(store).cancel(stored_run_id(args.run_id, "cancelled"))
    deadline = time.monotonic() + EXIT_WAIT_S
    if store.get_run(args.run_id).active:  # a training run: wait for its batch, so --resume may follow at once
        print(f"stopping {args.run_id} after its current batch…", flush=True)
    while store.get_run(args.run_id).active and time.monotonic() < deadline:
        time.sleep(0.2)
        store.reap_dead_workers()
    run = store.get_run(args.run_id)
    print(f"{run.status} {args.run_id}" if not run.active else f"{args.run_id} is still stopping after "
          f"{EXIT_WAIT_S:.0f} s; `runs` shows when it has.")
    return 0


def cmd_rename(args) -> int:

    name = existing_store(args.runs_dir).rename_run(stored_run_id(args.run_id, "renamed"), args.name)
    if args.name.strip() and name != args.name.strip():
        print(f"note: another run is named {args.name.strip()!r}, so this one is {name!r}", file=sys.stderr)
    print(name)
    return 0


def cmd_delete(args) -> int:

    store = existing_store(args.runs_dir)
    store.reap_dead_workers()  # a run whose worker died is no longer "running", and may go
    store.delete_run(stored_run_id(args.run_id, "deleted"))
    print(f"deleted {args.run_id}")
    return 0


def cmd_scheduler(args) -> int:
    from eipviz.training.queue import run_scheduler
    from eipviz.training.store import RunStore

    run_scheduler(RunStore(args.runs_dir))
    return 0


def cmd_timeline(args) -> int:
    from eipviz.explain.timeline import TIMELINE_FILE, export_timeline, read_timeline

    out = folder_out(args.out, "the epoch PNGs and the GIF")
    store = existing_store(args.runs_dir)
    run = store.get_run(stored_run_id(args.run_id, "shown as a timeline"))
    timeline = read_timeline(store.run_dir(run.id) / TIMELINE_FILE)
    if timeline is None or not len(timeline.epochs):
        raise EipvizError(f"Run {run.id} has no explanation timeline: " + (
            "it has not finished an epoch yet, or it was trained before eipviz recorded timelines."
            if run.kind == "trained" else f"it is {run.kind}, and only trained runs have one."))
    paths = export_timeline(timeline, out)
    # What the page charts beside the maps: the probe set's accuracy and faithfulness at each epoch.
    by_epoch = [{"epoch": int(epoch), "probe_accuracy": float(accuracy), "deletion_auc": float(deletion),
                 "average_drop_pct": float(drop)}
                for epoch, accuracy, deletion, drop in zip(timeline.epochs, timeline.accuracy(), timeline.deletion_auc,
                                                           timeline.average_drop_pct)]
    print(json.dumps({"run": run.id, "epochs": timeline.epochs.tolist(), "by_epoch": by_epoch,
                      "files": [str(p) for p in paths]}, indent=2))
    return 0


def cmd_import_log(args) -> int:
    from eipviz.curves_import import read_run_path
    from eipviz.quiet import native_stderr_silenced

    path = Path(args.file)
    if not path.exists():  # before the write check below; anything else is read_run_path's to refuse
        raise no_file_error(path, "Log file")
    if args.store:  # before any output: a viewer got the whole CSV, then the refusal
        from eipviz.access import require_write

        require_write("Importing a log into the run store")
    if args.name is not None:  # a name no table can show is refused before the CSV is printed
        from eipviz.training.store import check_name

        check_name(args.name)
    with native_stderr_silenced():  # TensorBoard's reader imports TensorFlow, whose C++ start-up lines go to fd 2
        parsed = read_run_path(path)
    for warning in parsed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(parsed.to_csv())
    if args.store:
        from eipviz.curves import import_log
        from eipviz.training.store import RunStore, name_from

        run_id = import_log(RunStore(args.runs_dir), parsed, args.name or name_from(path.stem), source=str(path))
        print(f"stored as run {run_id}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="queue a training run and follow its log (Ctrl-C cancels it)")
    p.add_argument("--model", help="zoo model name (see `models`)")
    p.add_argument("--recipe", help="documented (the seed's, the default) or fast")
    p.add_argument("--epochs", type=positive_int, help="instead of the recipe's")
    p.add_argument("--batch-size", type=positive_int, help="instead of the recipe's")
    p.add_argument("--subset", type=int,
                   help="train on N images, in full batches drawn anew each epoch (and validate on up to N)")
    p.add_argument("--no-augment", action="store_true", help="switch the recipe's augmentation off")
    p.add_argument("--devices", metavar="N|all",
                   help="train one run on N devices or all (GPUs, else host devices), data-parallel")
    p.add_argument("--mixed-precision", action="store_true",
                   help="bfloat16 compute on a GPU that has it (float32 elsewhere)")
    p.add_argument("--steps-per-execution", type=int, metavar="N", help="training steps per compiled call")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one recipe field, e.g. learning_rate=0.4 (repeatable; a wrong name's error lists them)")
    p.add_argument("--runs-dir", help="run store folder (default runs/ or $EIPVIZ_RUNS_DIR)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a cancelled or failed run")
    p.add_argument("--detach", action="store_true", help="queue the run and return at once")
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the worker of a run: train it in this process
    p.add_argument("--claim", help=argparse.SUPPRESS)  # the scheduler's admission token for that run
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("timeline", help="a run's probe images with their Grad-CAMs at every epoch, as PNGs and a GIF")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--out", required=True, help="folder for epoch-NNN.png and timeline.gif")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_timeline)

    p = sub.add_parser("cancel", help="cancel a queued run (a training one stops after its batch)")
    p.add_argument("run_id")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser("rename", help="rename a run (a name another run has gets a counter); prints the name given")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("name", metavar="NEW_NAME")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_rename)

    p = sub.add_parser("delete", help="delete a run that is not queued or training, with its folder")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_delete)

    p = sub.add_parser("scheduler", help="admit queued runs as slots free up (started on demand; exits when idle)")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_scheduler)

    p = sub.add_parser("runs", help="list runs in the run store")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("import-log", help="a Keras log (console, CSVLogger, History JSON), W&B/MLflow history CSV, "
                                          "TensorBoard event file or run folder, as per-epoch CSV")
    p.add_argument("file", help="a log file, an events.out.tfevents.* file or a TensorBoard run folder")
    p.add_argument("--name", help="run name when stored (default: the file name)")
    p.add_argument("--store", action="store_true", help="also save it as an imported run")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_import_log)
