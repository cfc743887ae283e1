"""Training batches from in-memory uint8 arrays: shuffle, augment, preprocess."""

import math

import keras
import numpy as np

from eipviz.preprocessing import preprocess


class ImageBatches(keras.utils.PyDataset):
    """Batches of (preprocessed images, one-hot labels) for ``model.fit``.

    Augmentation runs on the uint8-range images with Keras preprocessing
    layers, so the saved models stay free of training-only layers.
    """

    def __init__(self, images, labels, batch_size, preprocessing, num_classes=10,
                 augmentation=(), shuffle=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.preprocessing = preprocessing
        self.num_classes = num_classes
        self.augmentation = list(augmentation)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(images))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        picked = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        x = self.images[picked].astype(np.float32)
        if x.ndim == 3:
            x = x[..., None]
        for layer in self.augmentation:
            x = layer(x, training=True)
        if self.augmentation:
            x = keras.ops.convert_to_numpy(x)
        y = np.eye(self.num_classes, dtype=np.float32)[self.labels[picked]]
        return preprocess(x, self.preprocessing), y

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)
