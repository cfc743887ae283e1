"""A model with large maps goes through in batches that fit memory: predictions, CAM passes and Ablation-CAM's
ablated maps alike, while the zoo's models keep their usual batches."""

import functools

import keras
import numpy as np
import pytest
from keras import layers

from eipviz.attribution import backends, memory
from eipviz.attribution.cams import ScoreCAM
from eipviz.attribution.graph import probe_model
from eipviz.attribution.layers import call_counts, default_target_layer
from eipviz.attribution.memory import images_per_pass, map_bytes_per_image
from eipviz.attribution.methods import make_cam
from eipviz.classifier import PREDICT_BATCH, Classifier
from eipviz.limited_child import call_limited
from eipviz.loading import TRIAL_ENVIRONMENT
from eipviz.zoo import MODELS, build_model

UPSAMPLED = 25  # 32x32 maps upsampled to 800x800


def small_model(channels: int = 4) -> keras.Model:
    """8x8x3 -> Conv2D 8x8 by ``channels`` -> GAP -> Dense(10): (65 x channels + 10) float32 values an image."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    features = layers.Conv2D(channels, 3, padding="same", name="features")(inputs)
    return keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(features)))


@functools.cache
def large_map_model(channels: int = 64) -> keras.Model:
    """An upload-like model that computes one image easily but not hundreds at once (its maps are 800x800)."""
    inputs = keras.Input((32, 32, 3))
    features = layers.Conv2D(channels, 1, name="features")(inputs)
    upsampled = layers.UpSampling2D(UPSAMPLED)(features)
    return keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(upsampled)))


def classifier_of(model) -> Classifier:
    return Classifier(model, "large maps", "unit_scale", tuple(f"class {i}" for i in range(10)), None, "features",
                      source="large.keras")


def test_the_bytes_an_image_are_every_map_the_model_computes_as_float32():
    assert map_bytes_per_image(small_model()) == (8 * 8 * 4 + 4 + 10) * 4


def test_a_probe_model_counts_the_maps_its_two_outputs_share_once():
    model = small_model()
    probe = probe_model(model, "features")
    assert set(call_counts(probe).values()) == {1}
    assert map_bytes_per_image(probe) == map_bytes_per_image(model) + 8 * 8 * 4 * 4  # and map + delta


def test_a_model_with_large_maps_predicts_in_fewer_images_a_batch_a_power_of_two():
    assert map_bytes_per_image(large_map_model()) == (32 * 32 * 64 + 800 * 800 * 64 + 64 + 10) * 4  # 164 MB
    assert classifier_of(large_map_model()).predict_batch == 16  # 2.5 GiB over 164 MB: 16.4 images
    assert images_per_pass(large_map_model(), 256, kept_copies=2) == 8  # 8.2 with their gradients


def test_a_model_too_large_for_the_budget_still_takes_one_image(monkeypatch):
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 1000)
    assert images_per_pass(small_model(), 500) == 1


@pytest.mark.parametrize("name", MODELS)
def test_the_zoo_models_keep_their_usual_batches(name):
    model = build_model(name)
    assert images_per_pass(model, PREDICT_BATCH) == PREDICT_BATCH
    for guided in (False, True):  # guided backprop's probe computes the most maps
        probe = probe_model(model, default_target_layer(model), guided=guided)
        assert images_per_pass(probe, backends.CHUNK, kept_copies=2) == backends.CHUNK


def test_cam_passes_and_ablated_maps_go_in_chunks_that_fit(monkeypatch):
    """With room for 8 images' maps: gradient passes of 4 images, 8 ablated channels at a time (of 32), and
    the same maps as in one pass."""
    sizes: list[int] = []

    def counted(factory):
        def build(probe):
            run = factory(probe)

            def counted_run(x, second):
                sizes.append(len(x))
                return run(x, second)
            return counted_run
        return build

    backend = keras.backend.backend()
    monkeypatch.setitem(backends._BACKENDS, backend, tuple(counted(f) for f in backends._BACKENDS[backend]))
    model = small_model(channels=32)
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 8 * map_bytes_per_image(probe_model(model, "features")))
    x = np.random.default_rng(0).random((20, 8, 8, 3), np.float32)
    in_chunks = make_cam(model, "gradcam", "features")(x)[0]
    assert max(sizes) == 4
    sizes.clear()
    make_cam(model, "ablationcam", "features")(x[:1])
    assert max(sizes) == 8
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 2**40)
    np.testing.assert_allclose(make_cam(model, "gradcam", "features")(x)[0], in_chunks, atol=1e-5)


def test_score_cam_makes_its_masked_images_in_blocks_that_fit(monkeypatch):
    """Score-CAM masks the image by every channel: 2,048 masked 224x224 images are 1.2 GB before any pass."""
    masked: list[int] = []
    score_logits = ScoreCAM.class_logits

    def counted(cam, inputs, classes):
        masked.append(len(inputs))
        return score_logits(cam, inputs, classes)

    monkeypatch.setattr(ScoreCAM, "class_logits", counted)
    model = small_model(channels=32)
    x = np.random.default_rng(0).random((2, 8, 8, 3), np.float32)
    whole = make_cam(model, "scorecam", "features")(x)[0]
    assert masked == [32, 32]
    masked.clear()
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 8 * map_bytes_per_image(probe_model(model, "features")))
    np.testing.assert_allclose(make_cam(model, "scorecam", "features")(x)[0], whole, atol=1e-5)
    assert masked == [8] * 8


def predict_images_with_large_maps(count: int) -> None:
    """Run in the upload trial's limited child (8 GB of address space): ``count`` images' predictions."""
    probabilities = classifier_of(large_map_model()).probabilities(np.zeros((count, 32, 32, 3), np.uint8))
    assert probabilities.shape == (count, 10)


def test_a_page_sized_batch_of_a_model_with_large_maps_fits_the_trial_child():
    """64 images at once would take 10.5 GB: TensorFlow ran out of memory in the 8 GB child (and, outside one,
    aborts a server with std::bad_alloc); in batches of 16 they take 2.6 GB."""
    environment = {"KERAS_BACKEND": keras.backend.backend(), **TRIAL_ENVIRONMENT}
    assert call_limited(predict_images_with_large_maps, 64, environment=environment) is None


def test_scores_keep_no_maps_so_memory_stays_flat_in_the_number_of_images():
    """Faithfulness scores 1,088 images a call: their maps and zero deltas were built whole (a reviewer measured
    2.5 GB for a model upsampling 32x32 by 6); now a chunk's at a time, and the maps not at all."""
    import tracemalloc

    cam = make_cam(small_model(channels=32), "gradcam", "features")
    x = np.random.default_rng(0).random((4096, 8, 8, 3), np.float32)  # 12 MB of inputs; their maps would be 32 MB
    cam.scores(x[:8], np.zeros(8, int))  # traced before measuring
    tracemalloc.start()
    scores = cam.scores(x, np.zeros(len(x), int))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert scores.shape == (4096,) and peak < 12 * 2**20
    maps, logits = cam.passes.forward(x[:3], maps=False)
    assert maps is None and logits.shape == (3, 10)


def test_a_cam_call_takes_fewer_images_a_batch_for_a_model_with_large_maps(monkeypatch):
    model = small_model(channels=32)
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 8 * map_bytes_per_image(probe_model(model, "features")))
    steps: list[int] = []
    make_cam(model, "gradcam", "features")(np.zeros((10, 8, 8, 3), np.float32),
                                           progress=lambda done, total: steps.append(done))
    assert steps == [4, 8, 10]  # room for 8 images' maps, halved for their gradients


def test_faithfulness_builds_fewer_versions_of_large_images_at_once(monkeypatch):
    """Its deletion curves hold 17 versions of each image: 64 images of 1024x1024 were 13.7 GB."""
    from eipviz.explain import faithfulness
    from eipviz.explain.faithfulness import STEPS

    model = small_model()
    cam = make_cam(model, "gradcam", "features")
    image_bytes = 8 * 8 * 3 * 4
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 2 * (STEPS + 1) * image_bytes)  # room for two images' versions
    scored: list[int] = []
    scores = cam.scores

    def counted(inputs, classes):
        scored.append(len(inputs))
        return scores(inputs, classes)

    monkeypatch.setattr(cam, "scores", counted)
    x = np.random.default_rng(0).random((5, 8, 8, 3), np.float32)
    order = np.argsort(np.random.default_rng(1).random((5, 64)), axis=1)
    curves = faithfulness._curve(cam, x, np.zeros_like(x), order, np.zeros(5, int))
    assert curves.shape == (5, STEPS + 1) and scored == [2 * (STEPS + 1)] * 2 + [STEPS + 1]
