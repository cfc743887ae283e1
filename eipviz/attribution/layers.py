"""Which layer a CAM looks at."""

from collections import Counter

import keras

from eipviz.errors import EipvizError

# Layers whose 4-D output is a convolutional feature map worth explaining.
# BatchNorm, Dropout and pooling only rescale or subsample the map before them.
_CONV_LIKE = (
    keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D,
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
    keras.layers.PReLU, keras.layers.Add, keras.layers.Concatenate, keras.layers.Multiply,
)
MIN_CAM_SIZE = 5  # courses reject CAMs on maps smaller than 5x5


def flat_layers(model, prefix=""):
    """(path, layer) for every leaf layer in graph order, nested models expanded as ``outer/inner``."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from flat_layers(layer, f"{prefix}{layer.name}/")
        elif not isinstance(layer, keras.layers.InputLayer):
            yield prefix + layer.name, layer


def call_counts(model) -> Counter:
    """How many maps each leaf layer path computes on the way to the model's logits: a layer called at several
    places, or inside a nested model that is, computes several (a CAM taps one, and ``probe_model`` refuses to
    guess which); a layer off that way, none. The walk follows ``graph._Replay``'s rule: each call of a nested
    model in a scope of its own, and only the outputs of it that are used.
    """
    counts: Counter = Counter()

    def visit(tensor, prefix: str, scope: dict) -> None:
        if id(tensor) in scope:
            return
        scope[id(tensor)] = True
        layer, node_index, tensor_index = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        for parent in node.arguments.keras_tensors:
            visit(parent, prefix, scope)
        if isinstance(layer, keras.Model):
            visit(layer.outputs[tensor_index], f"{prefix}{layer.name}/", scope.setdefault(("call", id(node)), {}))
        elif not isinstance(layer, keras.layers.InputLayer) and ("node", id(node)) not in scope:
            scope[("node", id(node))] = True  # a layer with several outputs is called once for all of them
            counts[prefix + layer.name] += 1

    computed: dict = {}  # shared by the outputs: a probe model's map and logits are computed in one pass
    for output in model.outputs:
        visit(output, "", computed)
    return counts


def conv_feature_layers(model, min_size=1):
    """Paths of conv-like layers computing one map, 4-D, of at least ``min_size`` on both sides."""
    once = {path for path, count in call_counts(model).items() if count == 1}
    shapes = {path: _first_output(layer).shape for path, layer in flat_layers(model)
              if path in once and isinstance(layer, _CONV_LIKE)}
    return [path for path, shape in shapes.items() if len(shape) == 4 and min(shape[1:3]) >= min_size]


def _first_output(layer):
    """A layer's output (a Sequential's layers may hold a second node of their own: ``output`` then refuses)."""
    return layer._inbound_nodes[0].output_tensors[0]


def default_target_layer(model) -> str:
    """The deepest conv-like feature map of at least 5x5, else the deepest conv-like one."""
    candidates = conv_feature_layers(model, MIN_CAM_SIZE) or conv_feature_layers(model)
    if not candidates:
        shared = any(isinstance(layer, _CONV_LIKE) for _, layer in flat_layers(model))
        raise EipvizError("Every convolutional layer of this model computes several maps (it, or a block holding "
                          "it, is called more than once): none can be explained alone." if shared else
                          "This model has no convolutional feature map to explain.")
    return candidates[-1]
