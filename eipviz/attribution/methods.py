"""Every attribution method by the name the API, the CLI's ``--method`` and the pages use."""

import numpy as np

from eipviz.attribution.cams import (
    AblationCAM,
    BaseCAM,
    EigenCAM,
    EigenGradCAM,
    FasterScoreCAM,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    Probes,
    RandomCAM,
    ScoreCAM,
    XGradCAM,
)
from eipviz.attribution.input_gradients import (
    GuidedBackprop,
    GuidedGradCAM,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
)
from eipviz.errors import EipvizError

METHODS: dict[str, type[BaseCAM]] = {cls.name: cls for cls in (
    GradCAM, GradCAMPlusPlus, XGradCAM, HiResCAM, GradCAMElementWise, LayerCAM, ScoreCAM, FasterScoreCAM,
    AblationCAM, EigenCAM, EigenGradCAM, Saliency, SmoothGrad, IntegratedGradients, GuidedBackprop,
    GuidedGradCAM, RandomCAM)}
SLOW_METHODS = tuple(name for name, cls in METHODS.items() if cls.slow)
SMOOTHING = {  # options of every method's call, as pytorch-grad-cam names them
    "aug_smooth": "mean over flips and shifts",
    "eigen_smooth": "first principal component",
}


def method_label(name: str) -> str:
    """The name as a selector shows it: slow methods say so."""
    return f"{name} (slow)" if name in SLOW_METHODS else name


def make_cam(model, method: str = "gradcam", layer: str | None = None,
             reference_input: np.ndarray | None = None, probes: Probes | None = None) -> BaseCAM:
    """A new attribution method ``method`` for a Keras model (``Classifier.cam`` keeps one per method and layer);
    ``probes``: the model's ``Probes``, to share traced passes with its other methods."""
    if method not in METHODS:
        raise EipvizError(f"Unknown CAM method {method!r}. Choose one of: {', '.join(METHODS)}.")
    return METHODS[method](model, layer, reference_input, probes)
