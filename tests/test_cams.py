"""CAM methods against models where the right answer is known."""

import threading

import keras
import numpy as np
import pytest
from keras import layers

from eipviz.attribution import cams
from eipviz.attribution.cams import PROBES_KEPT, Probes
from eipviz.attribution.graph import INPUT, probe_model, softmax
from eipviz.attribution.methods import METHODS, make_cam
from eipviz.zoo import build_model

SIZE = 16


def quadrant_model(head_activation="linear", logit_scale=1.0):
    """Channel k of the 4-channel image holds quadrant k; class 0's logit reads channel 0 only.

    So the evidence for class 0 lies in the top-left quadrant, and every CAM
    method must light it more than the other three. ``logit_scale`` multiplies the head's weights.
    """
    inputs = keras.Input((SIZE, SIZE, 4))
    features = layers.Conv2D(4, 1, activation="relu", name="features",
                             )(inputs)
    pooled = layers.GlobalAveragePooling2D()(features)
    head = layers.Dense(2, activation=head_activation, name="head")
    outputs = head(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("features").set_weights([np.eye(4, dtype=np.float32)[None, None], np.zeros(4, np.float32)])
    head.set_weights([np.array([[4.0, 0], [0, 1], [0, 1], [0, 1]], np.float32) * logit_scale,
                      np.zeros(2, np.float32)])
    return model


def quadrant_images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, SIZE, SIZE, 4), np.float32)
    half = SIZE // 2
    corners = [(0, 0), (0, half), (half, 0), (half, half)]
    for k, (row, col) in enumerate(corners):
        x[:, row:row + half, col:col + half, k] = rng.uniform(0.5, 1.0, (n, half, half))
    return x


def cams_of(model, x, method="gradcam", layer=None, classes=None, upsample=True):
    maps, _, _ = make_cam(model, method, layer)(x, classes, upsample=upsample)
    return maps


def quadrant_means(cams):
    half = SIZE // 2
    return np.array([cams[:, :half, :half].mean(), cams[:, :half, half:].mean(),
                     cams[:, half:, :half].mean(), cams[:, half:, half:].mean()])


CLASS_AGNOSTIC = ("eigencam", "random")  # the first principal component, and chance
# This model is linear where its ReLUs pass, so its input gradient is the same everywhere the noise switches them on.
NOISY_GRADIENTS = ("smoothgrad",)
SOFT_WEIGHTS = ("scorecam", "fasterscorecam")  # Score-CAM's softmax over channels keeps some of every channel


@pytest.mark.parametrize("method", [m for m in METHODS if m not in CLASS_AGNOSTIC + NOISY_GRADIENTS])
def test_each_method_lights_the_quadrant_the_logit_depends_on(method):
    cams = cams_of(quadrant_model(), quadrant_images(), method, "features", 0)
    means = quadrant_means(cams)
    assert cams.shape == (3, SIZE, SIZE) and cams.dtype == np.float32
    assert 0.0 <= cams.min() and cams.max() <= 1.0
    assert means.argmax() == 0 and means[0] > 0.5
    if method not in SOFT_WEIGHTS:
        assert means[1:].max() < 0.05


@pytest.mark.parametrize("method", METHODS)
def test_batched_cams_equal_per_image_cams(method):
    model = build_model("resnet20v1")
    x = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype(np.float32)
    cam = make_cam(model, method)
    batched, classes, _ = cam(x, class_indices=[0, 3, 5, 9])
    for i in range(len(x)):
        single, _, _ = cam(x[i:i + 1], class_indices=[classes[i]])
        np.testing.assert_allclose(single[0], batched[i], atol=2e-4)


def test_softmax_and_logit_heads_give_the_same_gradcam():
    softmax_model = quadrant_model("softmax")
    logit_model = quadrant_model("linear")
    x = quadrant_images()
    for target in (0, 1):
        np.testing.assert_allclose(
            cams_of(softmax_model, x, layer="features", classes=target),
            cams_of(logit_model, x, layer="features", classes=target), atol=1e-6)


@pytest.mark.parametrize("guided", [False, True])
def test_a_cam_built_once_follows_later_changes_to_a_softmax_heads_weights(guided):
    """The explanation timeline keeps one CAM for a whole training run, and the sanity check one per method
    while it randomises the layers: the softmax head's linear twin must share the head's weights, not copy
    them (it copied them once, so every later epoch's logits were the first epoch's)."""
    model = quadrant_model("softmax")
    x = quadrant_images()
    cam = make_cam(model, "guided-gradcam" if guided else "gradcam", "features")
    cam(x)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel[:, ::-1] * 2, bias + 1])
    _, _, logits = cam(x)
    np.testing.assert_allclose(softmax(logits), model.predict(x, verbose=0), atol=1e-5)
    assert head.activation is keras.activations.softmax  # the model itself is unchanged


def test_guided_backprop_keeps_a_capped_relu_as_it_is():
    """Only plain ReLUs become guided ReLUs: a ReLU6 in a guided probe still caps at 6 (the forward pass is the
    model's)."""
    inputs = keras.Input((2,))
    capped = keras.layers.ReLU(max_value=6.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")(capped))
    x = np.array([[10.0, 10.0]], np.float32)
    _, logits = probe_model(model, INPUT, guided=True)([x, np.zeros_like(x)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), [[12.0]])


def test_methods_sharing_probes_trace_one_pass_per_layer_and_draw_the_maps_they_draw_alone(monkeypatch):
    import eipviz.attribution.cams as cams_module

    built = []
    real = cams_module.gradient_pass
    monkeypatch.setattr(cams_module, "gradient_pass", lambda probe: built.append(probe) or real(probe))
    model, x = quadrant_model(), quadrant_images()
    probes = Probes(model)
    methods = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "guided-gradcam")
    shared = {method: make_cam(model, method, "features", probes=probes)(x)[0] for method in methods}
    assert len(built) == 2  # the layer's gradient pass, and guided-gradcam's guided one at the input
    for method in methods:
        np.testing.assert_allclose(shared[method], cams_of(model, x, method, "features"), atol=1e-6)
    assert (make_cam(model, "saliency", probes=probes).passes
            is not make_cam(model, "guided-backprop", probes=probes).passes)
    with pytest.raises(ValueError, match="another model"):
        make_cam(quadrant_model(), "gradcam", probes=probes)


def test_default_class_is_the_prediction_and_layer_resolution_is_available():
    model = quadrant_model()
    cams, classes, logits = make_cam(model, "gradcam", "features")(quadrant_images(), upsample=False)
    assert (classes == logits.argmax(-1)).all()
    assert cams.shape == (3, SIZE, SIZE)  # a 1x1 conv keeps the input size
    resnet_maps = cams_of(build_model("resnet20v1"), np.zeros((2, 32, 32, 3), np.float32), upsample=False)
    assert resnet_maps.shape == (2, 8, 8)


def test_nested_sequential_model_layers_can_be_targeted():
    inner = build_model("sepconv65k")
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, inner(inputs))
    cams = cams_of(outer, np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype(np.float32),
                   layer="sepconv65k/sepconv5")
    assert cams.shape == (2, 32, 32) and np.isfinite(cams).all()
    # the automatic choice reaches inside the nested model
    assert make_cam(outer).layer == "sepconv65k/sepconv5"


def _block_twice(shared_relu=False):
    """``block(block(x))`` (one nested model called twice), or a ReLU layer object used at two places."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    if shared_relu:
        relu = layers.ReLU(name="shared")
        x = relu(layers.Conv2D(4, 3, padding="same", name="c1")(inputs))
        x = relu(layers.Conv2D(4, 3, padding="same", name="c2")(x))
    else:
        block_in = keras.Input((8, 8, 4))
        block = keras.Model(block_in, layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(block_in),
                            name="block")
        x = block(block(inputs))
    x = layers.Conv2D(4, 3, padding="same", name="after")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Flatten()(x)))


def test_a_nested_model_called_twice_is_replayed_twice():
    """One cache for both calls gave the second call the first one's output: the logits, probabilities and every
    CAM of ``block(block(x))`` were those of ``block(x)``."""
    from eipviz.attribution.graph import logit_model

    model = _block_twice()
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype(np.float32)
    assert softmax(logit_model(model)(x)) == pytest.approx(np.asarray(model(x)), abs=1e-6)


def test_a_layer_feeding_only_an_unused_output_of_a_nested_model_is_not_offered():
    """Replaying every output of a nested call tapped it, and its CAM failed with numpy's IndexError."""
    from eipviz.attribution.layers import conv_feature_layers
    from eipviz.errors import EipvizError

    inner_in = keras.Input((8, 8, 3))
    inner = keras.Model(inner_in, [layers.Conv2D(4, 3, padding="same", name="main")(inner_in),
                                   layers.Conv2D(4, 3, padding="same", name="aux")(inner_in)], name="inner")
    inputs = keras.Input((8, 8, 3))
    used, _ = inner(inputs)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(used)))
    assert conv_feature_layers(model) == ["inner/main"]
    with pytest.raises(EipvizError, match="'inner/aux' is not on the way to the model's logits"):
        make_cam(model, "gradcam", "inner/aux")


@pytest.mark.parametrize("shared_relu, layer", [(False, "block/conv"), (True, "shared")])
def test_a_layer_computing_several_maps_is_not_offered_and_is_refused_with_a_message(shared_relu, layer):
    from eipviz.attribution.layers import conv_feature_layers
    from eipviz.errors import EipvizError

    model = _block_twice(shared_relu)
    assert layer not in conv_feature_layers(model) and "after" in conv_feature_layers(model)
    with pytest.raises(EipvizError, match=f"Layer '{layer}' computes several maps"):  # Keras' "name used 2 times"
        make_cam(model, "gradcam", layer)


def test_classes_outside_the_model_are_refused_not_explained_as_the_prediction():
    """Any negative index meant "predicted"; one past the last gave zero maps under JAX, an error under TensorFlow."""
    from eipviz.errors import EipvizError

    cam = make_cam(quadrant_model(), "gradcam", "features")
    for classes, message in ((-2, "A class index is 0 to 1"), (2, "A class index is 0 to 1"),
                             ([0, 1], r"one per image \(3\)")):  # 2 classes, 3 images
        with pytest.raises(EipvizError, match=message):
            cam(quadrant_images(), classes)


def test_legacy_h5_model_loads_and_explains(tmp_path):
    model = quadrant_model("softmax")
    path = tmp_path / "legacy.h5"
    model.save(path)
    loaded = keras.models.load_model(path)
    cams = cams_of(loaded, quadrant_images(), layer="features", classes=0)
    assert quadrant_means(cams).argmax() == 0


def test_a_model_whose_layers_have_the_probes_names_is_explained():
    """The probe's own layers were named "eipviz_probe_tap" and so on: an uploaded model with a layer of that
    name failed every CAM ("The name is used 2 times in the model"), found by fuzzing uploads."""
    inputs = keras.Input((SIZE, SIZE, 4), name="eipviz_probe_delta")
    features = layers.Conv2D(4, 1, activation="relu", name="eipviz_probe_tap")(inputs)
    features = layers.Activation("linear", name="eipviz_probe_map")(features)
    model = keras.Model(inputs, layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(features)))
    for method in ("gradcam", "ablationcam", "guided-gradcam"):
        assert np.isfinite(cams_of(model, quadrant_images(), method, layer="eipviz_probe_tap", classes=0)).all()


def test_ablation_cam_runs_the_ablated_maps_through_the_later_layers_only_when_they_decide_the_logits():
    from eipviz.attribution.graph import tail_probe_model

    keras.utils.set_random_seed(0)  # an unseeded untrained model may give an all-zero map at the inner layer
    model = build_model("resnet20v1")
    x = np.random.default_rng(3).normal(size=(2, 32, 32, 3)).astype(np.float32)
    tail = make_cam(model, "ablationcam")  # the last block's output: only pooling and the head follow
    whole = make_cam(model, "ablationcam")
    whole._tail_pass = None  # the whole model per ablated channel
    # each image's top class: an untrained model's other logits can sit near zero, where the relative drop
    # (divided by |logit|) magnifies the last bits in which two differently batched passes differ
    np.testing.assert_allclose(tail(x)[0], whole(x)[0], atol=1e-3)
    assert tail._tail_pass is not None
    # inside a residual block the skip connection reads the block's input too: the whole model runs
    assert tail_probe_model(model, "stage3_block3_conv1") is None
    maps, _, _ = make_cam(model, "ablationcam", "stage3_block3_conv1")(x)
    assert np.isfinite(maps).all() and maps.max() > 0.9  # upsampled from 8x8


@pytest.mark.parametrize("method", ["scorecam", "fasterscorecam"])
def test_score_cam_singles_out_the_channel_whose_masked_image_scores_far_higher(method):
    """Masked by channel 0, the image keeps class 0's logit (about 5); masked by any other, the logit is 0. A
    softmax over those logits gives channel 0 nearly all the weight (a softmax over probabilities, each in
    [0, 1], could never weight one channel more than e times another), so the other quadrants go dark."""
    model, x = quadrant_model(logit_scale=10.0), quadrant_images()
    cam = make_cam(model, method, "features")
    activations, _ = cam.forward(x)
    weights = cam.channel_weights(activations, None, x, np.zeros(3, np.int32))
    assert (weights[:, 0] > 20 * weights[:, 1:].max(axis=1)).all(), weights
    assert quadrant_means(cams_of(model, x, method, "features", 0))[1:].max() < 0.05


def alone_and_on_two_threads(run, first, second):
    """``run`` of each batch alone, then of both at once on two threads (as browser sessions share a
    classifier's CAMs)."""
    alone = [run(x) for x in (first, second)]
    together: list = [None, None]
    start = threading.Barrier(2)

    def worker(index, x):
        start.wait()
        together[index] = run(x)

    threads = [threading.Thread(target=worker, args=(i, x)) for i, x in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return alone, together


def small_nonlinear_model():
    """``Conv2D(relu) -> Conv2D(tanh) -> GlobalAveragePooling -> Dense(5)`` with seeded random weights."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    features = layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    curved = layers.Conv2D(8, 3, padding="same", activation="tanh")(features)
    return keras.Model(inputs, layers.Dense(5)(layers.GlobalAveragePooling2D()(curved)))


def two_batches(first=20, second=7):
    rng = np.random.default_rng(0)
    return [rng.uniform(0, 1, (n, 12, 12, 3)).astype(np.float32) for n in (first, second)]


def test_threads_sharing_a_random_cam_get_the_maps_each_gets_alone():
    cam = make_cam(small_nonlinear_model(), "random", "features")
    first, second = two_batches()
    alone, together = alone_and_on_two_threads(lambda x: cam(x, batch_size=1)[0], first, second)  # interleaved
    for solo, shared in zip(alone, together):
        np.testing.assert_array_equal(shared, solo)


def test_threads_sharing_integrated_gradients_each_read_their_own_completeness_errors():
    cam = make_cam(small_nonlinear_model(), "integrated-gradients", "features")
    cam.steps = 2  # coarse on purpose: the errors are far from zero and differ between images

    def errors(x):
        cam(x, batch_size=1)
        return cam.completeness_error

    alone, together = alone_and_on_two_threads(errors, *two_batches(6, 3))
    assert alone[0].shape == (6,) and alone[0].min() > 1e-3
    for solo, shared in zip(alone, together):
        np.testing.assert_allclose(shared, solo, rtol=1e-4, atol=1e-6)


# -- the probe cache ---------------------------------------------------------


def test_probes_drop_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(cams, "probe_model", lambda model, layer, guided=False: (layer, guided))
    probes = Probes(object())
    first = probes.passes("l0")
    for i in range(1, PROBES_KEPT):
        probes.passes(f"l{i}")
    assert probes.passes("l0") is first  # used again: now the most recent
    probes.passes("new")
    assert probes.passes("l0") is first and probes.passes("new").probe == ("new", False)


@pytest.mark.parametrize("layer, message", [
    ("pooled", r"Layer 'pooled' outputs \(None, 4\), not a feature map"),  # numpy's "axis 2 is out of bounds"
    ("nosuch", "The model has no layer 'nosuch'."),  # it said "not on the path to the model's output"
])
def test_a_layer_no_cam_can_use_is_refused_saying_why(layer, message):
    from eipviz.errors import EipvizError

    inputs = keras.Input((SIZE, SIZE, 4))
    pooled = layers.GlobalAveragePooling2D(name="pooled")(layers.Conv2D(4, 1, name="features")(inputs))
    model = keras.Model(inputs, layers.Dense(2)(pooled))
    for method in ("gradcam", "scorecam"):
        with pytest.raises(EipvizError, match=message):
            make_cam(model, method, layer)(quadrant_images())
