"""Leaving a page and coming back: Streamlit drops a page's widgets when another page shows, so every page opened
on its first shipped model with its filters reset."""

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("EIPVIZ_RUNS_DIR", str(tmp_path))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()


def test_the_model_picked_on_one_page_is_the_one_the_next_page_opens_on(data_dir, tmp_path, monkeypatch):
    at = open_app(tmp_path, monkeypatch)
    at.switch_page("app_pages/misclassified.py").run()
    at.selectbox(key="mis-zoo").select("mnist14k").run()
    at.switch_page("app_pages/upload.py").run()
    assert at.selectbox(key="up-zoo").value == "mnist14k"
    at.selectbox(key="up-zoo").select("resnet20v1").run()
    at.switch_page("app_pages/misclassified.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="mis-zoo").value == "resnet20v1"


def test_the_gallerys_filters_method_and_page_are_there_again_after_another_page(data_dir, tmp_path, monkeypatch):
    at = open_app(tmp_path, monkeypatch)
    at.switch_page("app_pages/misclassified.py").run()
    at.selectbox(key="mis-zoo").select("resnet20v1").run()
    at.selectbox(key="mis-true").select("cat").run()
    at.selectbox(key="mis-method").select("hirescam").run()
    at.slider(key="mis-confidence").set_value((0.5, 1.0)).run()
    at.number_input(key="mis-page").set_value(2).run()
    at.switch_page("app_pages/upload.py").run()
    at.switch_page("app_pages/misclassified.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert (at.selectbox(key="mis-true").value, at.selectbox(key="mis-method").value) == ("cat", "hirescam")
    assert at.slider(key="mis-confidence").value == (0.5, 1.0) and at.number_input(key="mis-page").value == 2
    at.selectbox(key="mis-pred").select("dog").run()  # other images: their first page
    assert at.number_input(key="mis-page").value == 1


def test_the_curves_runs_metrics_and_filter_are_there_again_after_another_page(tmp_path, monkeypatch):
    at = open_app(tmp_path, monkeypatch)
    at.switch_page("app_pages/curves.py").run()
    at.multiselect(key="curve-runs").set_value(at.multiselect(key="curve-runs").value[:1]).run()
    at.multiselect(key="curve-metrics").set_value(["val_loss"]).run()
    at.text_input(key="curve-filter").input("zzz").run()  # matches nothing: the metrics stay
    assert at.multiselect(key="curve-metrics").value == ["val_loss"]
    chosen = at.multiselect(key="curve-runs").value
    at.switch_page("app_pages/models.py").run()
    at.switch_page("app_pages/curves.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="curve-filter").value == "zzz" and at.multiselect(key="curve-runs").value == chosen
    assert at.multiselect(key="curve-metrics").value == ["val_loss"]


def test_an_untouched_curves_selection_follows_a_run_trained_meanwhile(tmp_path, monkeypatch):
    from eipviz.training.store import RunStore

    at = open_app(tmp_path, monkeypatch)
    at.switch_page("app_pages/curves.py").run()
    at.switch_page("app_pages/models.py").run()
    store = RunStore(tmp_path)
    run_id = store.create_run(name="new", model="mnist14k", recipe="fast", status="finished")
    store.add_epoch(run_id, 1, {"val_accuracy": 0.5, "val_loss": 1.0})
    at.switch_page("app_pages/curves.py").run()
    assert run_id in at.multiselect(key="curve-runs").value


def test_the_upload_pages_method_and_opacity_are_there_again_after_another_page(data_dir, tmp_path, monkeypatch):
    at = open_app(tmp_path, monkeypatch)
    at.switch_page("app_pages/upload.py").run()
    at.selectbox(key="up-method").select("eigencam").run()
    at.slider(key="up-alpha").set_value(0.8).run()
    at.switch_page("app_pages/models.py").run()
    at.switch_page("app_pages/upload.py").run()
    assert (at.selectbox(key="up-method").value, at.slider(key="up-alpha").value) == ("eigencam", 0.8)


def test_the_compare_pages_image_methods_and_models_are_there_again_after_another_page(data_dir, tmp_path,
                                                                                        monkeypatch):
    at = open_app(tmp_path, monkeypatch)
    at.switch_page("app_pages/compare.py").run()
    at.selectbox(key="cmp-zoo").select("mnist14k").run()
    at.multiselect(key="cmp-methods").set_value(["gradcam"]).run()
    at.number_input(key="cmp-index").set_value(42).run()
    at.selectbox(key="cmp-class").select("3").run()
    at.radio(key="cmp-models-dataset").set_value("MNIST").run()
    at.multiselect(key="cmp-models").set_value(["zoo:mnist14k"]).run()  # one: nothing to compare yet
    assert at.query_params["image"] == "42"  # the address opens this image again
    at.switch_page("app_pages/models.py").run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="cmp-index").value == 42 and at.multiselect(key="cmp-methods").value == ["gradcam"]
    assert at.selectbox(key="cmp-class").value == "3" and at.radio(key="cmp-models-dataset").value == "MNIST"
    assert at.multiselect(key="cmp-models").value == ["zoo:mnist14k"]
    at.selectbox(key="cmp-zoo").select("resnet20v1").run()  # another model, other classes
    assert at.selectbox(key="cmp-class").value == "predicted class"
