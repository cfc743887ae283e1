"""Test-set evaluation: accuracy, per-class accuracy, confusion matrix and every prediction."""

from dataclasses import dataclass

import numpy as np

from eipviz.classifier import Classifier
from eipviz.data import load_dataset
from eipviz.errors import EipvizError


@dataclass(frozen=True)
class Evaluation:
    """Every prediction of one model on a test set, and the tables read from them."""

    labels: np.ndarray  # (N,) true classes
    probabilities: np.ndarray  # (N, K)
    class_names: tuple

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    def per_class_accuracy(self) -> dict:
        return {name: float((self.predictions[self.labels == k] == k).mean())
                for k, name in enumerate(self.class_names)}

    def confusion_matrix(self) -> np.ndarray:
        """Counts (true, predicted)."""
        k = len(self.class_names)
        return np.bincount(self.labels * k + self.predictions, minlength=k * k).reshape(k, k)

    def misclassified_indices(self, true_class=None, predicted_class=None, min_confidence=0.0,
                              max_confidence=1.0) -> np.ndarray:
        """Indices of wrong predictions, most confident first, optionally filtered."""
        wrong = self.predictions != self.labels
        if true_class is not None:
            wrong &= self.labels == true_class
        if predicted_class is not None:
            wrong &= self.predictions == predicted_class
        wrong &= (self.confidence >= min_confidence) & (self.confidence <= max_confidence)
        indices = np.flatnonzero(wrong)
        return indices[np.argsort(-self.confidence[indices], kind="stable")]

    def to_dict(self) -> dict:
        """Accuracy, per-class accuracy and the number of images, rounded for JSON."""
        return {"accuracy": round(self.accuracy, 6),
                "per_class_accuracy": {k: round(v, 6) for k, v in self.per_class_accuracy().items()},
                "n": int(len(self.labels))}


def test_images_for(classifier: Classifier) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 test images and labels of the dataset the model was trained on."""
    if classifier.dataset is None:
        raise EipvizError(f"{classifier.name} does not take CIFAR-10 or MNIST images with 10 classes; "
                          f"there is no test set to evaluate it on.")
    ds = load_dataset(classifier.dataset)
    return ds.x_test, ds.y_test


def sample_test_images(classifier: Classifier, n: int, seed: int = 0) -> np.ndarray:
    """``n`` test images drawn without replacement (all of them when ``n`` is larger), reproducible by seed."""
    images, _ = test_images_for(classifier)
    picked = np.random.default_rng(seed).choice(len(images), min(int(n), len(images)), replace=False)
    return images[picked]


def evaluate(classifier: Classifier, limit: int | None = None) -> Evaluation:
    """Evaluate on the model's full test set (or its first ``limit`` images)."""
    images, labels = test_images_for(classifier)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return Evaluation(np.asarray(labels, dtype=np.int64), classifier.probabilities(images), classifier.class_names)
