"""The trained weights we ship in ``weights/``: reading and verifying the manifest at run time.

Adding a model to ``weights/`` is the maintainers' job, in ``eipviz.shipping``.
"""

import hashlib
import json
from pathlib import Path

from eipviz.errors import EipvizError
from eipviz.zoo import MODELS

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest() -> dict:
    """The manifest as a dict (empty when there is none yet)."""
    if not MANIFEST.is_file():
        return {}
    try:
        return json.loads(MANIFEST.read_text())
    except json.JSONDecodeError as error:
        raise EipvizError(f"{MANIFEST} is not valid JSON: {error}") from error


def manifest_entry(name: str) -> dict:
    """The manifest's entry for a zoo model, or a clear error when it has none."""
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


def shipped_predictions(name: str) -> tuple[Path, str] | None:
    """(path, sha256 from the manifest) of a shipped model's test-set predictions, when it ships them."""
    entry = manifest_entry(name).get("predictions")
    return (WEIGHTS_DIR / entry["file"], entry["sha256"]) if entry else None


def shipped_models() -> list[str]:
    """Zoo models listed in the manifest, CIFAR-10 first, each dataset's smallest model first.

    The pages open on the first, so it should open fastest: a smaller model loads, traces its CAMs and
    runs them sooner. Measured cold, to the first Misclassified gallery in-process (CPU, imports
    excluded): sepconv59k 1.7 s, resnet20v1 1.9-2.5 s, resnet18 2.5 s (zoo order, used before, opened
    on resnet18: the heaviest); mnist14k 0.8 s, but CIFAR-10 is what the course is about.
    """
    names = [name for name in read_manifest() if name in MODELS]  # an entry for a model no longer in the zoo
    return sorted(names, key=lambda name: (MODELS[name].dataset != "cifar10", MODELS[name].documented_params.total))
