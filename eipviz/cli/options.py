"""What the commands share: argument types, table and CSV output, and loading a model as ``--model`` names it."""

import argparse
import csv
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


def print_csv(rows: list[dict], out=None) -> None:
    if rows:
        writer = csv.DictWriter(out or sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more (``--n 0`` would otherwise fail deep inside, later)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def names(text: str) -> list[str]:
    """A comma-separated option as a list of names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def method_names(text: str) -> list[str]:
    """``--methods``, each checked against the registry before any model is loaded."""
    from eipviz.attribution.methods import METHODS

    return list(check_names(names(text), METHODS, "CAM method"))


def load_for_cli(model: str, weights: str | None = None, preprocessing: str | None = None):
    """``load_classifier``, with the loader's note (e.g. a small automatic CAM layer) on stderr. ``--weights`` of
    a run's checkpoint (``runs/RUN_ID/best.keras``) is fed as that run trained, unless ``--preprocessing``
    says otherwise."""
    from eipviz.loading import load_classifier

    if weights and not preprocessing:
        preprocessing = checkpoint_preprocessing(Path(weights))
    classifier = load_classifier(model, weights, preprocessing)
    if classifier.note:
        print(f"note: {classifier.note}", file=sys.stderr)
    return classifier


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

