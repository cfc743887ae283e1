"""Load a model to explain or evaluate: shipped weights, a run's checkpoint, or an untrusted file.

Every source becomes a ``Classifier`` that knows how to feed the model and
name its answers.
"""

import dataclasses
import hashlib
import json
import posixpath
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import h5py
import keras
import numpy as np

from eipviz.access import require_write
from eipviz.attribution.layers import MIN_CAM_SIZE, conv_feature_layers, default_target_layer, flat_layers
from eipviz.classifier import Classifier, StoredPredictions
from eipviz.data import CLASS_NAMES
from eipviz.errors import EipvizError, no_file_error
from eipviz.hdf5_probe import check_hdf5
from eipviz.limited_child import (
    CALL_SECONDS,
    MEMORY_BYTES,
    ChildFailed,
    ChildUnavailable,
    SpoiledChild,
    call_limited,
)
from eipviz.preprocessing import check_known
from eipviz.quiet import import_keras_quietly
from eipviz.weights import manifest_entry, read_manifest, sha256_of, shipped_predictions, shipped_weights_path
from eipviz.zoo import MODELS, get_spec

MAX_MODEL_BYTES = 300 * 1024 * 1024
MAX_UNPACKED_BYTES = 2 * MAX_MODEL_BYTES  # weights barely compress: a larger unpacked size is a zip bomb
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # resnet18's config.json is about 60 kB
MAX_INPUT_SIDE = 1024  # pixels: the zoo takes 28 and 32; 64 and 224 are fine too
CODE_LAYERS = {"Lambda", "TFOpLambda"}
ACTIVATION_MODULES = ("keras.activations", "keras.src.activations")  # functions a config may name
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CHECKPOINT = "best.keras"
TRIED_KEPT = 64
# The trial's child: on the CPU (it holds no GPU memory), TensorFlow's logs left out (cuInit fails there), and
# few threads and malloc arenas, which count against its address-space limit (a 275 MB model's child reached
# 7.25 GB of its 8 with 96 threads, 5.2 GB with 9: a reviewer's measure).
TRIAL_ENVIRONMENT = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
                     "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
_TRIED: OrderedDict[tuple[str, str], None] = OrderedDict()  # (sha256, preprocessing) of files that passed the trial
_TRIED_LOCK = threading.Lock()  # Streamlit runs each session's page in its own thread


def load_zoo_model(name: str, weights: str | Path | None = None, preprocessing: str | None = None) -> Classifier:
    """A zoo model with the shipped weights (checked against the manifest) or a given file.

    Shipped weights come with their test-set predictions when the manifest lists them. A given file is checked
    to be this zoo model's shape; unless ``preprocessing`` is given it is fed as the shipped weights are (the
    fast recipe's, which is not always the documented one: resnet20v1's shipped weights take
    channel_standardize, its seed pixel_mean), with a note saying so unless it is the shipped file itself.
    """
    spec = get_spec(name)
    if not weights:
        path = shipped_weights_path(name)  # checked against the manifest's sha256
        entry = manifest_entry(name)
        stored = shipped_predictions(name)
        predictions = StoredPredictions(stored[0], entry["sha256"], stored[1]) if stored else None
        return Classifier(_load_keras_file(path), f"{name} ({path.name})",
                          preprocessing or entry.get("preprocessing", spec.preprocessing), CLASS_NAMES[spec.dataset],
                          spec.dataset, spec.cam_layer, source=str(path), predictions=predictions)
    path = Path(weights)
    if path.is_file():  # a file of unknown origin, checked as an upload is (a broken one read "File not found")
        _refuse_code_layers(path)
    model = _load_keras_file(path)
    _check_zoo_shape(model, name, path.name)
    note = None
    if preprocessing is None:
        entry = read_manifest().get(name, {})
        preprocessing = entry.get("preprocessing", spec.preprocessing)
        if entry.get("sha256") != sha256_of(path):
            note = (f"{path.name} is fed as the shipped {name} is ({preprocessing}); if it was trained with another "
                    f"preprocessing, say which (--preprocessing).")
    return Classifier(model, f"{name} ({path.name})", preprocessing, CLASS_NAMES[spec.dataset], spec.dataset,
                      spec.cam_layer, source=str(path), note=note)


def _check_zoo_shape(model, name: str, file_name: str) -> None:
    """Refuse a file that is not this zoo model's shape: another model's weights gave a broadcasting
    traceback deep in preprocessing."""
    _check_image_classifier(model, file_name)
    spec = get_spec(name)
    expected = (tuple(spec.input_shape), len(CLASS_NAMES[spec.dataset]))
    found = (tuple(int(d) for d in model.inputs[0].shape[1:]), int(model.outputs[0].shape[-1]))
    if found != expected:
        raise EipvizError(f"{file_name} takes {'x'.join(map(str, found[0]))} images and gives {found[1]} classes; "
                          f"{name} takes {'x'.join(map(str, expected[0]))} and gives {expected[1]}. "
                          f"Is it another model's file?")


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
    """An untrusted ``.keras`` or legacy ``.h5`` classifier, refused cleanly when unsafe or unusable: first
    computed in a limited child (``_try_in_child``), for the CLI too, where a bomb took 8 GB in 10 s, inviting
    the kernel's OOM killer to end any process on the machine (a helper's stress test, 2026-11-28)."""
    path = Path(path)
    check_known(preprocessing)  # before the file is read
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise EipvizError(f"{path.name}: upload a Keras model file ({', '.join(MODEL_SUFFIXES)}).")
    if path.suffix not in MODEL_SUFFIXES:  # Keras tells the formats apart by a lower-case suffix only
        raise EipvizError(f"{path.name}: Keras reads model files by a lower-case suffix; rename it to "
                          f"{path.stem}{path.suffix.lower()}.")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise EipvizError(f"{path.name} is larger than {MAX_MODEL_BYTES // 2**20} MB.")
    _refuse_code_layers(path)
    _try_in_child(path, preprocessing, name or path.name)
    return _classify_model_file(path, preprocessing, name or path.name)


def _classify_model_file(path: Path, preprocessing: str, name: str) -> Classifier:
    """The model file as a ``Classifier``, once it computes one blank image (its checks before Keras done)."""
    model = _load_keras_file(path)
    _check_image_classifier(model, path.name)
    height, width, channels = (int(d) for d in model.inputs[0].shape[1:])
    dataset = {(32, 32, 3): "cifar10", (28, 28, 1): "mnist"}.get((height, width, channels))
    classes = int(model.outputs[0].shape[-1])
    if classes != 10:
        dataset = None
    names = CLASS_NAMES[dataset] if dataset else tuple(f"class {i}" for i in range(classes))
    layer, note = default_layer_with_note(model)
    classifier = Classifier(model, name, preprocessing, names, dataset, layer, source=str(path), note=note)
    _check_computes(classifier, path.name)
    return classifier


def _try_in_child(path: Path, preprocessing: str, name: str) -> None:
    """Raise ``EipvizError`` unless the model file loads, computes and takes a Grad-CAM in a limited child first
    (``limited_child``): a small config asking for huge work aborted the whole server. A file that passed is
    not tried again (``TRIED_KEPT`` of them, by content)."""
    key = (sha256_of(path), preprocessing)
    with _TRIED_LOCK:
        if key in _TRIED:
            _TRIED.move_to_end(key)
            return
    environment = {"KERAS_BACKEND": keras.backend.backend(), **TRIAL_ENVIRONMENT}
    try:
        refused = call_limited(_trial, str(path), preprocessing, name, environment=environment)
    except ChildFailed as failure:
        raise EipvizError(f"{name} is refused: computing one image with it in a separate process "
                          f"(at most {MEMORY_BYTES // 2**30} GB, {CALL_SECONDS} s) {failure}. eipviz explains small "
                          f"CNNs.") from failure
    except ChildUnavailable as unavailable:
        raise EipvizError(f"{name} could not be checked: {unavailable}.") from unavailable
    if refused is not None:
        raise EipvizError(refused)
    with _TRIED_LOCK:
        _TRIED[key] = None
        while len(_TRIED) > TRIED_KEPT:
            _TRIED.popitem(last=False)


def _trial(path: str, preprocessing: str, name: str) -> None:
    """What the child tries (``_try_in_child``): the model as the server would load it, one blank image, and
    the pages' first explanation. Grad-CAM's gradients fail alone for some (a stride of 10^6: TensorFlow's
    AbortedError in Conv2DBackpropInput); a CAM the project refuses with a message is left to say so later."""
    import_keras_quietly()  # the child runs Keras as the server does, whatever keras.json says
    classifier = _classify_model_file(Path(path), preprocessing, name)
    try:
        classifier.cams(np.zeros((1, *classifier.input_size), np.uint8))
    except EipvizError:
        pass
    except Exception as error:  # Keras and its backends raise many types
        raise _compute_failure(name, "computes its output but not its gradients, so no CAM can explain it",
                               error) from error


def _check_computes(classifier: Classifier, name: str) -> None:
    """One blank image through the model: a config Keras loads can still fail on its first image (an int64
    Conv2D, a layer renamed "x/y", an activation that is no function: 58 of 3,000 fuzzed models), and that
    failure surfaced as a traceback on the page that first predicted."""
    try:
        classifier.logits(np.zeros((1, *classifier.input_size), np.uint8))
    except Exception as error:  # Keras and its backends raise many types
        raise _compute_failure(name, "loads but cannot compute its output", error) from error


def _compute_failure(name: str, what: str, error: Exception) -> EipvizError:
    """The refusal of model ``name`` that ``what`` (failed) with ``error``, saying so plainly when out of memory."""
    kind = type(error).__name__
    if kind in ("ResourceExhaustedError", "MemoryError"):  # the trial's child is not reused after this
        return SpoiledChild(f"{name} {what}: it runs out of memory on one image ({kind}). eipviz explains small "
                            f"CNNs.")
    return EipvizError(f"{name} {what} ({kind}: {_keras_reason(error)})")


def _keras_reason(error: Exception) -> str:
    """Keras' reason for ``error`` in one line of at most 300 characters: its first line, without the bold
    marks Keras writes for a terminal; after "Exception encountered when calling X" the line saying what; after
    TensorFlow's "Graph execution error:" (a traceback follows) the last line that is no frame, node or hint."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(error).__name__]
    if lines[0].startswith("Exception encountered") and len(lines) > 1:
        lines[0] += " " + lines[1]
    if lines[0] == "Graph execution error:":
        told = [line for line in lines[1:] if not line.startswith(("File ", "[[", "Detected at node", "Hint:"))]
        lines[0] = told[-1] if told else lines[0]
    return lines[0][:300]


def load_uploaded_bytes(data: bytes, filename: str, preprocessing: str = "unit_scale") -> Classifier:
    """``load_uploaded_model`` for a file's bytes (a browser upload); the temporary copy is removed.

    Refused in viewer mode: a model file is code-like input only editors may hand the server.
    """
    require_write("Uploading a model file")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / scratch_name(filename)  # error messages name the user's file
        path.write_bytes(data)
        classifier = load_uploaded_model(path, preprocessing, name=filename)
    return dataclasses.replace(classifier, source=f"upload: {filename}", sha256=hashlib.sha256(data).hexdigest())


def scratch_name(filename: str) -> str:
    """A browser's file name made safe to write: the base name, its suffix lower-case (Keras matches
    ``.keras`` case-sensitively) and its stem cut to 100 bytes (a 300-byte UTF-8 name is valid on macOS and
    Windows, too long for Linux)."""
    name = Path(filename).name
    suffix = Path(name).suffix
    stem = name[:len(name) - len(suffix)].encode()[:100].decode(errors="ignore") or "model"
    return stem + suffix.lower()


def load_classifier(model: str, weights: str | None = None, preprocessing: str | None = None) -> Classifier:
    """A zoo name (shipped weights, or ``weights``) or a path to a model file, as the CLI's ``--model`` takes."""
    if model in MODELS:
        return load_zoo_model(model, weights, preprocessing)
    if weights:
        raise EipvizError(f"--weights goes with a zoo model name ({', '.join(MODELS)}); {model!r} is a file "
                          f"already: give it alone.")
    if Path(model).is_file():
        return load_uploaded_model(model, preprocessing or "unit_scale")
    raise EipvizError(f"{model!r} is neither a zoo model ({', '.join(MODELS)}) nor a model file.")


def default_layer_with_note(model) -> tuple[str, str | None]:
    """The automatic CAM layer, and a note when no conv map reaches 5x5."""
    layer = default_target_layer(model)
    if not conv_feature_layers(model, MIN_CAM_SIZE):
        return layer, f"No conv feature map is {MIN_CAM_SIZE}x{MIN_CAM_SIZE} or larger; using {layer}."
    return layer, None


def _refuse_code_layers(path: Path) -> None:
    """Refuse files whose config holds a Lambda layer (arbitrary Python) before Keras reads them.

    The parsed config is searched, not its text: JSON may spell ``Lambda`` with escapes, and Keras resolves
    ``"layers.Lambda"`` in module ``keras`` to the same class (a fuzzer's, 2026-11-28), so a dotted name counts by
    its last part. A function named by reference is refused unless it is a Keras activation: Keras calls any
    public function named there (the fuzzer had ``keras.utils.plot_model`` run while the model was traced).
    """
    try:
        config = json.loads(_model_config_text(path))
    except (ValueError, RecursionError) as error:  # nesting deeper than Python's stack (a fuzzer's) recurses
        raise EipvizError(f"{path.name} is not a readable Keras model file (its config is not JSON).") from error
    nodes = _class_nodes(config)
    if CODE_LAYERS & {node["class_name"].rsplit(".", 1)[-1] for node in nodes}:
        raise EipvizError(f"{path.name} contains a Lambda layer, which can run arbitrary code; "
                          f"it is refused. Rebuild the model without Lambda layers.")
    for node in nodes:
        module = str(node.get("module"))
        if node["class_name"] == "function" and not module.startswith(ACTIVATION_MODULES):
            raise EipvizError(f"{path.name} names the function {module}.{node.get('config')}, which Keras would "
                              f"call; only Keras activations are accepted, so it is refused.")


def _class_nodes(config) -> list[dict]:
    """Every object with a ``class_name`` anywhere in a model config (nested models, wrappers, functions)."""
    nodes, pending = [], [config]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str):
                nodes.append(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return nodes


def _model_config_text(path: Path) -> str:
    """The config of an untrusted model file, its HDF5 parts first read whole in a child (``check_hdf5``)."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                _refuse_zip_bomb(archive, path.name)
                _refuse_clashing_members(archive, path.name)
                _check_hdf5_members(archive, path.name)
                return archive.read("config.json").decode("utf-8", "replace")
        check_hdf5(path, path.name, MAX_UNPACKED_BYTES)
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise EipvizError(f"{path.name} is not a readable Keras model file ({type(error).__name__}).") from error
    if config is None:
        raise EipvizError(f"{path.name} holds only weights, not a model. Save it with model.save(...).")
    if not isinstance(config, (bytes, str)):  # a number, a reference, an empty attribute: no JSON text
        raise EipvizError(f"{path.name} is not a readable Keras model file (its config is not text).")
    if len(config) > MAX_CONFIG_BYTES:
        raise EipvizError(f"{path.name}'s model config is over {MAX_CONFIG_BYTES // 2**20} MB; that is no small CNN.")
    return config.decode() if isinstance(config, bytes) else str(config)


def _refuse_zip_bomb(archive: zipfile.ZipFile, name: str) -> None:
    """A ``.keras`` file is a zip: refuse one that would unpack far beyond the upload limit before reading it."""
    sizes = {info.filename: info.file_size for info in archive.infolist()}
    if sizes.get("config.json", 0) > MAX_CONFIG_BYTES or sum(sizes.values()) > MAX_UNPACKED_BYTES:
        raise EipvizError(f"{name} unpacks to {sum(sizes.values()) / 2**20:,.0f} MB (config "
                          f"{sizes.get('config.json', 0) / 2**20:,.1f} MB); that is no small CNN, so it is refused.")


def _refuse_clashing_members(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse a zip with two entries at one path (a file and a folder, say): Keras unpacks the whole archive
    into a temporary folder, fails on the second, and leaves the folder behind (100 MB a fuzzed upload)."""
    seen: set[str] = set()
    for member in archive.namelist():
        path = posixpath.normpath(member.replace("\\", "/")).lstrip("/")
        if path in seen:
            raise EipvizError(f"{name} holds two entries at {path!r}; it is no file Keras saved, so it is refused.")
        seen.add(path)


def _check_hdf5_members(archive: zipfile.ZipFile, name: str) -> None:
    """``check_hdf5`` on each HDF5 file inside a ``.keras`` zip (Keras reads ``model.weights.h5``)."""
    with tempfile.TemporaryDirectory() as scratch:
        for member in archive.namelist():
            if member.endswith(".h5"):
                check_hdf5(Path(archive.extract(member, scratch)), name, MAX_UNPACKED_BYTES)


def _load_keras_file(path: Path) -> keras.Model:
    if not path.is_file():
        raise no_file_error(path, "Model file")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):  # Keras says "File not found" of a damaged one
        raise EipvizError(f"{path.name} is not a readable Keras model file (BadZipFile).")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for broken or foreign files
        message = _keras_reason(error)
        if "safe_mode" in message or "Lambda" in message:
            raise EipvizError(f"{path.name} needs unsafe deserialisation (custom code); it is refused.") from error
        raise EipvizError(f"Could not load {path.name} as a Keras model: {message}") from error
    _check_finite_weights(model, path.name)
    return model


def _check_finite_weights(model, name: str) -> None:
    """Refuse weights holding nan or inf: a run whose training diverged saved them, and every page then showed
    answers that disagreed (9,020 misclassified, none in the gallery) instead of saying why."""
    for weight in model.weights:
        if not np.isfinite(keras.ops.convert_to_numpy(weight.value)).all():
            raise EipvizError(f"{name} holds weights that are not finite (nan or inf, in {weight.path}): the "
                              f"training that saved it diverged, so every answer would be nan. Train it again "
                              f"with a lower learning rate.")


def _check_image_classifier(model, name: str) -> None:
    try:
        model.inputs, model.outputs
    except (AttributeError, ValueError) as error:  # a Sequential saved before it was built has neither
        raise EipvizError(f"{name} was saved before it was built, so it has no input shape. Build it "
                          f"(model.build((None, 32, 32, 3)) or one call on images) and save it again.") from error
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise EipvizError(f"{name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          f"eipviz explains models with one image input and one class output.")
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] not in (1, 3) or None in shape[1:]:
        raise EipvizError(f"{name} takes inputs of shape {tuple(shape)}, not images (height, width, 1 or 3).")
    if max(shape[1:3]) > MAX_INPUT_SIDE:  # one 20,000-pixel-square image is 4.8 GB as float32: out of memory
        raise EipvizError(f"{name} takes {shape[1]}x{shape[2]} images; eipviz explains small CNNs, with inputs "
                          f"of at most {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE} pixels.")
    out = model.outputs[0].shape
    if len(out) != 2 or out[-1] < 2:
        raise EipvizError(f"{name} outputs shape {tuple(out)}, not class scores.")
    computing = {path: layer.compute_dtype for path, layer in flat_layers(model) if layer.compute_dtype}
    for layer_name, dtype in computing.items():  # a bool or complex layer loaded, then broke every CAM
        if not keras.backend.is_float_dtype(dtype):
            raise EipvizError(f"{name}'s layer {layer_name!r} computes in {dtype}; eipviz explains models that "
                              f"compute in floating point.")
