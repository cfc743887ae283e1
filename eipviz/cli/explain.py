"""Commands that evaluate and explain a model: ``evaluate``, ``cam``, ``gallery``, ``report``, ``methods``,
``faithfulness`` and ``sanity``."""

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eipviz.cli.options import (
    add_model_options,
    check_layer,
    existing_store,
    folder_out,
    layer_name,
    load_model,
    method_name,
    method_names,
    names,
    non_negative_int,
    png_out,
    positive_int,
    print_rows,
    print_table,
    progress_line,
    read_image_for,
    unit_interval,
    write_out,
)
from eipviz.errors import EipvizError, check_names

if TYPE_CHECKING:  # for annotations only: each command imports NumPy and the library when it runs
    import numpy as np

    from eipviz.evaluation import Evaluation


def cmd_evaluate(args) -> int:
    from eipviz.evaluation import evaluate, evaluate_test_set

    classifier = load_model(args)
    result = evaluate(classifier) if args.fresh else evaluate_test_set(classifier)
    report = {"model": classifier.name, **result.to_dict()}
    if args.confusion:
        from eipviz.plots import confusion_values

        matrix = result.confusion_matrix()
        report["confusion_matrix"] = {"classes": list(result.class_names), "counts": confusion_values(matrix),
                                      "row_percent": confusion_values(matrix, "row %")}
    print(json.dumps(report, indent=2))
    return 0


def cmd_cam(args) -> int:
    from eipviz.data import sample_images
    from eipviz.evaluation import check_test_image_count
    from eipviz.explain.overlay import png_bytes
    from eipviz.explain.predict import explain_images, upload_notes

    method_name(args.method)
    out = folder_out(args.out, "the overlay PNGs")
    classifier = load_model(args)
    check_layer(classifier, args.layer)
    if args.test_images:  # the Upload page's "Try 4 test images"
        check_test_image_count(classifier, args.test_images, "--test-images")
        inputs = [(name, image, None, False) for name, image in
                  sample_images(str(classifier.dataset), args.test_images, args.seed)]
    else:  # every file is read before any note is printed: a bad one is the only line on stderr
        decoded = [read_image_for(classifier, file) for file in args.image]
        inputs = [(file, image.pixels, image.original_size, image.grayscale)
                  for file, image in zip(args.image, decoded)]
    classes = _classes(classifier, args.class_name, len(inputs))  # a bad class too is said before any note
    for name, image, original_size, grayscale in inputs:
        fitted, unsuited = upload_notes(classifier, image, original_size, grayscale)
        if fitted:
            print(f"note: {name}: {fitted}.", file=sys.stderr)
        if unsuited:
            print(f"note: {name} {unsuited}.", file=sys.stderr)
    explanations = explain_images(classifier, [image for _, image, _, _ in inputs], args.method, args.layer,
                                  class_indices=classes, alpha=args.alpha,
                                  aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth)
    out.mkdir(parents=True, exist_ok=True)
    report = []
    written: set[Path] = set()
    for (name, *_), explanation in zip(inputs, explanations):
        stem = Path(name).stem if not args.test_images else re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-")
        target = out / f"{stem}-{args.method}.png"
        copy = 2
        while target in written:  # a/x.png and b/x.png: the second overlay must not replace the first
            target, copy = out / f"{stem}-{args.method}-{copy}.png", copy + 1
        written.add(target)
        target.write_bytes(png_bytes(explanation.overlay))
        report.append({"image": name, "overlay": str(target), "top": explanation.top(classifier.class_names, args.top),
                       "explained_class": classifier.class_names[explanation.class_index]})
    print(json.dumps(report, indent=2))
    return 0


def _classes(classifier, given: list[str] | None, count: int) -> list[int | None]:
    """``--class``: one class for every image, or one per image; None (each image's top prediction) without it."""
    if not given:
        return [None] * count
    if len(given) not in (1, count):
        raise EipvizError(f"--class takes one class for every image or one per image ({count}). "
                          f"Received: {len(given)} classes.")
    indices = [classifier.class_index(name) for name in given]
    return indices * count if len(indices) == 1 else indices


def cmd_gallery(args) -> int:
    from eipviz.explain.gallery import COLUMN_LABELS, gallery_items, gallery_png_sheet, sheet_header
    from eipviz.explain.overlay import png_bytes

    out = png_out(args.out)
    classifier = load_model(args)
    selection = _gallery_selection(args, classifier)
    items = gallery_items(classifier, selection.evaluation, selection.images, selection.shown, method=args.method,
                          layer=args.layer, aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth)
    if items:
        write_out(out, png_bytes(gallery_png_sheet(
            items, header=sheet_header(classifier, args.method, args.layer, selection.note, selection.smoothing),
            column_labels=COLUMN_LABELS)))
    else:
        print("note: no misclassified image matches these filters; no sheet written.", file=sys.stderr)
    print(json.dumps({
        "model": classifier.name, "method": args.method, "layer": args.layer or classifier.cam_layer,
        "smoothing": list(selection.smoothing), "filters": selection.note, "count": selection.count,
        "pages": selection.pages, "page": args.page,
        "shown": [{"index": item.index, "true": item.true_class, "predicted": item.predicted_class,
                   "confidence": round(item.confidence, 6)} for item in items],
        "out": str(out) if items else None}, indent=2))
    return 0


@dataclass(frozen=True)
class GallerySelection:
    """The Misclassified gallery page the options name: its test images, what they are and the page's count."""

    evaluation: "Evaluation"
    images: "np.ndarray"
    shown: "np.ndarray"  # test indices on the page
    note: str  # the page's filters, as its PNG export says them
    smoothing: tuple[str, ...]
    count: int  # misclassified images matching the filters
    pages: int


def _gallery_selection(args, classifier) -> GallerySelection:
    """The page ``--true``, ``--predicted``, ``--confidence`` and ``--page`` pick, as the Misclassified page
    filters and pages its gallery (``gallery`` and ``report`` share it); bad values are messages."""
    from eipviz.attribution.methods import SMOOTHING
    from eipviz.evaluation import dataset_test_split, evaluate_test_set
    from eipviz.explain.gallery import ALL, PAGE_SIZE, gallery_note, gallery_page

    low, high = args.confidence
    if low > high:
        raise EipvizError(f"--confidence LOW HIGH needs LOW at most HIGH. Received: {low} {high}.")
    method_name(args.method)
    true_class = None if args.true is None else classifier.class_index(args.true)
    predicted_class = None if args.predicted is None else classifier.class_index(args.predicted)
    check_layer(classifier, args.layer)
    images, _ = dataset_test_split(classifier)
    evaluation = evaluate_test_set(classifier)
    indices = evaluation.misclassified_indices(true_class=true_class, predicted_class=predicted_class,
                                               min_confidence=low, max_confidence=high)
    _, pages = gallery_page(indices, 1, PAGE_SIZE)
    if args.page > pages:
        raise EipvizError(f"Page {args.page} is past the last: {len(indices)} misclassified images match, "
                          f"{pages} page(s) of {PAGE_SIZE}.")
    shown, _ = gallery_page(indices, args.page, PAGE_SIZE)
    true_name, predicted_name = (ALL if k is None else classifier.class_names[k] for k in (true_class, predicted_class))
    return GallerySelection(evaluation, images, shown, gallery_note(true_name, predicted_name, low, high, args.page,
                                                                     pages),
                            tuple(name for name in SMOOTHING if getattr(args, name)), int(len(indices)), pages)


def cmd_report(args) -> int:
    from eipviz.evaluation import check_test_image_count
    from eipviz.explain.timeline import TIMELINE_FILE, read_timeline
    from eipviz.report import build_report, report_path, write_report

    report_path(args.out)  # a folder or an unwritable place is said now, not after the report is computed
    classifier = load_model(args)
    check_test_image_count(classifier, args.n, "--n")  # before the gallery's evaluation and the report's maps
    curves, timeline = None, None
    if args.run:  # a run's report adds its curves and timeline
        store = existing_store(args.runs_dir)
        curves = store.epoch_rows(args.run)
        timeline = read_timeline(store.run_dir(args.run) / TIMELINE_FILE)
    selection = _gallery_selection(args, classifier)  # the gallery page the options name, as the page's button
    html = build_report(classifier, selection.evaluation, selection.images, n=args.n, curves=curves,
                        timeline=timeline, progress=progress_line,
                        gallery_indices=selection.shown, gallery_method=args.method, gallery_note=selection.note,
                        layer=args.layer, aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth)
    print(write_report(args.out, html))
    return 0


def cmd_methods(args) -> int:
    from eipviz.attribution.methods import METHODS, SLOW_METHODS

    rows = [{"method": name, "slow": name in SLOW_METHODS, "what": (cls.__doc__ or "").strip().splitlines()[0]}
            for name, cls in METHODS.items()]
    print_rows(rows, args.json)
    return 0


def cmd_faithfulness(args) -> int:
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.compare import RANK_METRICS, rank_methods
    from eipviz.explain.faithfulness import METRICS, check_metrics, faithfulness

    methods = method_names(args.methods)
    if args.rank_by:
        check_names([args.rank_by], RANK_METRICS, "ranking metric", show=repr)
    ranked = bool(args.layers or args.rank_by)
    if args.layers and args.layer:
        raise EipvizError("Give --layer (one layer) or --layers (layers to rank), not both.")
    if ranked and args.metrics:
        raise EipvizError("--rank-by scores its one metric (deletion by default); --metrics goes without "
                          "--rank-by and --layers.")
    metrics = check_metrics(names(args.metrics, "--metrics") if args.metrics else METRICS)
    classifier = load_model(args)
    named = names(args.layers, "--layers") if args.layers else [args.layer] if args.layer else []
    if named:  # checked before any map is computed
        check_names(named, classifier.cam_layers, "layer")
    layers = named or [classifier.cam_layer]
    images = sample_test_images(classifier, args.n, args.seed, "--n")
    def progress(done: float, total: int, what: str | None) -> None:
        progress_line(done / total, what or "done")

    if ranked:  # the Misclassified page's "Compute and rank"
        rows = rank_methods(classifier, images, methods, layers, args.rank_by or "deletion", progress=progress,
                            seed=args.seed)
    else:
        rows = faithfulness(classifier, images, methods, layer=args.layer, metrics=metrics, progress=progress,
                            seed=args.seed)
    print_rows(rows, args.json)
    return 0


def cmd_sanity(args) -> int:
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.overlay import png_bytes
    from eipviz.explain.sanity import sanity_check, sanity_strip_sheet

    methods = method_names(args.methods)
    out = png_out(args.out) if args.out is not None else None
    classifier = load_model(args)
    check_layer(classifier, args.layer)
    images = sample_test_images(classifier, args.n, args.seed, "--n")
    results = sanity_check(classifier, images, methods, layer=args.layer, depths=args.depths, seed=args.seed,
                           progress=lambda done, total, text: progress_line(done / total, text))
    if out:  # the page's strip of maps, a row per method
        write_out(out, png_bytes(sanity_strip_sheet(classifier, images[0], results, args.layer)))
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        print_table([result.row() for result in results])
    return 0


def _add_gallery_options(p) -> None:
    """The Misclassified gallery's filters, page and CAM options (``gallery`` and ``report``)."""
    p.add_argument("--true", help="true class (name or index; default all)")
    p.add_argument("--predicted", help="predicted class (name or index; default all)")
    p.add_argument("--confidence", nargs=2, type=unit_interval, default=(0.0, 1.0), metavar=("LOW", "HIGH"),
                   help="keep wrong predictions whose confidence is from LOW to HIGH (default 0 1)")
    p.add_argument("--page", type=positive_int, default=1, help="page of 12, most confident first (default 1)")
    _add_cam_options(p)


def _add_cam_options(p) -> None:
    """--method, --layer and the smoothing options, as the pages' CAM method, Layer and Smoothing widgets."""
    p.add_argument("--method", default="gradcam", help="attribution method (default gradcam; "
                                                       "`python -m eipviz methods` lists them)")
    p.add_argument("--layer", type=layer_name, help="layer name (default: the model's CAM layer)")
    p.add_argument("--aug-smooth", action="store_true", help="average the maps of flipped and shifted views")
    p.add_argument("--eigen-smooth", action="store_true",
                   help="each map is the first principal component of the weighted activations")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="test accuracy and per-class accuracy as JSON")
    add_model_options(p)
    p.add_argument("--fresh", action="store_true",
                   help="run the test set through the model even when its predictions are stored")
    p.add_argument("--confusion", action="store_true",
                   help="add the confusion matrix (rows true, columns predicted) as the Misclassified page shows "
                        "it: counts, and row-normalised %% with the diagonal null")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("cam", help="the Upload page: top-K predictions as JSON and a CAM overlay PNG per image")
    add_model_options(p)
    images = p.add_mutually_exclusive_group(required=True)
    images.add_argument("--image", nargs="+", help="image files, read as the Upload page reads uploads (a large "
                                                   "one is shrunk on reading; notes on stderr)")
    images.add_argument("--test-images", type=positive_int, metavar="N",
                        help="N images drawn from the model's test set (the page's \"Try 4 test images\")")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="draws --test-images (default 0: the page's first draw)")
    _add_cam_options(p)
    p.add_argument("--class", dest="class_name", nargs="+", metavar="CLASS",
                   help="class name or index to explain: one for every image or one per image "
                        "(default: each image's top prediction)")
    p.add_argument("--top", type=positive_int, default=5, help="predictions listed per image (default 5, as the page)")
    p.add_argument("--alpha", type=unit_interval, default=0.45,
                   help="overlay opacity from 0 to 1 (default 0.45, the page's slider)")
    p.add_argument("--out", required=True, help="the folder the overlay PNGs are written to")
    p.set_defaults(handler=cmd_cam)

    p = sub.add_parser("gallery", help="the Misclassified page's gallery: one page as the PNG sheet its "
                                       "\"Export this page as PNG\" writes, and a JSON summary")
    add_model_options(p)
    _add_gallery_options(p)
    p.add_argument("--out", required=True, help="the .png file to write")
    p.set_defaults(handler=cmd_gallery)

    p = sub.add_parser("report", help="a self-contained HTML report of a model (opens offline; a --run's adds "
                                      "its curves and timeline), its gallery the page the gallery options name")
    add_model_options(p)
    _add_gallery_options(p)
    p.add_argument("--n", type=positive_int, default=32,
                   help="test images for the faithfulness table (default 32; the sanity table takes the first 8)")
    p.add_argument("--out", required=True, help="the .html file to write")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("methods", help="list the attribution methods (--method names), slow ones marked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_methods)

    p = sub.add_parser("faithfulness", help="deletion/insertion AUC, average drop and ROAD per CAM method, "
                                            "each compared with the random baseline; with --rank-by or --layers, "
                                            "methods and layers ranked as the Misclassified page's "
                                            "\"Compute and rank\"")
    add_model_options(p)
    p.add_argument("--methods", default="gradcam,gradcam++,scorecam,layercam",
                   help="comma-separated; the random baseline is always added (default "
                        "gradcam,gradcam++,scorecam,layercam; the page starts on the first six fast methods: "
                        "gradcam,gradcam++,xgradcam,hirescam,gradcam-elementwise,layercam)")
    p.add_argument("--metrics", help="comma-separated, any of deletion, insertion, drop, road (default all four); "
                                     "not with --rank-by, which scores its one metric")
    p.add_argument("--n", type=positive_int, default=200, help="test images to sample (default 200; the page: 50)")
    p.add_argument("--layer", type=layer_name, help="the layer (default: the model's CAM layer)")
    p.add_argument("--layers", help="comma-separated layers to rank, each with a row per method (ranks by deletion "
                                    "unless --rank-by says otherwise)")
    p.add_argument("--rank-by", metavar="{deletion,insertion,drop,road}",
                   help="rank methods and layers by this metric's margin over random, best first (the page's "
                        "\"Rank by\", default there: deletion)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="draws the images, orders tied pixels, seeds ROAD's noise")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_faithfulness)

    p = sub.add_parser("sanity", help="model-randomisation and random-logit sanity checks per CAM method")
    add_model_options(p)
    p.add_argument("--methods", default="gradcam,random",
                   help="comma-separated (default gradcam,random; the page checks the gallery's method)")
    p.add_argument("--n", type=positive_int, default=16, help="test images to sample (default 16; the page: 8)")
    p.add_argument("--depths", type=positive_int, default=8,
                   help="randomisation depths, the last with every layer (default 8; the page: 6)")
    p.add_argument("--layer", type=layer_name, help="the layer (default: the model's CAM layer)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--out", help="also write the page's strip of maps (the first image, trained then at each "
                                 "depth) as a PNG, a row per method")
    p.add_argument("--json", action="store_true", help="also print each method's curve over the depths")
    p.set_defaults(handler=cmd_sanity)
