"""Every hostile input through the library, the CLI and the page that accepts it:
one clear message (or a correct result for odd-but-valid input), never a traceback, nothing lost."""

import io
import math

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from eipviz.cli import main
from eipviz.errors import EipvizError
from eipviz.images import read_image
from eipviz.keraslog import parse_log_bytes
from eipviz.loading import load_uploaded_model
from tests.conftest import ROOT, run_cli
from tests.hostile_inputs import CORPUS, IDS, _encode, _rgb

GOOD_PNG = _encode(_rgb(30, 20))


@pytest.fixture(autouse=True)
def short_hdf5_probe(monkeypatch):
    """The spinning files wait out the probe's time limit on every path: 3 s, not the 30 a server gives (a sound
    small file reads in about 0.3 s)."""
    monkeypatch.setattr("eipviz.hdf5_probe.PROBE_SECONDS", 3)

# What each refusal says: the file (for images and models), the reason and, where there is one, what to do.
# The library, the CLI (after "error: ") and the pages all show this same message.
REFUSALS = {
    "empty.png": "empty.png is empty.",
    "text-named.png": "text-named.png is not an image eipviz can read.",
    "truncated.png": "truncated.png is damaged or truncated and cannot be decoded.",
    "truncated.jpg": "truncated.jpg is damaged or truncated and cannot be decoded.",
    "one-pixel.png": "one-pixel.png is 1x1 pixels; it is too small to classify.",
    "tiff-named.png": "tiff-named.png is a TIFF file; upload PNG, JPEG, WebP or BMP.",
    "svg-named.png": "svg-named.png is not an image eipviz can read.",
    "bomb.png": "bomb.png declares too many pixels; it is too large to decode safely",
    "huge-200mb.png": "huge-200mb.png is 200 MB; images up to 20 MB.",
    "random-bytes.keras": "random-bytes.keras is not a readable Keras model file",
    "empty.keras": "empty.keras is not a readable Keras model file",
    "text.h5": "text.h5 is not a readable Keras model file",
    "weights-only.h5": "weights-only.h5 holds only weights, not a model. Save it with model.save(...).",
    "lambda.keras": "lambda.keras contains a Lambda layer, which can run arbitrary code; it is refused.",
    "lambda.h5": "lambda.h5 contains a Lambda layer, which can run arbitrary code; it is refused.",
    "spinning-heap.h5": "spinning-heap.h5 is damaged: reading it did not finish in 3 s.",
    "spinning-weights.keras": "spinning-weights.keras is damaged: reading it did not finish in 3 s.",
    "non-image-input.keras": "non-image-input.keras takes inputs of shape (None, 12), not images",
    "two-outputs.keras": "two-outputs.keras has 1 inputs and 2 outputs",
    "unbuilt.keras": "unbuilt.keras was saved before it was built, so it has no input shape. Build it",
    "binary.log": "This is a binary file, not a training log.",
    "empty.log": "The log is empty.",
    "headers-only.log": "No epochs found. eipviz reads Keras console logs",
    "noise-10mb.log": "No epochs found. eipviz reads Keras console logs",
    "csv-header-only.csv": "No epochs found. eipviz reads Keras console logs",
    "broken.json": "This looks like JSON but is not valid",
    "wrong-shape.json": "JSON logs must be a Keras History.history object",
    "html-without-epochs.html": "No epochs found. eipviz reads Keras console logs",
}


def _decoded(data, frame=0):
    """Pillow's own RGB decoding of one frame, without eipviz's orientation or transparency handling."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(frame)
        return np.asarray(image.convert("RGB"), dtype=np.int64)


def _mean_difference(a, b):
    return float(np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64)).mean())


def _sixteen_bit_is_scaled_as_65535_is_white(image, data):
    # Pixel k holds 150 k (k = 0..383): 57450 of 65535 is 224 of 255, in all channels. Until 2026-11-27 each
    # image was stretched to its own range (here 0..255; a flat grey came out black).
    grey = np.round(np.arange(384) * 150 / 257).reshape(16, 24)
    assert image.shape == (16, 24, 3)
    assert np.array_equal(image, np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8))


def _colour_key_transparency_is_composited_on_white(image, data):
    assert (_decoded(data)[:, :12] == 0).all() and (image[:, :12] == 255).all()  # was left black
    assert np.array_equal(image[:, 12:], _decoded(data)[:, 12:])


def _cmyk_is_converted_to_rgb(image, data):
    assert image.shape == (16, 24, 3) and np.array_equal(image, _decoded(data))
    # Close to the RGB source despite JPEG noise; CMY read as RGB would be off by about 130.
    assert _mean_difference(image, _rgb()) < 16


def _palette_transparency_is_composited_on_white(image, data):
    with Image.open(io.BytesIO(data)) as palette:
        indices = np.asarray(palette)
    transparent = indices == 0
    assert transparent.any() and (_decoded(data)[transparent] == 0).all()  # black where it is see-through
    assert (image[transparent] == 255).all()
    assert np.array_equal(image[~transparent], _decoded(data)[~transparent])


def _animated_gif_gives_its_first_frame(image, data):
    assert np.array_equal(image, _decoded(data, frame=0)) and not np.array_equal(image, _decoded(data, frame=1))
    assert _mean_difference(image, _rgb(seed=0)) < 16 < _mean_difference(image, _rgb(seed=2))


def _exif_orientation_6_is_turned_clockwise(image, data):
    stored = _decoded(data)  # 24 wide, 16 high as stored
    assert stored.shape == (16, 24, 3) and image.shape == (24, 16, 3)
    assert np.array_equal(image, np.rot90(stored, k=-1))


def _model_with_64x64_input_is_loaded_with_numbered_classes(classifier, data):
    assert classifier.input_size == (64, 64, 3) and classifier.dataset is None
    assert tuple(classifier.class_names) == tuple(f"class {i}" for i in range(10))


def _log_of_nan_keeps_both_epochs_as_nan(parsed, data):
    assert list(parsed.epochs) == [1, 2] and parsed.metric_names == ["loss", "accuracy"]
    assert all(math.isnan(value) for metrics in parsed.epochs.values() for value in metrics.values())


# What eipviz makes of each odd but valid input.
ACCEPTED = {
    "sixteen-bit.png": _sixteen_bit_is_scaled_as_65535_is_white,
    "colour-key.png": _colour_key_transparency_is_composited_on_white,
    "cmyk.jpg": _cmyk_is_converted_to_rgb,
    "palette-transparent.png": _palette_transparency_is_composited_on_white,
    "animated-gif.png": _animated_gif_gives_its_first_frame,
    "exif-rotated.jpg": _exif_orientation_6_is_turned_clockwise,
    "input-64x64.keras": _model_with_64x64_input_is_loaded_with_numbered_classes,
    "only-nan.log": _log_of_nan_keeps_both_epochs_as_nan,
}


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for kind, name, make, outcome in CORPUS:
        paths[name] = folder / name
        paths[name].write_bytes(make())
    (folder / "good.png").write_bytes(GOOD_PNG)
    return folder, paths


@pytest.mark.parametrize("kind, name, make, outcome", CORPUS, ids=IDS)
def test_library(kind, name, make, outcome, corpus_files):
    _, paths = corpus_files
    data = paths[name].read_bytes()
    call = {"image": lambda: read_image(data, name), "model": lambda: load_uploaded_model(paths[name]),
            "log": lambda: parse_log_bytes(data)}[kind]
    if outcome == "error":
        with pytest.raises(EipvizError) as error:
            call()
        assert REFUSALS[name] in str(error.value)
    else:
        result = call()
        if kind == "image":
            assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3
        ACCEPTED[name](result, data)


def test_every_input_of_the_corpus_has_an_expected_message_or_result():
    assert set(REFUSALS) == {name for _, name, _, outcome in CORPUS if outcome == "error"}
    assert set(ACCEPTED) == {name for _, name, _, outcome in CORPUS if outcome == "ok"}


def _cli_args(kind, path, folder, out):
    return {
        "image": ["cam", "--model", "mnist14k", "--image", path, "--out", str(out)],
        "model": ["cam", "--model", path, "--image", str(folder / "good.png"), "--out", str(out)],
        "log": ["import-log", path],
    }[kind]


def _check_cli_outcome(name, outcome, code, stderr):
    assert "Traceback" not in stderr, stderr
    if outcome == "error":
        assert code == 2, stderr
        assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
        assert REFUSALS[name] in stderr
    else:
        assert code == 0, stderr


@pytest.mark.parametrize("kind, name, make, outcome", CORPUS, ids=IDS)
def test_cli(kind, name, make, outcome, corpus_files, tmp_path, data_dir, capsys):
    """``main()`` in this process: the same code path as the command without a TensorFlow start-up per input."""
    folder, paths = corpus_files
    code = main(_cli_args(kind, str(paths[name]), folder, tmp_path))
    _check_cli_outcome(name, outcome, code, capsys.readouterr().err)


@pytest.mark.parametrize("name", ["cmyk.jpg", "truncated.png"])
def test_cli_as_a_real_process(name, corpus_files, tmp_path, data_dir):
    """Two inputs through ``python -m eipviz`` itself: exit status and stderr as a shell sees them."""
    folder, paths = corpus_files
    (kind, _, _, outcome), = [case for case in CORPUS if case[1] == name]
    result = run_cli(*_cli_args(kind, str(paths[name]), folder, tmp_path), check=False)
    _check_cli_outcome(name, outcome, result.returncode, result.stderr)


def _page(script):
    at = AppTest.from_file(str(ROOT / "app_pages" / script), default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _messages(at):
    return [e.value for e in at.error]


@pytest.mark.parametrize("kind, name, make, outcome", [c for c in CORPUS if c[0] == "image"],
                         ids=[c[1] for c in CORPUS if c[0] == "image"])
def test_upload_page_images(kind, name, make, outcome, corpus_files, data_dir):
    _, paths = corpus_files
    at = _page("upload.py")
    at.selectbox(key="up-zoo").select("mnist14k").run()
    uploader = next(u for u in at.file_uploader if "Images" in u.label)
    uploader.set_value([("good.png", GOOD_PNG, "image/png"), (name, paths[name].read_bytes(), "image/png")]).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == (2 if outcome == "ok" else 1)  # the good image is never lost
    if outcome == "error":
        assert any(REFUSALS[name] in message for message in _messages(at)), _messages(at)


@pytest.mark.parametrize("kind, name, make, outcome", [c for c in CORPUS if c[0] == "model"],
                         ids=[c[1] for c in CORPUS if c[0] == "model"])
def test_upload_page_models(kind, name, make, outcome, corpus_files, data_dir):
    _, paths = corpus_files
    at = _page("upload.py")
    at.file_uploader(key="up-model-file").set_value((name, paths[name].read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="up-use-model").click().run()
    assert not at.exception
    if outcome == "error":
        assert any(REFUSALS[name] in message for message in _messages(at)), _messages(at)
        assert "Uploaded model" not in at.radio(key="up-source").options  # nothing half-loaded
    else:
        assert any(f"Loaded {name}" in s.value for s in at.success)


@pytest.mark.parametrize("kind, name, make, outcome", [c for c in CORPUS if c[0] == "log"],
                         ids=[c[1] for c in CORPUS if c[0] == "log"])
def test_curves_page_logs(kind, name, make, outcome, corpus_files, tmp_path, monkeypatch):
    from eipviz.training.store import RunStore

    _, paths = corpus_files
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = _page("curves.py")
    at.file_uploader(key="log-file-0").set_value((name, paths[name].read_bytes(), "text/plain")).run()
    at.button(key="log-import").click().run()
    assert not at.exception
    runs = RunStore(tmp_path).list_runs()
    if outcome == "error":
        assert any(REFUSALS[name] in message for message in _messages(at)), _messages(at)
        assert runs == []  # refused, and the store is untouched
    else:
        assert len(runs) == 1 and runs[0].kind == "imported"


def test_an_uploaded_model_keeps_working_under_an_upper_case_or_very_long_name(tmp_path):
    """The browser's name was the temporary copy's: Keras matches ``.keras`` case-sensitively (a misleading
    "legacy SavedModel" refusal), and a 300-byte UTF-8 name is too long for Linux (an OSError traceback)."""
    from eipviz.loading import load_uploaded_bytes, scratch_name
    from tests.hostile_inputs import _classifier, _model_bytes

    data = _model_bytes(lambda path: _classifier((28, 28, 1)).save(path), ".keras")
    long_name = "模型" * 50 + ".keras"
    for name in ("MNIST14K.KERAS", long_name):
        assert load_uploaded_bytes(data, name).input_size == (28, 28, 1)
    assert scratch_name(long_name).endswith(".keras") and len(scratch_name(long_name).encode()) <= 106
    (tmp_path / "M.KERAS").write_bytes(data)
    with pytest.raises(EipvizError, match="lower-case suffix; rename it to M.keras"):
        load_uploaded_model(tmp_path / "M.KERAS")
