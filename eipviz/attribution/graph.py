"""Models that return a Keras model's pre-softmax logits, and optionally one layer's feature map.

The graph is replayed layer by layer with the same layer objects (weights
shared), nested models expanded, so a layer deep inside a nested model can
be tapped. A probe model also adds a second input to the tapped map
(``map + delta``): the gradient with respect to ``delta`` is the gradient with
respect to the map on every backend (no hooks, no tape on a hidden tensor),
and setting ``delta`` edits the map for the layers after it (Ablation-CAM).

The final softmax is dropped: CAMs differentiate the logit, never a
saturated softmax, and probabilities are the softmax of these same logits
whether or not the model ends in a softmax (nothing is guessed from its outputs).
"""

import keras
import numpy as np

from eipviz.attribution.layers import flat_layers
from eipviz.errors import EipvizError


def softmax(logits) -> np.ndarray:
    """Class probabilities (N, K) float32 from logits (N, K): the only way eipviz turns outputs into probabilities."""
    logits = np.asarray(logits, np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _is_softmax(layer) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    return getattr(layer, "activation", None) is keras.activations.softmax


def _call_linear_twin(layer, args, kwargs):
    """Call a twin of a Dense/Conv layer that has a linear activation and shares the layer's variables.

    The twin is a shallow copy (``copy.copy`` would go through Keras' ``__reduce__`` and build fresh
    variables), so a later change to the layer's weights reaches it: a probe model traced once stays right
    while the model trains (the explanation timeline) or is randomised (the sanity check). The layer itself
    is never changed, since a model is shared across threads.
    """
    twin = object.__new__(type(layer))
    twin.__dict__.update(layer.__dict__)
    twin.activation = keras.activations.linear
    return twin(*args, **kwargs)


INPUT = "<input>"  # the layer path that means the model's input image (input-gradient methods)


@keras.ops.custom_gradient
def _guided_relu(x):
    """ReLU whose gradient passes only where both the input and the incoming gradient are positive."""
    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        return upstream * keras.ops.cast(upstream > 0, upstream.dtype) * keras.ops.cast(x > 0, x.dtype)
    return keras.ops.relu(x), grad


class GuidedReLU(keras.layers.Layer):
    """Guided backpropagation's ReLU (Springenberg et al. 2015), for probe models only."""

    def call(self, inputs):
        return _guided_relu(inputs)


def _is_relu(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return not config.get("max_value") and not config.get("negative_slope") and not config.get("threshold")
    return getattr(layer, "activation", None) is keras.activations.relu


class _Replay:
    def __init__(self, target: str | None, guided: bool = False, cut: bool = False, taken: frozenset = frozenset()):
        self.target = target
        self.guided = guided
        self.cut = cut  # the tapped map becomes an input of its own: only the layers after it depend on it
        self.captured = None
        self.delta = None  # the probe input added to the tapped map
        self.logits = None
        self.values: dict = {}  # id(tensor) -> its replayed value; ("call", id(node)) -> a nested call's scope
        self.taken = taken  # the model's layer names: the probe's own layers need others

    def name(self, role: str) -> str:
        """A name for the probe's own ``role`` layer that the model does not use: a functional model refuses a
        name used twice, and an uploaded model's layer named "eipviz_probe_tap" (a fuzzer's) failed every CAM."""
        name, count = f"eipviz_probe_{role}", 1
        while name in self.taken:
            name, count = f"eipviz_probe_{role}_{count}", count + 1
        return name

    def tap(self, value):
        """Capture ``value`` as the probed map and return ``value + delta`` for the layers after it.

        The sum is a named ``Add`` layer: ``keras.ops.add`` would be an operation auto-named ``add``,
        which clashes with a loaded model's own layer of that name (Keras' default for ``Add``) in a
        fresh process, and a functional model refuses duplicate names.
        """
        if self.captured is not None:  # a layer object called at several places: which map is meant?
            raise EipvizError(f"Layer {self.target!r} computes several maps (its layer, or a model holding it, is "
                              f"called more than once); explain a layer used once.")
        if self.cut:
            value = keras.Input(shape=value.shape[1:], name=self.name("map"))
        self.captured = value
        self.delta = keras.Input(shape=value.shape[1:], name=self.name("delta"))
        return keras.layers.Add(name=self.name("tap"))([value, self.delta])

    def tensor(self, tensor, prefix: str, final: bool):
        """The replayed value of ``tensor`` (``final``: the model's output, softmax to be stripped)."""
        if id(tensor) in self.values and not final:
            return self.values[id(tensor)]
        layer, node_index, tensor_index = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        for parent in node.arguments.keras_tensors:
            self.tensor(parent, prefix, final=False)
        if isinstance(layer, keras.Model):
            # Each call of a nested model is replayed in a scope of its own, kept in the scope of the call around
            # it: its inner tensors are the same objects at every call, so one cache gave a second call the first
            # one's values (block(block(x)) ran block once). Only the output used is replayed: a layer feeding
            # only another output is off the way to the logits.
            scope = self.values.setdefault(("call", id(node)), {})
            if not scope:
                args, _ = node.arguments.fill_in(self.values)
                scope.update({id(inner): value for inner, value in zip(layer.inputs, keras.tree.flatten(args))})
            outer, self.values = self.values, scope
            out = self.tensor(layer.outputs[tensor_index], f"{prefix}{layer.name}/", final)
            self.values = outer
        else:
            args, kwargs = node.arguments.fill_in(self.values)
            if final and _is_softmax(layer):
                if isinstance(layer, (keras.layers.Activation, keras.layers.Softmax)):
                    out = args[0]
                else:
                    out = _call_linear_twin(layer, args, kwargs)
            else:
                outputs = keras.tree.flatten(self._call(layer, args, kwargs))
                if prefix + layer.name == self.target:
                    outputs[tensor_index] = self.tap(outputs[tensor_index])
                out = outputs[tensor_index]
                for original, value in zip(node.outputs, outputs):
                    self.values[id(original)] = value
        if not final:
            self.values[id(tensor)] = out
        return out


    def _call(self, layer, args, kwargs):
        if not (self.guided and _is_relu(layer)):
            return layer(*args, **kwargs)
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            return GuidedReLU()(args[0])
        return GuidedReLU()(_call_linear_twin(layer, args, kwargs))


def _replayed(model, layer_path: str | None, guided: bool = False, cut: bool = False) -> tuple:
    """(new input, replay) of the model replayed without its softmax, ``layer_path`` tapped; ``replay.logits``."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise EipvizError("eipviz explains models with one image input and one class output.")
    # Only the leaf layers are called in the replayed graph (nested models are flattened, the input is new).
    replay = _Replay(layer_path, guided, cut, frozenset(layer.name for _, layer in flat_layers(model)))
    (original_input,) = model.inputs
    new_input = keras.Input(shape=original_input.shape[1:], dtype=original_input.dtype, name=replay.name("image"))
    replay.values[id(original_input)] = replay.tap(new_input) if layer_path == INPUT else new_input
    replay.logits = replay.tensor(model.outputs[0], "", final=True)
    return new_input, replay


def logit_model(model) -> keras.Model:
    """``keras.Model`` mapping the model's input to its pre-softmax logits (the same layers and weights)."""
    new_input, replay = _replayed(model, None)
    return keras.Model(new_input, replay.logits)


def probe_model(model, layer_path: str, guided: bool = False) -> keras.Model:
    """``keras.Model`` mapping ``[image, delta]`` to ``[map, logits]``, where the layers after ``layer_path``
    see ``map + delta`` (``INPUT``: the image itself is the map). ``guided``: every ReLU is ``GuidedReLU``."""
    new_input, replay = _replayed(model, layer_path, guided)
    _check_tapped(model, layer_path, replay.captured)
    return keras.Model([new_input, replay.delta], [replay.captured, replay.logits])


def tail_probe_model(model, layer_path: str) -> keras.Model | None:
    """``keras.Model`` mapping ``[map, delta]`` to ``[map, logits]`` through only the layers after ``layer_path``
    (Ablation-CAM runs every ablated map through them, not the whole model again). None when a later layer
    also reads a tensor from before the layer (a skip connection around it): then the map alone does not
    decide the logits."""
    _, replay = _replayed(model, layer_path, cut=True)
    _check_tapped(model, layer_path, replay.captured)
    try:
        return keras.Model([replay.captured, replay.delta], [replay.captured, replay.logits])
    except ValueError:  # the graph needs the image input too
        return None


def _check_tapped(model, layer_path: str, captured) -> None:
    """Refuse a layer whose map no CAM can use, saying why: none of that name, one off the way to the output (or
    the softmax a replay drops), or one whose output is no feature map (a pooled vector reached numpy errors)."""
    if captured is None:
        if layer_path not in {path for path, _ in flat_layers(model)}:
            raise EipvizError(f"The model has no layer {layer_path!r}.")
        raise EipvizError(f"Layer {layer_path!r} is not on the way to the model's logits (or is its final "
                          f"softmax); explain a feature map before it.")
    if layer_path != INPUT and len(captured.shape) != 4:
        raise EipvizError(f"Layer {layer_path!r} outputs {tuple(captured.shape)}, not a feature map "
                          f"(N, H, W, C); explain a convolutional layer.")
