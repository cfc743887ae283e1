"""Commands that evaluate and explain a model: ``evaluate``, ``cam``, ``report``, ``methods``, ``faithfulness``
and ``sanity``."""

import json
import sys
from pathlib import Path

from eipviz.cli.options import load_for_cli, method_names, names, positive_int, print_table
from eipviz.errors import EipvizError


def cmd_evaluate(args) -> int:
    from eipviz.evaluation import evaluate, evaluate_test_set

    classifier = load_for_cli(args.model, args.weights, args.preprocessing)
    result = evaluate(classifier) if args.fresh else evaluate_test_set(classifier)
    print(json.dumps({"model": classifier.name, **result.to_dict()}, indent=2))
    return 0


def cmd_cam(args) -> int:
    from eipviz.explain.overlay import png_bytes
    from eipviz.explain.predict import explain_images
    from eipviz.images import read_image_file

    classifier = load_for_cli(args.model, preprocessing=args.preprocessing)
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
        classifier = load_for_cli(args.model, args.weights, args.preprocessing)
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
        print_table(rows)
    return 0


def cmd_faithfulness(args) -> int:
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.faithfulness import check_metrics, faithfulness

    methods = method_names(args.methods)
    metrics = check_metrics(names(args.metrics))
    classifier = load_for_cli(args.model, args.weights, args.preprocessing)
    images = sample_test_images(classifier, args.n, args.seed)
    rows = faithfulness(classifier, images, methods, layer=args.layer, metrics=metrics, seed=args.seed)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


def cmd_sanity(args) -> int:
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.sanity import sanity_check

    methods = method_names(args.methods)
    classifier = load_for_cli(args.model, args.weights, args.preprocessing)
    images = sample_test_images(classifier, args.n, args.seed)
    results = sanity_check(classifier, images, methods, layer=args.layer, depths=args.depths, seed=args.seed)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        print_table([result.row() for result in results])
    return 0


def register(sub) -> None:
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
    p.add_argument("--n", type=positive_int, default=32,
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
    p.add_argument("--n", type=positive_int, default=200, help="test images to sample")
    p.add_argument("--layer")
    p.add_argument("--seed", type=int, default=0, help="draws the images, orders tied pixels, seeds ROAD's noise")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_faithfulness)

    p = sub.add_parser("sanity", help="model-randomisation and random-logit sanity checks per CAM method")
    p.add_argument("--model", required=True)
    p.add_argument("--weights")
    p.add_argument("--preprocessing", choices=list(PREPROCESSINGS))
    p.add_argument("--methods", default="gradcam,random", help="comma-separated")
    p.add_argument("--n", type=positive_int, default=16, help="test images to sample")
    p.add_argument("--depths", type=positive_int, default=8, help="randomisation depths, the last with every layer")
    p.add_argument("--layer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print each method's curve over the depths")
    p.set_defaults(handler=cmd_sanity)
