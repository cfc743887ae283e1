"""Receptive fields against hand-computed values."""

import keras
from keras import layers

from eipviz.receptive_field import receptive_field_table
from eipviz.tables import layer_table


def fields(model):
    return {row.name: (row.receptive_field, row.jump) for row in receptive_field_table(model)}


def test_stacked_3x3_convs_grow_by_two_and_stride_doubles_the_jump():
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(4, 3, name="c1"),  # r 3, j 1
        layers.Conv2D(4, 3, strides=2, name="c2"),  # r 5, j 2
        layers.Conv2D(4, 3, name="c3"),  # r 5 + 2*2 = 9, j 2
    ])
    got = fields(model)
    assert (got["c1"], got["c2"], got["c3"]) == ((3, 1), (5, 2), (9, 2))


def test_dilation_multiplies_the_kernel_span():
    model = keras.Sequential([
        keras.Input((32, 32, 1)),
        layers.Conv2D(2, 3, dilation_rate=2, name="dilated"),  # 1 + 2*2*1 = 5
        layers.Conv2D(2, 3, dilation_rate=3, name="dilated3"),  # 5 + 2*3*1 = 11
    ])
    got = fields(model)
    assert got["dilated"] == (5, 1) and got["dilated3"] == (11, 1)


def test_separable_conv_and_pooling():
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.SeparableConv2D(8, 5, name="sep5"),  # 5
        layers.MaxPooling2D(2, name="pool"),  # 5 + 1*1 = 6, j 2
        layers.SeparableConv2D(8, 3, name="sep3"),  # 6 + 2*2 = 10, j 2
        layers.AveragePooling2D(3, strides=1, name="avg"),  # 10 + 2*2 = 14, j 2
        layers.GlobalAveragePooling2D(name="gap"),  # 32-4=28, /2=14, -2=12, -2=10: 14 + 9*2 = 32
    ])
    got = fields(model)
    assert got["sep5"] == (5, 1)
    assert got["pool"] == (6, 2)
    assert got["sep3"] == (10, 2)
    assert got["avg"] == (14, 2)
    assert got["gap"][0] == 32


def test_residual_merge_takes_the_wider_branch():
    inputs = keras.Input((16, 16, 4), name="x")
    long_branch = layers.Conv2D(4, 3, padding="same", name="a")(inputs)  # 3
    long_branch = layers.Conv2D(4, 3, padding="same", name="b")(long_branch)  # 5
    short_branch = layers.Conv2D(4, 1, name="shortcut")(inputs)  # 1
    merged = layers.Add(name="add")([short_branch, long_branch])
    model = keras.Model(inputs, merged)
    got = fields(model)
    assert got["shortcut"] == (1, 1)
    assert got["add"] == (5, 1)


def test_nested_model_layers_are_expanded_with_the_outer_field():
    inner = keras.Sequential([keras.Input((8, 8, 2)), layers.Conv2D(2, 3, name="inner_conv")], name="inner")
    inputs = keras.Input((16, 16, 2))
    x = layers.Conv2D(2, 3, strides=2, padding="same", name="outer_conv")(inputs)  # 3, j 2
    model = keras.Model(inputs, inner(x))
    got = fields(model)
    assert got["inner/inner_conv"] == (3 + 2 * 2, 2)


def test_non_square_kernels_report_both_axes():
    model = keras.Sequential([keras.Input((10, 10, 1)), layers.Conv2D(1, (3, 1), name="tall")])
    assert fields(model)["tall"] == ((3, 1), 1)


def test_seed_annotation_errors_are_flagged_not_bent():
    rows = {row["layer"]: row for row in layer_table("sepconv59k")}
    # Seed 001 writes RF=3 for the second 3x3 separable conv; the real field is 5.
    assert rows["sepconv2"]["rf"] == 5 and rows["sepconv2"]["documented_rf"] == 3
    assert rows["sepconv2"]["rf_differs"] is True
    assert rows["sepconv8"]["rf"] == 44 and rows["sepconv8"]["rf_differs"] is False
