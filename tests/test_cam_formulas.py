"""Each method's formula on hand-built models whose activations and gradients are known in closed form.

The CAM model is ``relu(image) -> Flatten -> Dense``: the tapped map is
``A = relu(x)`` and the gradient of logit k with respect to it is the Dense
kernel's column ``W[..., k]`` at every image, varying over pixels and
channels, so every weighting scheme gives a different map. The expected maps
are NumPy transcriptions of pytorch-grad-cam's formulas (``pytorch_grad_cam/*.py``,
channels last here), ReLU'd and min-max scaled as both libraries do.
"""

import keras
import numpy as np
import pytest
from keras import layers

from eipviz.attribution import input_gradients
from eipviz.attribution.cams import GradCAM, image_generator
from eipviz.attribution.graph import softmax
from eipviz.attribution.input_gradients import integrated_gradients
from eipviz.attribution.maps import principal_component_maps, scale_maps
from eipviz.attribution.methods import make_cam
from tests.test_classifier import tiny_model

SIZE, CHANNELS, CLASSES = 6, 4, 3
CLASS_OF_IMAGE = np.array([0, 1, 2])


def dense_head_model():
    """``relu(x) -> Flatten -> Dense(3)`` with fixed weights: A = relu(x), dlogit_k/dA = W[..., k]."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((SIZE, SIZE, CHANNELS))
    features = layers.Activation("relu", name="features")(inputs)
    head = layers.Dense(CLASSES, name="head")
    model = keras.Model(inputs, head(layers.Flatten()(features)))
    kernel = rng.normal(size=(SIZE * SIZE * CHANNELS, CLASSES)).astype(np.float32)
    head.set_weights([kernel, np.array([0.1, -0.2, 0.3], np.float32)])
    return model, kernel.reshape(SIZE, SIZE, CHANNELS, CLASSES)


def images(n=3, seed=1):
    """Images with negative pixels (so the ReLU zeroes some) and a distinct pattern per channel."""
    return np.random.default_rng(seed).normal(0.3, 1.0, (n, SIZE, SIZE, CHANNELS)).astype(np.float32)


def known_passes(x, kernel):
    """(activations, gradients, logits) of ``dense_head_model`` in closed form."""
    activations = np.maximum(x, 0)
    gradients = np.moveaxis(kernel[..., CLASS_OF_IMAGE[: len(x)]], -1, 0)
    logits = np.einsum("nhwc,hwck->nk", activations, kernel) + np.array([0.1, -0.2, 0.3])
    return activations, gradients, logits


def expected(cam_per_image):
    """What both libraries do after the formula: ReLU, then min-max scaling per map."""
    return scale_maps(np.maximum(cam_per_image, 0))


def eipviz_maps(method, x, **options):
    model, _ = dense_head_model()
    cam = make_cam(model, method, "features")
    maps, classes, _ = cam(x, CLASS_OF_IMAGE, upsample=False, **options)
    assert (classes == CLASS_OF_IMAGE).all()
    return maps, cam


def get_2d_projection(stacks):
    """pytorch-grad-cam's ``utils/svd_on_activations.get_2d_projection``, channels last."""
    projections = []
    for stack in stacks:
        pixels = stack.reshape(-1, stack.shape[-1])
        pixels = pixels - pixels.mean(axis=0)
        _, _, vt = np.linalg.svd(pixels, full_matrices=True)
        projections.append((pixels @ vt[0, :]).reshape(stack.shape[:2]))
    return np.float32(projections)


# Transcriptions of pytorch-grad-cam's get_cam_weights / get_cam_image (A, G: (N, h, w, C)).
def gradcam(a, g):
    return (a * g.mean(axis=(1, 2))[:, None, None]).sum(-1)


def gradcam_plus_plus(a, g):
    grads_power_2, grads_power_3 = g ** 2, g ** 3
    sum_activations = a.sum(axis=(1, 2))
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, None, None] * grads_power_3 + 1e-6)
    aij = np.where(g != 0, aij, 0)
    weights = (np.maximum(g, 0) * aij).sum(axis=(1, 2))
    return (a * weights[:, None, None]).sum(-1)


def xgradcam(a, g):
    weights = (g * a / (a.sum(axis=(1, 2))[:, None, None] + 1e-7)).sum(axis=(1, 2))
    return (a * weights[:, None, None]).sum(-1)


def hirescam(a, g):
    return (g * a).sum(-1)


def gradcam_elementwise(a, g):
    return np.maximum(g * a, 0).sum(-1)


def layercam(a, g):
    return (np.maximum(g, 0) * a).sum(-1)


FORMULAS = {"gradcam": gradcam, "gradcam++": gradcam_plus_plus, "xgradcam": xgradcam, "hirescam": hirescam,
            "gradcam-elementwise": gradcam_elementwise, "layercam": layercam}


def test_the_gradient_pass_returns_the_known_activations_gradients_and_logits():
    model, kernel = dense_head_model()
    x = images()
    activations, gradients, logits = known_passes(x, kernel)
    got = make_cam(model, "gradcam", "features").gradients(x, CLASS_OF_IMAGE)
    np.testing.assert_allclose(got[0], activations, atol=1e-6)
    np.testing.assert_allclose(got[1], logits, atol=1e-4)
    np.testing.assert_allclose(got[2], gradients, atol=1e-6)
    assert (got[3] == CLASS_OF_IMAGE).all()


@pytest.mark.parametrize("method", FORMULAS)
def test_gradient_weighted_cams_follow_pytorch_grad_cam(method):
    x = images()
    activations, gradients, _ = known_passes(x, dense_head_model()[1])
    maps, _ = eipviz_maps(method, x)
    np.testing.assert_allclose(maps, expected(FORMULAS[method](activations, gradients)), atol=1e-4)


def eipviz_sign(projection, stacks):
    """eipviz's documented sign: the projection correlates positively with the stack's channel sum."""
    reference = stacks.sum(-1)
    reference = reference - reference.mean(axis=(1, 2), keepdims=True)
    return np.where((projection * reference).sum(axis=(1, 2)) < 0, -1.0, 1.0)[:, None, None]


@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_eigen_cams_are_pytorch_grad_cams_projection_with_the_sign_fixed(method):
    """pytorch-grad-cam leaves the eigenvector's sign to the SVD; eipviz fixes it (see principal_component_maps)."""
    x = images()
    activations, gradients, _ = known_passes(x, dense_head_model()[1])
    stacks = activations if method == "eigencam" else gradients * activations
    reference = get_2d_projection(stacks)
    projection = principal_component_maps(stacks)
    np.testing.assert_allclose(np.abs(projection), np.abs(reference), atol=1e-4)
    np.testing.assert_allclose(projection, reference * eipviz_sign(reference, stacks), atol=1e-4)
    maps, _ = eipviz_maps(method, x)
    np.testing.assert_allclose(maps, expected(projection), atol=1e-4)


def ablation_weights(activations, logits, kernel):
    """(original - ablated) / |original| on logits, the channel zeroed (eipviz sets it to 0, which for this
    linear head removes exactly the channel's contribution sum_hw A_c W_c). pytorch-grad-cam divides by the
    original logit itself, sign included."""
    original = logits[np.arange(len(activations)), CLASS_OF_IMAGE[: len(activations)]]
    contribution = np.einsum("nhwc,hwcn->nc", activations, kernel[..., CLASS_OF_IMAGE[: len(activations)]])
    ablated = original[:, None] - contribution
    return (original[:, None] - ablated) / np.abs(original[:, None])


def test_ablation_cam_weight_is_the_drop_of_the_logit_relative_to_its_magnitude():
    x = images()
    activations, _, logits = known_passes(x, dense_head_model()[1])
    weights = ablation_weights(activations, logits, dense_head_model()[1])
    maps, _ = eipviz_maps("ablationcam", x)
    np.testing.assert_allclose(maps, expected((activations * weights[:, None, None]).sum(-1)), atol=1e-4)


def test_ablation_cam_keeps_its_map_when_the_class_logit_is_negative():
    """A channel whose removal lowers the logit counts for the class whatever the logit's sign: shifting every
    logit below zero (the head's bias) changes no drop, so it must change no map (dividing by the signed
    logit turned the map inside out)."""
    x = images()
    maps = {}
    for shift in (100.0, -100.0):
        model, _ = dense_head_model()
        kernel, bias = model.get_layer("head").get_weights()
        model.get_layer("head").set_weights([kernel, bias + shift])
        maps[shift], _, logits = make_cam(model, "ablationcam", "features")(x, CLASS_OF_IMAGE, upsample=False)
        assert (np.sign(logits[np.arange(3), CLASS_OF_IMAGE]) == np.sign(shift)).all()
    assert maps[100.0].max() == pytest.approx(1.0)
    np.testing.assert_allclose(maps[-100.0], maps[100.0], atol=1e-4)


def score_cam_weights(x, activations, kernel, channels):
    """pytorch-grad-cam's Score-CAM weights, over ``channels``: the softmax over channels of the class logit of
    the image masked by each channel's map scaled to [0, 1]."""
    weights = np.zeros((len(x), activations.shape[-1]))
    bias = np.array([0.1, -0.2, 0.3])
    for i, chosen in enumerate(channels):
        upsampled = np.moveaxis(activations[i][..., chosen], -1, 0)  # the map is already at the input size
        mins = upsampled.min(axis=(1, 2), keepdims=True)
        maxs = upsampled.max(axis=(1, 2), keepdims=True)
        masks = (upsampled - mins) / (maxs - mins + 1e-8)
        masked = x[i][None] * masks[..., None]
        logits = np.einsum("mhwc,hwck->mk", np.maximum(masked, 0), kernel) + bias
        weights[i, chosen] = softmax(logits[:, CLASS_OF_IMAGE[i]][None])[0]
    return weights


def test_score_cam_weights_are_the_softmax_over_channels_of_the_masked_images_logits():
    x = images()
    kernel = dense_head_model()[1]
    activations, _, _ = known_passes(x, kernel)
    weights = score_cam_weights(x, activations, kernel, [np.arange(CHANNELS)] * 3)
    maps, _ = eipviz_maps("scorecam", x)
    np.testing.assert_allclose(maps, expected((activations * weights[:, None, None]).sum(-1)), atol=1e-4)


def test_faster_score_cam_scores_only_the_channels_of_largest_variance():
    x = images()
    kernel = dense_head_model()[1]
    activations, _, _ = known_passes(x, kernel)
    model, _ = dense_head_model()
    cam = make_cam(model, "fasterscorecam", "features")
    cam.top_channels = 2
    top = np.argsort(-activations.var(axis=(1, 2)), axis=1, kind="stable")[:, :2]
    weights = score_cam_weights(x, activations, kernel, top)
    assert (np.count_nonzero(weights, axis=1) == 2).all()
    maps, _, _ = cam(x, CLASS_OF_IMAGE, upsample=False)
    np.testing.assert_allclose(maps, expected((activations * weights[:, None, None]).sum(-1)), atol=1e-4)


def test_random_cam_draws_uniform_channel_weights_seeded_by_each_image():
    x = images()
    activations, _, _ = known_passes(x, dense_head_model()[1])
    weights = np.stack([image_generator(0, image).uniform(-1, 1, CHANNELS) for image in x])
    maps, cam = eipviz_maps("random", x)
    again, _, _ = cam(x[::-1], CLASS_OF_IMAGE[::-1], upsample=False)
    assert maps.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(maps, again[::-1])  # an image's map, wherever it sits in the batch
    np.testing.assert_allclose(maps, expected((activations * weights[:, None, None]).sum(-1)), atol=1e-4)


def test_eigen_smooth_gradcam_is_the_principal_component_of_the_weighted_activations():
    x = images()
    activations, gradients, _ = known_passes(x, dense_head_model()[1])
    weighted = activations * gradients.mean(axis=(1, 2))[:, None, None]
    maps, _ = eipviz_maps("gradcam", x, eigen_smooth=True)
    np.testing.assert_allclose(maps, expected(principal_component_maps(weighted)), atol=1e-4)


def test_aug_smooth_leaves_a_flip_and_shift_equivariant_map_unchanged():
    """``relu(x) -> GlobalAveragePooling -> Dense``: the logits ignore where a pixel is and the gradient is the
    same at every pixel, so each view's Grad-CAM is the original's, flipped and shifted with the image."""
    inputs = keras.Input((SIZE, SIZE, CHANNELS))
    features = layers.Activation("relu", name="features")(inputs)
    model = keras.Model(inputs, layers.Dense(CLASSES)(layers.GlobalAveragePooling2D()(features)))
    x = images()
    cam = make_cam(model, "gradcam", "features")
    plain, _, _ = cam(x, CLASS_OF_IMAGE)
    smoothed, _, _ = cam(x, CLASS_OF_IMAGE, aug_smooth=True)
    assert plain.max() == pytest.approx(1.0)
    np.testing.assert_allclose(smoothed, plain, atol=1e-5)


# -- input-gradient methods ---------------------------------------------------------------------------


def linear_model():
    """``x -> Flatten -> Dense(3)``: the input gradient of logit k is ``W[..., k]`` everywhere.
    (The linear Activation is the conv-like layer every method's constructor looks for.)"""
    model, kernel = dense_head_model()
    inputs = keras.Input((SIZE, SIZE, CHANNELS))
    features = layers.Activation("linear", name="features")(inputs)
    head = layers.Dense(CLASSES)
    linear = keras.Model(inputs, head(layers.Flatten()(features)))
    head.set_weights(model.get_layer("head").get_weights())
    return linear, kernel


def test_saliency_is_the_largest_absolute_gradient_over_channels():
    model, kernel = linear_model()
    x = images()
    gradients = np.moveaxis(kernel[..., CLASS_OF_IMAGE], -1, 0)
    maps, _, _ = make_cam(model, "saliency", "features")(x, CLASS_OF_IMAGE)
    np.testing.assert_allclose(maps, scale_maps(np.abs(gradients).max(-1)), atol=1e-5)


def test_integrated_gradients_of_a_linear_model_are_the_difference_times_the_weights():
    model, kernel = linear_model()
    x = images()
    baseline = np.full(x.shape[1:], -0.5, np.float32)
    cam = make_cam(model, "integrated-gradients", "features", reference_input=baseline)
    weights = np.moveaxis(kernel[..., CLASS_OF_IMAGE], -1, 0)
    attributions, error = integrated_gradients(cam, x, CLASS_OF_IMAGE, baseline, steps=32)
    np.testing.assert_allclose(attributions, (x - baseline) * weights, atol=1e-5)
    assert error.max() < 1e-4  # completeness: the attributions sum to logit(x) - logit(baseline)
    maps, _, _ = cam(x, CLASS_OF_IMAGE, batch_size=2)
    np.testing.assert_allclose(maps, scale_maps(np.abs((x - baseline) * weights).max(-1)), atol=1e-5)
    assert cam.completeness_error.shape == (3,) and cam.completeness_error.max() < 1e-4


def test_integrated_gradients_use_the_midpoint_rule():
    """On a quadratic logit the midpoint sum is exact even with 4 steps (a left sum would miss a quarter)."""
    inputs = keras.Input((2, 2, 1))
    squared = keras.layers.Flatten()(keras.layers.Multiply()([inputs, inputs]))
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")(squared))
    cam = make_cam(model, "integrated-gradients")
    x = np.array([[[[1.0], [2.0]], [[3.0], [-1.0]]]], np.float32)
    attributions, error = integrated_gradients(cam, x, np.array([0]), np.zeros((2, 2, 1), np.float32), steps=4)
    np.testing.assert_allclose(attributions, x ** 2, rtol=1e-5)
    assert error.max() < 1e-5


def test_integrated_gradients_keep_one_completeness_error_per_image_with_aug_smooth():
    """aug_smooth runs six views: the error kept is each image's worst over them, not one per view."""
    model, _ = linear_model()
    cam = make_cam(model, "integrated-gradients", "features")
    cam(images(), CLASS_OF_IMAGE, aug_smooth=True)
    assert cam.completeness_error.shape == (3,) and cam.completeness_error.max() < 1e-4


def test_integrated_gradients_keep_each_images_worst_completeness_error_over_the_views(monkeypatch):
    """With aug_smooth, the error shown for an image is the worst of its six views, never the best."""
    returned = []

    def recorded(cam, inputs, classes, reference, steps):
        errors = np.array([0.1, 0.9]) * (len(returned) + 1) % 1.0  # each view ranks the two images differently
        returned.append(errors)
        return np.zeros_like(inputs), errors

    monkeypatch.setattr(input_gradients, "integrated_gradients", recorded)
    cam = make_cam(tiny_model(), "integrated-gradients")
    cam(np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)), [0, 1], aug_smooth=True)
    assert len(returned) > 1
    np.testing.assert_allclose(cam.completeness_error, np.max(returned, axis=0))


def test_integrated_gradients_are_nearly_complete_on_a_nonlinear_model_with_32_steps():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="tanh")(x)
    model = keras.Model(inputs, layers.Dense(CLASSES)(layers.GlobalAveragePooling2D()(x)))
    cam = make_cam(model, "integrated-gradients", "conv")
    x = np.random.default_rng(4).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
    maps, _, _ = cam(x)
    assert np.isfinite(maps).all()
    assert cam.completeness_error.max() < 0.05


def test_guided_backprop_passes_only_positive_gradients_through_each_relu():
    """``relu(conv1x1(x)) -> Flatten -> Dense``: the Dense kernel sends positive gradients down one channel
    and mixed ones down the other; guided backprop keeps a ReLU's gradient only where both the ReLU's
    input and the incoming gradient are positive."""
    rng = np.random.default_rng(5)
    inputs = keras.Input((SIZE, SIZE, 1))
    conv = layers.Conv2D(2, 1, activation="relu", name="conv")
    head = layers.Dense(CLASSES)
    model = keras.Model(inputs, head(layers.Flatten()(conv(inputs))))
    conv_weights = np.array([2.0, 1.0], np.float32)
    conv.set_weights([conv_weights.reshape(1, 1, 1, 2), np.zeros(2, np.float32)])
    kernel = rng.normal(size=(SIZE, SIZE, 2, CLASSES)).astype(np.float32)
    kernel[..., 0, :] = np.abs(kernel[..., 0, :])
    head.set_weights([kernel.reshape(-1, CLASSES), np.zeros(CLASSES, np.float32)])
    x = rng.normal(size=(3, SIZE, SIZE, 1)).astype(np.float32)
    upstream = np.moveaxis(kernel[..., CLASS_OF_IMAGE], -1, 0)  # (N, h, w, 2) at the ReLU outputs
    active = (x * conv_weights > 0)
    guided = (np.maximum(upstream, 0) * active * conv_weights).sum(-1, keepdims=True)
    plain = (upstream * active * conv_weights).sum(-1, keepdims=True)
    assert not np.allclose(guided, plain)
    cam = make_cam(model, "guided-backprop", "conv")
    np.testing.assert_allclose(cam.gradients(x, CLASS_OF_IMAGE)[2], guided, atol=1e-5)
    np.testing.assert_allclose(make_cam(model, "saliency", "conv").gradients(x, CLASS_OF_IMAGE)[2], plain,
                               atol=1e-5)
    maps, _, _ = cam(x, CLASS_OF_IMAGE)
    np.testing.assert_allclose(maps, scale_maps(np.abs(guided[..., 0])), atol=1e-5)


def test_smoothgrad_without_noise_is_saliency():
    model, _ = dense_head_model()
    x = images()
    cam = make_cam(model, "smoothgrad", "features")
    cam.noise = 0.0
    smooth, _, _ = cam(x, CLASS_OF_IMAGE)
    saliency, _, _ = make_cam(model, "saliency", "features")(x, CLASS_OF_IMAGE)
    np.testing.assert_allclose(smooth, saliency, atol=1e-5)


def test_smoothgrad_averages_the_gradients_of_its_noisy_copies():
    """SmoothGrad is the mean of |gradient| over the copies (1 and 3 give 2), not their largest."""
    cam = make_cam(tiny_model(), "smoothgrad")
    cam.samples = 2

    def gradients(noisy, classes):
        grads = np.ones_like(noisy)
        grads[1::2] *= 3  # each image's second noisy copy
        return None, None, grads, classes

    cam.gradients = gradients
    maps = cam.layer_maps(None, None, np.zeros((1, 8, 8, 3), np.float32), np.array([0]))
    np.testing.assert_allclose(maps, np.full((1, 8, 8), 2.0))


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam():
    keras.utils.set_random_seed(6)
    inputs = keras.Input((12, 12, 3))
    features = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="features")(inputs)
    model = keras.Model(inputs, layers.Dense(CLASSES)(layers.Flatten()(features)))
    x = np.random.default_rng(7).normal(size=(3, 12, 12, 3)).astype(np.float32)
    guided_gradcam = make_cam(model, "guided-gradcam", "features")
    guided = make_cam(model, "guided-backprop", "features").gradients(x, CLASS_OF_IMAGE)[2]
    coarse, _, _ = GradCAM(model, "features")(x, CLASS_OF_IMAGE)  # upsampled to 12x12
    assert coarse.shape == (3, 12, 12)
    maps, _, _ = guided_gradcam(x, CLASS_OF_IMAGE)
    np.testing.assert_allclose(maps, scale_maps(np.abs(guided).max(-1) * coarse), atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 6, 6, 4), (3, 2, 3, 10)], ids=["more-pixels", "more-channels"])
def test_principal_component_maps_equal_pytorch_grad_cams_svd_projection_up_to_sign(shape):
    stacks = np.random.default_rng(8).normal(size=shape)
    stacks[..., 0] += np.linspace(0, 3, shape[1] * shape[2]).reshape(shape[1:3])  # one dominant direction
    projection = principal_component_maps(stacks)
    reference = get_2d_projection(stacks)
    np.testing.assert_allclose(projection, reference * eipviz_sign(reference, stacks), atol=1e-4)
