"""Misclassified page: where the model is wrong on the test set, and what it looked at."""

import re

import pandas as pd
import streamlit as st

from app_pages.common import (
    cached_evaluation,
    computed_on_click,
    default_for,
    default_layer_for,
    keep_across_pages,
    model_identity,
    model_picker,
    run_store,
    show_error,
    upload_model_widget,
)
from eipviz.attribution.methods import METHODS, SLOW_METHODS, SMOOTHING, method_label
from eipviz.errors import EipvizError
from eipviz.evaluation import dataset_test_split, sample_test_images
from eipviz.explain.compare import RANK_METRICS, rank_methods
from eipviz.explain.gallery import (
    ALL,
    COLUMN_LABELS,
    ENLARGED_SIZE,
    PAGE_SIZE,
    GalleryItem,
    gallery_items,
    gallery_note,
    gallery_page,
    gallery_png_sheet,
    sheet_header,
)
from eipviz.explain.overlay import colormap_legend, overlay, png_bytes
from eipviz.explain.sanity import IGNORES_WEIGHTS, sanity_check, sanity_strip
from eipviz.explain.timeline import TIMELINE_FILE, read_timeline
from eipviz.plots import CONFUSION_VIEWS, confusion_figure, per_class_accuracy_figure, sanity_figure
from eipviz.report import REPORT_METHODS, SANITY_METHODS, build_report

GRID_COLUMNS = 2  # items side by side: three across left each image about 80 px wide
COLORMAP = "jet"
LEGEND_CAPTION = "CAM: blue = little evidence, red = most evidence for the class"


def export_stem(classifier) -> str:
    """The model in a downloaded file's name: "mnist14k", "run-ID", "mine-keras" (exports of two models collided)."""
    return re.sub(r"\W+", "-", classifier.name.split(" (")[0]).strip("-")


def show_legend(where) -> None:
    """The colour bar and what its colours mean, in ``where`` (a column, or ``st``)."""
    where.image(colormap_legend(COLORMAP, 256, 34), width=256, output_format="PNG")
    where.caption(LEGEND_CAPTION)


@st.dialog("Enlarged", width="large")
def show_enlarged(item: GalleryItem) -> None:
    st.caption(item.caption)
    labels = (COLUMN_LABELS[0], f"{COLUMN_LABELS[1]}: {item.predicted_class}", f"{COLUMN_LABELS[2]}: {item.true_class}")
    for column, tile, label in zip(st.columns(3), item.enlarged(ENLARGED_SIZE), labels):
        column.image(tile, caption=label, width=ENLARGED_SIZE, output_format="PNG")
    show_legend(st)  # the page's is behind the dialog


st.title("Misclassified test images")
upload_model_widget("mis")
picker = st.container()
loading = st.empty()  # below the picker: a cold start loads the model, the test set and its predictions
loading.progress(0.0, text="Loading the model (step 1 of 3)…")
with picker:
    classifier, model_key = model_picker("mis")
if classifier is None:
    loading.empty()
    st.stop()
try:
    loading.progress(1 / 3, text=f"Loading the {classifier.dataset or ''} test set (step 2 of 3)…")
    images, _ = dataset_test_split(classifier)
    loading.progress(2 / 3, text=f"Reading the test-set predictions of {classifier.name} (step 3 of 3; "
                                 f"a model without stored ones runs the test set once)…")
    evaluation = cached_evaluation(model_key, classifier)
except EipvizError as error:
    loading.empty()
    show_error(error)
    st.stop()
loading.empty()

names = list(classifier.class_names)
cols = st.columns(3)
cols[0].metric("Test accuracy", f"{evaluation.accuracy:.2%}")
cols[1].metric("Misclassified", f"{evaluation.misclassified_count:,}")
cols[2].metric("Test images", f"{len(evaluation.labels):,}")

# A click on the matrix arrives as its widget state: apply it before drawing, so the chart outlines it.
clicked = ((st.session_state.get("confusion") or {}).get("selection") or {}).get("points") or []
if clicked:
    cell = (clicked[0]["y"], clicked[0]["x"])
    # Plotly keeps a selection across reruns: apply it once, so the dropdowns stay the user's afterwards.
    if st.session_state.get("mis-cell") != cell:
        st.session_state["mis-cell"] = cell
        st.session_state["mis-true"], st.session_state["mis-pred"] = cell
else:
    # The outlined chart is a new element without a selection: forget the last click, so clicking the same cell
    # again applies it (until 2026-11-27 a second click on it did nothing).
    st.session_state.pop("mis-cell", None)

left, right = st.columns([1, 2])
left.plotly_chart(per_class_accuracy_figure(evaluation.per_class_accuracy()), key="mis-per-class")
with right:
    view = st.radio("Colour the matrix by", list(CONFUSION_VIEWS), format_func=CONFUSION_VIEWS.get,
                    horizontal=True, key="mis-view")
    chosen = (st.session_state.get("mis-true", ALL), st.session_state.get("mis-pred", ALL))
    highlight = tuple(None if name == ALL or name not in names else names.index(name) for name in chosen)
    heatmap = confusion_figure(evaluation.confusion_matrix(), names, view=view, highlight=highlight)
    st.plotly_chart(heatmap, on_select="rerun", selection_mode="points", key="confusion")
    st.caption("Click a cell to filter the gallery to that (true, predicted) pair; the outline shows the filter.")

st.subheader("Gallery")
keep_across_pages("mis-view", "mis-true", "mis-pred", "mis-confidence", "mis-method", "mis-layer", "mis-smoothing",
                  "mis-page")
st.session_state.setdefault("mis-confidence", (0.0, 1.0))
f1, f2, f3, f4, f5 = st.columns([1, 1, 1.4, 1, 1.4])
true_name = f1.selectbox("True class", [ALL, *names], key="mis-true")
pred_name = f2.selectbox("Predicted class", [ALL, *names], key="mis-pred")
low, high = f3.slider("Confidence", 0.0, 1.0, step=0.05, key="mis-confidence")
method = f4.selectbox("CAM method", list(METHODS), key="mis-method", format_func=method_label,
                      help="Methods marked slow run many forward passes per image.")
layers = classifier.cam_layers
default_layer_for("mis-layer", classifier, model_key)
layer = f5.selectbox("Layer", layers, key="mis-layer")
smoothing = tuple(st.pills("Smoothing", list(SMOOTHING), selection_mode="multi", format_func=SMOOTHING.get,
                           key="mis-smoothing"))

indices = evaluation.misclassified_indices(
    true_class=None if true_name == ALL else classifier.class_index(true_name),
    predicted_class=None if pred_name == ALL else classifier.class_index(pred_name),
    min_confidence=low, max_confidence=high)
_, pages = gallery_page(indices, 1, PAGE_SIZE)
default_for("mis-page", repr((model_identity(model_key), true_name, pred_name, low, high)), 1)  # new filters: page 1
page = st.number_input(f"Page (of {pages:,}; {len(indices):,} images, most confident first)", 1, pages,
                       key="mis-page")
shown, _ = gallery_page(indices, page, PAGE_SIZE)
note = gallery_note(true_name, pred_name, low, high, page, pages)

if len(shown) == 0 and true_name == pred_name != ALL:  # a click on the matrix's diagonal
    st.info(f"True {true_name}, predicted {pred_name}: those are the right answers. The gallery shows mistakes "
            f"only; pick a cell off the diagonal.")
elif len(shown) == 0:
    st.info("No misclassified image matches these filters.")
else:
    gallery_key = (model_key, tuple(shown.tolist()), method, layer, smoothing)  # kept until one of these changes
    saved = st.session_state.get("mis-gallery")
    if saved is None or saved[0] != gallery_key:
        bar = st.progress(0.0, text=f"Computing {method} CAMs for the predicted and the true class: "
                                    f"0/{len(shown)} images…")
        try:
            items = gallery_items(classifier, evaluation, images, shown, method=method, layer=layer,
                                  colormap=COLORMAP, aug_smooth="aug_smooth" in smoothing,
                                  eigen_smooth="eigen_smooth" in smoothing, progress=lambda done, total: bar.progress(
                                      done / total, text=f"Computing {method} CAMs for the predicted and the true "
                                                         f"class: {done}/{total} images…"))
        except EipvizError as error:
            bar.empty()
            show_error(error)
            st.stop()
        bar.empty()
        st.session_state["mis-gallery"] = (gallery_key, items)
    items = st.session_state["mis-gallery"][1]

    legend, export = st.columns([1, 1], vertical_alignment="center")
    show_legend(legend)
    export.download_button("Export this page as PNG", png_bytes(gallery_png_sheet(
        items, header=sheet_header(classifier, method, layer, note, smoothing), column_labels=COLUMN_LABELS)),
        file_name=f"misclassified-{export_stem(classifier)}-{'-'.join([method, *smoothing])}-page{page}.png",
        mime="image/png")
    grid = st.columns(GRID_COLUMNS)
    for i, item in enumerate(items):
        with grid[i % GRID_COLUMNS].container(border=True):
            head, button = st.columns([5, 1], vertical_alignment="center")
            head.caption(item.caption)
            # An icon: a word was cut to "Enla…" at 1280 px and "E" at 800.
            if button.button("", icon=":material/open_in_full:", key=f"mis-enlarge-{item.index}",
                             help="Enlarge: the image and both CAMs at 384 px, with the colour bar"):
                show_enlarged(item)
            c1, c2, c3 = st.columns(3)
            c1.image(item.original, caption="image", width="stretch", output_format="PNG")
            c2.image(item.predicted_overlay, caption=f"CAM: {item.predicted_class}", width="stretch",
                     output_format="PNG")
            c3.image(item.true_overlay, caption=f"CAM: {item.true_class}", width="stretch", output_format="PNG")

FAST_METHODS = [m for m in METHODS if m not in SLOW_METHODS and m != "random"]
# One click's maps at most (images x methods x layers): 500 images of 7 methods at one layer, or 50 of 7 at 10
# layers; 17 methods at every layer of resnet18 on 500 images would take hours of the server's CPU.
MAX_RANKED_MAPS = 4000

# Keyed: an unkeyed expander here closed on every rerun its own widgets caused (Streamlit 1.67).
with st.expander("Faithfulness: rank methods and layers against chance (deletion / insertion AUC, drop, ROAD)",
                 key="mis-faithfulness-open"):
    a, b, c = st.columns([3, 2, 1])
    chosen_methods = a.multiselect("Methods", list(METHODS), default=FAST_METHODS[:6], format_func=method_label,
                                   key="mis-f-methods", help="random, the chance baseline, is always added")
    default_for("mis-f-layers", model_identity(model_key), [layer])
    chosen_layers = b.multiselect("Layers", classifier.cam_layers, key="mis-f-layers")
    n = c.number_input("Test images", 10, 500, 50, 10, key="mis-f-n")
    metric = st.radio("Rank by", list(RANK_METRICS), horizontal=True, key="mis-f-metric",
                      help="ROAD costs about 9 s per method and layer at 50 images on a 2-core CPU")
    inputs_key = (model_key, tuple(chosen_methods), tuple(chosen_layers), int(n), metric)  # kept until one changes
    ranked_methods = len(set(chosen_methods) | {"random"})  # the chance baseline is always scored too
    maps = int(n) * ranked_methods * len(chosen_layers)
    if maps > MAX_RANKED_MAPS:
        st.caption(f"That is {maps:,} maps ({int(n)} images x {ranked_methods} methods x "
                   f"{len(chosen_layers)} layers); at most {MAX_RANKED_MAPS:,} per click. Choose fewer.")
    table = computed_on_click(
        "Compute and rank", "mis-faithfulness", inputs_key,
        disabled=not (chosen_methods and chosen_layers) or maps > MAX_RANKED_MAPS,
        compute=lambda progress: rank_methods(
            classifier, sample_test_images(classifier, n), chosen_methods, chosen_layers, metric,
            progress=lambda done, total, what: progress(done / total, f"{what} ({int(done)}/{total} done)")))
    if table is not None:
        st.dataframe(pd.DataFrame(table), hide_index=True)
        st.caption("Best first. Deletion AUC and average drop: lower is better; insertion AUC and ROAD: higher is "
                   "better. Each `*_vs_random` column is the margin over the random baseline at that layer: positive "
                   "is better (the random rows, the baselines, have none).")

with st.expander(f"Sanity check of {method_label(method)} at {layer} (Adebayo et al. 2018)", key="mis-sanity-open"):
    s1, s2 = st.columns(2)
    sanity_n = s1.number_input("Test images", 2, 64, 8, 2, key="mis-s-n")
    depths = s2.number_input("Randomisation depths", 2, 12, 6, 1, key="mis-s-depths")
    sanity_key = (model_key, method, layer, int(sanity_n), int(depths))

    def sanity(progress):
        (checked,) = sanity_check(classifier, sample_test_images(classifier, sanity_n), [method], layer, depths=depths,
                                  progress=lambda done, total, text: progress(done / total, text))
        return checked

    result = computed_on_click(f"Randomise the model's weights and recompute {method}", "mis-sanity-result",
                               sanity_key, sanity, button_key="mis-sanity")
    if result is not None:
        {"baseline": st.info, "passes": st.success, "fails": st.error}[result.outcome](f"{method} {result.verdict}.")
        st.plotly_chart(sanity_figure(result.curve(), IGNORES_WEIGHTS), key="mis-sanity-curve")
        sample = sample_test_images(classifier, sanity_n)[0]
        strip = sanity_strip(result)
        for column, (caption, cam) in zip(st.columns(len(strip)), strip):
            column.image(overlay(classifier.fit(sample[None])[0], cam), caption=caption, width="stretch")
        st.caption("The first test image's map as layers are re-initialised from the output down. A method that "
                   "explains the model should lose its map; one whose map survives shows the image, not the model.")

with st.expander("Report: one HTML file of this model and this gallery page (opens offline)", key="mis-report-open"):
    st.caption(f"Model, sha256, accuracy and per-class table, confusion matrix, the gallery page shown above "
               f"({method}{''.join(f', {name}' for name in smoothing)} at {layer}; {note}), the report's own "
               f"faithfulness table ({', '.join(REPORT_METHODS)} against random) and sanity table "
               f"({', '.join(SANITY_METHODS)}) at {layer}, and for a run its curves and timeline.")
    run_id = model_key.split(":")[1] if model_key and model_key.startswith("run:") else None
    report_key = (model_key, tuple(shown.tolist()), method, layer, smoothing, note)  # kept until one of these changes

    def report(progress):
        store = run_store()
        return build_report(classifier, evaluation, images, curves=store.epoch_rows(run_id) if run_id else None,
                            timeline=read_timeline(store.run_dir(run_id) / TIMELINE_FILE) if run_id else None,
                            progress=progress, gallery_indices=shown, gallery_method=method, gallery_note=note,
                            layer=layer, aug_smooth="aug_smooth" in smoothing,
                            eigen_smooth="eigen_smooth" in smoothing)

    html = computed_on_click("Build the report", "mis-report-html", report_key, report, button_key="mis-report")
    if html is not None:
        st.download_button("Download report.html", html, file_name=f"eipviz-report-{export_stem(classifier)}.html",
                           mime="text/html",
                           key="mis-report-dl")
