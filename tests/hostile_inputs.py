"""A generated corpus of hostile inputs: images, model files and logs.

Each entry is (kind, file name, bytes factory, outcome): "error" means eipviz
must refuse it with one clear message; "ok" means an odd but valid input it
must handle.
"""

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def _encode(image, fmt="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rgb(width=24, height=16, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _exif_rotated():
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(_rgb(), "JPEG", exif=exif.tobytes())


def _model_bytes(build, suffix):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"m{suffix}"
        build(path)
        return path.read_bytes()


def _classifier(input_shape=(8, 8, 3), outputs=1, lambda_layer=False):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs) if lambda_layer else inputs
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    x = keras.layers.Flatten()(x)
    heads = [keras.layers.Dense(10, activation="softmax", name=f"out{i}")(x) for i in range(outputs)]
    return keras.Model(inputs, heads if outputs > 1 else heads[0])


def _tabular(path):
    import keras

    inputs = keras.Input((12,))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)).save(path)


def _weights_only(path):
    _classifier().save_weights(path.with_name("w.weights.h5"))
    path.with_name("w.weights.h5").rename(path)


SPINNING_HDF5 = Path(__file__).parent / "data" / "models" / "spinning-heap.h5"  # see its README


def _spinning_weights_keras():
    """A sound ``.keras`` whose ``model.weights.h5`` is the spinning HDF5 file."""
    import zipfile

    sound = zipfile.ZipFile(io.BytesIO(_model_bytes(lambda p: _classifier().save(p), ".keras")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in sound.namelist():
            archive.writestr(member, SPINNING_HDF5.read_bytes() if member == "model.weights.h5" else sound.read(member))
    return buffer.getvalue()


def _colour_keyed():
    """An RGB image whose left half is black: the colour a PNG ``tRNS`` chunk then marks see-through."""
    pixels = np.asarray(_rgb()).copy()
    pixels[pixels.sum(axis=-1) == 0] = 1  # the only black pixels are the left half's
    pixels[:, :12] = 0
    return Image.fromarray(pixels)


def _unbuilt(path):
    """A Sequential saved before it was built: it has no inputs."""
    import keras

    keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                      keras.layers.Dense(10, activation="softmax")]).save(path)


def _noise(size, seed=1):
    """Random printable characters and line breaks."""
    alphabet = np.frombuffer(bytes(range(32, 127)) + b"\n" * 8, dtype=np.uint8)
    return np.random.default_rng(seed).choice(alphabet, size).tobytes()


CORPUS = [
    # images
    ("image", "empty.png", lambda: b"", "error"),
    ("image", "text-named.png", lambda: b"just some text, not a picture", "error"),
    ("image", "truncated.png", lambda: _encode(_rgb())[:70], "error"),
    ("image", "truncated.jpg", lambda: _encode(_rgb(64, 64), "JPEG")[:300], "error"),
    ("image", "one-pixel.png", lambda: _encode(Image.new("RGB", (1, 1))), "error"),
    ("image", "tiff-named.png", lambda: _encode(_rgb(), "TIFF"), "error"),
    ("image", "svg-named.png", lambda: b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "error"),
    ("image", "bomb.png", lambda: _encode(Image.new("1", (30000, 30000)), optimize=True), "error"),
    ("image", "huge-200mb.png", lambda: _encode(_rgb()) + bytes(200 * 1024 * 1024), "error"),
    ("image", "sixteen-bit.png", lambda: _encode(Image.fromarray(
        (np.arange(384, dtype=np.uint16).reshape(16, 24) * 150))), "ok"),
    ("image", "colour-key.png", lambda: _encode(_colour_keyed(), transparency=(0, 0, 0)), "ok"),
    ("image", "cmyk.jpg", lambda: _encode(_rgb().convert("CMYK"), "JPEG"), "ok"),
    ("image", "palette-transparent.png", lambda: _encode(_rgb().convert("P"), transparency=0), "ok"),
    ("image", "animated-gif.png", lambda: _encode(_rgb(), "GIF", save_all=True, append_images=[_rgb(seed=2)]), "ok"),
    ("image", "exif-rotated.jpg", _exif_rotated, "ok"),
    # model files
    ("model", "random-bytes.keras", lambda: np.random.default_rng(0).bytes(4096), "error"),
    ("model", "empty.keras", lambda: b"", "error"),
    ("model", "text.h5", lambda: b"not an hdf5 file", "error"),
    ("model", "weights-only.h5", lambda: _model_bytes(_weights_only, ".h5"), "error"),
    ("model", "lambda.keras", lambda: _model_bytes(lambda p: _classifier(lambda_layer=True).save(p), ".keras"),
     "error"),
    ("model", "lambda.h5", lambda: _model_bytes(lambda p: _classifier(lambda_layer=True).save(p), ".h5"), "error"),
    ("model", "spinning-heap.h5", SPINNING_HDF5.read_bytes, "error"),
    ("model", "spinning-weights.keras", _spinning_weights_keras, "error"),
    ("model", "non-image-input.keras", lambda: _model_bytes(_tabular, ".keras"), "error"),
    ("model", "two-outputs.keras", lambda: _model_bytes(lambda p: _classifier(outputs=2).save(p), ".keras"), "error"),
    ("model", "unbuilt.keras", lambda: _model_bytes(_unbuilt, ".keras"), "error"),
    ("model", "input-64x64.keras", lambda: _model_bytes(lambda p: _classifier((64, 64, 3)).save(p), ".keras"), "ok"),
    # logs
    ("log", "binary.log", lambda: b"\x89PNG\x00\x00\x01" + np.random.default_rng(0).bytes(2000), "error"),
    ("log", "empty.log", lambda: b"", "error"),
    ("log", "headers-only.log", lambda: b"Epoch 1/10\nEpoch 2/10\nEpoch 3/10\n", "error"),
    ("log", "noise-10mb.log", lambda: _noise(10 * 1024 * 1024), "error"),
    ("log", "csv-header-only.csv", lambda: b"epoch,loss,accuracy\n", "error"),
    ("log", "broken.json", lambda: b'{"loss": [0.5, 0.4', "error"),
    ("log", "wrong-shape.json", lambda: json.dumps({"loss": 0.5}).encode(), "error"),
    ("log", "html-without-epochs.html", lambda: b"<html><body><p>Training went fine.</p></body></html>", "error"),
    ("log", "only-nan.log", lambda: b"Epoch 1/2\n1/1 - loss: nan - accuracy: nan\nEpoch 2/2\n1/1 - loss: nan\n", "ok"),
]

IDS = [name for _, name, _, _ in CORPUS]
assert len(CORPUS) >= 30
