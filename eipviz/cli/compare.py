"""The Compare page's commands: ``compare-methods`` (methods x layers on one image, with their deletion and
insertion AUC) and ``compare-models`` (2 to 5 models on one test set: accuracy, shared errors, disputes)."""

import csv
import json
from pathlib import Path

from eipviz.cli.options import (
    add_model_options,
    existing_store,
    folder_out,
    load_model,
    method_name,
    method_names,
    names,
    png_out,
    positive_int,
    print_table,
    read_image_for,
    write_out,
)
from eipviz.errors import EipvizError, check_names


def cmd_compare_methods(args) -> int:
    from eipviz.evaluation import dataset_test_split
    from eipviz.explain.compare import GRID_METHODS, default_grid_layers, method_grid, method_grid_sheet
    from eipviz.explain.overlay import png_bytes

    methods = method_names(args.methods) if args.methods else list(GRID_METHODS)
    out = png_out(args.out)
    classifier = load_model(args)
    layers = list(check_names(names(args.layers, "--layers"), classifier.cam_layers, "layer")) if args.layers else (
        default_grid_layers(classifier))
    if args.image:
        image, image_name = read_image_for(classifier, args.image).pixels, Path(args.image).name
    else:
        images, labels = dataset_test_split(classifier)
        if not 0 <= args.test_index < len(images):
            raise EipvizError(f"--test-index runs from 0 to {len(images) - 1}. Received: {args.test_index}.")
        image = images[args.test_index]
        image_name = f"test #{args.test_index}, true {classifier.class_names[labels[args.test_index]]}"
    class_index = None if args.class_name is None else classifier.class_index(args.class_name)
    target, scores = method_grid(classifier, image, methods, layers, class_index)
    write_out(out, png_bytes(method_grid_sheet(classifier, image, target, scores, image_name)))
    rows = [{"method": score.method, "layer": score.layer, "deletion_auc": round(score.deletion_auc, 4),
             "insertion_auc": round(score.insertion_auc, 4)} for score in scores]
    if args.json:
        print(json.dumps({"model": classifier.name, "image": image_name,
                          "explained_class": classifier.class_names[target], "scores": rows, "out": str(out)},
                         indent=2))
    else:
        print(f"{image_name}: explaining {classifier.class_names[target]} (deletion AUC: lower is better; "
              f"insertion AUC: higher is better; random is the chance baseline)")
        print_table(rows)
    return 0


def cmd_compare_models(args) -> int:
    from eipviz.evaluation import dataset_test_split, evaluate_test_set
    from eipviz.explain.compare import SHEET_TILE, compare_models, disagreement_rows, disagreement_sheet
    from eipviz.explain.overlay import png_bytes

    method_name(args.method)
    wanted = names(args.models, "--models")
    if not 2 <= len(wanted) <= 5:
        raise EipvizError(f"Compare 2 to 5 models. Received: {len(wanted)} ({', '.join(wanted)}).")
    out = folder_out(args.out, "the sheet and CSV") if args.out is not None else None
    loaded = [_shipped_or_run(args.runs_dir, name) for name in wanted]
    classifiers = [classifier for _, classifier in loaded]
    evaluations = [evaluate_test_set(classifier) for classifier in classifiers]
    comparison = compare_models([name for name, _ in loaded], evaluations)
    shown = comparison.disagreements[:args.disputed]
    images, labels = dataset_test_split(classifiers[0])
    rows = disagreement_rows(classifiers, evaluations, images, shown, args.method, size=SHEET_TILE)
    class_names = classifiers[0].class_names
    pairs = [(i, j) for i in range(len(loaded)) for j in range(i + 1, len(loaded))]
    report = {
        "models": [{"name": name, "accuracy": round(accuracy, 6), "wrong": int(comparison.both_wrong[i, i])}
                   for i, (name, accuracy) in enumerate(zip(comparison.names, comparison.accuracies))],
        "both_wrong": [{"models": [comparison.names[i], comparison.names[j]], "count": int(comparison.both_wrong[i, j])}
                       for i, j in pairs],
        "disagreements": int(len(comparison.disagreements)),
        "most_disputed": [{"index": int(index), "true": class_names[labels[index]],
                           "answers": [{"model": name, "predicted": answer.predicted_class,
                                        "confidence": round(answer.confidence, 6), "right": answer.right}
                                       for name, answer in zip(comparison.names, answers)]}
                          for index, answers in zip(shown, rows)],
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        sheet = out / "disputed.png"
        sheet.write_bytes(png_bytes(disagreement_sheet(comparison.names, images, labels, class_names, shown, rows,
                                                       args.method)))
        table = out / "both_wrong.csv"
        with table.open("w", newline="") as handle:
            _write_both_wrong(handle, comparison.names, comparison.both_wrong)
        report["out"] = [str(sheet), str(table)]
    print(json.dumps(report, indent=2))
    return 0


def _shipped_or_run(runs_dir: str | None, name: str):
    """(the name the results show, the classifier) of a shipped model or a run with a best checkpoint, as the
    Compare page offers them (a run shows as ``run name · run id``); the run store is read only for a run."""
    from eipviz.loading import load_run_checkpoint, load_zoo_model, runs_with_checkpoint
    from eipviz.training.store import run_label
    from eipviz.weights import shipped_models

    if name in shipped_models():
        return name, load_zoo_model(name)
    try:
        store = existing_store(runs_dir)
    except EipvizError as error:
        raise EipvizError(f"Unknown model {name!r}: give shipped models ({', '.join(shipped_models())}) or ids of "
                          f"runs with a checkpoint. {error}") from None
    runs = {run.id: run for run in runs_with_checkpoint(store)}
    if name in runs:
        return run_label(runs[name]), load_run_checkpoint(store, name)
    raise EipvizError(f"Unknown model {name!r}: give shipped models ({', '.join(shipped_models())}) or ids of runs "
                      f"with a checkpoint in {store.root} ({', '.join(runs) or 'none'}).")


def _write_both_wrong(handle, model_names, both_wrong) -> None:
    """The page's heatmap as CSV: test images each pair of models gets wrong together; the diagonal, each
    model's errors."""
    from eipviz.curves import spreadsheet_text

    shown = [spreadsheet_text(name) for name in model_names]  # a run's name may start like a formula
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["model", *shown])
    for name, row in zip(shown, both_wrong):
        writer.writerow([name, *(int(count) for count in row)])


def register(sub) -> None:
    p = sub.add_parser("compare-methods", help="the Compare page's methods x layers on one image: a PNG grid and "
                                               "each map's deletion and insertion AUC")
    add_model_options(p)
    image = p.add_mutually_exclusive_group(required=True)
    image.add_argument("--image", help="an image file, read as the page reads an upload")
    image.add_argument("--test-index", type=int, metavar="I", help="a test image of the model's dataset")
    p.add_argument("--methods", help="comma-separated rows (default, as the page: gradcam, gradcam++, xgradcam, "
                                     "layercam, eigencam, saliency, random)")
    p.add_argument("--layers", help="comma-separated columns (default, as the page: two of the third-last, "
                                    "second-last and CAM layer, e.g. sepconv6,sepconv7 for sepconv59k)")
    p.add_argument("--class", dest="class_name", help="class name or index to explain (default: the predicted class)")
    p.add_argument("--out", required=True, help="the .png file to write")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_compare_methods)

    p = sub.add_parser("compare-models", help="the Compare page's models side by side: accuracies, test images "
                                              "each pair gets wrong together, the most disputed images (JSON)")
    p.add_argument("--models", required=True,
                   help="comma-separated, 2 to 5 of one dataset: shipped model names or ids of trained runs")
    p.add_argument("--runs-dir", help="the run store the run ids are in (default: EIPVIZ_RUNS_DIR or runs/)")
    p.add_argument("--method", default="gradcam", help="CAM of each model's prediction on the disputed images "
                                                       "(default gradcam)")
    p.add_argument("--disputed", type=positive_int, default=8,
                   help="most disputed images listed (default 8, as the page)")
    p.add_argument("--out", help="a folder: disputed.png (the disputed images with every model's CAM and answer) "
                                 "and both_wrong.csv (the page's heatmap)")
    p.set_defaults(handler=cmd_compare_models)
