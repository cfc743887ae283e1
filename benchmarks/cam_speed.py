"""Every attribution method, batched, against a per-image loop and against one plain forward pass (CPU).

For each backend, model and method: images/s of ``make_cam(model, method)(64 images)``; images/s of the
per-image loop on the same compiled passes; and the batched time over the time of one batched forward
pass of the same 64 images (the probe model's, so the same graph). The loops:

* Score-CAM, Faster Score-CAM and Ablation-CAM: the textbook loop, one forward pass per masked image
  (Score-CAM) or per ablated channel (Ablation-CAM), one at a time;
* every other method: one call per image (one gradient pass per image for the gradient family).

The first call of each (tracing, compiling) is excluded; times are medians of ``--repeats`` runs (slow
methods: one run). Each backend runs in its own process (Keras fixes the backend at import).

    .venv/bin/python benchmarks/cam_speed.py [--backend tensorflow|jax|both] [--models resnet20v1,resnet18]
    .venv/bin/python benchmarks/cam_speed.py --gallery   # the keras-io Grad-CAM loop and the gallery (TensorFlow)
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N = 64
LOOP_IMAGES = 8  # the per-image loops are slow: time a few images and report the rate
MASK_LOOP_IMAGES = 2  # Score-CAM / Ablation-CAM loops: one forward per channel of these images
MASKED = ("scorecam", "fasterscorecam", "ablationcam")


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def score_cam_loop(cam, x):
    """Textbook Score-CAM: for each image, one forward pass per channel-masked image."""
    import numpy as np

    from eipviz.attribution.graph import softmax
    from eipviz.attribution.maps import scale_maps

    for image in x:
        activations, logits = cam.forward(image[None])
        target = int(logits.argmax())
        channels = cam.scored_channels(activations)[0]
        scores = np.empty(len(channels), np.float32)
        for k, channel in enumerate(channels):
            mask = cam._resize(scale_maps(activations[..., channel]), image.shape[:2])[0]
            scores[k] = softmax(cam.forward((image * mask[..., None])[None])[1])[0, target]
        weights = softmax(scores[None])[0]
        np.maximum((activations[0][..., channels] * weights).sum(-1), 0)


def ablation_cam_loop(cam, x):
    """Textbook Ablation-CAM: for each image, one forward pass per ablated (zeroed) channel."""
    import numpy as np

    for image in x:
        activations, logits = cam.forward(image[None])
        target = int(logits.argmax())
        weights = np.empty(activations.shape[-1], np.float32)
        for channel in range(activations.shape[-1]):
            delta = np.zeros_like(activations)
            delta[..., channel] = -activations[..., channel]
            weights[channel] = logits[0, target] - cam.forward(image[None], delta)[1][0, target]
        np.maximum((activations[0] * weights).sum(-1), 0)


def measure(backend, models, repeats):
    """Print one Markdown row per model and method under this process's backend."""
    import keras
    import numpy as np

    from eipviz.attribution.methods import METHODS, make_cam
    from eipviz.zoo import MODELS, build_model

    assert keras.backend.backend() == backend, keras.backend.backend()
    x = np.random.default_rng(0).uniform(0, 1, (N, 32, 32, 3)).astype(np.float32)
    for name in models:
        model = build_model(name)
        layer = MODELS[name].cam_layer
        plain = make_cam(model, "gradcam", layer)
        plain.forward(x)
        forward = median_seconds(lambda: plain.forward(x), 5)
        print(f"| {backend} | {name} | forward pass | {N / forward:,.0f} | | | 1.0x |", flush=True)
        for method, cls in METHODS.items():
            cam = make_cam(model, method, layer, reference_input=np.zeros((32, 32, 3), np.float32))
            cam(x[:1])
            cam(x)  # trace every batch shape used below
            batched = median_seconds(lambda: cam(x), 1 if cls.slow else repeats)
            if method in MASKED:
                loop_fn = score_cam_loop if method != "ablationcam" else ablation_cam_loop
                looped = x[:MASK_LOOP_IMAGES]
                loop_fn(cam, looped[:1])
                loop = median_seconds(lambda: loop_fn(cam, looped), 1) / len(looped)
            else:
                loop = median_seconds(lambda: [cam(x[i:i + 1]) for i in range(LOOP_IMAGES)], 1) / LOOP_IMAGES
            print(f"| {backend} | {name} | {method} | {N / batched:,.0f} | {1 / loop:,.1f} | "
                  f"{loop * N / batched:,.1f}x | {batched / forward:,.1f}x |", flush=True)


def keras_io_gradcam(img_array, model, last_conv_layer_name):
    """https://keras.io/examples/vision/grad_cam/ (make_gradcam_heatmap), unchanged in substance."""
    import keras
    import tensorflow as tf

    grad_model = keras.models.Model(model.inputs, [model.get_layer(last_conv_layer_name).output, model.output])
    with tf.GradientTape() as tape:
        last_conv_layer_output, preds = grad_model(img_array)
        pred_index = tf.argmax(preds[0])
        class_channel = preds[:, pred_index]
    grads = tape.gradient(class_channel, last_conv_layer_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = last_conv_layer_output[0] @ pooled_grads[..., tf.newaxis]
    heatmap = tf.squeeze(heatmap)
    heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
    return heatmap.numpy()


def gallery(models):
    """Batched ``Classifier.cams`` against the eager keras-io loop, and the 64-image gallery (TensorFlow)."""
    import numpy as np

    from eipviz.classifier import Classifier
    from eipviz.evaluation import Evaluation
    from eipviz.explain.gallery import gallery_items, gallery_png_sheet
    from eipviz.zoo import MODELS, build_model

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, 32, 32, 3), dtype=np.uint8)
    x = images.astype(np.float32) / 255.0
    print("| model | per-image keras-io img/s | batched Classifier.cams img/s | speed-up | gallery of 64 (s) |")
    print("| --- | --- | --- | --- | --- |")
    for name in models:
        model = build_model(name)
        layer = MODELS[name].cam_layer
        keras_io_gradcam(x[:1], model, layer)  # warm-up
        loop = LOOP_IMAGES / median_seconds(
            lambda: [keras_io_gradcam(x[i:i + 1], model, layer) for i in range(LOOP_IMAGES)], 1)
        classifier = Classifier(model, name, "unit_scale", tuple(str(i) for i in range(10)), "cifar10", layer,
                                source="benchmark")
        classifier.cams(images)  # trace once
        batched = N / median_seconds(lambda: classifier.cams(images), 1)
        probabilities = rng.dirichlet(np.ones(10), size=N).astype(np.float32)
        evaluation = Evaluation(rng.integers(0, 10, N), probabilities, classifier.class_names)
        gallery_items(classifier, evaluation, images, np.arange(N))  # warm
        seconds = median_seconds(lambda: gallery_png_sheet(gallery_items(classifier, evaluation, images,
                                                                         np.arange(N))), 1)
        print(f"| {name} | {loop:,.0f} | {batched:,.0f} | {batched / loop:.0f}x | {seconds:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "both"), default="both")
    parser.add_argument("--models", default="resnet20v1,resnet18")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gallery", action="store_true")
    args = parser.parse_args()
    models = args.models.split(",")
    if args.gallery:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        gallery(models)
        return
    if args.backend == "both":
        print(f"CPU, {N} images of 32x32, each model's default CAM layer; median of {args.repeats} "
              f"(slow methods: 1) after a traced first call\n")
        print("| backend | model | method | batched img/s | per-image loop img/s | speed-up | cost vs forward |")
        print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
        for backend in ("tensorflow", "jax"):
            subprocess.run([sys.executable, __file__, "--backend", backend, "--models", args.models,
                            "--repeats", str(args.repeats)], env={**os.environ, "KERAS_BACKEND": backend},
                           check=True)
        return
    os.environ["KERAS_BACKEND"] = args.backend
    measure(args.backend, models, args.repeats)


if __name__ == "__main__":
    main()
