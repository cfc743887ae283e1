"""The HTML report of a model: what reaches its gallery and sanity check, offline plotly, escaped names."""

import keras
import numpy as np
import pytest

from eipviz.classifier import Classifier
from eipviz.evaluation import Evaluation

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def report_parts(data_dir):
    """A report of a tiny MNIST-shaped model named like an uploaded file could be, with what reached its slow parts
    (gallery, faithfulness and sanity are recorded, not computed)."""
    import eipviz.report as report

    inputs = keras.Input((28, 28, 1))
    features = keras.layers.Conv2D(2, 3, activation="relu", name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(features)))
    names = (HOSTILE, *"123456789")
    classifier = Classifier(model, f"{HOSTILE}.keras", "unit_scale", names, "mnist", "features",
                            source="/srv/someone/eipviz/weights/tiny.keras")
    labels = np.arange(40) % 10
    evaluation = Evaluation(labels, np.eye(10, dtype=np.float32)[(labels + 1) % 10], names)  # all 40 wrong
    seen = {}

    def recorded(what):
        def record(classifier, evaluation_or_sample, *args, **kwargs):
            seen[what] = args[1] if what == "gallery" else evaluation_or_sample
            return []
        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "gallery_items", recorded("gallery"))
        patch.setattr(report, "faithfulness", lambda *args, **kwargs: [])
        patch.setattr(report, "sanity_check", recorded("sanity"))
        html = report.build_report(classifier, evaluation, np.zeros((40, 28, 28), np.uint8), n=20,
                                   gallery_indices=np.arange(40))
    return html, seen


def test_the_report_gallery_shows_at_most_twelve_of_the_given_images(report_parts):
    """A page's filter may hold hundreds of mistakes: the report explains the first GALLERY_SIZE."""
    assert list(report_parts[1]["gallery"]) == list(range(12))


def test_the_report_sanity_check_runs_on_the_first_eight_sampled_images(report_parts):
    """Sanity maps are recomputed at every depth: only SANITY_IMAGES of the sample go through them."""
    assert len(report_parts[1]["sanity"]) == 8


def test_the_report_carries_plotly_inline_once_and_needs_no_network(report_parts):
    """The file opens offline: plotly.js inline (once), no CDN script."""
    html = report_parts[0]
    inline, from_cdn = html.count("* plotly.js v"), 'src="https://cdn.plot.ly' in html
    assert (inline, from_cdn) == (1, False)


def test_the_report_escapes_the_model_name_and_class_names(report_parts):
    """An uploaded file's or a class's name is text in the report, never markup that runs when it is opened."""
    html = report_parts[0]
    raw, escaped = html.count(HOSTILE), html.count("&lt;img src=x onerror=alert(1)&gt;")
    assert raw == 0 and escaped >= 3  # the title, the heading, the model row, the per-class table


def test_a_sentence_column_goes_under_its_row_across_the_table():
    """Squeezed beside the numbers, a sanity verdict took a line per word."""
    from eipviz.report import _table

    verdict = "fails: ignores the model's weights (mean Spearman 0.93 over 8 depths)"
    html = _table([{"method": "saliency", "spearman": 0.93, "verdict": verdict}], below=("verdict",))
    assert "<th>verdict</th>" not in html and "<th>spearman</th>" in html
    assert f"<tr><td class=prose colspan=2>{verdict.replace(chr(39), '&#x27;')}</td></tr>" in html
    long_name = "run 20261128-101500-resnet20v1-ab12 (best), a long name"  # a value, not a sentence to move
    assert "<td>run 20261128" in _table([{"": "model", "value": long_name}])


def test_a_shared_file_names_the_model_file_by_its_folder_not_the_servers_path():
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    classifier = Classifier(model, "run x (best)", "unit_scale", tuple("0123456789"), "mnist", "flatten",
                            source="/home/someone/eipviz/runs/20261128-000000-x/best.keras")
    assert classifier.shown_source == "20261128-000000-x/best.keras"


def test_the_report_names_its_model_file_by_its_folder(report_parts):
    html = report_parts[0]
    assert "<td>source</td><td>weights/tiny.keras</td>" in html and "/srv/someone" not in html


def test_report_figures_carry_plotlys_own_colours_whatever_the_default_template(monkeypatch):
    """Inside Streamlit the default template is Streamlit's (its frontend supplies the colours): a report built
    by the page drew every curve and legend entry black, unlike the CLI's."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from eipviz.report import _Figures

    monkeypatch.setattr(pio.templates, "default", "none")  # a template without a colourway, as Streamlit's
    figure = go.Figure([go.Scatter(y=[1, 2]), go.Scatter(y=[2, 1])])
    html = _Figures().html(figure)
    assert '"colorway":["#636efa","#EF553B"' in html
    assert figure.layout.template.layout.colorway is None  # the figure given is left as it was
