"""Library helpers of the Upload page: suitability notes, test-image samples, per-image CAM classes."""

import numpy as np
import pytest

from eipviz.data import dataset_label, sample_images
from eipviz.errors import EipvizError
from eipviz.images import resize_note, suitability_notes


def _colour_photo(height=48, width=64):
    """A light sky over a green field: what a phone photo looks like, nothing like an MNIST digit."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2] = (170, 200, 240)
    image[height // 2:] = (60, 140, 50)
    return image


def test_a_colour_photo_given_to_mnist_is_called_a_colour_photo():
    notes = suitability_notes(_colour_photo(), "mnist")
    assert any("colour photo given to a grayscale digit model" in note for note in notes), notes


def test_a_dark_digit_on_white_paper_given_to_mnist_is_called_light_background():
    digit = np.full((60, 40, 3), 255, np.uint8)
    digit[10:50, 18:22] = 0
    notes = suitability_notes(digit, "mnist")
    assert len(notes) == 1 and notes[0].startswith("light background: MNIST digits are light on dark"), notes


def test_mnist_test_images_and_a_light_on_dark_upload_raise_no_note(data_dir):
    (name, image), = sample_images("mnist", 1, seed=3)
    assert suitability_notes(image, "mnist") == []
    digit = np.zeros((60, 40, 3), np.uint8)
    digit[10:50, 18:22] = 255
    assert suitability_notes(digit, "mnist") == []


def test_a_grayscale_image_given_to_cifar10_is_noted_and_a_colour_photo_is_not():
    assert any("grayscale image given to a colour photo model" in n
               for n in suitability_notes(np.full((32, 32, 3), 90, np.uint8), "cifar10"))
    assert suitability_notes(_colour_photo(), "cifar10") == []


def test_a_model_of_unknown_dataset_gets_no_notes():
    assert suitability_notes(_colour_photo(), None) == []


def test_a_grayscale_image_is_not_said_to_be_converted_to_grayscale():
    assert resize_note(np.zeros((28, 28), np.uint8), (28, 28, 1)) is None
    assert resize_note(np.zeros((28, 28, 3), np.uint8), (28, 28, 1)) == "converted to grayscale"


def test_sample_images_are_named_test_images_of_the_dataset_reproducibly(data_dir):
    from eipviz.data import CLASS_NAMES, load_test_split

    samples = sample_images("cifar10", 4, seed=7)
    x_test, y_test = load_test_split("cifar10")
    assert len(samples) == 4 and len({name for name, _ in samples}) == 4
    for name, image in samples:
        index = int(name.split("#")[1].split()[0])
        assert name == f"cifar10 test #{index} ({CLASS_NAMES['cifar10'][y_test[index]]})"
        assert image.dtype == np.uint8 and np.array_equal(image, x_test[index])
    assert [n for n, _ in sample_images("cifar10", 4, seed=7)] == [n for n, _ in samples]
    assert [n for n, _ in sample_images("cifar10", 4, seed=8)] != [n for n, _ in samples]


def test_dataset_labels_name_unknown_datasets():
    assert (dataset_label("cifar10"), dataset_label("mnist"), dataset_label(None)) == (
        "CIFAR-10", "MNIST", "unknown dataset")


@pytest.fixture(scope="module")
def mnist14k(data_dir):
    from eipviz.loading import load_zoo_model

    return load_zoo_model("mnist14k")


def test_explain_images_takes_one_class_per_image_none_meaning_the_top_prediction(mnist14k):
    from eipviz.explain.predict import explain_images

    images = [image for _, image in sample_images("mnist", 3, seed=1)]
    top = mnist14k.predict(images)
    other = int((top[1] + 1) % 10)
    explanations = explain_images(mnist14k, images, class_indices=[None, other, 4])
    assert [e.class_index for e in explanations] == [int(top[0]), other, 4]
    alone = explain_images(mnist14k, [images[1]], class_index=other)[0]
    np.testing.assert_allclose(explanations[1].cam, alone.cam, atol=1e-5)


def test_explain_images_refuses_class_indices_that_do_not_fit(mnist14k):
    from eipviz.explain.predict import explain_images

    images = [np.zeros((28, 28), np.uint8)] * 2
    with pytest.raises(EipvizError, match="one entry per image"):
        explain_images(mnist14k, images, class_indices=[1])
    with pytest.raises(EipvizError, match="not both"):
        explain_images(mnist14k, images, class_index=1, class_indices=[1, 2])
    with pytest.raises(EipvizError, match="from 0 to 9"):
        explain_images(mnist14k, images, class_indices=[1, 10])
