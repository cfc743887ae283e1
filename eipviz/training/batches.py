"""Training batches from in-memory uint8 arrays, for what runs outside ``fit`` (BatchNorm re-estimation).

``fit`` itself takes the uint8 arrays whole: augmentation and preprocessing run inside the compiled
step (``eipviz.training.pipeline.TrainingModel``), never on the host.
"""

import math

import keras
import numpy as np


class ImageBatches(keras.utils.PyDataset):
    """Batches of (uint8 images, one-hot labels) in a seeded random order, as a ``TrainingModel`` takes them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.order = np.random.default_rng(seed).permutation(len(images))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        picked = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return self.images[picked], self.labels[picked]
