"""Which layer a CAM looks at."""

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


def conv_feature_layers(model, min_size=1):
    """Paths of conv-like layers with a 4-D output of at least ``min_size`` on both sides."""
    paths = []
    for path, layer in flat_layers(model):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # layer called more than once; its first call decides
            shape = layer._inbound_nodes[0].output_tensors[0].shape
        if isinstance(layer, _CONV_LIKE) and len(shape) == 4 and min(shape[1], shape[2]) >= min_size:
            paths.append(path)
    return paths


def default_target_layer(model) -> str:
    """The deepest conv-like feature map of at least 5x5, else the deepest conv-like one."""
    candidates = conv_feature_layers(model, MIN_CAM_SIZE) or conv_feature_layers(model)
    if not candidates:
        raise EipvizError("This model has no convolutional feature map to explain.")
    return candidates[-1]
