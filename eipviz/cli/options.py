"""What the commands share: argument types, table and CSV output, and loading a model as ``--model`` names it."""

import argparse
import csv
import json
import sys
from pathlib import Path

from eipviz.errors import EipvizError, check_names


def print_table(rows: list[dict], out=None) -> None:
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


def print_rows(rows: list[dict], as_json: bool) -> None:
    """Rows as JSON (``--json``) or as an aligned table."""
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


def print_csv(rows: list[dict], out=None) -> None:
    if rows:
        writer = csv.DictWriter(out or sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more (``--n 0`` would otherwise fail deep inside, later)."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, 0 or more (a seed: NumPy refuses a negative one with a traceback)."""
    return _whole_number(text, 0)


def unit_interval(text: str) -> float:
    """An argparse type: a number from 0 to 1 (an opacity, a confidence)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, not {text}")
    return value


def names(text: str, option: str) -> list[str]:
    """A comma-separated ``option`` as a list of names; one naming nothing (``--layers ,``, which fell back to the
    default silently) or a name twice (rows and columns doubled) is an ``EipvizError``."""
    listed = [name.strip() for name in text.split(",") if name.strip()]
    if not listed:
        raise EipvizError(f"{option} names nothing; give comma-separated names. Received: {text!r}.")
    twice = sorted({name for name in listed if listed.count(name) > 1})
    if twice:
        raise EipvizError(f"{option} names {', '.join(twice)} more than once. Received: {text!r}.")
    return listed


def method_names(text: str) -> list[str]:
    """``--methods``, each checked against the registry before any model is loaded."""
    from eipviz.attribution.methods import METHODS

    return list(check_names(names(text, "--methods"), METHODS, "CAM method"))


def layer_name(text: str) -> str:
    """An argparse type: ``--layer``'s name, never empty (``--layer ""`` meant the default layer, unsaid)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a layer, not {text!r}; leave --layer out for the model's CAM "
                                         "layer (`python -m eipviz layers MODEL` lists a zoo model's layers)")
    return text


def progress_line(fraction: float, text: str) -> None:
    """A long command's progress as one line on stderr (``[ 37%] layer conv2: scorecam``): stdout keeps the
    result alone, for a pipe or ``--json``."""
    print(f"[{fraction:4.0%}] {text}", file=sys.stderr, flush=True)


def check_layer(classifier, layer: str | None) -> None:
    """``--layer``, when given, against the model's CAM layers, before any map: every command names the choices
    (``cam`` and ``sanity`` said "not on the path to the model's output", and took layers ``gallery`` refused)."""
    if layer:
        check_names([layer], classifier.cam_layers, "layer")


def add_model_options(p, what: str = "the model") -> None:
    """``--model`` / ``--run`` (one of them) and ``--runs-dir``, ``--weights``, ``--preprocessing``: the sources
    the explanation pages offer (shipped weights, a run's checkpoint, a model file), as ``load_model`` reads them."""
    from eipviz.preprocessing import DETECT, DETECT_MEANS, PREPROCESSINGS

    p.add_argument("--model", help=f"{what}: a zoo name (shipped weights) or a .keras/.h5 file")
    p.add_argument("--run", help=f"{what}: a trained run's best checkpoint, fed as the run trained (instead of "
                                 f"--model)")
    p.add_argument("--runs-dir", help="the run store --run is in (default: EIPVIZ_RUNS_DIR or runs/)")
    p.add_argument("--weights", help="a .keras file for the zoo model instead of its shipped weights (a run's "
                                     "checkpoint is fed as that run trained)")
    p.add_argument("--preprocessing", choices=[*PREPROCESSINGS, DETECT],
                   help=f"how its inputs were preprocessed (default: the shipped one, a run's own; for other files "
                        f"{DETECT}: {DETECT_MEANS})")


def load_model(args):
    """The classifier ``add_model_options``' arguments name: ``--run``'s best checkpoint with the run's
    preprocessing (``load_run_checkpoint``, as the pages' "Run checkpoint"), else ``load_for_cli``."""
    from eipviz.loading import load_run_checkpoint

    if bool(args.model) == bool(args.run):
        raise EipvizError("Give --model NAME_OR_PATH or --run RUN_ID (one of them).")
    if not args.run:
        return load_for_cli(args.model, args.weights, args.preprocessing)
    if args.weights or args.preprocessing:
        raise EipvizError("--run reads the run's best checkpoint with the preprocessing it trained with; "
                          "--weights and --preprocessing go with --model.")
    return load_run_checkpoint(existing_store(args.runs_dir), stored_run_id(args.run, "loaded with --run"))


def method_name(text: str) -> str:
    """``--method``: one name, checked against the registry before any model is loaded."""
    from eipviz.attribution.methods import METHODS

    return check_names([text], METHODS, "CAM method")[0]


def load_for_cli(model: str, weights: str | None = None, preprocessing: str | None = None):
    """``load_classifier``, with the loader's note (e.g. a small automatic CAM layer) on stderr. A run's
    checkpoint (``runs/RUN_ID/best.keras``), as ``--weights`` or as ``--model``, is fed as that run trained,
    unless ``--preprocessing`` says otherwise; another model file's preprocessing is detected
    (``with_detected_preprocessing``)."""
    from eipviz.evaluation import with_detected_preprocessing, with_preprocessing_hint
    from eipviz.loading import load_classifier
    from eipviz.preprocessing import DETECT

    checkpoint = weights or (model if Path(model).is_file() else None)
    trained_with = checkpoint_preprocessing(Path(checkpoint)) if checkpoint else None
    unknown_origin = checkpoint == model and trained_with is None  # a model file, not a run's checkpoint
    by_hand = preprocessing not in (None, DETECT)
    preprocessing = preprocessing or trained_with or (DETECT if unknown_origin else None)
    classifier = load_classifier(model, weights, None if preprocessing == DETECT else preprocessing)
    if preprocessing == DETECT:
        classifier = with_detected_preprocessing(classifier)
    elif by_hand and unknown_origin:  # as the pages: one far below another is a warning
        classifier = with_preprocessing_hint(classifier)
    if classifier.note:
        print(f"note: {classifier.note}", file=sys.stderr)
    if classifier.warning:
        print(f"warning: {classifier.warning}", file=sys.stderr)
    return classifier


def existing_store(runs_dir: str | None):
    """The run store a command that reads runs is given. A ``--runs-dir`` that holds none is an error: opening it
    made a new, empty store, so a typo listed nothing and left a runs.sqlite in whatever folder it named. The
    default (``EIPVIZ_RUNS_DIR`` or ``runs/``) is made when missing, as the pages make it."""
    from eipviz.training.store import STORE_FILE, RunStore

    if runs_dir and not (Path(runs_dir) / STORE_FILE).is_file():
        raise EipvizError(f"No run store in {runs_dir} (it has no {STORE_FILE}): check --runs-dir.")
    return RunStore(runs_dir)


def stored_run_id(run_id: str, action: str) -> str:
    """``run_id``, unless it names a documented run: those come from the seeds, so "No run" would mislead."""
    from eipviz.curves import REFERENCE_PREFIX

    if run_id.startswith(REFERENCE_PREFIX):
        raise EipvizError(f"{run_id!r} is a documented run, read from the course write-ups: it cannot be {action}. "
                          "It has curves only, no checkpoint or timeline; `python -m eipviz runs` lists the runs "
                          "that can.")
    return run_id


def checkpoint_preprocessing(path: Path) -> str | None:
    """The preprocessing of the run whose folder holds ``path``, when it lies in a run store; else None."""
    from eipviz.training.store import STORE_FILE, RunStore

    folder = path.resolve().parent
    if not (folder.parent / STORE_FILE).is_file():
        return None
    try:
        return RunStore(folder.parent).get_run(folder.name).hyperparameters.get("preprocessing")
    except EipvizError:  # a folder beside a store that is no run of it
        return None


def folder_out(text: str, what: str) -> Path:
    """``--out`` of a folder ``what`` is written into, checked before any work (a file there was found only after
    the model had loaded and the maps were computed, as "[Errno 17] File exists"); made by the writer, so a
    command that fails leaves no empty folder behind."""
    path = _out_path(text, f"the folder to write {what} into")
    if path.exists() and not path.is_dir():
        raise EipvizError(f"{path} is a file; --out takes the folder to write {what} into.")
    return path


def png_out(text: str) -> Path:
    """``--out`` of a PNG, checked before any work: a folder is refused; missing parent folders are made when
    it is written (``write_out``)."""
    path = _out_path(text, "the .png file to write")
    if path.is_dir():
        raise EipvizError(f"{path} is a folder; give the .png file to write.")
    if path.suffix.lower() != ".png":  # `gallery --out g.jpg` wrote PNG bytes under a JPEG's name
        raise EipvizError(f"{path.name}: --out writes a PNG; give a name ending in .png.")
    return path


def write_out(path: Path, data: bytes) -> None:
    """Write a checked ``png_out`` file, its folders made only now: a command that failed left them empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _out_path(text: str, what: str) -> Path:
    """``--out`` as a path, refused when empty (it meant the current folder: the project's, for most) or under
    a file (said only after the work, as "[Errno 17] File exists")."""
    if not text.strip():
        raise EipvizError(f"--out is empty; name {what}.")
    path = Path(text)
    nearest = next(folder for folder in path.parents if folder.exists())  # "." or "/" at the latest
    if not nearest.is_dir():
        raise EipvizError(f"{nearest} is a file, not a folder; --out cannot write under it.")
    return path


def read_image_for(classifier, file: str):
    """An image file decoded as the Upload page decodes an upload, at the model's side (``read_image_file``)."""
    from eipviz.images import read_image_file

    return read_image_file(file, model_side=max(classifier.input_size[:2]))
