"""Attributions from the gradient with respect to the input image, on the same pipeline as the CAMs.

Each map is the absolute value of a per-pixel attribution, maximised over
colour channels (as Simonyan et al. show saliency), then scaled to [0, 1].
The ``layer`` argument only matters to Guided Grad-CAM, which multiplies
guided backpropagation by Grad-CAM at that layer.
"""

import threading

import numpy as np

from eipviz.attribution.cams import BaseCAM, GradCAM, image_generator
from eipviz.attribution.graph import INPUT


def channel_max_abs(attributions: np.ndarray) -> np.ndarray:
    """(N, H, W) maps from per-pixel attributions (N, H, W, C): the largest magnitude over channels."""
    return np.abs(attributions).max(axis=-1)


class InputGradientMap(BaseCAM):
    """Base of the input-gradient methods: the probe taps the input image."""

    uses_layer = False

    @property
    def probe_layer(self) -> str:
        return INPUT


class Saliency(InputGradientMap):
    """Simonyan et al. 2014: |d logit[class] / d pixel|."""

    name = "saliency"

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        return channel_max_abs(gradients)


class SmoothGrad(InputGradientMap):
    """Smilkov et al. 2017: the mean of |gradient| over ``samples`` noisy copies of the image.

    The noise is Gaussian with standard deviation ``noise`` x (max - min) of each
    image, drawn from a generator seeded by the image's bytes, so an image gets
    the same map alone or in any batch.
    """

    name = "smoothgrad"
    slow = True
    samples = 25
    noise = 0.15
    seed = 0

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        spread = (inputs.max(axis=(1, 2, 3)) - inputs.min(axis=(1, 2, 3)))[:, None, None, None, None]
        draws = np.stack([image_generator(self.seed, image).normal(size=(self.samples, *inputs.shape[1:]))
                          for image in inputs])
        noisy = inputs[:, None] + draws * (self.noise * spread)
        _, _, grads, _ = self.gradients(noisy.reshape(-1, *inputs.shape[1:]).astype(np.float32),
                                        np.repeat(classes, self.samples))
        return channel_max_abs(grads.reshape(len(inputs), self.samples, *inputs.shape[1:])).mean(axis=1)


def integrated_gradients(cam: BaseCAM, inputs: np.ndarray, classes: np.ndarray, reference: np.ndarray,
                         steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(attributions (N, H, W, C), completeness error (N,)) of Sundararajan et al. 2017.

    The path from ``reference`` to each image is sampled at ``steps`` midpoints
    (the midpoint Riemann sum). Completeness says the attributions sum to
    logit(image) - logit(reference); the error is the gap relative to that
    difference (a few percent means enough steps).
    """
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    path = reference[None, None] + alphas[None, :, None, None, None] * (inputs - reference[None])[:, None]
    _, _, grads, _ = cam.gradients(path.reshape(-1, *inputs.shape[1:]), np.repeat(classes, steps))
    attributions = (inputs - reference[None]) * grads.reshape(len(inputs), steps, *inputs.shape[1:]).mean(axis=1)
    ends = cam.logits(np.concatenate([inputs, reference[None]]))
    gap = ends[np.arange(len(inputs)), classes] - ends[-1, classes]
    total = attributions.sum(axis=(1, 2, 3))
    return attributions, np.abs(total - gap) / np.maximum(np.abs(gap), 1e-6)


class IntegratedGradients(InputGradientMap):
    """Sundararajan et al. 2017: (image - black image) x the gradients averaged along the path between them.

    ``completeness_error`` holds, per image (N,), the completeness error of this thread's last call.
    """

    name = "integrated-gradients"
    slow = True
    steps = 32

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._this_thread = threading.local()  # one instance serves every browser session

    def prepare_call(self, inputs):
        self._this_thread.images = len(inputs)
        self._this_thread.errors = []

    @property
    def completeness_error(self) -> np.ndarray:
        """(N,) completeness errors of this thread's last call; with ``aug_smooth`` the worst over the views."""
        errors = getattr(self._this_thread, "errors", None)
        if not errors:
            return np.zeros(0, np.float32)
        return np.concatenate(errors).reshape(-1, self._this_thread.images).max(axis=0)  # view-major

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        reference = np.zeros(inputs.shape[1:], np.float32) if self.reference_input is None else self.reference_input
        attributions, error = integrated_gradients(self, inputs, classes, reference.astype(np.float32), self.steps)
        if not hasattr(self._this_thread, "errors"):  # called directly, not through __call__
            self.prepare_call(inputs)
        self._this_thread.errors.append(error)
        return channel_max_abs(attributions)


class GuidedBackprop(Saliency):
    """Springenberg et al. 2015: saliency with every ReLU passing only positive gradients."""

    name = "guided-backprop"
    guided = True


class GuidedGradCAM(GuidedBackprop):
    """Selvaraju et al. 2017: guided backpropagation times the Grad-CAM of ``layer`` upsampled to the input."""

    name = "guided-gradcam"
    uses_layer = True

    def layer_maps(self, activations, gradients, inputs, classes, eigen_smooth=False):
        if not hasattr(self, "_gradcam"):
            self._gradcam = GradCAM(self.model, self.layer, probes=self.probes)
        coarse, _, _ = self._gradcam(inputs, classes, eigen_smooth=eigen_smooth)
        return super().layer_maps(activations, gradients, inputs, classes) * coarse
