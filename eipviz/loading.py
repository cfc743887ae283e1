"""Load a model to explain or evaluate: shipped weights, a run's checkpoint, or an untrusted file.

Every source becomes a ``Classifier`` that knows how to feed the model and
name its answers.
"""

import dataclasses
import json
import tempfile
import zipfile
from pathlib import Path

import h5py
import keras

from eipviz.access import require_write
from eipviz.attribution.layers import MIN_CAM_SIZE, conv_feature_layers, default_target_layer
from eipviz.classifier import Classifier, StoredPredictions
from eipviz.data import CLASS_NAMES
from eipviz.errors import EipvizError
from eipviz.preprocessing import PREPROCESSINGS
from eipviz.weights import manifest_entry, sha256_of, shipped_predictions, shipped_weights_path
from eipviz.zoo import MODELS, get_spec

MAX_MODEL_BYTES = 300 * 1024 * 1024
MAX_UNPACKED_BYTES = 2 * MAX_MODEL_BYTES  # weights barely compress: a larger unpacked size is a zip bomb
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # resnet18's config.json is about 60 kB
CODE_LAYERS = {"Lambda", "TFOpLambda"}
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CHECKPOINT = "best.keras"


def load_zoo_model(name: str, weights: str | Path | None = None) -> Classifier:
    """A zoo model with the shipped weights (checked against the manifest) or a given file.

    Shipped weights come with their test-set predictions when the manifest lists them.
    """
    spec = get_spec(name)
    path = Path(weights) if weights else shipped_weights_path(name)
    predictions = None
    preprocessing = spec.preprocessing
    if not weights:
        entry = manifest_entry(name)
        preprocessing = entry.get("preprocessing", preprocessing)
        stored = shipped_predictions(name)
        # shipped_weights_path has checked the file against the manifest's sha256
        predictions = StoredPredictions(stored[0], entry["sha256"], stored[1]) if stored else None
    return Classifier(_load_keras_file(path), f"{name} ({path.name})", preprocessing, CLASS_NAMES[spec.dataset],
                      spec.dataset, spec.cam_layer, source=str(path), predictions=predictions)


def load_run_checkpoint(store, run_id: str, which: str = "best") -> Classifier:
    """A trained run's ``best.keras`` or ``last.keras`` with the preprocessing it trained with."""
    run = store.get_run(run_id)
    if run.kind != "trained":
        raise EipvizError(f"Run {run_id} is {run.kind}; it has no checkpoint.")
    path = store.run_dir(run_id) / f"{which}.keras"
    if not path.is_file():
        raise EipvizError(f"Run {run_id} has no {which}.keras yet (it saves after its first epoch).")
    spec = get_spec(run.model)
    preprocessing = run.hyperparameters.get("preprocessing", spec.preprocessing)
    # A live run may replace best.keras while it loads: predictions are kept only for a file that stood still.
    before = sha256_of(path)
    model = _load_keras_file(path)
    predictions = StoredPredictions(path.with_name(f"{which}.predictions.npz"), before) if (
        sha256_of(path) == before) else None
    return Classifier(model, f"run {run_id} ({which})", preprocessing, CLASS_NAMES[spec.dataset],
                      spec.dataset, spec.cam_layer, source=str(path), predictions=predictions)


def runs_with_checkpoint(store) -> list:
    """Trained runs that have saved a best checkpoint, newest first."""
    return [run for run in store.list_runs(kinds=("trained",)) if (store.run_dir(run.id) / CHECKPOINT).is_file()]


def load_uploaded_model(path: str | Path, preprocessing: str = "unit_scale", name: str | None = None) -> Classifier:
    """An untrusted ``.keras`` or legacy ``.h5`` classifier, refused cleanly when unsafe or unusable."""
    path = Path(path)
    if preprocessing not in PREPROCESSINGS:
        raise EipvizError(f"Unknown preprocessing {preprocessing!r}. Choose one of: {', '.join(PREPROCESSINGS)}.")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise EipvizError(f"{path.name}: upload a Keras model file ({', '.join(MODEL_SUFFIXES)}).")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise EipvizError(f"{path.name} is larger than {MAX_MODEL_BYTES // 2**20} MB.")
    _refuse_code_layers(path)
    model = _load_keras_file(path)
    _check_image_classifier(model, path.name)
    height, width, channels = (int(d) for d in model.inputs[0].shape[1:])
    dataset = {(32, 32, 3): "cifar10", (28, 28, 1): "mnist"}.get((height, width, channels))
    classes = int(model.outputs[0].shape[-1])
    if classes != 10:
        dataset = None
    names = CLASS_NAMES[dataset] if dataset else tuple(f"class {i}" for i in range(classes))
    layer, note = default_layer_with_note(model)
    return Classifier(model, name or path.name, preprocessing, names, dataset, layer, source=str(path), note=note)


def load_uploaded_bytes(data: bytes, filename: str, preprocessing: str = "unit_scale") -> Classifier:
    """``load_uploaded_model`` for a file's bytes (a browser upload); the temporary copy is removed.

    Refused in viewer mode: a model file is code-like input only editors may hand the server.
    """
    require_write("Uploading a model file")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / Path(filename).name  # error messages name the user's file
        path.write_bytes(data)
        classifier = load_uploaded_model(path, preprocessing, name=filename)
    return dataclasses.replace(classifier, source=f"upload: {filename}")


def load_classifier(model: str, weights: str | None = None, preprocessing: str | None = None) -> Classifier:
    """A zoo name (shipped weights, or ``weights``) or a path to a model file, as the CLI's ``--model`` takes."""
    if model in MODELS:
        classifier = load_zoo_model(model, weights)
    elif Path(model).is_file():
        classifier = load_uploaded_model(model, preprocessing or "unit_scale")
    else:
        raise EipvizError(f"{model!r} is neither a zoo model ({', '.join(MODELS)}) nor a model file.")
    if preprocessing and preprocessing != classifier.preprocessing:
        classifier = dataclasses.replace(classifier, preprocessing=preprocessing)
    return classifier


def default_layer_with_note(model) -> tuple[str, str | None]:
    """The automatic CAM layer, and a note when no conv map reaches 5x5."""
    layer = default_target_layer(model)
    if not conv_feature_layers(model, MIN_CAM_SIZE):
        return layer, f"No conv feature map is {MIN_CAM_SIZE}x{MIN_CAM_SIZE} or larger; using {layer}."
    return layer, None


def _refuse_code_layers(path: Path) -> None:
    """Refuse files whose config holds a Lambda layer (arbitrary Python) before Keras reads them.

    The parsed config is searched, not its text: JSON may spell ``Lambda`` with escapes.
    """
    try:
        config = json.loads(_model_config_text(path))
    except ValueError as error:
        raise EipvizError(f"{path.name} is not a readable Keras model file (its config is not JSON).") from error
    if CODE_LAYERS & set(_class_names(config)):
        raise EipvizError(f"{path.name} contains a Lambda layer, which can run arbitrary code; "
                          f"it is refused. Rebuild the model without Lambda layers.")


def _class_names(config) -> list[str]:
    """Every ``class_name`` anywhere in a model config (nested models, wrappers, functions)."""
    names, pending = [], [config]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str):
                names.append(node["class_name"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return names


def _model_config_text(path: Path) -> str:
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                _refuse_zip_bomb(archive, path.name)
                return archive.read("config.json").decode("utf-8", "replace")
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise EipvizError(f"{path.name} is not a readable Keras model file ({type(error).__name__}).") from error
    if config is None:
        raise EipvizError(f"{path.name} holds only weights, not a model. Save it with model.save(...).")
    if len(config) > MAX_CONFIG_BYTES:
        raise EipvizError(f"{path.name}'s model config is over {MAX_CONFIG_BYTES // 2**20} MB; that is no small CNN.")
    return config.decode() if isinstance(config, bytes) else str(config)


def _refuse_zip_bomb(archive: zipfile.ZipFile, name: str) -> None:
    """A ``.keras`` file is a zip: refuse one that would unpack far beyond the upload limit before reading it."""
    sizes = {info.filename: info.file_size for info in archive.infolist()}
    if sizes.get("config.json", 0) > MAX_CONFIG_BYTES or sum(sizes.values()) > MAX_UNPACKED_BYTES:
        raise EipvizError(f"{name} unpacks to {sum(sizes.values()) / 2**20:,.0f} MB (config "
                          f"{sizes.get('config.json', 0) / 2**20:,.1f} MB); that is no small CNN, so it is refused.")


def _load_keras_file(path: Path) -> keras.Model:
    if not path.is_file():
        raise EipvizError(f"Model file {path} not found.")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for broken or foreign files
        message = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        if "safe_mode" in message or "Lambda" in message:
            raise EipvizError(f"{path.name} needs unsafe deserialisation (custom code); it is refused.") from error
        raise EipvizError(f"Could not load {path.name} as a Keras model: {message}") from error


def _check_image_classifier(model, name: str) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise EipvizError(f"{name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          f"eipviz explains models with one image input and one class output.")
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] not in (1, 3) or None in shape[1:]:
        raise EipvizError(f"{name} takes inputs of shape {tuple(shape)}, not images (height, width, 1 or 3).")
    out = model.outputs[0].shape
    if len(out) != 2 or out[-1] < 2:
        raise EipvizError(f"{name} outputs shape {tuple(out)}, not class scores.")
