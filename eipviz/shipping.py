"""Maintainers' pipeline: turn a finished run into shipped weights (``python -m eipviz ship``).

Run time only reads ``weights/`` (``eipviz.weights``); this module writes it.
"""

import datetime
import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np

from eipviz import weights
from eipviz.access import require_write
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation, evaluate, write_predictions
from eipviz.loading import load_zoo_model
from eipviz.weights import read_manifest, sha256_of
from eipviz.zoo import get_spec

WEIGHTS_ENTRY = "model.weights.h5"  # where a .keras zip keeps its variables


def write_inference_copy(source: Path, target: Path, float16: bool = False) -> None:
    """Save ``source`` without its optimizer state, optionally with float16 storage.

    Checkpoints carry the optimizer's slots (about twice the weights); a shipped
    file only needs the weights. float16 storage halves them again: Keras casts
    every stored value to its variable's dtype on load, so the model still runs
    in float32 (the manifest's accuracy is measured on the stored file).
    """
    model = keras.saving.load_model(source, compile=False)
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(scratch) / "plain.keras"
        model.save(plain)
        if not float16:
            shutil.move(plain, target)  # the scratch folder may be on another file system
            return
        with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == WEIGHTS_ENTRY:
                    data = _float16_h5(data)
                zout.writestr(item.filename, data)


def _float16_h5(data: bytes) -> bytes:
    """An HDF5 file's bytes with every float32 dataset stored as float16 (groups and attributes kept)."""
    converted = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as fin, h5py.File(converted, "w") as fout:
        def copy(name, node):
            if isinstance(node, h5py.Dataset):
                fout.create_dataset(name, data=node[()].astype(np.float16) if node.dtype == np.float32 else node[()])
            else:
                fout.require_group(name)
            fout[name].attrs.update(node.attrs)

        fout.attrs.update(fin.attrs)
        fin.visititems(copy)
    return converted.getvalue()


# float16 storage can move the test accuracy by a few images; anything worse is a worse model.
RESHIP_TOLERANCE = 0.0005


def ship_run(store, run_id: str, float16: bool = False) -> dict:
    """Copy a finished run's best checkpoint into ``weights/`` for inference, evaluate that file, record it.

    A model below its documented accuracy, or below the one already shipped, is refused and
    ``weights/`` stays as it was: the app explains mistakes with these, and tests hold them to both.
    """
    require_write("Shipping weights")
    run, rows = store.get_run(run_id), store.epoch_rows(run_id)  # read first: a delete meanwhile recorded none
    if run.active:  # its best.keras and the epochs recorded with it may change under the copy
        raise EipvizError(f"Run {run_id} is {run.status}; ship it once it has ended.")
    source = store.run_dir(run_id) / "best.keras"
    if not source.is_file():
        raise EipvizError(f"Run {run_id} has no best.keras to ship.")
    target = weights.WEIGHTS_DIR / f"{run.model}.keras"
    candidate = weights.WEIGHTS_DIR / f".{run.model}.candidate.keras"
    candidate_predictions = weights.WEIGHTS_DIR / f".{run.model}.candidate.predictions.npz"
    weights.WEIGHTS_DIR.mkdir(exist_ok=True)
    staged = []
    try:
        write_inference_copy(source, candidate, float16=float16)
        classifier = load_zoo_model(run.model, weights=candidate, preprocessing=run.hyperparameters["preprocessing"])
        result = evaluate(classifier)
        _check_worth_shipping(run.model, result.accuracy)
        # Everything is written beside the shipped files first: a failure (a full disk, Ctrl-C) until the
        # renames below leaves weights/ as it was, never a new model under the old one's sha256.
        target_sha256 = sha256_of(candidate)
        predictions = _write_shipped_predictions(run.model, classifier, result, target_sha256,
                                                 at=candidate_predictions)
        manifest = read_manifest()
        manifest[run.model] = entry = {
            "file": target.name,
            "sha256": target_sha256,
            "storage": "float16" if float16 else "float32",
            "test_accuracy": round(result.accuracy, 6),
            "per_class_accuracy": {k: round(v, 6) for k, v in result.per_class_accuracy().items()},
            "recipe": run.recipe,
            "preprocessing": run.hyperparameters["preprocessing"],
            "hyperparameters": run.hyperparameters,
            "epochs": len(rows),
            "best_epoch": run.best_epoch,
            "training_seconds": round(rows[-1]["wall_time"], 1) if rows else None,
            "device": run.device,
            "backend": run.backend,
            "date": datetime.date.today().isoformat(),
            "run_id": run_id,
            "curves": rows,
            "predictions": predictions,
        }
        staged.append(_staged_manifest(manifest))
    except BaseException:
        for path in (candidate, candidate_predictions, *staged):
            path.unlink(missing_ok=True)
        raise
    candidate_predictions.replace(weights.WEIGHTS_DIR / predictions["file"])
    candidate.replace(target)
    staged[0].replace(weights.MANIFEST)
    return entry


def ship_predictions(name: str) -> dict:
    """Evaluate a shipped model's file afresh and store its test-set predictions beside it (and in the manifest).

    For weights shipped before predictions were; ``ship_run`` writes them itself.
    """
    require_write("Shipping predictions")
    classifier = load_zoo_model(name)
    result = evaluate(classifier)
    manifest = read_manifest()
    manifest[name]["predictions"] = _write_shipped_predictions(name, classifier, result, manifest[name]["sha256"])
    _staged_manifest(manifest).replace(weights.MANIFEST)
    return manifest[name]["predictions"]


def _write_shipped_predictions(name: str, classifier: Classifier, result: Evaluation, model_sha256: str,
                               at: Path | None = None) -> dict:
    """The manifest's ``predictions`` entry for ``weights/NAME.predictions.npz``, after writing the file there
    (or ``at``, to be renamed there)."""
    path = weights.WEIGHTS_DIR / f"{name}.predictions.npz"
    write_predictions(at or path, result.probabilities, model_sha256, classifier)
    return {"file": path.name, "sha256": sha256_of(at or path), "storage": "float32"}


def _staged_manifest(manifest: dict) -> Path:
    """``manifest`` written beside ``manifest.json``, to replace it with one rename: a crash mid-write must not
    break every shipped model."""
    partial = weights.MANIFEST.with_name(".manifest.json.partial")
    partial.write_text(json.dumps(manifest, indent=1) + "\n")
    return partial


def _check_worth_shipping(model: str, accuracy: float) -> None:
    documented = get_spec(model).documented_accuracy
    if accuracy * 100 < documented:
        raise EipvizError(f"{model} reached {accuracy:.2%} on the test set, below its documented {documented}%: "
                          f"not shipped, weights/ is unchanged.")
    shipped = read_manifest().get(model)
    if shipped and accuracy < shipped["test_accuracy"] - RESHIP_TOLERANCE:
        raise EipvizError(f"{model} reached {accuracy:.2%} on the test set, below the shipped "
                          f"{shipped['test_accuracy']:.2%}: not shipped, weights/ is unchanged.")
