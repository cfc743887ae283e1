"""Compare views: every method and layer on one image, several models on one test set (library and AppTest)."""

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation
from eipviz.explain import compare
from eipviz.explain.compare import compare_models, default_grid_layers, disagreement_rows, method_grid
from eipviz.loading import load_zoo_model
from tests.conftest import ROOT, AnotherSessionsComputation

TIMEOUT = 240


def _evaluation(predictions, labels, k=3):
    probabilities = np.full((len(labels), k), 0.1)
    probabilities[np.arange(len(labels)), predictions] = 0.8
    return Evaluation(np.asarray(labels), probabilities, tuple("abc"[:k]))


def test_compare_models_counts_errors_made_together_and_orders_disputes():
    labels = [0, 1, 2, 0, 1]
    first = _evaluation([0, 1, 2, 1, 2], labels)  # wrong on 3 and 4
    second = _evaluation([0, 2, 2, 1, 1], labels)  # wrong on 1 and 3
    third = _evaluation([1, 0, 2, 1, 1], labels)  # wrong on 0, 1 and 3
    comparison = compare_models(["a", "b", "c"], [first, second, third])
    assert comparison.both_wrong.tolist() == [[2, 1, 1], [1, 2, 2], [1, 2, 3]]
    assert comparison.accuracies == pytest.approx((0.6, 0.6, 0.4))
    # image 1 gets three different answers, images 0 and 4 two; image 2 and 3 none in dispute
    assert comparison.disagreements.tolist() == [1, 0, 4]


def test_two_models_disputes_come_most_confident_first_not_in_test_set_order():
    """With two models every dispute has two answers: the order was the test set's."""
    labels = [0, 0, 0]
    first, second = _evaluation([1, 0, 2], labels), _evaluation([0, 2, 0], labels)
    second.probabilities[2] = [0.9, 0.05, 0.05]  # image 2: the more confident disagreement
    assert compare_models(["a", "b"], [first, second]).disagreements.tolist() == [2, 0, 1]


def test_models_of_different_test_sets_or_too_many_are_refused():
    a = _evaluation([0, 1], [0, 1])
    with pytest.raises(EipvizError, match="different test sets"):
        compare_models(["a", "b"], [a, _evaluation([0, 1, 2], [0, 1, 2])])
    with pytest.raises(EipvizError, match="2 to 5"):
        compare_models(["a"], [a])


def test_more_than_five_models_are_refused():
    """The comparison takes 2 to 5 models, as the page and its docstring say."""
    evaluation = _evaluation([0, 1], [0, 1])
    with pytest.raises(EipvizError, match="2 to 5"):
        compare_models(list("abcdef"), [evaluation] * 6)


def test_method_grid_scores_every_map_and_shares_layer_free_maps(data_dir):
    classifier = load_zoo_model("mnist14k")
    image = np.random.default_rng(0).integers(0, 255, (28, 28, 1), dtype=np.uint8)
    layers = classifier.cam_layers[-2:]
    seen = []
    target, scores = method_grid(classifier, image, ["gradcam", "saliency", "random"], layers,
                                 progress=lambda done, total, what: seen.append(done))
    assert target == int(classifier.predict(image[None])[0])
    assert [(s.method, s.layer) for s in scores] == [(m, layer) for m in ("gradcam", "saliency", "random")
                                                      for layer in layers]
    assert all(s.map.shape == (28, 28) and 0 <= s.deletion_auc <= 1 for s in scores)
    assert scores[2].map is scores[3].map  # saliency reads the input gradient whatever the layer
    assert seen == list(range(len(scores) + 1))


def test_a_method_or_layer_named_twice_is_one_row_or_column_of_the_grid(data_dir):
    """The sheet drew the grid from the names once each: a repeat shifted every map after it under the wrong
    label (random's row showed Grad-CAM's map and its AUC)."""
    classifier = load_zoo_model("mnist14k")
    image = np.random.default_rng(0).integers(0, 255, (28, 28, 1), dtype=np.uint8)
    layer = classifier.cam_layer
    _, scores = method_grid(classifier, image, ["gradcam", "random", "gradcam"], [layer, layer])
    assert [(s.method, s.layer) for s in scores] == [("gradcam", layer), ("random", layer)]


def test_the_compare_grid_opens_on_the_layer_before_the_cam_layer_and_the_cam_layer():
    """The model's own CAM layer is always a default column (the last two of third-last, second-last, CAM layer)."""
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for name in ("c1", "c2", "c3", "c4"):
        x = keras.layers.Conv2D(2, 1, activation="relu", name=name)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    classifier = Classifier(model, "tiny", "unit_scale", ("a", "b", "c"), None, "c4", source="test")
    assert default_grid_layers(classifier) == ["c3", "c4"]


def test_the_both_wrong_csv_defuses_a_run_name_a_spreadsheet_would_run():
    import csv
    import io

    from eipviz.cli.compare import _write_both_wrong

    out = io.StringIO()
    _write_both_wrong(out, ["resnet20v1", '=HYPERLINK("http://x")'], np.array([[3, 1], [1, 4]]))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["model", "resnet20v1", "'=HYPERLINK(\"http://x\")"] and rows[2][0].startswith("'=")


def test_disagreement_rows_hold_every_models_prediction_and_cam(data_dir):
    classifier = load_zoo_model("mnist14k")
    images = np.random.default_rng(0).integers(0, 255, (4, 28, 28, 1), dtype=np.uint8)
    evaluations = [Evaluation(np.zeros(4, np.int64), classifier.probabilities(images), classifier.class_names)] * 2
    rows = disagreement_rows([classifier, classifier], evaluations, images, [2, 0])
    assert len(rows) == 2 and all(len(row) == 2 for row in rows)
    assert rows[0][0].overlay.shape == (128, 128, 3) and rows[0][0].predicted_class in classifier.class_names


def test_the_compare_page_draws_a_method_grid_and_a_model_comparison(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="cmp-zoo").select("mnist14k").run()
    at.multiselect(key="cmp-methods").set_value(["gradcam", "random"]).run()
    assert not at.exception, [e.value for e in at.exception]
    maps = [c for image in at.get("image") for c in image.captions if c.startswith("del ")]
    assert len(at.multiselect(key="cmp-layers").value) == 2  # the new model's default layers, not none
    assert len(maps) == 2 * 2

    assert at.radio(key="cmp-models-dataset").options == ["CIFAR-10", "MNIST"]
    assert "zoo:mnist14k" not in at.multiselect(key="cmp-models").options  # one dataset's models at a time
    at.multiselect(key="cmp-models").set_value(["zoo:sepconv59k", "zoo:resnet20v1"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.label for m in at.metric][:2] == ["sepconv59k", "resnet20v1"]
    answers = [c for image in at.get("image") for c in image.captions if c[:1] in "✅❌"]
    assert len(answers) == 2 * 8


def test_two_runs_of_one_model_and_recipe_keep_distinct_names_in_the_comparison(data_dir, tmp_path, monkeypatch):
    """Run names such as ``mnist14k fast (8 ep)`` and ``mnist14k fast (8 ep) (2)`` were cut at their first
    `` (``, so both runs showed as ``mnist14k fast``."""
    import shutil

    from eipviz.training.store import RunStore

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    store = RunStore(tmp_path)
    ids = [store.create_run(name="mnist14k fast (8 ep)", model="mnist14k", status="finished") for _ in range(2)]
    for run_id in ids:  # the shipped model as each run's checkpoint, its stored predictions beside it
        shutil.copy(ROOT / "weights" / "mnist14k.keras", store.run_dir(run_id) / "best.keras")
        shutil.copy(ROOT / "weights" / "mnist14k.predictions.npz", store.run_dir(run_id) / "best.predictions.npz")
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=TIMEOUT).run()
    at.radio(key="cmp-models-dataset").set_value("MNIST").run()
    at.multiselect(key="cmp-models").set_value([f"run:{run_id}" for run_id in ids]).run()
    assert not at.exception, [e.value for e in at.exception]
    names = {run.id: f"{run.name} · {run.id}" for run in store.list_runs()}
    assert [m.label for m in at.metric][:2] == [names[ids[0]], names[ids[1]]]


@pytest.mark.parametrize("link, index, warning", [
    ("12", 12, None), ("abc", 0, "not a whole number"), ("99999", 9999, "outside the test set"),
    ("-1", 0, "outside the test set"), ("9" * 5000, 0, "not a whole number")],
    ids=["12", "abc", "99999", "-1", "5000 digits"])
def test_a_links_image_number_opens_that_test_image_and_a_bad_one_only_warns(data_dir, link, index, warning):
    """``?image=abc`` raised ValueError and ``?image=99999`` or ``-1`` a Streamlit value error, each a traceback
    with the server's paths."""
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=TIMEOUT)
    at.query_params["image"] = link
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="cmp-index").value == index
    link_warnings = [w.value for w in at.warning if "link's" in w.value]
    assert [warning in text for text in link_warnings] == ([] if warning is None else [True])


def test_back_from_another_page_the_grid_has_its_layers_again(data_dir, tmp_path, monkeypatch):
    """Streamlit drops a widget's value while another page shows; the layers must not come back empty."""
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/compare.py").run()
    chosen = at.multiselect(key="cmp-layers").value
    assert len(chosen) == 2
    at.switch_page("app_pages/models.py").run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="cmp-layers").value == chosen


def test_methods_can_be_ranked_by_average_drop_against_random(data_dir):
    """The page's "Rank by" and the README promise drop; rank_methods refused it."""
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.compare import RANK_METRICS, rank_methods

    classifier = load_zoo_model("mnist14k")
    rows = rank_methods(classifier, sample_test_images(classifier, 4), ["gradcam", "layercam"],
                        [classifier.cam_layer], "drop")
    assert "drop" in RANK_METRICS and [row["method"] for row in rows][-1] == "random"
    margins = [row["average_drop_vs_random"] for row in rows[:-1]]
    assert len(margins) == 2 and margins == sorted(margins, reverse=True)
    assert all("average_drop_pct" in row and "deletion_auc" not in row for row in rows)


def test_a_ranking_reports_progress_within_each_layer_as_its_methods_go(data_dir):
    """Progress came once a layer: a slow method's layer held the bar still for a minute, and a page left
    meanwhile ran on until the next call (a user's reload waited 31 s behind their own abandoned ranking)."""
    from eipviz.evaluation import sample_test_images
    from eipviz.explain.compare import rank_methods

    classifier = load_zoo_model("mnist14k")
    layers = classifier.cam_layers[-2:]
    calls = []
    rank_methods(classifier, sample_test_images(classifier, 4), ["gradcam"], layers,
                 progress=lambda done, total, what: calls.append((done, total, what)))
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)  # the bar never goes back
    assert {total for _, total, _ in calls} == {2} and calls[-1] == (2, 2, "done")
    within_first = [what for done, _, what in calls if 0 < done < 1]
    assert f"layer {layers[0]}: gradcam" in within_first and f"layer {layers[0]}: random" in within_first


def test_rank_methods_puts_the_largest_margin_over_random_first(monkeypatch):
    """"Best first": the method that beats the random baseline by most leads; random (no margin) comes last."""
    rows = [{"method": "gradcam", "deletion_vs_random": 0.1}, {"method": "random", "deletion_vs_random": None},
            {"method": "layercam", "deletion_vs_random": 0.3}, {"method": "eigencam", "deletion_vs_random": -0.2}]
    monkeypatch.setattr(compare, "faithfulness", lambda *args, **kwargs: rows)
    ranked = compare.rank_methods(None, np.zeros((1, 8, 8, 3), np.uint8), ["gradcam", "layercam", "eigencam", "random"],
                                  ["c4"])
    assert [row["method"] for row in ranked] == ["layercam", "gradcam", "eigencam", "random"]


def test_an_uploaded_image_unlike_the_models_data_gets_the_upload_pages_warning(data_dir, tmp_path, monkeypatch):
    import io

    from PIL import Image

    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    colour = np.zeros((28, 28, 3), np.uint8)
    colour[:, :14] = (220, 30, 30)
    colour[:, 14:] = (30, 30, 220)
    buffer = io.BytesIO()
    Image.fromarray(colour).save(buffer, format="PNG")
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="cmp-zoo").select("mnist14k").run()
    at.radio(key="cmp-image-source").set_value("Upload").run()
    at.file_uploader(key="cmp-upload").set_value(("colour.png", buffer.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(w.value.startswith("This image") for w in at.warning), [w.value for w in at.warning]


def test_a_method_grid_past_the_cap_is_not_computed(data_dir, monkeypatch):
    """17 methods at 45 layers of resnet18 would take both cores about 11 minutes."""
    import eipviz.explain.compare as compare
    from eipviz.explain.compare import MAX_GRID_MAPS

    computed, grid = [], compare.method_grid
    monkeypatch.setattr(compare, "method_grid", lambda *args, **kwargs: computed.append(args) or grid(*args, **kwargs))
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="cmp-zoo").select("mnist14k").run()
    at.multiselect(key="cmp-methods").set_value(["random"]).run()
    at.multiselect(key="cmp-layers").set_value(at.multiselect(key="cmp-layers").options[:4]).run()
    assert computed  # 1 x 4: drawn
    computed.clear()
    at.multiselect(key="cmp-methods").set_value(at.multiselect(key="cmp-methods").options).run()  # 17 x 4 = 68
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"choose at most {MAX_GRID_MAPS}" in warning.value for warning in at.warning) and not computed


def test_a_large_method_grid_waits_for_its_turn_and_the_default_one_does_not(data_dir):
    """Another session's long computation holds the CPU: a grid of 21 maps waits; the 7 x 2 one a page opens on
    does not (the whole page, both tabs, waited behind an hour-long ranking)."""
    from app_pages.common import COMPUTATIONS
    from eipviz.explain.compare import SMALL_GRID_MAPS

    events = []
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=TIMEOUT)
    with AnotherSessionsComputation(COMPUTATIONS, events) as other_session:
        at.run()  # the default grid, while the turn is held: had it asked, it would wait until AppTest's timeout
        assert not at.exception and at.get("image"), [e.value for e in at.exception]
        assert not other_session.asked.is_set()
        at.selectbox(key="cmp-zoo").select("mnist14k").run()
        at.multiselect(key="cmp-methods").set_value(["random", "eigencam", "gradcam"]).run()
        layers = at.multiselect(key="cmp-layers").options
        assert 3 * len(layers) > SMALL_GRID_MAPS
        other_session.finish_when_asked()
        at.multiselect(key="cmp-layers").set_value(layers).run()
        events.append("grid drawn")
    assert not at.exception, [e.value for e in at.exception]
    assert events == ["other session done", "grid drawn"]
