"""A self-contained HTML report of one model: what it is, how accurate, where it is wrong and why, and how far
its explanations can be trusted. Images are embedded as PNG and Plotly's script is inlined once, so the file
opens in a browser with no network."""

import base64
import html
import importlib.metadata
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import plotly.graph_objects as go

import eipviz
from eipviz.atomic import write_text_atomically
from eipviz.classifier import Classifier
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation, sample_test_images
from eipviz.explain.faithfulness import faithfulness, scored_alike
from eipviz.explain.gallery import gallery_items, gallery_page, gallery_png_sheet, sheet_header
from eipviz.explain.overlay import png_bytes
from eipviz.explain.sanity import sanity_check
from eipviz.explain.timeline import Timeline, timeline_sheet
from eipviz.plots import confusion_figure, timeline_figure, training_curves_figure
from eipviz.weights import sha256_of

REPORT_METHODS = ("gradcam", "gradcam++", "layercam", "saliency")  # fast ones; random is added as the baseline
SANITY_METHODS = ("gradcam", "saliency")
SANITY_IMAGES = 8  # the first of the faithfulness sample: each method's maps are recomputed at every depth
GALLERY_SIZE = 12
Progress = Callable[[float, str], None]

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0;display:block;overflow-x:auto;max-width:100%;font-size:.85em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
td.prose{white-space:normal;text-align:left;color:#444}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{color:#555;font-size:.9em}"""


def versions() -> dict[str, str]:
    """eipviz, Keras and the backend's versions, as the report prints them."""
    backend = keras.backend.backend()
    try:
        backend_version = importlib.metadata.version(backend)
    except importlib.metadata.PackageNotFoundError:
        backend_version = "unknown"
    return {"eipviz": eipviz.__version__, "keras": keras.__version__, backend: backend_version}


def build_report(classifier: Classifier, evaluation: Evaluation, images: np.ndarray, n: int = 32,
                 methods: Sequence[str] = REPORT_METHODS, sanity_methods: Sequence[str] = SANITY_METHODS,
                 curves: list[dict] | None = None, timeline: Timeline | None = None,
                 progress: Progress | None = None, *, gallery_indices: Sequence[int] | np.ndarray | None = None,
                 gallery_method: str = "gradcam", gallery_note: str | None = None, layer: str | None = None,
                 aug_smooth: bool = False, eigen_smooth: bool = False) -> str:
    """The report as one HTML string. ``images``: the test images ``evaluation`` is of; ``n``: test images the
    faithfulness and sanity tables use; ``curves`` (epoch rows) and ``timeline``: a trained run's, when known.
    ``progress(fraction, text)`` is called as the slow parts go.

    The gallery shows the first ``GALLERY_SIZE`` of ``gallery_indices`` (test indices; default: the most
    confident mistakes) with ``gallery_method``'s maps, smoothed as ``aug_smooth`` and ``eigen_smooth`` say,
    under ``gallery_note`` (what they are, e.g. a page's filters). ``layer``: the CAM layer of the gallery,
    faithfulness and sanity tables (default: the model's ``cam_layer``).

    Example, the Misclassified page's view of cats taken for dogs::

        build_report(classifier, evaluation, images, gallery_indices=shown, gallery_method="layercam",
                     layer="sepconv3", gallery_note="true class cat, predicted dog")
    """
    def report(fraction, text):
        if progress:
            progress(fraction, text)

    figures = _Figures()
    source = Path(classifier.source)
    sample = sample_test_images(classifier, n)
    sections = [
        f"<h1>eipviz report: {html.escape(classifier.name)}</h1>",
        _table([{"": key, "value": value} for key, value in {
            "model": classifier.name, "source": classifier.shown_source,
            "sha256": classifier.sha256 or (sha256_of(source) if source.is_file() else "(not a file)"),
            "dataset": classifier.dataset or "unknown", "preprocessing": classifier.preprocessing,
            "CAM layer": layer or classifier.cam_layer, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            **{f"{name} version": version for name, version in versions().items()}}.items()]),
        "<h2>Accuracy</h2>",
        f"<p>Test accuracy <b>{evaluation.accuracy:.2%}</b> on {len(evaluation.labels):,} images; "
        f"{evaluation.misclassified_count:,} misclassified.</p>",
        _table([{"class": name, "accuracy": f"{value:.2%}"}
                for name, value in evaluation.per_class_accuracy().items()]),
        figures.html(confusion_figure(evaluation.confusion_matrix(), classifier.class_names)),
    ]
    report(0.05, "gallery of misclassified images")
    if gallery_indices is None:
        shown, _ = gallery_page(evaluation.misclassified_indices(), 1, GALLERY_SIZE)
    else:
        shown = np.asarray(gallery_indices, np.int64)[:GALLERY_SIZE]
    smoothing = [name for name, on in (("aug_smooth", aug_smooth), ("eigen_smooth", eigen_smooth)) if on]
    items = gallery_items(classifier, evaluation, images, shown, method=gallery_method, layer=layer,
                          aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
    described = ", ".join([gallery_method, *smoothing]) + f" at {layer or classifier.cam_layer}"
    sections += [f"<h2>{'Most confident mistakes' if gallery_indices is None else 'Misclassified test images'} "
                 f"({html.escape(described)})</h2>"]
    if gallery_note:
        sections.append(f"<p class=note>{html.escape(gallery_note)}</p>")
    sections.append(_png(gallery_png_sheet(items, header=sheet_header(
        classifier, gallery_method, layer, gallery_note, smoothing))) if items else "<p>No misclassified image.</p>")
    rows = faithfulness(classifier, sample, list(methods), layer=layer, progress=lambda done, total, method: report(
        0.1 + 0.45 * done / total, f"faithfulness: {method or 'done'}"))
    sections += [f"<h2>Faithfulness ({len(sample)} test images)</h2>",
                 "<p class=note>Deletion AUC: lower is better; insertion AUC and ROAD: higher is better. The "
                 "<code>*_vs_random</code> columns are the margin over the random baseline (positive is better)."
                 "</p>", _table(rows), *(f"<p class=note>{html.escape(note)}</p>" for note in scored_alike(rows))]
    sanity_sample = sample[:SANITY_IMAGES]
    checks = sanity_check(classifier, sanity_sample, list(sanity_methods), layer,
                          progress=lambda done, total, text: report(0.55 + 0.4 * done / total, f"sanity: {text}"))
    sections += [f"<h2>Sanity checks (Adebayo et al. 2018, {len(sanity_sample)} test images)</h2>",
                 "<p class=note>Cascading randomisation: the layers' weights are re-initialised from the output "
                 "down and the maps recomputed; a method whose maps stay the same ignores the model.</p>",
                 _table([check.row() for check in checks], below=("verdict",))]
    if curves:
        sections += ["<h2>Training curves</h2>", figures.html(training_curves_figure(curves))]
    if timeline is not None and len(timeline.epochs):
        last = int(timeline.epochs[-1])
        sections += ["<h2>Explanations across epochs</h2>", _png(timeline_sheet(timeline, last))]
        if curves:
            sections.append(figures.html(timeline_figure(curves, last)))
    report(1.0, "done")
    body = "\n".join(sections)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>eipviz report: {html.escape(classifier.name)}"
            f"</title><style>{STYLE}</style></head><body>{body}</body></html>")


def report_path(path: str | Path) -> Path:
    """The file a report will be written to, its folder made; checked before minutes of work go into it."""
    path = Path(path)
    if path.is_dir():
        raise EipvizError(f"{path} is a folder; name the .html file to write, e.g. {path / 'report.html'}.")
    if path.suffix.lower() not in (".html", ".htm"):  # a browser opens it by its name: r.png showed as a broken image
        raise EipvizError(f"The report is an HTML page: name it .html (e.g. {path.with_suffix('.html')}).")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EipvizError(f"Cannot make the report's folder {path.parent}: {error.strerror}.") from None
    try:  # a file made and removed: os.access says yes to root everywhere, /proc and read-only mounts included
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as error:
        raise EipvizError(f"Cannot write {path}: {error.strerror or error}.") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise EipvizError(f"Cannot write {path}: permission denied.")
    return path


def write_report(path: str | Path, text: str) -> Path:
    """Write the report's HTML (UTF-8) and return its path; written beside and renamed into place, so a full
    disk or a kill mid-write leaves the previous report whole."""
    path = report_path(path)
    write_text_atomically(path, text)
    return path


REPORT_TEMPLATE = "plotly"


class _Figures:
    """Plotly figures as HTML: the first carries plotly.js inline, so the file needs no network."""

    def __init__(self):
        self.script_included = False

    def html(self, figure: go.Figure) -> str:
        """A copy in Plotly's own template: inside Streamlit the default template is Streamlit's, whose colours
        its frontend supplies, so a report built by the page drew every curve black."""
        text = go.Figure(figure).update_layout(template=REPORT_TEMPLATE).to_html(
            full_html=False, include_plotlyjs=not self.script_included)
        self.script_included = True
        return text


def _png(image: np.ndarray) -> str:
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(png_bytes(image)).decode()}">'


def _table(rows: list[dict], below: Sequence[str] = ()) -> str:
    """Rows as a table, numbers and names on one line each; the ``below`` columns (a sanity verdict, a sentence)
    go under their row, across the table: squeezed beside the numbers a verdict took a line per word."""
    if not rows:
        return "<p>(none)</p>"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    shown = [c for c in columns if c not in below]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in shown) + "</tr>"
        + "".join(f"<tr><td class=prose colspan={len(shown)}>{html.escape(_cell(row[c]))}</td></tr>"
                  for c in below if row.get(c) is not None)
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
