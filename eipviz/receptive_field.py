"""Per-layer receptive fields of any Keras image model.

For a layer with kernel k, stride s and dilation d:
``r_out = r_in + (k - 1) * d * j_in`` and ``j_out = j_in * s``.
Merges (Add, Concatenate, ...) take the maximum over their inputs; global
pooling and Flatten cover their whole input map. Height and width are
tracked separately and shown as one number when they agree.
"""

from dataclasses import dataclass

import keras
import numpy as np

# One number when height and width agree, else one per spatial axis.
Size = int | tuple[int, ...]

_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
               keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
               keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_POOL_TYPES = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.AveragePooling1D,
               keras.layers.AveragePooling2D)
_GLOBAL_TYPES = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                 keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.Flatten)


@dataclass(frozen=True)
class LayerField:
    """One row of the receptive-field table."""

    name: str
    type: str
    output_shape: tuple[int | None, ...]
    kernel: Size | None  # None for layers that do not change the field
    stride: Size | None
    dilation: Size | None
    jump: Size
    receptive_field: Size
    params: int


@dataclass(frozen=True)
class _Field:
    size: np.ndarray  # receptive field per spatial axis, in input pixels
    jump: np.ndarray  # distance in input pixels between neighbouring outputs


def _compact(values) -> Size:
    ints = [int(v) for v in np.atleast_1d(values)]
    return ints[0] if len(set(ints)) == 1 else tuple(ints)


def _spatial(shape):
    """Spatial dims of a channels-last output shape (batch and channels dropped)."""
    return tuple(shape[1:-1])


def receptive_field_table(model) -> list[LayerField]:
    """Return one row per layer of ``model`` in graph order (nested models expanded)."""
    rows: list[LayerField] = []
    fields: dict[int, _Field] = {}
    for tensor in model.inputs:
        ones = np.ones(len(_spatial(tensor.shape)), int)
        fields[id(tensor)] = _Field(ones, ones)
        rows.append(LayerField(tensor._keras_history[0].name, "InputLayer", tuple(tensor.shape),
                               kernel=None, stride=None, dilation=None, jump=1, receptive_field=1, params=0))
    for tensor in model.outputs:
        _field_of(tensor, fields, rows, prefix="")
    return rows


def _field_of(tensor, fields, rows, prefix) -> _Field:
    """Field of one tensor, computing its producers first (rows come out in graph order)."""
    if id(tensor) in fields:
        return fields[id(tensor)]
    layer, node_index, tensor_index = tensor._keras_history
    node = layer._inbound_nodes[node_index]
    in_fields = [_field_of(t, fields, rows, prefix) for t in node.input_tensors]
    if isinstance(layer, keras.Model):
        # A nested model: its own inputs take the fields of the tensors fed to it.
        for inner, outer_field in zip(layer.inputs, in_fields):
            fields[id(inner)] = outer_field
        inner_prefix = f"{prefix}{layer.name}/"
        for inner, outer in zip(layer.outputs, node.output_tensors):
            fields[id(outer)] = _field_of(inner, fields, rows, inner_prefix)
        return fields[id(tensor)]
    field, kernel, stride, dilation = _layer_field(layer, in_fields, node.input_tensors)
    for output in node.output_tensors:
        fields[id(output)] = field
    rows.append(LayerField(
        name=prefix + layer.name, type=type(layer).__name__, output_shape=tuple(node.output_tensors[0].shape),
        kernel=kernel, stride=stride, dilation=dilation,
        jump=_compact(field.jump), receptive_field=_compact(field.size), params=int(layer.count_params()),
    ))
    return field


def _layer_field(layer, in_fields, in_tensors):
    """Field of the layer's output, with the kernel, stride and dilation it applied."""
    if isinstance(layer, _CONV_TYPES):
        kernel, stride, dilation = layer.kernel_size, layer.strides, layer.dilation_rate
    elif isinstance(layer, _POOL_TYPES):
        kernel, stride, dilation = layer.pool_size, layer.strides, (1,) * len(layer.pool_size)
    elif isinstance(layer, _GLOBAL_TYPES) and len(_spatial(in_tensors[0].shape)) > 0:
        # One window the size of the whole input map.
        kernel = _spatial(in_tensors[0].shape)
        stride, dilation = kernel, (1,) * len(kernel)
    else:
        # Pass-through layers and merges: widest input field, largest jump.
        size = np.max([f.size for f in in_fields], axis=0)
        jump = np.max([f.jump for f in in_fields], axis=0)
        return _Field(size, jump), None, None, None
    (source,) = in_fields
    kernel_arr, stride_arr, dilation_arr = (np.asarray(v, int) for v in (kernel, stride, dilation))
    size = source.size + (kernel_arr - 1) * dilation_arr * source.jump
    jump = source.jump * stride_arr
    return _Field(size, jump), _compact(kernel_arr), _compact(stride_arr), _compact(dilation_arr)
