"""Widgets several pages share (not a page itself): run store, model picker, cached evaluation.

Every cache that holds a model is bounded (``max_entries``): an improved
checkpoint of a live run is a new entry, and the oldest is dropped.
"""

import re
import threading
import time
from contextlib import contextmanager

import streamlit as st
from streamlit.logger import get_logger

from eipviz.access import EDITORS_VARIABLE, is_editor, without_paths, writes_allowed
from eipviz.classifier import Classifier
from eipviz.data import dataset_label
from eipviz.errors import EipvizError
from eipviz.evaluation import Evaluation, evaluate_test_set, with_detected_preprocessing, with_preprocessing_hint
from eipviz.explain.predict import upload_notes
from eipviz.loading import CHECKPOINT, load_run_checkpoint, load_uploaded_bytes, load_zoo_model, runs_with_checkpoint
from eipviz.preprocessing import DETECT, DETECT_MEANS, PREPROCESSINGS
from eipviz.training.store import WORD_JOINER, RunStore, default_runs_dir, run_label
from eipviz.weights import manifest_entry, shipped_models
from eipviz.zoo import MODELS

UPLOADED_MODEL_KEY = "uploaded_model"
UPLOADED_SOURCE = "Uploaded model"
KEPT_WIDGETS_KEY = "kept-widgets"  # widget keys whose values outlive a visit to another page
CURRENT_MODEL_KEY = "current-model"  # the model last picked on any page: {"source": …, "zoo": …, "run": …}
# What makes links, images, emphasis, code, colours and icons (:red[…], :material/…:), LaTeX or headings.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~:$])")
# In the server's log (`make run`'s terminal): each test-set evaluation, once per model however many
# sessions ask for it at the same time (Streamlit computes a cache_resource value once per key).
LOGGER = get_logger("eipviz.app")


# GitHub-style autolinks survive any escaping ("www.evil.example", "a@b.c", "https://…" became links): an
# invisible word joiner (U+2060) goes before their "." after "www", their "@" and their "://".
AUTOLINK_MARKS = re.compile(r"(?i)(?<=www)(?=\.)|(?=@)|(?=://)")


def literal(text: str) -> str:
    """``text`` escaped for Streamlit's markdown (text, labels): a run named ``![](https://…)`` shows as
    written instead of loading a remote image into every viewer's browser, and a link in it is no link."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", AUTOLINK_MARKS.sub(WORD_JOINER, text))


def login_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section (Streamlit's ``st.login``, OIDC)."""
    return "is_logged_in" in st.user  # Streamlit sets it for every session once [auth] is configured


def signed_in_editor() -> bool:
    """A signed-in user whose verified address ``EIPVIZ_EDITORS`` lists (``eipviz.access.is_editor``)."""
    verified = st.user.get("email_verified")  # absent with providers that do not say; a string with some
    return (bool(st.user.is_logged_in) and str(verified).lower() != "false" and is_editor(st.user.get("email")))


def can_write() -> bool:
    """Whether this session may start, stop, rename or delete runs and upload models.

    Never in viewer mode (the library refuses those anyway); where ``st.login`` is configured, only
    for a signed-in editor.
    """
    return writes_allowed() and (not login_configured() or signed_in_editor())


def visible_message(text: str) -> str:
    """A server's message as this session may see it: whole for editors, its absolute paths cut for read-only
    visitors (``without_paths``): a data or runs folder's place is the server's business."""
    return text if can_write() else without_paths(text)


def show_error(error: Exception | str) -> None:
    """``st.error`` of a message, as ``visible_message`` has it."""
    st.error(visible_message(str(error)))


def read_only_note(what: str) -> None:
    """Say why ``what`` is not offered here: viewer mode, sign in first, or not an editor."""
    if not writes_allowed():
        st.caption(f"Viewer mode: {what} is switched off on this server.")
    elif login_configured() and not st.user.is_logged_in:
        st.caption(f"Sign in (sidebar) for {what}.")
    elif login_configured() and not signed_in_editor():
        st.caption(f"Signed in as {st.user.get('email') or 'an account'}, which is not an editor here "
                   f"({EDITORS_VARIABLE}): {what} is switched off.")


@st.cache_resource
def _store_at(folder: str) -> RunStore:
    return RunStore(folder)


def run_store() -> RunStore:
    """The run store of the configured folder (cached per folder)."""
    return _store_at(str(default_runs_dir().resolve()))


def page_run_store() -> RunStore:
    """The run store, for a page that needs one: an unusable runs folder stops the page with its message."""
    try:
        return run_store()
    except EipvizError as error:
        show_error(error)
        st.stop()


@st.cache_resource(show_spinner="Loading the model…", max_entries=5)
def _shipped_model(name: str, sha256: str) -> Classifier:
    return load_zoo_model(name)


def shipped_model(name: str) -> tuple[Classifier, str]:
    """(shipped model ``name``, its cache key ``zoo:NAME:SHA256``), loaded once per weights file.

    Keyed by the manifest's sha256, so after ``ship`` a running server loads the new file and evaluates it
    afresh (until 2026-11-27 the model was cached by name and the old one kept being served).
    """
    sha256 = manifest_entry(name)["sha256"]
    return _shipped_model(name, sha256), f"zoo:{name}:{sha256}"


def cached_zoo_model(name: str) -> Classifier:
    """``shipped_model``'s model alone (``scripts/serve.py`` preloads the pages' cache with it)."""
    return shipped_model(name)[0]


def model_identity(model_key: str) -> str:
    """The model that a ``model_picker`` key names, without its weights' version: ``zoo:NAME`` or ``run:ID``.

    Shipped keys end in the weights' sha256 and run keys in the checkpoint's mtime; a run's improved
    checkpoint or re-shipped weights are the same model to a page's widgets. An upload's key is its identity.
    """
    kind, _, rest = model_key.partition(":")
    return f"{kind}:{rest.rsplit(':', 1)[0]}" if kind in ("zoo", "run") else model_key


def default_for(widget_key: str, context: str, default) -> None:
    """Set widget ``widget_key`` to ``default`` when the page shows another ``context`` than at its last run (a
    model, or the gallery's filters), or when Streamlit dropped the widget's value: another model's layers are
    not this one's options, and a name both have would otherwise keep the old model's choice."""
    shown_for = f"{widget_key}-of"
    if st.session_state.get(shown_for) != context or widget_key not in st.session_state:
        st.session_state[shown_for] = context
        st.session_state[widget_key] = default


def default_layer_for(widget_key: str, classifier: Classifier, model_key: str) -> None:
    """A layer box's default (``default_for``): the model's own CAM layer, set again when another model shows
    (a run's improved checkpoint is the same model: the choice stays)."""
    layers = classifier.cam_layers
    default_for(widget_key, model_identity(model_key),
                classifier.cam_layer if classifier.cam_layer in layers else layers[0])


def show_upload_notes(where, classifier: Classifier, image, original_size, grayscale: bool) -> None:
    """The note and warning ``upload_notes`` has for an uploaded image, in ``where`` (a container, or ``st``)."""
    fitted, unsuited = upload_notes(classifier, image, original_size, grayscale)
    if fitted:
        where.caption(f"Note: {fitted}.")
    if unsuited:
        where.warning(f"This image {unsuited}.")


def keep_across_pages(*widget_keys: str) -> None:
    """Keep these widgets' values while another page shows. Streamlit drops a widget's value at the end of a
    run that does not draw it; ``hold_kept_widgets``, run by the entry point before every page, writes each
    kept value back, which stops that (Streamlit's documented way). Value widgets only, drawn without a
    ``value``/``default``/``index`` of their own (set one through the session state instead)."""
    st.session_state.setdefault(KEPT_WIDGETS_KEY, set()).update(widget_keys)


def hold_kept_widgets() -> None:
    """Write every kept widget value back (``keep_across_pages``); the entry point calls it before each page."""
    for key in st.session_state.get(KEPT_WIDGETS_KEY, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=2)
def cached_run_model(run_id: str, mtime: float) -> Classifier:
    return load_run_checkpoint(run_store(), run_id)


@st.cache_resource(show_spinner="Evaluating the test set (once per model)…", max_entries=4)
def cached_evaluation(model_key: str, _classifier: Classifier) -> Evaluation:
    start = time.perf_counter()
    evaluation = evaluate_test_set(_classifier)
    LOGGER.info("Evaluated the test set of %s in %.2f s (key %s)", model_identity(model_key),
                time.perf_counter() - start, model_key)
    return evaluation


# One per server process: the long computations of all sessions (faithfulness, sanity, report, the method grid)
# run one at a time, so one person's click cannot starve everyone else's pages of the CPU. A module global, not
# a cached resource: Streamlit's "clear cache" message, which any browser can send, cleared it, and a second one
# ran beside the first.
COMPUTATIONS = threading.Semaphore(1)


@contextmanager
def taking_turns(bar):
    """Hold ``COMPUTATIONS`` while the block runs; until then ``bar`` (a progress bar) says it waits. Each tick
    lets Streamlit stop a session whose user left or clicked elsewhere."""
    while not COMPUTATIONS.acquire(timeout=1.0):
        bar.progress(0.0, text="Waiting for another session's computation to finish…")
    try:
        yield
    finally:
        COMPUTATIONS.release()


def computed_on_click(label: str, result_key: str, inputs_key, compute, *, button_key: str | None = None,
                      disabled: bool = False):
    """A button that runs ``compute(progress)`` under a progress bar; return its result while ``inputs_key`` holds.

    ``progress(fraction, text)`` moves the bar. The result is kept in the session under ``result_key``,
    beside the ``inputs_key`` it was computed for, so changing an input hides it until the next click.
    A failure (``EipvizError``) is shown as its message and keeps no result. Sessions take turns
    (``taking_turns``): a click while another session computes waits, saying so.
    """
    if st.button(label, key=button_key, disabled=disabled):
        bar = st.progress(0.0, text="Starting…")
        try:
            with taking_turns(bar):
                result = compute(lambda fraction, text: bar.progress(fraction, text))
            st.session_state[result_key] = (inputs_key, result)
        except EipvizError as error:
            show_error(error)
        bar.empty()
    saved = st.session_state.get(result_key)
    return saved[1] if saved and saved[0] == inputs_key else None


def upload_model_widget(key: str) -> None:
    """Upload a .keras/.h5 model into this browser session (shared by the pages); absent for viewers."""
    if not can_write():
        st.session_state.pop(UPLOADED_MODEL_KEY, None)
        return
    with st.expander("Upload your own model (.keras or legacy .h5)"):
        file = st.file_uploader("Model file", type=["keras", "h5", "hdf5"], key=f"{key}-model-file")
        choices = {DETECT: DETECT_MEANS, **PREPROCESSINGS}
        preprocessing = st.selectbox("Its preprocessing", list(choices), key=f"{key}-model-pre",
                                     format_func=lambda p: f"{p}: {choices[p]}")
        if file is not None and st.button("Use this model", key=f"{key}-use-model"):
            try:
                data = file.getvalue()
                with st.spinner("Trying it in a separate process (uploads take turns there), then loading it…"):
                    detect = preprocessing == DETECT
                    classifier = load_uploaded_bytes(data, file.name, "unit_scale" if detect else preprocessing)
                    classifier = (with_detected_preprocessing if detect else with_preprocessing_hint)(classifier)
                # Cached evaluations are shared by all sessions: key them by content, never by id().
                cache_key = f"upload:{classifier.sha256}:{classifier.preprocessing}"
                st.session_state[UPLOADED_MODEL_KEY] = (classifier, cache_key)
                follow_model(source=UPLOADED_SOURCE)  # shown at once, on every page
                st.success(f"Loaded {literal(file.name)}.")
            except EipvizError as error:
                show_error(error)


def follow_model(**choice: str) -> None:
    """Make ``choice`` (``source``, ``zoo`` or ``run``) the model every page's picker shows: the model chosen on
    one page is the one the next page opens on (each page's own widgets are dropped when it is left)."""
    st.session_state.setdefault(CURRENT_MODEL_KEY, {}).update(choice)


def _picked(widget: str, part: str, options: list, label: str, draw, **kwargs):
    """One of ``model_picker``'s widgets (the source radio, the model or run box): ``draw`` (st.radio or
    st.selectbox) it showing the current model's ``part`` where that is one of ``options``; a change there
    becomes the current model. Returns the widget's value."""
    current = st.session_state.get(CURRENT_MODEL_KEY, {}).get(part)
    if current in options and st.session_state.get(widget) != current:
        st.session_state[widget] = current
    return draw(label, options, key=widget, on_change=lambda: follow_model(**{part: st.session_state[widget]}),
                **kwargs)


def model_picker(key: str) -> tuple[Classifier | None, str | None]:
    """Choose shipped weights, a run's checkpoint or the uploaded model; return (Classifier, cache key). Opens on
    the model last picked on any page (``follow_model``), or the link's ``?model=``."""
    sources = ["Shipped weights", "Run checkpoint"]
    if UPLOADED_MODEL_KEY in st.session_state:
        sources.append(UPLOADED_SOURCE)
    wanted = st.query_params.get("model")  # a link can open a page on a model: ?model=resnet20v1
    first_visit = f"{key}-zoo" not in st.session_state and CURRENT_MODEL_KEY not in st.session_state
    try:
        names = shipped_models()
        if wanted in names and first_visit:
            follow_model(source="Shipped weights", zoo=wanted)
        source = _picked(f"{key}-source", "source", sources, "Model source", st.radio, horizontal=True)
        if source == "Shipped weights":
            if not names:
                st.warning("No shipped weights yet; train a model on the Train page.")
                return None, None
            if wanted is not None and wanted not in names and first_visit:
                st.warning(f"The link's `model` ({literal(wanted)}) is not a shipped model here; showing "
                           f"{names[0]}. Shipped: {', '.join(names)}.")
            name = _picked(f"{key}-zoo", "zoo", names, "Model", st.selectbox,
                           format_func=lambda n: f"{n} ({dataset_label(MODELS[n].dataset)})")
            if wanted != name:  # the address bar names the model shown, so a copied link opens it
                st.query_params["model"] = name
            return shipped_model(name)
        st.query_params.pop("model", None)  # a link names shipped models only
        if source == "Run checkpoint":
            store = run_store()
            runs = {run.id: run for run in runs_with_checkpoint(store)}
            if not runs:
                st.warning("No run has a checkpoint yet.")
                return None, None
            datasets = {i: dataset_label(MODELS[run.model].dataset if run.model in MODELS else None)
                        for i, run in runs.items()}
            run_id = _picked(
                f"{key}-run", "run", list(runs), "Run", st.selectbox,
                format_func=lambda i: f"{run_label(runs[i])} ({datasets[i]}) · best.keras: epoch "
                                      f"{runs[i].best_epoch}, val acc {runs[i].best_val_accuracy or 0:.2%}")
            mtime = (store.run_dir(run_id) / CHECKPOINT).stat().st_mtime
            return cached_run_model(run_id, mtime), f"run:{run_id}:{mtime}"
        classifier, cache_key = st.session_state[UPLOADED_MODEL_KEY]
        st.caption(f"Uploaded: {classifier.name} ({dataset_label(classifier.dataset)})")
        if classifier.note:
            st.info(classifier.note)
        if classifier.warning:  # 37% where another preprocessing gets 87% is easy to overlook in blue
            st.warning(classifier.warning)
        return classifier, cache_key
    except EipvizError as error:
        show_error(error)
        return None, None
