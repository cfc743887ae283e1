"""``python -m eipviz``: the same library calls the pages make, from a shell.

Each command imports what it needs inside its handler: ``runs``, ``cancel``,
``scheduler`` and ``import-log`` (unless it stores the run) never load Keras,
so they start in a fraction of a second.
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the CLI

from eipviz.errors import EipvizError, check_names
from eipviz.training.stop import StopFlag


def _print_table(rows: list[dict], out=None) -> None:
    """Print dict rows as an aligned text table (to ``sys.stdout`` as it is when called, so a redirect takes it)."""
    out = out or sys.stdout
    if not rows:
        print("(nothing)", file=out)
        return
    headers = list(rows[0])
    cells = [[("" if row[h] is None else str(row[h])) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)), file=out)


def _print_csv(rows: list[dict], out=None) -> None:
    if rows:
        writer = csv.DictWriter(out or sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def cmd_models(args) -> int:
    from eipviz.tables import zoo_overview

    _print_table(zoo_overview())
    return 0


def cmd_layers(args) -> int:
    from eipviz.tables import layer_table

    rows = layer_table(args.name)
    (_print_csv if args.format == "csv" else _print_table)(rows)
    return 0


def cmd_train(args) -> int:
    from eipviz.recipes import parse_setting
    from eipviz.training.launcher import resume_run, start_training
    from eipviz.training.queue import RunQueue
    from eipviz.training.store import RunStore

    store = RunStore(args.runs_dir)
    if args.run_id:  # a worker started by the scheduler: its output already goes to worker.log
        from eipviz.training.worker import train_run  # only here: submitting needs no Keras

        status = train_run(store, args.run_id, verbose=2, claim=args.claim, stop=args.stop)
        RunQueue(store).wake()  # the next queued run starts even if the scheduler was killed meanwhile
        return {"finished": 0, "cancelled": 130, "not claimed": 0}.get(status, 1)
    if args.resume:
        resume_run(store, args.resume)
        run_id = args.resume
    elif args.model:
        run_id = start_training(store, args.model, recipe=args.recipe, epochs=args.epochs,
                                batch_size=args.batch_size, subset=args.subset, augment=not args.no_augment,
                                settings=dict(parse_setting(text) for text in args.set), **_speed_options(args))
    else:
        raise EipvizError("Name a model (--model NAME) or a run to resume (--resume RUN_ID).")
    position = RunQueue(store).status().position(run_id)
    print(f"run {run_id} in {store.root}: queued" + (f", position {position}" if position else ""), flush=True)
    return 0 if args.detach else _follow(store, run_id)


def _follow(store, run_id: str) -> int:
    """Print a submitted run's worker log until it ends; Ctrl-C cancels it (or stops it after its batch)."""
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
    return {"finished": 0, "cancelled": 130}.get(store.get_run(run_id).status, 1)


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


def _speed_options(args) -> dict:
    """--devices, --mixed-precision and --steps-per-execution as given; the recipe checks their values."""
    from eipviz.recipes import parse_devices

    chosen = {"devices": None if args.devices is None else parse_devices(args.devices),
              "mixed_precision": True if args.mixed_precision else None,
              "steps_per_execution": args.steps_per_execution}
    return {name: value for name, value in chosen.items() if value is not None}


def cmd_runs(args) -> int:
    from eipviz.training.queue import RunQueue
    from eipviz.training.store import RunStore

    store = RunStore(args.runs_dir)
    store.reap_dead_workers()
    queue = RunQueue(store)
    queue.wake()  # runs waiting with no scheduler (it was killed) start again
    status = queue.status()
    rows = []
    for run in store.list_runs():
        rows.append({
            "id": run.id, "kind": run.kind, "model": run.model, "recipe": run.recipe, "status": run.status,
            "queue": status.position(run.id),
            "epochs": f"{store.completed_epochs(run.id)}/{run.hyperparameters.get('epochs', '?')}",
            "best_val_acc": None if run.best_val_accuracy is None else f"{run.best_val_accuracy:.4f}",
            "best_epoch": run.best_epoch, "device": run.device,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 0


def cmd_cancel(args) -> int:
    from eipviz.training.queue import RunQueue
    from eipviz.training.store import RunStore

    store = RunStore(args.runs_dir)
    RunQueue(store).cancel(args.run_id)
    print(f"cancelled {args.run_id}" if store.get_run(args.run_id).status == "cancelled"
          else f"stopping {args.run_id} after its current batch")
    return 0


def cmd_scheduler(args) -> int:
    from eipviz.training.queue import run_scheduler
    from eipviz.training.store import RunStore

    run_scheduler(RunStore(args.runs_dir))
    return 0


def _register_training(sub):
    p = sub.add_parser("train", help="queue a training run and follow its log (Ctrl-C cancels it)")
    p.add_argument("--model", help="zoo model name (see `models`)")
    p.add_argument("--recipe", default="documented", help="documented (the seed's) or fast")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--subset", type=int, help="train on N images (and validate on up to N)")
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

    p = sub.add_parser("scheduler", help="admit queued runs as slots free up (started on demand; exits when idle)")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_scheduler)

    p = sub.add_parser("runs", help="list runs in the run store")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_runs)


def cmd_timeline(args) -> int:
    from eipviz.explain.timeline import TIMELINE_FILE, export_timeline, read_timeline
    from eipviz.training.store import RunStore

    store = RunStore(args.runs_dir)
    run = store.get_run(args.run_id)
    timeline = read_timeline(store.run_dir(run.id) / TIMELINE_FILE)
    if timeline is None or not len(timeline.epochs):
        raise EipvizError(f"Run {run.id} has no explanation timeline: " + (
            "it has not finished an epoch yet, or it was trained before eipviz recorded timelines."
            if run.kind == "trained" else f"it is {run.kind}, and only trained runs have one."))
    paths = export_timeline(timeline, Path(args.out))
    print(json.dumps({"run": run.id, "epochs": timeline.epochs.tolist(), "files": [str(p) for p in paths]},
                     indent=2))
    return 0


def _load_for_cli(model: str, weights: str | None = None, preprocessing: str | None = None):
    """``load_classifier``, with the loader's note (e.g. a small automatic CAM layer) on stderr. ``--weights`` of
    a run's checkpoint (``runs/RUN_ID/best.keras``) is fed as that run trained, unless ``--preprocessing``
    says otherwise."""
    from eipviz.loading import load_classifier

    if weights and not preprocessing:
        preprocessing = _checkpoint_preprocessing(Path(weights))
    classifier = load_classifier(model, weights, preprocessing)
    if classifier.note:
        print(f"note: {classifier.note}", file=sys.stderr)
    return classifier


def _checkpoint_preprocessing(path: Path) -> str | None:
    """The preprocessing of the run whose folder holds ``path``, when it lies in a run store; else None."""
    from eipviz.training.store import STORE_FILE, RunStore

    folder = path.resolve().parent
    if not (folder.parent / STORE_FILE).is_file():
        return None
    try:
        return RunStore(folder.parent).get_run(folder.name).hyperparameters.get("preprocessing")
    except EipvizError:  # a folder beside a store that is no run of it
        return None


def cmd_evaluate(args) -> int:
    from eipviz.evaluation import evaluate, evaluate_test_set

    classifier = _load_for_cli(args.model, args.weights, args.preprocessing)
    result = evaluate(classifier) if args.fresh else evaluate_test_set(classifier)
    print(json.dumps({"model": classifier.name, **result.to_dict()}, indent=2))
    return 0


def cmd_cam(args) -> int:
    from eipviz.explain.overlay import png_bytes
    from eipviz.explain.predict import explain_images
    from eipviz.images import read_image_file

    classifier = _load_for_cli(args.model, preprocessing=args.preprocessing)
    class_index = None if args.class_name is None else classifier.class_index(args.class_name)
    images = [read_image_file(file) for file in args.image]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = []
    explanations = explain_images(classifier, images, args.method, args.layer, class_index,
                                  aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth)
    for file, explanation in zip(args.image, explanations):
        target = out / f"{Path(file).stem}-{args.method}.png"
        target.write_bytes(png_bytes(explanation.overlay))
        report.append({"image": file, "overlay": str(target), "top3": explanation.top(classifier.class_names, 3),
                       "explained_class": classifier.class_names[explanation.class_index]})
    print(json.dumps(report, indent=2))
    return 0


def cmd_report(args) -> int:
    from eipviz.evaluation import dataset_test_split, evaluate_test_set
    from eipviz.explain.timeline import TIMELINE_FILE, read_timeline
    from eipviz.loading import load_run_checkpoint
    from eipviz.report import build_report, report_path, write_report
    from eipviz.training.store import RunStore

    if bool(args.model) == bool(args.run):
        raise EipvizError("Give --model NAME_OR_PATH or --run RUN_ID (one of them).")
    report_path(args.out)  # a folder or an unwritable place is said now, not after the report is computed
    curves, timeline = None, None
    if args.run:
        store = RunStore(args.runs_dir)
        classifier = load_run_checkpoint(store, args.run)
        curves = store.epoch_rows(args.run)
        timeline = read_timeline(store.run_dir(args.run) / TIMELINE_FILE)
    else:
        classifier = _load_for_cli(args.model, args.weights, args.preprocessing)
    images, _ = dataset_test_split(classifier)
    html = build_report(classifier, evaluate_test_set(classifier), images, n=args.n, curves=curves,
                        timeline=timeline, progress=lambda fraction, text: print(
                            f"[{fraction:4.0%}] {text}", file=sys.stderr, flush=True))
    print(write_report(args.out, html))
    return 0


def cmd_methods(args) -> int:
    from eipviz.attribution.methods import METHODS, SLOW_METHODS

    rows = [{"method": name, "slow": name in SLOW_METHODS, "what": (cls.__doc__ or "").strip().splitlines()[0]}
            for name, cls in METHODS.items()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 0


def _positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more (``--n 0`` would otherwise fail deep inside, later)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _names(text: str) -> list[str]:
    """A comma-separated option as a list of names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _method_names(text: str) -> list[str]:
    """``--methods``, each checked against the registry before any model is loaded."""
    from eipviz.attribution.methods import METHODS

    return list(check_names(_names(text), METHODS, "CAM method"))


def cmd_faithfulness(args) -> int:
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.faithfulness import check_metrics, faithfulness

    methods = _method_names(args.methods)
    metrics = check_metrics(_names(args.metrics))
    classifier = _load_for_cli(args.model, args.weights, args.preprocessing)
    images = sample_test_images(classifier, args.n, args.seed)
    rows = faithfulness(classifier, images, methods, layer=args.layer, metrics=metrics, seed=args.seed)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 0


def cmd_sanity(args) -> int:
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.sanity import sanity_check

    methods = _method_names(args.methods)
    classifier = _load_for_cli(args.model, args.weights, args.preprocessing)
    images = sample_test_images(classifier, args.n, args.seed)
    results = sanity_check(classifier, images, methods, layer=args.layer, depths=args.depths, seed=args.seed)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        _print_table([result.row() for result in results])
    return 0


def cmd_ship(args) -> int:
    from eipviz.shipping import ship_predictions, ship_run
    from eipviz.training.store import RunStore

    if args.predictions:
        print(json.dumps({name: ship_predictions(name) for name in args.predictions}, indent=2))
        return 0
    entry = ship_run(RunStore(args.runs_dir), args.run, float16=args.float16)
    print(json.dumps({k: entry[k] for k in ("file", "sha256", "storage", "test_accuracy", "epochs", "device")},
                     indent=2))
    return 0


def cmd_import_log(args) -> int:
    from eipviz.curves_import import read_run_path

    path = Path(args.file)
    if not path.exists():
        raise EipvizError(f"Log file {args.file} not found.")
    parsed = read_run_path(path)
    for warning in parsed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(parsed.to_csv())
    if args.store:
        from eipviz.curves import import_log
        from eipviz.training.store import RunStore

        run_id = import_log(RunStore(args.runs_dir), parsed, args.name or path.stem, source=str(path))
        print(f"stored as run {run_id}", file=sys.stderr)
    return 0


def _register_models(sub):
    from eipviz.preprocessing import PREPROCESSINGS

    p = sub.add_parser("evaluate", help="test accuracy and per-class accuracy as JSON")
    p.add_argument("--model", required=True, help="zoo name (shipped weights) or a .keras/.h5 file")
    p.add_argument("--weights", help="a .keras file for the zoo model instead of the shipped one")
    p.add_argument("--fresh", action="store_true",
                   help="run the test set through the model even when its predictions are stored")
    p.add_argument("--preprocessing", choices=list(PREPROCESSINGS),
                   help="how its inputs were preprocessed "
                        "(default: the shipped or documented one, unit_scale for files)")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("cam", help="write CAM overlay PNGs for images and print top-3 predictions as JSON")
    p.add_argument("--model", required=True, help="zoo name (shipped weights) or a .keras/.h5 file")
    p.add_argument("--image", required=True, nargs="+")
    p.add_argument("--method", default="gradcam", help="attribution method (default gradcam; "
                                                       "`python -m eipviz methods` lists them)")
    p.add_argument("--layer", help="layer name (default: the model's CAM layer)")
    p.add_argument("--aug-smooth", action="store_true", help="average the maps of flipped and shifted views")
    p.add_argument("--eigen-smooth", action="store_true",
                   help="each map is the first principal component of the weighted activations")
    p.add_argument("--class", dest="class_name", help="class name or index to explain (default: top prediction)")
    p.add_argument("--preprocessing", choices=list(PREPROCESSINGS), help="for a model file (default unit_scale)")
    p.add_argument("--out", required=True)
    p.set_defaults(handler=cmd_cam)

    p = sub.add_parser("report", help="a self-contained HTML report of a model (opens offline)")
    p.add_argument("--model", help="zoo name (shipped weights) or a .keras/.h5 file")
    p.add_argument("--run", help="a trained run's best checkpoint instead (adds its curves and timeline)")
    p.add_argument("--runs-dir")
    p.add_argument("--weights")
    p.add_argument("--preprocessing", choices=list(PREPROCESSINGS))
    p.add_argument("--n", type=_positive_int, default=32,
                   help="test images for the faithfulness table (the sanity table takes the first 8 of them)")
    p.add_argument("--out", required=True, help="the .html file to write")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("methods", help="list the attribution methods (--method names), slow ones marked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_methods)

    p = sub.add_parser("faithfulness", help="deletion/insertion AUC, average drop and ROAD per CAM method, "
                                            "each compared with the random baseline")
    p.add_argument("--model", required=True)
    p.add_argument("--weights")
    p.add_argument("--preprocessing", choices=list(PREPROCESSINGS))
    p.add_argument("--methods", default="gradcam,gradcam++,scorecam,layercam",
                   help="comma-separated; the random baseline is always added")
    p.add_argument("--metrics", default="deletion,insertion,drop,road",
                   help="comma-separated, any of deletion, insertion, drop, road")
    p.add_argument("--n", type=_positive_int, default=200, help="test images to sample")
    p.add_argument("--layer")
    p.add_argument("--seed", type=int, default=0, help="draws the images, orders tied pixels, seeds ROAD's noise")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_faithfulness)

    p = sub.add_parser("sanity", help="model-randomisation and random-logit sanity checks per CAM method")
    p.add_argument("--model", required=True)
    p.add_argument("--weights")
    p.add_argument("--preprocessing", choices=list(PREPROCESSINGS))
    p.add_argument("--methods", default="gradcam,random", help="comma-separated")
    p.add_argument("--n", type=_positive_int, default=16, help="test images to sample")
    p.add_argument("--depths", type=_positive_int, default=8, help="randomisation depths, the last with every layer")
    p.add_argument("--layer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print each method's curve over the depths")
    p.set_defaults(handler=cmd_sanity)

    p = sub.add_parser("import-log", help="a Keras log (console, CSVLogger, History JSON), W&B/MLflow history CSV, "
                                          "TensorBoard event file or run folder, as per-epoch CSV")
    p.add_argument("file", help="a log file, an events.out.tfevents.* file or a TensorBoard run folder")
    p.add_argument("--name", help="run name when stored (default: the file name)")
    p.add_argument("--store", action="store_true", help="also save it as an imported run")
    p.add_argument("--runs-dir")
    p.set_defaults(handler=cmd_import_log)

    p = sub.add_parser("ship", help="(maintainers) copy a run's best checkpoint into weights/ and record it")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="the run whose best checkpoint to ship")
    which.add_argument("--predictions", nargs="+", metavar="MODEL",
                       help="only store the test-set predictions of these already shipped models")
    p.add_argument("--runs-dir")
    p.add_argument("--float16", action="store_true",
                   help="store the weights as float16 (half the file; they load as float32)")
    p.set_defaults(handler=cmd_ship)


COMMANDS = {"training": _register_training, "models": _register_models}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eipviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the zoo: params built vs documented, documented accuracy")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("layers", aliases=["summary"], help="per-layer receptive-field table of a zoo model")
    p.add_argument("name")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(handler=cmd_layers)

    for register in COMMANDS.values():
        register(sub)
    return parser


# Commands that never touch Keras start fast and import nothing heavy.
_LIGHT_COMMANDS = ("import-log", "runs", "cancel", "scheduler")


def needs_keras(args) -> bool:
    """Whether a parsed command imports Keras first: ``train`` only as a worker (``--run-id``); submitting
    or resuming a run only queues it (4-5 s of CPU less)."""
    if args.command == "train":
        return bool(args.run_id)
    return args.command not in _LIGHT_COMMANDS


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.handler is cmd_train and args.run_id:
        # A worker: it catches a Stop before importing Keras (seconds), so a Stop pressed as it starts still
        # cancels the run; Python's default SIGTERM handler would kill it, and the run would be reaped as failed.
        args.stop = StopFlag().install()
    try:
        if needs_keras(args):
            from eipviz.quiet import import_keras_quietly

            import_keras_quietly()
        return args.handler(args)
    except EipvizError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file that cannot be read or written: the system's words, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
