"""Misclassified page: where the model is wrong on the test set, and what it looked at."""

import pandas as pd
import streamlit as st

from app_pages.common import cached_evaluation, model_picker, upload_model_widget
from eipviz.attribution.cams import METHODS
from eipviz.errors import EipvizError
from eipviz.evaluation import dataset_test_split, sample_test_images
from eipviz.explain.faithfulness import faithfulness
from eipviz.explain.gallery import gallery_items, gallery_page, gallery_png_sheet
from eipviz.explain.overlay import png_bytes
from eipviz.plots import confusion_figure

PAGE_SIZE = 12
ALL = "All"

st.title("Misclassified test images")
upload_model_widget("mis")
classifier, model_key = model_picker("mis")
if classifier is None:
    st.stop()
try:
    images, _ = dataset_test_split(classifier)
    evaluation = cached_evaluation(model_key, classifier)
except EipvizError as error:
    st.error(str(error))
    st.stop()

names = list(classifier.class_names)
cols = st.columns(3)
cols[0].metric("Test accuracy", f"{evaluation.accuracy:.2%}")
cols[1].metric("Misclassified", f"{evaluation.misclassified_count:,}")
cols[2].metric("Test images", f"{len(evaluation.labels):,}")

left, right = st.columns([1, 2])
left.dataframe(pd.DataFrame({"class": names, "accuracy": list(evaluation.per_class_accuracy().values())}),
               hide_index=True, column_config={"accuracy": st.column_config.ProgressColumn(
                   "accuracy", format="percent", min_value=0.0, max_value=1.0)})
matrix = evaluation.confusion_matrix()
heatmap = confusion_figure(matrix, names)
with right:
    event = st.plotly_chart(heatmap, on_select="rerun", selection_mode="points", key="confusion")
    st.caption("Click a cell to filter the gallery to that (true, predicted) pair.")

selected = (event or {}).get("selection", {}).get("points", []) if event else []
if selected:
    cell = (selected[0]["y"], selected[0]["x"])
    # Plotly keeps a selection across reruns: apply it once, so the dropdowns stay the user's afterwards.
    if st.session_state.get("mis-cell") != cell:
        st.session_state["mis-cell"] = cell
        st.session_state["mis-true"], st.session_state["mis-pred"] = cell

st.subheader("Gallery")
f1, f2, f3, f4, f5 = st.columns([1, 1, 1.4, 1, 1.4])
true_name = f1.selectbox("True class", [ALL, *names], key="mis-true")
pred_name = f2.selectbox("Predicted class", [ALL, *names], key="mis-pred")
low, high = f3.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05)
method = f4.selectbox("CAM method", list(METHODS), key="mis-method")
layers = classifier.cam_layers
layer = f5.selectbox("Layer", layers, index=layers.index(classifier.cam_layer) if classifier.cam_layer in layers else 0,
                     key="mis-layer")

indices = evaluation.misclassified_indices(
    true_class=None if true_name == ALL else classifier.class_index(true_name),
    predicted_class=None if pred_name == ALL else classifier.class_index(pred_name),
    min_confidence=low, max_confidence=high)
_, pages = gallery_page(indices, 1, PAGE_SIZE)
page = st.number_input(f"Page (of {pages}; {len(indices)} images, most confident first)", 1, pages, 1)
shown, _ = gallery_page(indices, page, PAGE_SIZE)

if len(shown) == 0:
    st.info("No misclassified image matches these filters.")
else:
    try:
        with st.spinner(f"Computing {method} for {len(shown)} images…"):
            items = gallery_items(classifier, evaluation, images, shown, method=method, layer=layer)
    except EipvizError as error:
        st.error(str(error))
        st.stop()
    st.download_button("Export this page as PNG", png_bytes(gallery_png_sheet(items)),
                       file_name=f"misclassified-{method}-page{page}.png", mime="image/png")
    grid = st.columns(3)
    for i, item in enumerate(items):
        with grid[i % 3].container(border=True):
            st.caption(item.caption)
            c1, c2, c3 = st.columns(3)
            c1.image(item.original, caption="image", width="stretch")
            c2.image(item.predicted_overlay, caption=f"CAM: {item.predicted_class}", width="stretch")
            c3.image(item.true_overlay, caption=f"CAM: {item.true_class}", width="stretch")

with st.expander("Faithfulness of the CAM methods (deletion / insertion AUC, average drop)"):
    n = st.number_input("Test images to use", 10, 500, 50, 10)
    inputs_key = (model_key, int(n), layer)  # the table stays until one of these changes
    if st.button("Compute faithfulness"):
        bar = st.progress(0.0, text="Starting…")
        table = faithfulness(classifier, sample_test_images(classifier, n), list(METHODS), layer=layer,
                             progress=lambda done, total, method: bar.progress(
                                 done / total, text=f"{method}: deleting and inserting pixels ({done}/{total} done)"
                                 if method else f"{total} methods done"))
        bar.empty()
        st.session_state["mis-faithfulness"] = (inputs_key, table)
    saved = st.session_state.get("mis-faithfulness")
    if saved and saved[0] == inputs_key:
        st.dataframe(pd.DataFrame(saved[1]), hide_index=True)
        st.caption("Deletion AUC: lower is better. Insertion AUC: higher is better.")
