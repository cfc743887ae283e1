"""Every method's maps of a saved model on saved images, under whichever Keras backend this process runs.

``tests/test_backends.py`` calls ``method_maps`` in its own (TensorFlow) process and runs this module once
under ``KERAS_BACKEND=jax``:

    KERAS_BACKEND=jax python -m tests.backend_maps MODEL.keras IMAGES.npy OUT.npz
"""

import sys

import numpy as np

CLASSES = (0, 3, 7)  # one per image: fixed, so a near tie between two logits cannot pick different classes
# (name, method, layer (None: the default), options) of every map the backends must agree on.
CASES = [(method, method, None, {}) for method in (
    "gradcam", "gradcam++", "xgradcam", "hirescam", "gradcam-elementwise", "layercam", "scorecam",
    "fasterscorecam", "ablationcam", "eigencam", "eigengradcam", "saliency", "smoothgrad",
    "integrated-gradients", "guided-backprop", "guided-gradcam", "random")] + [
    ("gradcam aug_smooth", "gradcam", None, {"aug_smooth": True}),
    ("gradcam eigen_smooth", "gradcam", None, {"eigen_smooth": True}),
    ("layercam aug_smooth eigen_smooth", "layercam", None, {"aug_smooth": True, "eigen_smooth": True}),
    ("gradcam nested layer", "gradcam", "block/block_conv2", {}),
]


def method_maps(model_path, images) -> dict[str, np.ndarray]:
    """{case name: maps (N, H, W)} and {"logits": (N, K)} for every case in ``CASES``."""
    import keras

    from eipviz.attribution.methods import make_cam

    model = keras.models.load_model(model_path)
    results = {}
    for name, method, layer, options in CASES:
        maps, _, logits = make_cam(model, method, layer)(images, CLASSES, **options)
        results[name] = maps
    results["logits"] = logits
    return results


if __name__ == "__main__":
    model_path, images_path, out_path = sys.argv[1:]
    np.savez(out_path, **method_maps(model_path, np.load(images_path)))
