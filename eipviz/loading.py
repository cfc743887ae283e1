"""Load a model to explain or evaluate: shipped weights, a run's checkpoint, or an untrusted file.

Every source becomes a ``LoadedModel``: the Keras model plus what is
needed to feed it (preprocessing, class names) and a description.
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eipviz.data import CLASS_NAMES
from eipviz.errors import EipvizError
from eipviz.explain.layers import conv_feature_layers, default_target_layer
from eipviz.preprocessing import PREPROCESSINGS

MAX_MODEL_BYTES = 300 * 1024 * 1024
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class LoadedModel:
    """A ready-to-use classifier of images."""

    model: object  # keras.Model
    label: str  # shown to the user
    preprocessing: str
    class_names: tuple
    dataset: str | None  # the dataset it was trained on, when known
    cam_layer: str
    zoo_name: str | None = None
    note: str | None = None  # e.g. why the automatic CAM layer is smaller than 5x5

    @property
    def input_size(self) -> tuple:
        height, width, channels = self.model.inputs[0].shape[1:]
        return int(height), int(width), int(channels)

    @property
    def cam_layers(self) -> list[str]:
        return conv_feature_layers(self.model)


def load_zoo_model(name: str, weights: str | Path | None = None) -> LoadedModel:
    """A zoo model with the shipped weights (checked against the manifest) or a given file."""
    from eipviz.weights import shipped_weights_path
    from eipviz.zoo import get_spec

    spec = get_spec(name)
    path = Path(weights) if weights else shipped_weights_path(name)
    model = _load_keras_file(path)
    preprocessing = spec.preprocessing
    if weights is None:
        from eipviz.weights import manifest_entry

        preprocessing = manifest_entry(name).get("preprocessing", preprocessing)
    return LoadedModel(model, f"{name} ({path.name})", preprocessing, CLASS_NAMES[spec.dataset], spec.dataset,
                       spec.cam_layer, zoo_name=name)


def load_run_checkpoint(store, run_id: str, which: str = "best") -> LoadedModel:
    """A trained run's ``best.keras`` or ``last.keras`` with the preprocessing it trained with."""
    from eipviz.zoo import get_spec

    run = store.get_run(run_id)
    if run.kind != "trained":
        raise EipvizError(f"Run {run_id} is {run.kind}; it has no checkpoint.")
    path = store.run_dir(run_id) / f"{which}.keras"
    if not path.is_file():
        raise EipvizError(f"Run {run_id} has no {which}.keras yet (it saves after its first epoch).")
    spec = get_spec(run.model)
    preprocessing = run.hyperparameters.get("preprocessing", spec.preprocessing)
    return LoadedModel(_load_keras_file(path), f"run {run_id} ({which})", preprocessing,
                       CLASS_NAMES[spec.dataset], spec.dataset, spec.cam_layer, zoo_name=run.model)


def load_uploaded_model(path: str | Path, preprocessing: str = "unit_scale", label: str | None = None) -> LoadedModel:
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
    dataset = "cifar10" if (height, width, channels) == (32, 32, 3) else (
        "mnist" if (height, width, channels) == (28, 28, 1) else None)
    classes = int(model.outputs[0].shape[-1])
    names = CLASS_NAMES[dataset] if dataset and classes == 10 else tuple(f"class {i}" for i in range(classes))
    layer, note = default_layer_with_note(model)
    return LoadedModel(model, label or path.name, preprocessing, names, dataset if classes == 10 else None, layer,
                       note=note)


def default_layer_with_note(model) -> tuple[str, str | None]:
    """The automatic CAM layer, and a note when no conv map reaches 5x5."""
    from eipviz.explain.layers import MIN_CAM_SIZE

    layer = default_target_layer(model)
    if not conv_feature_layers(model, MIN_CAM_SIZE):
        return layer, f"No conv feature map is {MIN_CAM_SIZE}x{MIN_CAM_SIZE} or larger; using {layer}."
    return layer, None


def _refuse_code_layers(path: Path) -> None:
    """Refuse files whose config holds a Lambda layer (arbitrary Python) before Keras reads them."""
    config = _model_config_text(path)
    if '"Lambda"' in config or '"class_name": "TFOpLambda"' in config:
        raise EipvizError(f"{path.name} contains a Lambda layer, which can run arbitrary code; "
                          f"it is refused. Rebuild the model without Lambda layers.")


def _model_config_text(path: Path) -> str:
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                return archive.read("config.json").decode("utf-8", "replace")
        import h5py

        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise EipvizError(f"{path.name} is not a readable Keras model file ({type(error).__name__}).") from error
    if config is None:
        raise EipvizError(f"{path.name} holds only weights, not a model. Save it with model.save(...).")
    return config.decode() if isinstance(config, bytes) else str(config)


def _load_keras_file(path: Path):
    import keras

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


def predict_probabilities(loaded: LoadedModel, inputs: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class probabilities for preprocessed inputs (softmax applied when the model ends in logits)."""
    import keras

    outputs = loaded.model.predict(inputs, batch_size=batch_size, verbose=0)
    sums = outputs.sum(axis=1)
    if (outputs.min() < 0) or not np.allclose(sums, 1.0, atol=1e-3):
        outputs = keras.ops.convert_to_numpy(keras.ops.softmax(outputs))
    return outputs
