"""Untrusted images and model files: each gets one clear message, never a traceback."""

import io

import keras
import numpy as np
import pytest
from PIL import Image

from eipviz.errors import EipvizError
from eipviz.explain.predict import ImageExplanation
from eipviz.images import read_image
from eipviz.loading import load_uploaded_model


def encode(image: Image.Image, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rgb(width=20, height=10):
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


BAD_IMAGES = {
    "empty": b"",
    "text named png": b"hello, I am not a picture",
    "truncated png": encode(rgb())[:60],
    "truncated jpeg": encode(rgb(64, 64), "JPEG")[:200],
    "1x1": encode(Image.new("RGB", (1, 1))),
    "tiff": encode(rgb(), "TIFF"),
}


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_images_raise_one_clear_error(name):
    with pytest.raises(EipvizError) as error:
        read_image(BAD_IMAGES[name], f"{name}.png")
    assert f"{name}.png" in str(error.value)


def test_decompression_bomb_is_refused_before_decoding():
    # A tiny PNG header announcing 30000x30000 pixels.
    bomb = encode(Image.new("1", (30000, 30000)), optimize=True)
    assert len(bomb) < 2_000_000
    with pytest.raises(EipvizError, match="too large to decode"):
        read_image(bomb, "bomb.png")


def test_odd_but_valid_images_become_rgb_uint8():
    cases = {
        "cmyk jpeg": encode(rgb().convert("CMYK"), "JPEG"),
        "16-bit png": encode(Image.fromarray(np.arange(200, dtype=np.uint16).reshape(10, 20) * 300)),
        "palette with transparency": encode(rgb().convert("P"), transparency=0),
        "grayscale": encode(rgb().convert("L")),
        "rgba webp": encode(rgb().convert("RGBA"), "WEBP"),
        "bmp": encode(rgb(), "BMP"),
        "animated gif": encode(rgb(), "GIF", save_all=True, append_images=[rgb(20, 10).rotate(90)]),
    }
    for name, data in cases.items():
        image = read_image(data, name)
        assert image.dtype == np.uint8 and image.shape == (10, 20, 3), name


def test_exif_rotation_is_applied():
    image = rgb(20, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = encode(image, "JPEG", exif=exif.tobytes())
    assert read_image(data, "rotated.jpg").shape == (20, 10, 3)


def small_classifier(input_shape=(8, 8, 3), outputs=1):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    x = keras.layers.Flatten()(x)
    heads = [keras.layers.Dense(3, activation="softmax", name=f"out{i}")(x) for i in range(outputs)]
    return keras.Model(inputs, heads if outputs > 1 else heads[0])


def test_random_bytes_named_keras_are_refused(tmp_path):
    path = tmp_path / "random.keras"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(EipvizError, match="not a readable Keras model"):
        load_uploaded_model(path)


def test_weights_only_h5_is_refused_with_advice(tmp_path):
    path = tmp_path / "only.weights.h5"
    small_classifier().save_weights(path)
    renamed = tmp_path / "weights.h5"
    path.rename(renamed)
    with pytest.raises(EipvizError, match="only weights"):
        load_uploaded_model(renamed)


def test_several_outputs_and_non_image_inputs_are_refused(tmp_path):
    several = tmp_path / "two_heads.keras"
    small_classifier(outputs=2).save(several)
    with pytest.raises(EipvizError, match="one image input and one class output"):
        load_uploaded_model(several)
    tabular = tmp_path / "tabular.keras"
    inputs = keras.Input((12,))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)).save(tabular)
    with pytest.raises(EipvizError, match="not images"):
        load_uploaded_model(tabular)


def _saved(tmp_path, outputs: int, name="model.keras"):
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="features")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax")(pooled))
    model.save(tmp_path / name)
    return tmp_path / name


def test_an_uploaded_32x32_rgb_model_of_five_classes_is_not_taken_for_cifar10(tmp_path):
    """Only 10 classes make a CIFAR-10 model: five classes get "class 0".."class 4" and no test set."""
    classifier = load_uploaded_model(_saved(tmp_path, 5))
    assert classifier.dataset is None and classifier.class_names == tuple(f"class {i}" for i in range(5))


def test_an_uploaded_model_with_one_output_is_refused_as_no_class_scores(tmp_path):
    """A single sigmoid unit is no class distribution: softmax over one class would always say 100%."""
    with pytest.raises(EipvizError, match="not class scores"):
        load_uploaded_model(_saved(tmp_path, 1))


def test_lambda_layers_are_refused_in_keras_and_legacy_h5(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t + 1.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    for name in ("lambda.keras", "lambda.h5"):
        model.save(tmp_path / name)
        with pytest.raises(EipvizError, match="Lambda layer"):
            load_uploaded_model(tmp_path / name)


def rewritten(source, target, config=None, extra=None):
    """A copy of the ``.keras`` zip ``source`` with its config.json replaced and files added."""
    import zipfile

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "config.json" and config is not None:
                data = config(data.decode()).encode()
            copy.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            copy.writestr(name, data)
    return target


def test_a_lambda_layer_spelled_with_json_escapes_is_refused_before_keras_reads_it(tmp_path, monkeypatch):
    from eipviz import loading

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t + 1.0)(inputs)
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(tmp_path / "plain.keras")
    escaped = rewritten(tmp_path / "plain.keras", tmp_path / "escaped.keras",
                        config=lambda text: text.replace('"Lambda"', '"\\u004cambda"'))
    monkeypatch.setattr(loading, "_load_keras_file", lambda path: pytest.fail("Keras read the file"))
    with pytest.raises(EipvizError, match="Lambda layer"):
        load_uploaded_model(escaped)


def test_a_lambda_layer_named_as_keras_resolves_it_and_a_function_keras_would_call_are_refused(tmp_path, monkeypatch):
    """A fuzzer's (2026-11-28): ``"layers.Lambda"`` in module ``keras`` is Keras' Lambda under another name (it
    loaded, predicted and was explained), and an activation may name any public Keras function."""
    import zipfile

    from eipviz import loading

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(keras.ops.negative, name="negate")(inputs)
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(tmp_path / "plain.keras")
    renamed = rewritten(tmp_path / "plain.keras", tmp_path / "renamed.keras", config=lambda text: text.replace(
        '"module": "keras.layers", "class_name": "Lambda"', '"module": "keras", "class_name": "layers.Lambda"'))
    with zipfile.ZipFile(renamed) as archive:
        assert '"class_name": "layers.Lambda"' in archive.read("config.json").decode()
    monkeypatch.setattr(loading, "_load_keras_file", lambda path: pytest.fail("Keras read the file"))
    with pytest.raises(EipvizError, match="Lambda layer"):
        load_uploaded_model(renamed)
    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    plotting = rewritten(tmp_path / "small.keras", tmp_path / "plot.keras", config=lambda text: text.replace(
        '"activation": "linear"', '"activation": {"module": "keras.utils", "class_name": "function", '
                                  '"config": "plot_model", "registered_name": "function"}', 1))
    with pytest.raises(EipvizError, match="names the function keras.utils.plot_model, which Keras would call"):
        load_uploaded_model(plotting)


def test_a_model_file_that_unpacks_far_beyond_the_upload_limit_is_refused_unread(tmp_path, monkeypatch):
    from eipviz import loading

    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    monkeypatch.setattr(loading, "MAX_UNPACKED_BYTES", 4 * 2**20)  # the real limit is 600 MB
    bomb = rewritten(tmp_path / "small.keras", tmp_path / "bomb.keras", extra={"padding.bin": b"\0" * 5 * 2**20})
    assert bomb.stat().st_size < 100_000
    with pytest.raises(EipvizError, match="unpacks to 5 MB"):
        load_uploaded_model(bomb)
    padded = rewritten(tmp_path / "small.keras", tmp_path / "padded.keras",
                       config=lambda text: text + " " * (loading.MAX_CONFIG_BYTES + 1))
    monkeypatch.setattr(loading, "MAX_UNPACKED_BYTES", 2**40)
    with pytest.raises(EipvizError, match="that is no small CNN"):
        load_uploaded_model(padded)


def test_a_config_nested_beyond_pythons_stack_and_a_huge_input_are_refused_with_a_message(tmp_path):
    """Found by fuzzing uploads' configs: JSON nesting 1,000 deep was a RecursionError, and a model taking
    20,000-pixel-square images loaded and then ran out of memory on its first image."""
    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    deep = rewritten(tmp_path / "small.keras", tmp_path / "deep.keras",
                     config=lambda text: text[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(EipvizError, match="config is not JSON"):
        load_uploaded_model(deep)
    inputs = keras.Input((20_000, 20_000, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled)).save(tmp_path / "huge.keras")
    with pytest.raises(EipvizError, match="20000x20000 images; eipviz explains small CNNs"):
        load_uploaded_model(tmp_path / "huge.keras")


def test_a_model_that_loads_but_cannot_compute_or_computes_in_bool_is_refused_at_upload(tmp_path):
    """Fuzzed configs Keras loads (an activation that halves the channels, a bool layer): before, the first
    prediction or CAM on a page was a traceback (58 and 14 of 3,000 fuzzed models)."""
    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    halved = rewritten(tmp_path / "small.keras", tmp_path / "glu.keras",
                       config=lambda text: text.replace('"activation": "linear"', '"activation": "glu"', 1))
    with pytest.raises(EipvizError, match=r"glu.keras loads but cannot compute its output \(ValueError: .*"
                                          r"incompatible with the layer"):
        load_uploaded_model(halved)
    policies = '"name": "float32"'
    boolean = rewritten(tmp_path / "small.keras", tmp_path / "bool.keras", config=lambda text: text.replace(
        policies, '"name": "bool"', 2).replace('"name": "bool"', policies, 1))  # the second layer's policy
    with pytest.raises(EipvizError, match="computes in bool; eipviz explains models that compute in floating"):
        load_uploaded_model(boolean)


def test_a_model_zip_with_two_entries_at_one_path_is_refused_leaving_no_temporary_files(tmp_path, monkeypatch):
    """Keras unpacked it into a temporary folder, failed on the second entry and left the folder (with a fuzzed
    file's 100 MB of assets) behind on every upload."""
    import tempfile

    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    clashing = rewritten(tmp_path / "small.keras", tmp_path / "clash.keras",
                         extra={"assets/big.bin": b"\0" * 1000, "model.weights.h5/": b""})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(EipvizError, match="holds two entries at 'model.weights.h5'"):
        load_uploaded_model(clashing)
    assert list(scratch.iterdir()) == []


def test_a_64x64_model_loads_and_explains_resized_images(tmp_path):
    from eipviz.explain.predict import explain_images

    path = tmp_path / "big.keras"
    small_classifier((64, 64, 3)).save(path)
    loaded = load_uploaded_model(path)
    assert loaded.input_size == (64, 64, 3) and loaded.dataset is None
    (explanation,) = explain_images(loaded, [np.zeros((32, 32, 3), np.uint8)])
    assert explanation.cam.shape == (64, 64) and len(explanation.top(loaded.class_names, 3)) == 3


def test_the_top_classes_are_the_most_probable_first():
    """The Upload page's and ``eipviz cam``'s top-5 list: highest probability first."""
    explanation = ImageExplanation(np.array([0.1, 0.6, 0.3], np.float32), 1, np.zeros((2, 2)), np.zeros((2, 2, 3)))
    assert [row["class"] for row in explanation.top(("a", "b", "c"), k=2)] == ["b", "c"]


def test_wrong_extension_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"x")
    with pytest.raises(EipvizError, match="upload a Keras model file"):
        load_uploaded_model(path)


def test_a_model_without_a_5x5_map_falls_back_with_a_visible_note(tmp_path):
    path = tmp_path / "tiny.keras"
    small_classifier((4, 4, 3)).save(path)
    loaded = load_uploaded_model(path)
    assert loaded.cam_layer and "No conv feature map is 5x5" in loaded.note


def test_an_upload_that_kills_its_trial_process_is_refused_by_name_and_one_that_passed_is_not_tried_again(
        tmp_path, monkeypatch):
    """A 4 kB config asking for a dilation of 10,000 made TensorFlow abort the whole server (std::bad_alloc, no
    exception to catch); the trial in a limited child takes that instead (``limited_child``'s tests crash it)."""
    from eipviz import loading
    from eipviz.limited_child import ChildFailed

    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    tried = []

    def crashing(function, *args, environment):
        tried.append(args)
        raise ChildFailed("ended by SIGABRT: aborted, as TensorFlow does when an allocation fails")

    monkeypatch.setattr(loading, "call_limited", crashing)
    with pytest.raises(EipvizError, match=r"small.keras is refused: computing one image with it in a separate "
                                          r"process \(at most 8 GB, 120 s\) ended by SIGABRT"):
        load_uploaded_model(tmp_path / "small.keras")
    monkeypatch.setattr(loading, "call_limited", lambda function, *args, environment: tried.append(args))
    for _ in range(2):
        load_uploaded_model(tmp_path / "small.keras", name="mine.keras")
    assert len(tried) == 2 and tried[1][2] == "mine.keras"


def test_the_trial_refuses_a_model_whose_gradients_fail_and_passes_one_the_project_explains(tmp_path, monkeypatch):
    """A stride of 10^6 computed its output, then failed (or, with no memory limit, spun for minutes) in the
    gradient pass of the first CAM a page asked for."""
    from eipviz import loading

    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")
    assert loading._trial(str(tmp_path / "small.keras"), "unit_scale", "small.keras") is None

    def failing_cam(self, *args, **kwargs):
        raise RuntimeError("Graph execution error:\n\nDetected at node x defined at (most recent call last):\n"
                           "  File \"a.py\", line 1, in f\nmessage: could not create a primitive\n\t [[{{node x}}]]")

    monkeypatch.setattr(loading.Classifier, "cams", failing_cam)
    with pytest.raises(EipvizError, match=r"small.keras computes its output but not its gradients, so no CAM can "
                                          r"explain it \(RuntimeError: message: could not create a primitive\)$"):
        loading._trial(str(tmp_path / "small.keras"), "unit_scale", "small.keras")


def test_a_model_that_runs_out_of_memory_on_one_image_is_told_so(tmp_path, monkeypatch):
    from eipviz import loading

    small_classifier((8, 8, 3)).save(tmp_path / "small.keras")

    def exhausted(self, *args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(loading.Classifier, "logits", exhausted)
    with pytest.raises(EipvizError, match=r"^small.keras loads but cannot compute its output: it runs out of memory "
                                          r"on one image \(MemoryError\). eipviz explains small CNNs.$"):
        loading._classify_model_file(tmp_path / "small.keras", "unit_scale", "small.keras")


def test_weights_holding_nan_are_refused_saying_the_training_diverged(tmp_path):
    """A diverged run's best.keras (or such an upload) showed answers that disagreed on every page."""
    from eipviz.loading import load_zoo_model
    from eipviz.zoo import build_model

    model = build_model("mnist14k")
    kernel = model.weights[0]
    kernel.assign(np.where(np.arange(kernel.shape[-1]) == 0, np.nan, keras.ops.convert_to_numpy(kernel)))
    model.save(tmp_path / "diverged.keras")
    with pytest.raises(EipvizError, match=r"diverged.keras holds weights that are not finite \(nan or inf, in "):
        load_zoo_model("mnist14k", tmp_path / "diverged.keras")
