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
    """How many maps each leaf layer path computes on the way to the model's output: a layer called at several
    places, or inside a nested model that is, computes several (a CAM taps one, and ``probe_model`` refuses to
    guess which); a layer off that way, none. Walked like ``graph._Replay``, each nested call in its own scope.
    """
    counts: Counter = Counter()

    def visit(tensor, prefix: str, seen: set) -> None:
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.arguments.keras_tensors:
            visit(parent, prefix, seen)
        if isinstance(layer, keras.Model):
            inner: set = set()  # the same inner nodes at every call of it
            for output in layer.outputs:
                visit(output, f"{prefix}{layer.name}/", inner)
        elif not isinstance(layer, keras.layers.InputLayer):
            counts[prefix + layer.name] += 1

    for output in model.outputs:
        visit(output, "", set())
    return counts


def conv_feature_layers(model, min_size=1):
    """Paths of conv-like layers computing one map, 4-D, of at least ``min_size`` on both sides."""
    once = {path for path, count in call_counts(model).items() if count == 1}
    return [path for path, layer in flat_layers(model) if path in once and isinstance(layer, _CONV_LIKE)
            and len(_first_output(layer).shape) == 4 and min(_first_output(layer).shape[1:3]) >= min_size]


def _first_output(layer):
    """A layer's output (a Sequential's layers may hold a second node of their own: ``output`` then refuses)."""
    return layer._inbound_nodes[0].output_tensors[0]


def default_target_layer(model) -> str:
    """The deepest conv-like feature map of at least 5x5, else the deepest conv-like one."""
    candidates = conv_feature_layers(model, MIN_CAM_SIZE) or conv_feature_layers(model)
    if not candidates:
        raise EipvizError("This model has no convolutional feature map to explain.")
    return candidates[-1]
