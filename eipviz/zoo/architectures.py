"""Builders for the five documented architectures, layer for layer as the seeds give them.

Every builder returns an uncompiled Keras 3 model whose last layer is a
softmax, exactly as the write-ups had it; explanations use the pre-softmax
logits (see ``eipviz.explain``).
"""

import keras
from keras import layers


def resnet18_cifar(input_shape=(32, 32, 3), num_classes=10):
    """ResNet18-style net of seed 000: 7x7/2 stem, basic blocks 64-128-256-512.

    No max-pool after the stem; downsampling blocks use a 1x1 projection
    shortcut with bias and no BatchNorm; every conv keeps its bias (the
    seed's summary counts them: 9,472 for the stem).
    """
    inputs = keras.Input(input_shape, name="input")
    x = layers.Conv2D(64, 7, strides=2, padding="same", name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, filters in enumerate((64, 128, 256, 512), start=1):
        for block in (1, 2):
            downsample = stage > 1 and block == 1
            prefix = f"stage{stage}_block{block}"
            strides = 2 if downsample else 1
            y = layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"{prefix}_conv1")(x)
            y = layers.BatchNormalization(name=f"{prefix}_bn1")(y)
            y = layers.Activation("relu", name=f"{prefix}_relu1")(y)
            y = layers.Conv2D(filters, 3, padding="same", name=f"{prefix}_conv2")(y)
            y = layers.BatchNormalization(name=f"{prefix}_bn2")(y)
            shortcut = x
            if downsample:
                shortcut = layers.Conv2D(filters, 1, strides=2, name=f"{prefix}_shortcut")(x)
            x = layers.Add(name=f"{prefix}_add")([shortcut, y])
            x = layers.Activation("relu", name=f"{prefix}_out")(x)
    x = layers.AveragePooling2D(pool_size=2, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="resnet18")


def resnet20_v1(input_shape=(32, 32, 3), num_classes=10):
    """ResNet20 v1 of seed 004 (the keras-io ``resnet_v1`` with n=3).

    Convs are he_normal with L2(1e-4); the projection shortcut is a 1x1
    conv without BatchNorm; the head is 8x8 average pooling and a dense
    softmax layer.
    """

    def conv(filters, kernel_size, strides, name):
        return layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same",
            kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.L2(1e-4), name=name,
        )

    inputs = keras.Input(input_shape, name="input")
    x = conv(16, 3, 1, "stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    filters = 16
    for stage in (1, 2, 3):
        for block in (1, 2, 3):
            prefix = f"stage{stage}_block{block}"
            downsample = stage > 1 and block == 1
            strides = 2 if downsample else 1
            y = conv(filters, 3, strides, f"{prefix}_conv1")(x)
            y = layers.BatchNormalization(name=f"{prefix}_bn1")(y)
            y = layers.Activation("relu", name=f"{prefix}_relu1")(y)
            y = conv(filters, 3, 1, f"{prefix}_conv2")(y)
            y = layers.BatchNormalization(name=f"{prefix}_bn2")(y)
            if downsample:
                x = conv(filters, 1, strides, f"{prefix}_shortcut")(x)
            x = layers.Add(name=f"{prefix}_add")([x, y])
            x = layers.Activation("relu", name=f"{prefix}_out")(x)
        filters *= 2
    x = layers.AveragePooling2D(pool_size=8, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal", name="predictions")(x)
    return keras.Model(inputs, outputs, name="resnet20v1")


def sepconv59k(input_shape=(32, 32, 3), num_classes=10, dropout=0.25):
    """Separable-conv net of seed 001 (58,965 params), layer names give the seed's order."""

    def sep(filters, name, strides=1, padding="same"):
        return layers.SeparableConv2D(filters, 3, strides=strides, padding=padding, activation="relu", name=name)

    model = keras.Sequential(name="sepconv59k")
    model.add(keras.Input(input_shape, name="input"))
    model.add(sep(64, "sepconv1"))
    model.add(layers.BatchNormalization(name="bn1"))
    model.add(sep(64, "sepconv2"))
    model.add(layers.BatchNormalization(name="bn2"))
    model.add(layers.Dropout(dropout, name="drop2"))
    model.add(sep(64, "sepconv3"))
    model.add(layers.BatchNormalization(name="bn3"))
    model.add(layers.Dropout(dropout, name="drop3"))
    model.add(layers.AveragePooling2D(pool_size=2, name="avgpool1"))
    for index in (4, 5, 6):
        model.add(sep(128, f"sepconv{index}"))
        model.add(layers.BatchNormalization(name=f"bn{index}"))
        model.add(layers.Dropout(dropout, name=f"drop{index}"))
    model.add(sep(10, "sepconv7", strides=2, padding="valid"))
    model.add(layers.BatchNormalization(name="bn7"))
    model.add(layers.Dropout(dropout, name="drop7"))
    model.add(layers.AveragePooling2D(pool_size=2, name="avgpool2"))
    model.add(sep(num_classes, "sepconv8", padding="valid"))
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Activation("softmax", name="predictions"))
    return model


def sepconv65k(input_shape=(32, 32, 3), num_classes=10):
    """Separable-conv net of seed 003 (65,101 params).

    The seed's ``Conv2D(64, 1, 1)`` is a 1x1 conv with stride 1 (the
    Keras 2 reading and the Keras 3 reading agree here).
    """

    def sep(filters, name, padding="same"):
        return layers.SeparableConv2D(filters, 3, padding=padding, activation="relu", name=name)

    model = keras.Sequential(name="sepconv65k")
    model.add(keras.Input(input_shape, name="input"))
    model.add(sep(64, "sepconv1"))
    model.add(layers.BatchNormalization(name="bn1"))
    model.add(sep(64, "sepconv2", padding="valid"))
    model.add(layers.BatchNormalization(name="bn2"))
    model.add(layers.Dropout(0.1, name="drop2"))
    model.add(sep(128, "sepconv3"))
    model.add(layers.BatchNormalization(name="bn3"))
    model.add(layers.Dropout(0.1, name="drop3"))
    model.add(layers.MaxPooling2D(pool_size=2, name="maxpool1"))
    model.add(layers.Conv2D(64, 1, activation="relu", name="conv1x1"))
    model.add(layers.BatchNormalization(name="bn4"))
    model.add(layers.Dropout(0.1, name="drop4"))
    model.add(sep(96, "sepconv4"))
    model.add(layers.BatchNormalization(name="bn5"))
    model.add(layers.Dropout(0.1, name="drop5"))
    model.add(sep(128, "sepconv5", padding="valid"))
    model.add(layers.BatchNormalization(name="bn6"))
    model.add(layers.Dropout(0.15, name="drop6"))
    model.add(layers.MaxPooling2D(pool_size=2, name="maxpool2"))
    model.add(sep(128, "sepconv6", padding="valid"))
    model.add(layers.BatchNormalization(name="bn7"))
    model.add(layers.Dropout(0.15, name="drop7"))
    model.add(sep(num_classes, "sepconv7", padding="valid"))
    model.add(layers.BatchNormalization(name="bn8"))
    model.add(layers.GlobalAveragePooling2D(name="gap"))
    model.add(layers.Activation("softmax", name="predictions"))
    return model


def mnist14k(input_shape=(28, 28, 1), num_classes=10, dropout=0.1):
    """MNIST net of seed 002: 14,588 trainable + 252 non-trainable params.

    The seed documents only the description (a 1x1 conv before the last
    BatchNorm and Dropout, global average pooling, the two counts), not
    the layers. This is our own conventional design that matches it
    exactly: bias-free 3x3 convs 8-10-20, max-pool, a 1x1 squeeze to 10,
    3x3 convs 20-24-24, then the 1x1 conv to 10 class maps, BatchNorm,
    Dropout, GAP and softmax. The 126 BatchNorm channels give the 252
    non-trainable params.
    """

    def conv(filters, kernel_size, name, activation="relu"):
        return layers.Conv2D(filters, kernel_size, use_bias=False, activation=activation, name=name)

    model = keras.Sequential(name="mnist14k")
    model.add(keras.Input(input_shape, name="input"))
    for index, filters in enumerate((8, 10, 20), start=1):
        model.add(conv(filters, 3, f"conv{index}"))
        model.add(layers.BatchNormalization(name=f"bn{index}"))
    model.add(layers.MaxPooling2D(pool_size=2, name="maxpool"))
    model.add(conv(10, 1, "squeeze1x1"))
    model.add(layers.BatchNormalization(name="bn4"))
    for index, filters in enumerate((20, 24, 24), start=5):
        model.add(conv(filters, 3, f"conv{index}"))
        model.add(layers.BatchNormalization(name=f"bn{index}"))
    model.add(conv(num_classes, 1, "class_maps1x1", activation=None))
    model.add(layers.BatchNormalization(name="bn_last"))
    model.add(layers.Dropout(dropout, name="dropout_last"))
    model.add(layers.GlobalAveragePooling2D(name="gap"))
    model.add(layers.Activation("softmax", name="predictions"))
    return model
