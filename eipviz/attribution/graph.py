"""Models that return a Keras model's pre-softmax logits, and optionally one layer's feature map.

The graph is replayed layer by layer with the same layer objects (weights
shared), nested models expanded, so a layer deep inside a nested model can
be tapped. The final softmax is dropped: CAMs differentiate the logit, never
a saturated softmax, and probabilities are the softmax of these same logits
whether or not the model ends in a softmax (nothing is guessed from its outputs).
"""

import keras
import numpy as np

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
    """Call a copy of a softmax Dense/Conv head with a linear activation and the same weights."""
    config = layer.get_config()
    config["activation"] = "linear"
    twin = type(layer).from_config(config)
    out = twin(*args, **kwargs)  # builds it
    twin.set_weights(layer.get_weights())
    return out


class _Replay:
    def __init__(self, target: str | None):
        self.target = target
        self.captured = None
        self.values: dict[int, object] = {}

    def tensor(self, tensor, prefix: str, final: bool):
        """The replayed value of ``tensor`` (``final``: the model's output, softmax to be stripped)."""
        if id(tensor) in self.values and not final:
            return self.values[id(tensor)]
        layer, node_index, tensor_index = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        for parent in node.arguments.keras_tensors:
            self.tensor(parent, prefix, final=False)
        if isinstance(layer, keras.Model):
            args, _ = node.arguments.fill_in(self.values)
            for inner, value in zip(layer.inputs, keras.tree.flatten(args)):
                self.values[id(inner)] = value
            out = self.tensor(layer.outputs[tensor_index], f"{prefix}{layer.name}/", final)
        else:
            args, kwargs = node.arguments.fill_in(self.values)
            if final and _is_softmax(layer):
                if isinstance(layer, (keras.layers.Activation, keras.layers.Softmax)):
                    out = args[0]
                else:
                    out = _call_linear_twin(layer, args, kwargs)
            else:
                outputs = keras.tree.flatten(layer(*args, **kwargs))
                out = outputs[tensor_index]
                for original, value in zip(node.outputs, outputs):
                    self.values[id(original)] = value
            if prefix + layer.name == self.target:
                self.captured = out
        if not final:
            self.values[id(tensor)] = out
        return out


def _replayed(model, layer_path: str | None):
    """(new input, tapped output of ``layer_path`` or None, logits) of the model replayed without its softmax."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise EipvizError("eipviz explains models with one image input and one class output.")
    replay = _Replay(layer_path)
    (original_input,) = model.inputs
    new_input = keras.Input(shape=original_input.shape[1:], dtype=original_input.dtype)
    replay.values[id(original_input)] = new_input
    logits = replay.tensor(model.outputs[0], "", final=True)
    return new_input, replay.captured, logits


def logit_model(model) -> keras.Model:
    """``keras.Model`` mapping the model's input to its pre-softmax logits (the same layers and weights)."""
    new_input, _, logits = _replayed(model, None)
    return keras.Model(new_input, logits)


def feature_logit_model(model, layer_path: str) -> keras.Model:
    """``keras.Model`` mapping the model's input to ``[layer_path's output, logits]``."""
    new_input, captured, logits = _replayed(model, layer_path)
    if captured is None:
        raise EipvizError(f"Layer {layer_path!r} is not on the path to the model's output.")
    return keras.Model(new_input, [captured, logits])
