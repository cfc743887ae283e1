import pickle
import tarfile

import numpy as np
import pytest

from eipviz import data
from eipviz.data import DATA_DIR_VARIABLE, _checked_arrays, load_dataset, load_test_split, sample_images
from eipviz.errors import EipvizError


def test_cifar10_from_the_shared_folder_has_the_genuine_shapes_and_order(data_dir):
    (x_train, y_train), (x_test, y_test), names = load_dataset("cifar10")
    assert x_train.shape == (50000, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 32, 32, 3) and x_test.dtype == np.uint8
    assert y_train.shape == (50000,) and y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert names[y_test[0]] == "cat"
    assert tuple(x_test[0, 0, 0]) == (158, 112, 49)


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_the_test_split_alone_equals_the_full_datasets_test_split(name, data_dir):
    x_test, y_test = load_test_split(name)
    full = load_dataset(name)
    np.testing.assert_array_equal(x_test, full.x_test)
    np.testing.assert_array_equal(y_test, full.y_test)
    assert not x_test.flags.writeable and load_test_split(name)[0] is x_test  # shared, read-only, cached


def test_mnist_from_the_shared_folder(data_dir):
    (x_train, y_train), (x_test, y_test), names = load_dataset("mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train[0] == 5 and y_test[0] == 7 and names[7] == "7"
    assert np.bincount(y_test).sum() == 10000 and len(np.bincount(y_test)) == 10


def test_loaded_arrays_are_cached_in_process(data_dir):
    assert load_dataset("mnist").x_train is load_dataset("mnist").x_train


def test_a_sample_larger_than_the_test_set_is_every_image_once(data_dir):
    """Drawn without replacement: no image twice in a faithfulness or report sample."""
    names = [name for name, _ in sample_images("mnist", 10**6, seed=0)]
    assert len(names) == len(set(names)) == 10_000


def _tiny_cifar_batches(folder):
    """Write the original pickled CIFAR-10 layout with 2 images per batch."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for member in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        with open(folder / member, "wb") as f:
            pickle.dump({b"data": rows, b"labels": [1, 2]}, f)
    return folder


def test_reads_the_standard_cifar_python_folder_and_tarball(tmp_path):
    batches = _tiny_cifar_batches(tmp_path / "cifar-10-batches-py")
    (x_train, y_train), (x_test, _), _ = load_dataset("cifar10", data_dir=tmp_path)
    assert x_train.shape == (10, 32, 32, 3) and x_test.shape == (2, 32, 32, 3)
    raw = pickle.loads((batches / "test_batch").read_bytes())[b"data"][0]
    # CHW rows become HWC: red plane first, so pixel (0, 0) is (r0, g0, b0).
    assert tuple(x_test[0, 0, 0]) == (raw[0], raw[1024], raw[2048])

    tar_dir = tmp_path / "tar"
    tar_dir.mkdir()
    with tarfile.open(tar_dir / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(batches, arcname="cifar-10-batches-py")
    (_, y_tar), (x_test_tar, _), _ = load_dataset("cifar10", data_dir=tar_dir)
    np.testing.assert_array_equal(x_test_tar, x_test)
    assert y_tar.tolist() == [1, 2] * 5


def test_cifar10_python_batches_decode_rows_as_height_then_width(tmp_path):
    """Each pickled row is C x H x W: pixel (0, 1) is raw[1], not raw[32] (a transposed image)."""
    batches = _tiny_cifar_batches(tmp_path / "cifar-10-batches-py")
    (_, _), (x_test, _), _ = load_dataset("cifar10", data_dir=tmp_path, keep=False)
    raw = pickle.loads((batches / "test_batch").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(x_test[0], raw.reshape(3, 32, 32).transpose(1, 2, 0))


def test_offline_with_nothing_found_names_the_variable_and_the_files(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    data._load_cached.cache_clear()
    with pytest.raises(EipvizError) as error:
        load_dataset("mnist", data_dir=tmp_path)
    assert DATA_DIR_VARIABLE in str(error.value) and "mnist.npz" in str(error.value)


def test_a_data_dir_that_is_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EipvizError, match="not a folder"):
        load_dataset("cifar10", data_dir=tmp_path / "missing")


def _write_mnist(folder, x_train, y_train):
    """An ``mnist.npz`` in ``folder`` with these training arrays and two valid test images."""
    folder.mkdir(exist_ok=True)
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train,
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.array([3, 7], np.uint8))
    return folder


def test_images_stored_as_floats_in_0_1_are_refused_naming_the_file_dtype_and_range(tmp_path, monkeypatch):
    images = np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)  # a cast would make them 0s
    folder = _write_mnist(tmp_path / "floats", images, np.arange(4, dtype=np.uint8))
    with pytest.raises(EipvizError, match=r"mnist\.npz \(x_train, y_train\): images must be whole numbers 0-255; "
                                          r"received dtype float32, values 0\.0\d*\.\.0\.9\d*\. Store them as uint8"):
        load_dataset("mnist", data_dir=folder)
    np.savez(folder / "mnist.npz", x_test=images, y_test=np.arange(4))
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(folder))
    with pytest.raises(EipvizError, match=r"mnist\.npz \(x_test, y_test\): images must be whole numbers"):
        load_test_split("mnist")


def test_values_past_255_are_refused_rather_than_wrapped(tmp_path):
    images = np.full((2, 28, 28), 300, np.int16)
    with pytest.raises(EipvizError, match=r"received dtype int16, values 300\.\.300"):
        load_dataset("mnist", data_dir=_write_mnist(tmp_path / "wide", images, np.array([1, 2])))


def test_whole_numbers_of_another_dtype_load_as_uint8_and_a_channel_axis_of_one_is_dropped(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype(np.float64)
    folder = _write_mnist(tmp_path / "whole", images, np.array([0, 9, 4, 2], np.int64))
    (x_train, y_train), _, _ = load_dataset("mnist", data_dir=folder)
    assert x_train.dtype == np.uint8 and x_train.shape == (4, 28, 28) and y_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, images[..., 0])
    assert y_train.tolist() == [0, 9, 4, 2]


@pytest.mark.parametrize(("labels", "message"), [
    (np.array([0, 1, 2, 10]), r"labels must be whole numbers 0-9; received dtype int64, values 0\.\.10"),
    (np.array([0, 1, -1, 2]), r"labels must be whole numbers 0-9"),
    (np.array([0.0, 1.5, 2.0, 3.0]), r"labels must be whole numbers 0-9; received dtype float64"),
    (np.array([0, 1, 2]), r"expected one label per image, \(4,\); received shape \(3,\)"),
])
def test_labels_that_are_not_one_class_0_to_9_per_image_are_refused(tmp_path, labels, message):
    folder = _write_mnist(tmp_path / "labels", np.zeros((4, 28, 28), np.uint8), labels)
    with pytest.raises(EipvizError, match=message):
        load_dataset("mnist", data_dir=folder)


def test_keras_style_n_by_1_cifar10_labels_are_flattened():
    """Keras' own CIFAR-10 download (the fallback source) gives labels of shape (N, 1)."""
    images, labels = _checked_arrays("cifar10", np.zeros((2, 32, 32, 3), np.uint8), np.array([[3], [9]]), "keras")
    assert labels.tolist() == [3, 9] and labels.dtype == np.uint8


def test_channels_first_cifar_images_are_refused_with_the_expected_shape(tmp_path):
    images = np.zeros((2, 3, 32, 32), np.uint8)  # (N, C, H, W): the pickled batches' order, not ours
    for file in data._NPZ_FILES["cifar10"]:
        np.savez(tmp_path / file, x=images, y=np.array([1, 2], np.uint8))
    with pytest.raises(EipvizError, match=r"cifar10_train_1\.npz: CIFAR-10 images must be \(N, 32, 32, 3\); "
                                          r"received shape \(2, 3, 32, 32\)"):
        load_dataset("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_npz_is_a_message_naming_what_went_wrong(tmp_path, monkeypatch, damage):
    folder = _write_mnist(tmp_path / damage, np.zeros((2, 28, 28), np.uint8), np.array([1, 2], np.uint8))
    data_file = folder / "mnist.npz"
    data_file.write_bytes(data_file.read_bytes()[:100] if damage == "truncated" else b"")
    with pytest.raises(EipvizError, match="Could not read the mnist files in .*(BadZipFile|EOFError)"):
        load_dataset("mnist", data_dir=folder)
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(folder))
    with pytest.raises(EipvizError, match=r"Could not read .*mnist\.npz: (BadZipFile|EOFError)"):
        load_test_split("mnist")


def test_a_cifar_python_folder_missing_a_batch_or_a_cut_tarball_is_a_message(tmp_path):
    batches = _tiny_cifar_batches(tmp_path / "folder" / "cifar-10-batches-py")
    (batches / "data_batch_3").unlink()
    with pytest.raises(EipvizError, match="Could not read CIFAR-10 from .*cifar-10-batches-py: FileNotFoundError"):
        load_dataset("cifar10", data_dir=tmp_path / "folder")
    whole = _tiny_cifar_batches(tmp_path / "whole" / "cifar-10-batches-py")
    (tmp_path / "tar").mkdir()
    with tarfile.open(tmp_path / "tar" / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(whole, arcname="cifar-10-batches-py")
    tarball = tmp_path / "tar" / "cifar-10-python.tar.gz"
    tarball.write_bytes(tarball.read_bytes()[:len(tarball.read_bytes()) // 2])
    with pytest.raises(EipvizError, match="Could not read CIFAR-10 from .*cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path / "tar")
