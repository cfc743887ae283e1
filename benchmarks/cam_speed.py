"""Batched ``Classifier.cams`` against the textbook per-image Grad-CAM, and gallery render time (CPU).

The per-image baseline is the keras-io recipe: an eager ``tf.GradientTape``
around a two-output ``grad_model`` for one image at a time.

    .venv/bin/python benchmarks/cam_speed.py
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from eipviz.classifier import Classifier  # noqa: E402
from eipviz.evaluation import Evaluation  # noqa: E402
from eipviz.explain.gallery import gallery_items, gallery_png_sheet  # noqa: E402
from eipviz.zoo import MODELS, build_model  # noqa: E402

N = 64
LOOP_IMAGES = 16  # the per-image loop is slow; time 16 and report the rate


def keras_io_gradcam(img_array, model, last_conv_layer_name):
    """https://keras.io/examples/vision/grad_cam/ (make_gradcam_heatmap), unchanged in substance."""
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


def rate(fn, images):
    start = time.perf_counter()
    fn()
    return images / (time.perf_counter() - start)


def main():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, 32, 32, 3), dtype=np.uint8)
    x = images.astype(np.float32) / 255.0
    print(f"CPU, {N} images of 32x32, Grad-CAM on the default layer; first call (tracing) excluded\n")
    print("| model | per-image keras-io img/s | batched Classifier.cams img/s | speed-up | gallery of 64 (s) |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("resnet20v1", "resnet18"):
        model = build_model(name)
        layer = MODELS[name].cam_layer
        keras_io_gradcam(x[:1], model, layer)  # warm-up
        loop = rate(lambda: [keras_io_gradcam(x[i:i + 1], model, layer) for i in range(LOOP_IMAGES)], LOOP_IMAGES)
        classifier = Classifier(model, name, "unit_scale", tuple(str(i) for i in range(10)), "cifar10", layer,
                                source="benchmark")
        classifier.cams(images)  # trace once
        batched = rate(lambda: classifier.cams(images), N)

        probabilities = rng.dirichlet(np.ones(10), size=N).astype(np.float32)
        evaluation = Evaluation(rng.integers(0, 10, N), probabilities, classifier.class_names)
        gallery_items(classifier, evaluation, images, np.arange(N))  # warm
        start = time.perf_counter()
        gallery_png_sheet(gallery_items(classifier, evaluation, images, np.arange(N)))
        gallery_seconds = time.perf_counter() - start
        print(f"| {name} | {loop:,.0f} | {batched:,.0f} | {batched / loop:.0f}x | {gallery_seconds:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
