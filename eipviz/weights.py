"""The trained weights we ship in ``weights/`` and their manifest."""

import datetime
import hashlib
import json
import shutil
from pathlib import Path

from eipviz.errors import EipvizError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest() -> dict:
    if not MANIFEST.is_file():
        return {}
    try:
        return json.loads(MANIFEST.read_text())
    except json.JSONDecodeError as error:
        raise EipvizError(f"{MANIFEST} is not valid JSON: {error}") from error


def manifest_entry(name: str) -> dict:
    entry = read_manifest().get(name)
    if entry is None:
        raise EipvizError(f"No shipped weights for {name!r} yet. Train one on the Train page "
                          f"(or `python -m eipviz train --model {name}`) and use its checkpoint.")
    return entry


def shipped_weights_path(name: str) -> Path:
    """Path of a shipped weights file, after checking it exists and matches the manifest."""
    entry = manifest_entry(name)
    path = WEIGHTS_DIR / entry["file"]
    if not path.is_file():
        raise EipvizError(f"The shipped weights {path.name} are missing; restore weights/ from git.")
    if sha256_of(path) != entry["sha256"]:
        raise EipvizError(f"The shipped weights {path.name} are corrupt (sha256 differs from the manifest); "
                          f"restore them with `git checkout weights/`.")
    return path


def shipped_models() -> list[str]:
    """Zoo models listed in the manifest, CIFAR-10 first (the pages open on the first), then zoo order."""
    from eipviz.zoo import MODELS

    order = list(MODELS)
    return sorted(read_manifest(), key=lambda name: (MODELS[name].dataset != "cifar10", order.index(name)))


def ship_run(store, run_id: str) -> dict:
    """Copy a finished run's best checkpoint into ``weights/``, evaluate that file, record it."""
    from eipviz.evaluation import evaluate
    from eipviz.loading import load_zoo_model

    run = store.get_run(run_id)
    source = store.run_dir(run_id) / "best.keras"
    if not source.is_file():
        raise EipvizError(f"Run {run_id} has no best.keras to ship.")
    target = WEIGHTS_DIR / f"{run.model}.keras"
    WEIGHTS_DIR.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    loaded = load_zoo_model(run.model, weights=target)
    loaded.preprocessing = run.hyperparameters["preprocessing"]
    result = evaluate(loaded)
    rows = store.metrics(run_id)
    entry = {
        "file": target.name,
        "sha256": sha256_of(target),
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
    }
    manifest = read_manifest()
    manifest[run.model] = entry
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    return entry
