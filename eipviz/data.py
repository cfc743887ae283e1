"""Load CIFAR-10 and MNIST as uint8 arrays, offline first.

Sources, in order: the folder named by ``EIPVIZ_DATA_DIR`` (the project's
``.npz`` files, or the standard ``cifar-10-batches-py`` folder or
``cifar-10-python.tar.gz``), then Keras' own cache and download.
"""

import functools
import os
import pickle
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eipviz.errors import EipvizError

DATA_DIR_VARIABLE = "EIPVIZ_DATA_DIR"

CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "mnist": tuple(str(digit) for digit in range(10)),
}

DATASET_LABELS = {"cifar10": "CIFAR-10", "mnist": "MNIST"}

_NPZ_FILES = {
    "cifar10": [f"cifar10_train_{i}.npz" for i in range(1, 6)] + ["cifar10_test.npz"],
    "mnist": ["mnist.npz"],
}

# What a damaged or truncated file raises while it is read (a cut .npz: BadZipFile or EOFError; a bad
# member: zlib.error; a cut tar.gz or pickle: EOFError, TarError, UnpicklingError).
UNREADABLE = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, tarfile.TarError,
              pickle.UnpicklingError)

TRAINING_IMAGES = {"cifar10": 50_000, "mnist": 60_000}  # what a training run's --subset can take at most

# The image shape after the count, as eipviz keeps it (MNIST may also come with a channel axis of 1).
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "mnist": (28, 28)}


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays (uint8 images, 1-D uint8 labels) with class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple

    def __iter__(self):
        """Unpack like Keras: ``(x_train, y_train), (x_test, y_test), class_names``."""
        return iter(((self.x_train, self.y_train), (self.x_test, self.y_test), self.class_names))


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, keep: bool = True) -> Dataset:
    """Return the named dataset ("cifar10" or "mnist"), cached in this process; ``keep=False`` reads it afresh
    and keeps nothing (for a one-off statistic: CIFAR-10's training set is 180 MB)."""
    if name not in CLASS_NAMES:
        raise EipvizError(f"Unknown dataset {name!r}. Choose one of: {', '.join(CLASS_NAMES)}.")
    folder = data_dir if data_dir is not None else os.environ.get(DATA_DIR_VARIABLE)
    return (_load_cached if keep else _read_dataset)(name, str(Path(folder).resolve()) if folder else None)


def load_test_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The test images and labels alone: from the project's ``.npz`` files without reading the training
    set (a fifth of the bytes for CIFAR-10, which the explanation pages open on), else ``load_dataset``'s."""
    if name not in CLASS_NAMES:
        raise EipvizError(f"Unknown dataset {name!r}. Choose one of: {', '.join(CLASS_NAMES)}.")
    folder = os.environ.get(DATA_DIR_VARIABLE)
    return _test_split_cached(name, str(Path(folder).resolve()) if folder else None)


def dataset_label(name: str | None) -> str:
    """How the pages name a dataset: "CIFAR-10", "MNIST", or "unknown dataset" for None."""
    return "unknown dataset" if name is None else DATASET_LABELS.get(name, name)


def sample_images(name: str, n: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """``n`` test images drawn without replacement, reproducible by ``seed``, each with a name that gives
    its index and true class (``"mnist test #1234 (7)"``): images anyone can try on a model, none committed."""
    images, labels = load_test_split(name)
    picked = np.random.default_rng(seed).choice(len(images), min(int(n), len(images)), replace=False)
    return [(f"{name} test #{i} ({CLASS_NAMES[name][labels[i]]})", images[i]) for i in picked]


@functools.lru_cache(maxsize=4)
def _test_split_cached(name: str, folder: str | None) -> tuple[np.ndarray, np.ndarray]:
    test_file = Path(folder or ".") / _NPZ_FILES[name][-1]
    if folder and test_file.is_file():
        try:
            with np.load(test_file) as f:
                keys = ("x", "y") if name == "cifar10" else ("x_test", "y_test")
                x_test, y_test = _checked_arrays(name, f[keys[0]], f[keys[1]], f"{test_file} ({keys[0]}, {keys[1]})")
        except UNREADABLE as error:
            raise EipvizError(f"Could not read {test_file}: {_reason(error)}") from error
    else:
        dataset = load_dataset(name)
        x_test, y_test = dataset.x_test, dataset.y_test
    x_test.setflags(write=False)
    y_test.setflags(write=False)
    return x_test, y_test


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, folder: str | None) -> Dataset:
    return _read_dataset(name, folder)


def _read_dataset(name: str, folder: str | None) -> Dataset:
    arrays = _from_folder(name, Path(folder)) if folder else None
    if arrays is None:
        arrays = _from_keras(name, folder)
    (x_train, y_train), (x_test, y_test) = arrays
    for array in (x_train, y_train, x_test, y_test):
        array.setflags(write=False)  # shared by every caller in this process
    return Dataset(x_train, y_train, x_test, y_test, CLASS_NAMES[name])


def _checked_arrays(name: str, images, labels, source: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images of the dataset's shape and 1-D uint8 labels 0-9, from arrays read from ``source``.

    Refuses (``EipvizError`` naming ``source``) what a plain cast would silently spoil: images stored as
    floats in [0, 1] would become 0s and 1s, values past 255 would wrap around.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    shape = IMAGE_SHAPES[name]
    if name == "mnist" and images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != len(shape) + 1 or images.shape[1:] != shape:
        raise EipvizError(f"{source}: {DATASET_LABELS[name]} images must be (N, {', '.join(map(str, shape))})"
                          f"{' or (N, 28, 28, 1)' if name == 'mnist' else ''}; received shape {images.shape}.")
    if labels.ndim == 2 and labels.shape[1] == 1:  # Keras' CIFAR-10 labels are (N, 1)
        labels = labels[:, 0]
    if labels.shape != images.shape[:1]:
        raise EipvizError(f"{source}: expected one label per image, ({len(images)},); "
                          f"received shape {labels.shape}.")
    return _as_uint8(images, 255, "images", source), _as_uint8(labels, 9, "labels", source)


def _as_uint8(values: np.ndarray, largest: int, what: str, source: str) -> np.ndarray:
    """``values`` as uint8, when every one is a whole number from 0 to ``largest``; else ``EipvizError``."""
    if values.dtype == np.uint8 and largest == 255:
        return np.ascontiguousarray(values)
    numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    if not numeric or (values.size and not _whole_numbers_within(values, largest)):
        found = f", values {values.min()}..{values.max()}" if numeric and values.size else ""
        raise EipvizError(f"{source}: {what} must be whole numbers 0-{largest}; received dtype {values.dtype}"
                          f"{found}. Store them as uint8 (images 0-255, labels 0-9).")
    return np.ascontiguousarray(values, dtype=np.uint8)


def _whole_numbers_within(values: np.ndarray, largest: int) -> bool:
    low, high = values.min(), values.max()
    if not (0 <= low and high <= largest):  # False for NaN too
        return False
    return bool(np.issubdtype(values.dtype, np.integer) or np.all(np.mod(values, 1) == 0))


def _from_folder(name: str, folder: Path):
    if not folder.is_dir():
        raise EipvizError(f"{DATA_DIR_VARIABLE} points to {folder}, which is not a folder.")
    npz = [folder / file for file in _NPZ_FILES[name]]
    if all(path.is_file() for path in npz):
        return _from_npz(name, npz)
    if name != "cifar10":
        return None
    source = folder / "cifar-10-batches-py"
    try:
        if source.is_dir():
            return _from_cifar_python(lambda member: (source / member).read_bytes())
        source = folder / "cifar-10-python.tar.gz"
        if source.is_file():
            with tarfile.open(source) as archive:
                return _from_cifar_python(lambda member: _read_tar_member(archive, f"cifar-10-batches-py/{member}"))
    except UNREADABLE as error:
        raise EipvizError(f"Could not read CIFAR-10 from {source}: {_reason(error)}. Use the original "
                          f"cifar-10-python.tar.gz or its cifar-10-batches-py folder, whole.") from error
    return None


def _reason(error: BaseException) -> str:
    """What went wrong reading a file, with the error's type when its text alone says little ("")."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _read_tar_member(archive: tarfile.TarFile, member: str) -> bytes:
    file = archive.extractfile(member)
    if file is None:  # a folder or link where a pickled batch belongs
        raise EipvizError(f"{member} in cifar-10-python.tar.gz is not a file; use the original archive.")
    return file.read()


def _from_npz(name: str, paths):
    try:
        if name == "mnist":
            with np.load(paths[0]) as f:
                return (_checked_arrays(name, f["x_train"], f["y_train"], f"{paths[0]} (x_train, y_train)"),
                        _checked_arrays(name, f["x_test"], f["y_test"], f"{paths[0]} (x_test, y_test)"))
        parts = []
        for path in paths:
            with np.load(path) as f:
                parts.append(_checked_arrays(name, f["x"], f["y"], str(path)))
    except UNREADABLE as error:
        raise EipvizError(f"Could not read the {name} files in {paths[0].parent}: {_reason(error)}") from error
    x_train = np.concatenate([x for x, _ in parts[:5]])
    y_train = np.concatenate([y for _, y in parts[:5]])
    return (x_train, y_train), parts[5]


def _from_cifar_python(read_member):
    """Decode the original pickled batches (CHW rows) into HWC uint8 arrays."""

    def batch(member):
        # The official CIFAR-10 batches are pickles of plain dicts of arrays.
        entry = pickle.loads(read_member(member), encoding="bytes")
        rows = np.asarray(entry[b"data"])
        if rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:
            raise EipvizError(f"cifar-10-batches-py/{member}: expected rows of 3,072 pixel values (N, 3072); "
                              f"received shape {rows.shape}. Use the original CIFAR-10 python batches.")
        x = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return _checked_arrays("cifar10", x, entry[b"labels"], f"cifar-10-batches-py/{member}")

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), batch("test_batch")


def _from_keras(name: str, folder: str | None):
    import keras  # only for this download fallback: the CLI's parser reads this module and must start fast

    loader = {"cifar10": keras.datasets.cifar10, "mnist": keras.datasets.mnist}[name]
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:  # offline downloads raise many types (URLError, OSError, ...)
        where = f"{DATA_DIR_VARIABLE}={folder} holds none of them" if folder else f"{DATA_DIR_VARIABLE} is not set"
        raise EipvizError(
            f"The {name} dataset is not available: {where}, and Keras could not download it "
            f"({type(error).__name__}). Set {DATA_DIR_VARIABLE} to a folder with "
            f"{', '.join(_NPZ_FILES[name])}"
            + (" (or cifar-10-batches-py/ or cifar-10-python.tar.gz)" if name == "cifar10" else "")
            + ", e.g. ../shared/data."
        ) from error
    source = f"Keras' {name} download"
    return _checked_arrays(name, x_train, y_train, source), _checked_arrays(name, x_test, y_test, source)
