"""The training batches ``fit`` takes: uint8 images from in-memory arrays, every batch full.

Augmentation and preprocessing run inside the compiled step (``eipviz.training.pipeline.TrainingModel``),
never on the host.
"""

import keras
import numpy as np

from eipviz.recipes import full_batches, trained_batch_size


class ImageBatches(keras.utils.PyDataset):
    """Full batches of (uint8 images, one-hot labels) in a seeded random order, drawn again at each epoch's end.

    The last partial batch is left out (a different few images each epoch; PyTorch's ``drop_last``), because
    under JAX a batch of another size compiles the training step a second time: 4 of a resnet20v1 run's
    first-epoch seconds on this project's CPU (batch 512, ``JAX_LOG_COMPILES=1``). Fewer images than one
    batch make one batch of them all. Precise BatchNorm re-estimates from the same batches.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, labels
        self.batch_size = trained_batch_size(len(images), batch_size)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return full_batches(len(self.images), self.batch_size)

    def __getitem__(self, index):
        picked = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return self.images[picked], self.labels[picked]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))
