"""Evaluation tables on seven hand-made predictions over three classes (no model, no dataset).

    index  true  probabilities       predicted  confidence  right?
      0     0    (.7, .2, .1)           0          .7        yes
      1     0    (.1, .6, .3)           1          .6        no   0 -> 1
      2     1    (.2, .3, .5)           2          .5        no   1 -> 2
      3     1    (.9, .05, .05)         0          .9        no   1 -> 0
      4     2    (.3, .3, .4)           2          .4        yes
      5     2    (.6, .1, .3)           0          .6        no   2 -> 0  (ties with index 1)
      6     2    (.1, .1, .8)           2          .8        yes
"""

import json

import numpy as np
import pytest

from eipviz.evaluation import Evaluation

LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05],
                          [0.3, 0.3, 0.4], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8]])
CLASSES = ("cat", "dog", "frog")


@pytest.fixture
def evaluation():
    return Evaluation(LABELS, PROBABILITIES, CLASSES)


def test_predictions_are_the_most_probable_classes(evaluation):
    assert evaluation.predictions.tolist() == [0, 1, 2, 0, 2, 0, 2]


def test_confidence_is_the_top_probability(evaluation):
    assert evaluation.confidence.tolist() == [0.7, 0.6, 0.5, 0.9, 0.4, 0.6, 0.8]


def test_accuracy_is_the_share_of_right_predictions(evaluation):
    assert evaluation.accuracy == pytest.approx(3 / 7)


def test_per_class_accuracy_divides_by_each_class_own_images(evaluation):
    assert evaluation.per_class_accuracy() == pytest.approx({"cat": 0.5, "dog": 0.0, "frog": 2 / 3})


def test_confusion_matrix_counts_true_classes_in_rows_and_predictions_in_columns(evaluation):
    assert evaluation.confusion_matrix().tolist() == [[1, 1, 0],
                                                      [1, 0, 1],
                                                      [1, 0, 2]]


def test_confusion_matrix_has_a_row_and_column_for_a_class_never_seen_or_predicted():
    matrix = Evaluation(np.array([0, 1]), np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]), CLASSES).confusion_matrix()
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_misclassified_are_the_wrong_predictions_most_confident_first_ties_in_index_order(evaluation):
    assert evaluation.misclassified_indices().tolist() == [3, 1, 5, 2]


def test_misclassified_filtered_by_true_class(evaluation):
    assert evaluation.misclassified_indices(true_class=1).tolist() == [3, 2]


def test_misclassified_filtered_by_predicted_class(evaluation):
    assert evaluation.misclassified_indices(predicted_class=0).tolist() == [3, 5]


def test_misclassified_filtered_by_true_and_predicted_class(evaluation):
    assert evaluation.misclassified_indices(true_class=2, predicted_class=0).tolist() == [5]


def test_misclassified_ties_keep_index_order_in_a_large_batch():
    """NumPy's default argsort is not stable beyond a few elements; the gallery order must not shuffle."""
    probabilities = np.tile([[0.4, 0.6], [0.3, 0.7]], (50, 1))  # all wrong: 0.6 at even, 0.7 at odd indices
    found = Evaluation(np.zeros(100, np.int64), probabilities, ("a", "b")).misclassified_indices()
    assert found.tolist() == list(range(1, 100, 2)) + list(range(0, 100, 2))


def test_misclassified_confidence_bounds_are_inclusive(evaluation):
    assert evaluation.misclassified_indices(min_confidence=0.6).tolist() == [3, 1, 5]
    assert evaluation.misclassified_indices(max_confidence=0.6).tolist() == [1, 5, 2]
    assert evaluation.misclassified_indices(min_confidence=0.7, max_confidence=0.95).tolist() == [3]


def test_misclassified_never_lists_a_right_prediction(evaluation):
    assert evaluation.misclassified_indices(true_class=0, predicted_class=0).tolist() == []


def test_misclassified_without_a_match_is_an_empty_index_array(evaluation):
    found = evaluation.misclassified_indices(min_confidence=0.95)
    assert found.shape == (0,) and np.issubdtype(found.dtype, np.integer)


def test_to_dict_rounds_to_six_places_and_is_plain_json(evaluation):
    summary = evaluation.to_dict()
    assert summary == {"accuracy": 0.428571, "per_class_accuracy": {"cat": 0.5, "dog": 0.0, "frog": 0.666667},
                       "n": 7}
    assert json.loads(json.dumps(summary)) == summary
