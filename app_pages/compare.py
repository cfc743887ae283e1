"""Compare page: every method and layer on one image, and several models on one test set."""

import hashlib
from contextlib import nullcontext

import numpy as np
import streamlit as st

from app_pages.common import (
    cached_evaluation,
    cached_run_model,
    default_for,
    keep_across_pages,
    literal,
    model_identity,
    model_picker,
    run_store,
    shipped_model,
    show_error,
    show_upload_notes,
    taking_turns,
)
from eipviz.attribution.methods import METHODS, method_label
from eipviz.data import dataset_label
from eipviz.errors import EipvizError
from eipviz.evaluation import dataset_test_split
from eipviz.explain.compare import (
    DISPUTED_SHOWN,
    GRID_METHODS,
    MAX_GRID_MAPS,
    SMALL_GRID_MAPS,
    answer_caption,
    compare_models,
    default_grid_layers,
    disagreement_rows,
    grid_cells,
    method_grid,
)
from eipviz.explain.overlay import upscale
from eipviz.images import IMAGE_TYPES, MAX_IMAGE_BYTES, read_upload
from eipviz.loading import CHECKPOINT, runs_with_checkpoint
from eipviz.plots import agreement_figure
from eipviz.training.store import run_label
from eipviz.weights import shipped_models
from eipviz.zoo import MODELS


def linked_test_index(count: int) -> int:
    """The test image a link opens on (``?image=12``), clamped into ``0..count-1``; 0 when there is none.

    A link is anyone's text: a bad value gets a warning, never a traceback.
    """
    wanted = st.query_params.get("image")
    if wanted is None:
        return 0
    try:
        index = int(wanted)
    except ValueError:  # also a number of over 4,300 digits
        st.warning("The link's `image` is not a whole number; showing test image 0.")
        return 0
    clamped = min(max(index, 0), count - 1)
    if clamped != index:
        st.warning(f"The link's `image` is outside the test set (0-{count - 1:,}); showing test image {clamped:,}.")
    return clamped


st.title("Compare")
keep_across_pages("cmp-image-source", "cmp-index", "cmp-methods", "cmp-layers", "cmp-class", "cmp-models-dataset",
                  "cmp-models", "cmp-models-method")
methods_tab, models_tab = st.tabs(["Methods on one image", "Models side by side"])

with methods_tab:
    classifier, model_key = model_picker("cmp")
    if classifier is not None:
        source = st.radio("Image", ["Test image", "Upload"], horizontal=True, key="cmp-image-source")
        image, image_name = None, ""
        try:
            if source == "Test image":
                images, labels = dataset_test_split(classifier)
                if "cmp-index" not in st.session_state:  # a link opens its image; after that, the box says
                    st.session_state["cmp-index"] = linked_test_index(len(images))
                st.session_state["cmp-index"] = min(st.session_state["cmp-index"], len(images) - 1)
                index = st.number_input(f"Test image index (0-{len(images) - 1})", 0, len(images) - 1,
                                        key="cmp-index")
                st.query_params["image"] = str(index)  # the address opens this image again
                image, image_name = images[index], f"test #{index}, true {classifier.class_names[labels[index]]}"
            else:
                file = st.file_uploader("An image", type=IMAGE_TYPES, key="cmp-upload",
                                        max_upload_size=MAX_IMAGE_BYTES // 2**20)
                if file is not None:
                    model_side = max(classifier.input_size[:2])  # a large upload is never kept whole
                    decoded = read_upload(file.getvalue(), file.name, model_side)
                    image, image_name = decoded.pixels, file.name
                    show_upload_notes(st, classifier, image, decoded.original_size, decoded.grayscale)
        except EipvizError as error:
            show_error(error)
        c1, c2, c3 = st.columns([3, 2, 1.5])  # at 1, "predicted class" was cut at 1280 px
        st.session_state.setdefault("cmp-methods", list(GRID_METHODS))
        methods = c1.multiselect("Methods (rows)", list(METHODS), format_func=method_label, key="cmp-methods")
        layers = classifier.cam_layers
        default_for("cmp-layers", model_key, default_grid_layers(classifier))
        chosen_layers = c2.multiselect("Layers (columns)", layers, key="cmp-layers")
        default_for("cmp-class", model_identity(model_key), "predicted class")  # another model, other classes
        explained = c3.selectbox("Explain", ["predicted class", *classifier.class_names], key="cmp-class")
        maps = len(methods) * len(chosen_layers)
        too_many = maps > MAX_GRID_MAPS
        if too_many:  # 17 methods at 45 layers of resnet18 took both cores for about 11 minutes
            st.warning(f"{len(methods)} methods x {len(chosen_layers)} layers is {maps} maps; choose at most "
                       f"{MAX_GRID_MAPS}.")
        if image is not None and methods and chosen_layers and not too_many:
            class_index = None if explained == "predicted class" else classifier.class_index(explained)
            grid_key = (model_key, hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(),
                        tuple(methods), tuple(chosen_layers), class_index)
            saved = st.session_state.get("cmp-grid")
            if saved is None or saved[0] != grid_key:
                bar = st.progress(0.0, text="Starting…")
                try:
                    # A large grid takes turns with other sessions' long computations (not the default one:
                    # the page would open only once another session's hour-long ranking is done).
                    with taking_turns(bar) if maps > SMALL_GRID_MAPS else nullcontext():
                        result = method_grid(classifier, image, methods, chosen_layers, class_index,
                                             progress=lambda done, total, what: bar.progress(
                                                 done / total, text=f"{what} ({done}/{total} maps)"))
                except EipvizError as error:
                    bar.empty()
                    show_error(error)
                    st.stop()
                bar.empty()
                st.session_state["cmp-grid"] = saved = (grid_key, result)
            target, scores = saved[1]
            image_tile, cells = grid_cells(classifier, image, scores)
            st.caption(f"{image_name}: explaining **{classifier.class_names[target]}**. Under each map: deletion AUC "
                       f"(lower is better) and insertion AUC (higher is better); `random` is the chance baseline.")
            header = st.columns([1] + [2] * len(chosen_layers))
            header[0].image(image_tile, caption="image", width="stretch")
            for column, layer in zip(header[1:], chosen_layers):
                column.markdown(f"**{layer}**")
            for row in range(len(methods)):
                columns = st.columns([1] + [2] * len(chosen_layers))
                columns[0].markdown(f"**{method_label(methods[row])}**")
                row_cells = cells[row * len(chosen_layers):(row + 1) * len(chosen_layers)]
                for column, (tile, caption) in zip(columns[1:], row_cells):
                    column.image(tile, width="stretch", caption=caption)
        elif image is None:
            st.info("Choose a test image or upload one.")
        elif not too_many:
            st.info("Choose at least one method and one layer.")


def _model_options() -> dict[str, dict[str, tuple[str, str]]]:
    """Dataset label -> key -> (picker label, name in the results) of every model the comparison can load: shipped
    weights and run checkpoints. The name is unique too: two runs of one model and recipe share a run name."""
    options: dict[str, dict[str, tuple[str, str]]] = {}
    for name in shipped_models():
        options.setdefault(dataset_label(MODELS[name].dataset), {})[f"zoo:{name}"] = (f"{name} (shipped)", name)
    for run in runs_with_checkpoint(run_store()):
        options.setdefault(dataset_label(MODELS[run.model].dataset), {})[f"run:{run.id}"] = (
            f"{run_label(run)} (run)", run_label(run))
    return options


def _load(key: str):
    kind, name = key.split(":", 1)
    if kind == "zoo":
        return shipped_model(name)
    mtime = (run_store().run_dir(name) / CHECKPOINT).stat().st_mtime
    return cached_run_model(name, mtime), f"run:{name}:{mtime}"


with models_tab:
    by_dataset = _model_options()
    # One dataset at a time: models of two datasets have no test image in common ("Select all" mixed them).
    dataset = st.radio("Dataset", list(by_dataset), horizontal=True, key="cmp-models-dataset")
    options = by_dataset.get(dataset, {})
    # Kept from another visit or dataset: only those still offered (a run may have been deleted since).
    st.session_state["cmp-models"] = [key for key in st.session_state.get("cmp-models", []) if key in options]
    picked = st.multiselect("Models (2 to 5)", list(options), format_func=lambda key: options[key][0],
                            max_selections=5, key="cmp-models")
    method = st.selectbox("CAM method", list(METHODS), format_func=method_label, key="cmp-models-method")
    if len(picked) < 2:
        st.info("Choose two to five models of one dataset.")
    else:
        try:
            with st.spinner("Loading the models and their test-set predictions…"):
                loaded = [_load(key) for key in picked]
                classifiers = [classifier for classifier, _ in loaded]
                evaluations = [cached_evaluation(cache_key, classifier) for classifier, cache_key in loaded]
            comparison = compare_models([options[key][1] for key in picked], evaluations)
        except EipvizError as error:
            show_error(error)
            st.stop()
        for column, name, accuracy in zip(st.columns(len(picked)), comparison.names, comparison.accuracies):
            column.metric(literal(name), f"{accuracy:.2%}")  # a run's name is text, not markdown
        st.plotly_chart(agreement_figure(comparison.both_wrong, comparison.names), key="cmp-agreement")
        shown = comparison.disagreements[:DISPUTED_SHOWN]
        st.subheader(f"Where they disagree ({len(comparison.disagreements):,} test images; the most disputed first)")
        images, labels = dataset_test_split(classifiers[0])
        rows_key = (tuple(cache_key for _, cache_key in loaded), method)  # kept until the models or method change
        saved = st.session_state.get("cmp-disagreements")
        if saved is None or saved[0] != rows_key:
            with st.spinner(f"Computing {method} maps…"):
                saved = (rows_key, disagreement_rows(classifiers, evaluations, images, shown, method))
            st.session_state["cmp-disagreements"] = saved
        rows = saved[1]
        for index, answers in zip(shown, rows):
            cells = st.columns(len(picked) + 1)
            cells[0].image(upscale(images[index]), width="stretch",
                           caption=f"#{index}, true {classifiers[0].class_names[labels[index]]}")
            for cell, name, answer in zip(cells[1:], comparison.names, answers):
                cell.image(answer.overlay, width="stretch", caption=answer_caption(name, answer))
