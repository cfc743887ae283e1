"""The two passes every attribution method needs, written once per Keras backend.

A probe model (``graph.probe_model``) maps ``[image, delta]`` to ``[map, logits]``.
``forward_pass`` runs it; ``gradient_pass`` also returns d logit[class] / d map,
the gradient with respect to ``delta`` at zero. TensorFlow traces one
``tf.function`` (``GradientTape``); JAX jits ``jax.grad`` over the model's
``stateless_call``; PyTorch uses autograd. Each pass is built once per probe
model (so once per method and layer), and batches are padded to a power of
two, so JAX compiles a handful of shapes rather than one per batch size. A
model whose maps are large takes fewer images a call (``memory``).
"""

from collections.abc import Callable

import keras
import numpy as np

from eipviz.attribution.memory import images_per_pass
from eipviz.errors import EipvizError

CHUNK = 256  # images per backend call, fewer for a model with large maps
Forward = Callable[..., tuple[np.ndarray, np.ndarray]]
Gradients = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def forward_pass(probe: keras.Model) -> Forward:
    """``f(x, delta=None, maps=True) -> (map, logits)`` as NumPy; ``delta`` (zeros when None) is added to the
    map. ``maps=False``: the map is None, no image's kept, so any number of images is scored in flat memory
    (faithfulness scores 1,088 at once; their maps and zero deltas were built whole)."""
    run = _BACKENDS[_backend()][0](probe)
    chunk = images_per_pass(probe, CHUNK)

    def forward(x, delta=None, maps=True):
        second = (lambda rows: np.zeros(_delta_shape(probe, rows), np.float32)) if delta is None else (
            np.asarray(delta, np.float32))
        return _chunked(run, np.asarray(x, np.float32), second, chunk, keep_first=maps)
    return forward


def gradient_pass(probe: keras.Model) -> Gradients:
    """``f(x, classes) -> (map, logits, d logit[class] / d map, class)`` as NumPy; class -1: the top class."""
    run = _BACKENDS[_backend()][1](probe)
    chunk = images_per_pass(probe, CHUNK, kept_copies=2)
    return lambda x, classes: _chunked(run, np.asarray(x, np.float32), np.asarray(classes, np.int32), chunk)


def _backend() -> str:
    backend = keras.backend.backend()
    if backend not in _BACKENDS:
        raise EipvizError(f"Attributions support the TensorFlow, JAX and PyTorch backends, not {backend!r}.")
    return backend


def _delta_shape(probe, n: int) -> tuple[int, ...]:
    return (n, *(int(d) for d in probe.inputs[1].shape[1:]))


def _chunked(run, x, second, chunk: int, keep_first: bool = True):
    """``run(x, second)`` over chunks of at most ``chunk`` rows, each padded to a power of two; outputs
    concatenated. ``second``: an array, or a function of a chunk's padded row count that makes it (a zero
    delta, per chunk). ``keep_first=False``: the first output (the map) is dropped as it comes, and is None."""
    parts = []
    for start in range(0, len(x), chunk):
        rows = min(chunk, len(x) - start)
        padded = min(chunk, 1 << (rows - 1).bit_length())

        def block(a):
            return np.pad(a[start:start + rows], [(0, padded - rows)] + [(0, 0)] * (a.ndim - 1))

        outputs = run(block(x), second(padded) if callable(second) else block(second))
        parts.append([np.asarray(t)[:rows] if keep_first or i else None for i, t in enumerate(outputs)])
    return tuple(None if p[0] is None else np.concatenate(p) for p in zip(*parts))


def _chosen(logits, classes):
    """Each image's class: the given one, or the top class where it is -1."""
    ops = keras.ops
    return ops.where(classes < 0, ops.cast(ops.argmax(logits, axis=-1), "int32"), classes)


def _tensorflow_forward(probe):
    import tensorflow as tf  # only under KERAS_BACKEND=tensorflow

    specs = [tf.TensorSpec((None, *t.shape[1:]), tf.float32) for t in probe.inputs]
    return tf.function(lambda x, delta: probe([x, delta], training=False), input_signature=specs)


def _tensorflow_gradients(probe):
    import tensorflow as tf  # only under KERAS_BACKEND=tensorflow

    @tf.function(input_signature=[tf.TensorSpec((None, *probe.inputs[0].shape[1:]), tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def run(x, classes):
        delta = tf.zeros(tf.concat([tf.shape(x)[:1], probe.inputs[1].shape[1:]], 0))
        with tf.GradientTape() as tape:
            tape.watch(delta)
            features, logits = probe([x, delta], training=False)
            chosen = _chosen(logits, classes)
            score = tf.reduce_sum(tf.gather(logits, chosen, batch_dims=1))
        return features, logits, tape.gradient(score, delta), chosen

    return run


def _jax_variables(probe):
    return [v.value for v in probe.trainable_variables], [v.value for v in probe.non_trainable_variables]


def _jax_forward(probe):
    import jax  # only under KERAS_BACKEND=jax

    @jax.jit
    def run(trainable, non_trainable, x, delta):
        outputs, _ = probe.stateless_call(trainable, non_trainable, [x, delta], training=False)
        return outputs

    return lambda x, delta: run(*_jax_variables(probe), x, delta)


def _jax_gradients(probe):
    import jax  # only under KERAS_BACKEND=jax
    import jax.numpy as jnp

    def score(delta, trainable, non_trainable, x, classes):
        (features, logits), _ = probe.stateless_call(trainable, non_trainable, [x, delta], training=False)
        chosen = _chosen(logits, classes)
        return jnp.take_along_axis(logits, chosen[:, None], axis=1).sum(), (features, logits, chosen)

    gradient = jax.jit(jax.grad(score, has_aux=True))

    def run(x, classes):
        delta = jnp.zeros(_delta_shape(probe, len(x)), jnp.float32)
        grads, (features, logits, chosen) = gradient(delta, *_jax_variables(probe), x, classes)
        return features, logits, grads, chosen

    return run


def _torch_forward(probe):
    import torch  # only under KERAS_BACKEND=torch

    def run(x, delta):
        with torch.no_grad():
            return [keras.ops.convert_to_numpy(t) for t in probe([x, delta], training=False)]
    return run


def _torch_gradients(probe):
    import torch  # only under KERAS_BACKEND=torch

    def run(x, classes):
        delta = torch.zeros(_delta_shape(probe, len(x)), requires_grad=True)
        features, logits = probe([torch.as_tensor(x), delta], training=False)
        chosen = _chosen(logits, torch.as_tensor(classes))
        score = torch.gather(logits, 1, chosen.long()[:, None]).sum()
        (grads,) = torch.autograd.grad(score, delta)
        return [keras.ops.convert_to_numpy(t) for t in (features, logits, grads, chosen)]

    return run


_BACKENDS = {
    "tensorflow": (_tensorflow_forward, _tensorflow_gradients),
    "jax": (_jax_forward, _jax_gradients),
    "torch": (_torch_forward, _torch_gradients),
}
