"""Test-set evaluation: accuracy, per-class accuracy, confusion matrix and every prediction.

A model file's test-set probabilities are kept on disk beside it (float32,
keyed by the file's sha256), so a page opens on a stored evaluation instead of
running 10,000 images through the model again.
"""

import dataclasses
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eipviz.atomic import write_npz_atomically
from eipviz.classifier import Classifier, StoredPredictions
from eipviz.data import load_test_split, sample_images
from eipviz.errors import EipvizError
from eipviz.preprocessing import PREPROCESSING_CHECK_IMAGES, PREPROCESSINGS, check_fits
from eipviz.weights import sha256_of


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
    def misclassified_count(self) -> int:
        return int((self.predictions != self.labels).sum())

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


def dataset_test_split(classifier: Classifier) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 test images and labels of the dataset the model was trained on."""
    if classifier.dataset is None:
        raise EipvizError(f"{classifier.name} does not take CIFAR-10 or MNIST images with 10 classes; "
                          f"there is no test set to evaluate it on.")
    return load_test_split(classifier.dataset)


def sample_test_images(classifier: Classifier, n: int, seed: int = 0, option: str = "n") -> np.ndarray:
    """``n`` test images drawn without replacement, reproducible by seed: ``sample_images``' draw, once
    ``check_test_image_count`` has said what is wrong with ``n`` (``option`` names it) or the model."""
    check_test_image_count(classifier, n, option)
    return np.stack([image for _, image in sample_images(str(classifier.dataset), n, seed)])


def check_test_image_count(classifier: Classifier, n: int, option: str) -> None:
    """Refuse ``n`` test images beyond the model's test set (``dataset_test_split`` refuses a model of no known
    dataset): more were quietly cut to all of it, and ``faithfulness --n 10001`` then ran for minutes."""
    images, _ = dataset_test_split(classifier)
    if not 1 <= n <= len(images):
        raise EipvizError(f"{option} takes 1 to {len(images):,}: the {classifier.dataset} test set has "
                          f"{len(images):,} images. Received: {n:,}.")


def evaluate(classifier: Classifier, limit: int | None = None) -> Evaluation:
    """Evaluate on the model's full test set (or its first ``limit`` images)."""
    images, labels = dataset_test_split(classifier)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return Evaluation(np.asarray(labels, dtype=np.int64), classifier.probabilities(images), classifier.class_names)


def evaluate_test_set(classifier: Classifier) -> Evaluation:
    """The full test-set evaluation, read from the stored predictions when they belong to this very model file.

    Run checkpoints store theirs on first use; shipped weights only read the file ``ship`` wrote and the
    manifest verifies. They are float32: float16 flipped the top class of 3 near-ties in 10,000 (sepconv59k).
    """
    stored = classifier.predictions
    if stored is None:
        return evaluate(classifier)
    images, labels = dataset_test_split(classifier)
    probabilities = read_predictions(stored, stored.model_sha256, classifier, len(labels))
    if probabilities is None:
        probabilities = classifier.probabilities(images)
        if stored.sha256 is None:
            try:
                write_predictions(stored.path, probabilities, stored.model_sha256, classifier)
            except OSError:
                pass  # a read-only or full runs folder: the evaluation stands, it is just not kept
    return Evaluation(np.asarray(labels, dtype=np.int64), probabilities, classifier.class_names)


def write_predictions(path: Path, probabilities: np.ndarray, model_sha256: str, classifier: Classifier) -> None:
    """Store test-set probabilities (float32) with what they belong to, atomically (a unique temporary file,
    then a rename), so two writers at once or a kill mid-write never leave a broken file."""
    write_npz_atomically(path, probabilities=probabilities.astype(np.float32), model_sha256=model_sha256,
                         preprocessing=classifier.preprocessing, dataset=str(classifier.dataset))


def read_predictions(stored: StoredPredictions, model_sha256: str, classifier: Classifier,
                     n: int) -> np.ndarray | None:
    """The stored probabilities (N, K) float32, or None unless they verify: file checksum when the manifest
    gives one, the model file's sha256, preprocessing, dataset and shape. A stale or broken file is ignored."""
    if not stored.path.is_file() or (stored.sha256 is not None and sha256_of(stored.path) != stored.sha256):
        return None
    try:
        with np.load(stored.path, allow_pickle=False) as data:
            probabilities = data["probabilities"]
            belongs = (str(data["model_sha256"]) == model_sha256
                       and str(data["preprocessing"]) == classifier.preprocessing
                       and str(data["dataset"]) == str(classifier.dataset))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if not belongs or probabilities.shape != (n, len(classifier.class_names)):
        return None
    return probabilities


PREPROCESSING_GAP = 0.2  # another preprocessing this much more accurate is almost surely the model's own


def preprocessing_accuracies(classifier: Classifier, n: int = PREPROCESSING_CHECK_IMAGES) -> dict[str, float]:
    """Accuracy on the first ``n`` test images under every preprocessing the model's input fits; ``EipvizError``
    when there is no test set (a model of no known dataset, or the dataset is not on this machine)."""
    images, labels = dataset_test_split(classifier)
    images, labels = images[:n], np.asarray(labels[:n])
    accuracies = {}
    for kind in PREPROCESSINGS:
        try:
            check_fits(kind, classifier.input_size)
        except EipvizError:
            continue
        # One traced model for all: a ``replace``d classifier per preprocessing traced its own (and TensorFlow
        # warned about retracing).
        accuracies[kind] = float((classifier.predict(images, preprocessing=kind) == labels).mean())
    return accuracies


def _clearly_best(accuracies: dict[str, float], chosen: str) -> str:
    """The most accurate preprocessing where it beats ``chosen`` by ``PREPROCESSING_GAP``; else ``chosen`` (an
    untrained model is near chance under all of them, and a point or two is noise)."""
    best = max(accuracies, key=accuracies.__getitem__)
    return best if accuracies[best] - accuracies[chosen] >= PREPROCESSING_GAP else chosen


def preprocessing_hint(classifier: Classifier, n: int = PREPROCESSING_CHECK_IMAGES) -> str | None:
    """A warning when another preprocessing is far more accurate on ``n`` test images than the chosen one (a model
    uploaded with the wrong one explains nonsense at a fraction of its accuracy); None when the chosen one is
    about the best, or there is no test set to tell."""
    try:
        accuracies = preprocessing_accuracies(classifier, n)
    except EipvizError:
        return None
    best, chosen = _clearly_best(accuracies, classifier.preprocessing), accuracies[classifier.preprocessing]
    if best == classifier.preprocessing:
        return None
    return (f"With {classifier.preprocessing} this model gets {chosen:.0%} of the first {n} "
            f"test images right, with {best} {accuracies[best]:.0%}: it was probably trained with {best}. "
            f"Choose that preprocessing and load it again.")


def with_detected_preprocessing(classifier: Classifier, n: int = PREPROCESSING_CHECK_IMAGES) -> Classifier:
    """``classifier`` with the preprocessing most accurate on its first ``n`` test images, and a note saying so
    (kept as it is, with a note saying why, when there is no test set to detect it on)."""
    try:
        accuracies = preprocessing_accuracies(classifier, n)
    except EipvizError as error:
        return dataclasses.replace(classifier, note=_joined(
            classifier.note, f"No test set to detect its preprocessing on ({error}): {classifier.preprocessing} "
                             f"is assumed."))
    best = _clearly_best(accuracies, classifier.preprocessing)
    others = ", ".join(f"{kind} {accuracy:.0%}" for kind, accuracy in accuracies.items() if kind != best)
    note = (f"Preprocessing detected: {best}, {accuracies[best]:.0%} right on the first {n} test images"
            + (f" ({others})." if others else "."))
    return dataclasses.replace(classifier, preprocessing=best, note=_joined(classifier.note, note))


def with_preprocessing_hint(classifier: Classifier) -> Classifier:
    """``classifier`` with ``preprocessing_hint``'s warning, when there is one."""
    hint = preprocessing_hint(classifier)
    return dataclasses.replace(classifier, warning=_joined(classifier.warning, hint)) if hint else classifier


def _joined(*notes: str | None) -> str:
    """The notes that are given, one after the other."""
    return " ".join(note for note in notes if note)
