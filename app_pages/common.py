"""Widgets several pages share (not a page itself): run store, model picker, cached evaluation."""

import tempfile
from pathlib import Path

import streamlit as st

from eipviz.errors import EipvizError
from eipviz.loading import load_run_checkpoint, load_uploaded_model, load_zoo_model
from eipviz.preprocessing import PREPROCESSINGS
from eipviz.training.store import RunStore, default_runs_dir, run_label
from eipviz.weights import shipped_models

UPLOADED_MODEL_KEY = "uploaded_model"


@st.cache_resource
def _store_at(folder: str) -> RunStore:
    return RunStore(folder)


def run_store() -> RunStore:
    """The run store of the configured folder (cached per folder)."""
    return _store_at(str(default_runs_dir().resolve()))


@st.cache_resource(show_spinner="Loading the model…")
def cached_zoo_model(name: str):
    return load_zoo_model(name)


@st.cache_resource(show_spinner="Loading the checkpoint…")
def cached_run_model(run_id: str, mtime: float):
    return load_run_checkpoint(run_store(), run_id)


@st.cache_resource(show_spinner="Evaluating the test set (once per model)…", max_entries=4)
def cached_evaluation(model_key: str, _loaded):
    from eipviz.evaluation import evaluate

    return evaluate(_loaded)


def upload_model_widget(key: str) -> None:
    """Upload a .keras/.h5 model into this browser session (shared by the pages)."""
    with st.expander("Upload your own model (.keras or legacy .h5)"):
        file = st.file_uploader("Model file", type=["keras", "h5", "hdf5"], key=f"{key}-model-file")
        preprocessing = st.selectbox("Its preprocessing", list(PREPROCESSINGS), key=f"{key}-model-pre",
                                     format_func=lambda p: f"{p}: {PREPROCESSINGS[p]}")
        if file is not None and st.button("Use this model", key=f"{key}-use-model"):
            suffix = Path(file.name).suffix.lower()
            with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
                tmp.write(file.getvalue())
            try:
                st.session_state[UPLOADED_MODEL_KEY] = load_uploaded_model(tmp.name, preprocessing, label=file.name)
                st.success(f"Loaded {file.name}.")
            except EipvizError as error:
                st.error(str(error))
            finally:
                Path(tmp.name).unlink(missing_ok=True)


def model_picker(key: str):
    """Choose shipped weights, a run's checkpoint or the uploaded model; return (LoadedModel, cache key)."""
    sources = ["Shipped weights", "Run checkpoint"]
    if UPLOADED_MODEL_KEY in st.session_state:
        sources.append("Uploaded model")
    source = st.radio("Model source", sources, horizontal=True, key=f"{key}-source")
    try:
        if source == "Shipped weights":
            names = shipped_models()
            if not names:
                st.warning("No shipped weights yet; train a model on the Train page.")
                return None, None
            name = st.selectbox("Model", names, key=f"{key}-zoo")
            return cached_zoo_model(name), f"zoo:{name}"
        if source == "Run checkpoint":
            store = run_store()
            runs = [r for r in store.list_runs(kinds=("trained",))
                    if (store.run_dir(r.id) / "best.keras").is_file()]
            if not runs:
                st.warning("No run has a checkpoint yet.")
                return None, None
            run = st.selectbox("Run", runs, key=f"{key}-run",
                               format_func=lambda r: f"{run_label(r)} · best {r.best_val_accuracy or 0:.4f}")
            mtime = (store.run_dir(run.id) / "best.keras").stat().st_mtime
            return cached_run_model(run.id, mtime), f"run:{run.id}:{mtime}"
        loaded = st.session_state[UPLOADED_MODEL_KEY]
        if loaded.note:
            st.info(loaded.note)
        return loaded, f"upload:{id(loaded)}"
    except EipvizError as error:
        st.error(str(error))
        return None, None
