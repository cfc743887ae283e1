"""Upload page: predictions and CAMs for your own images (and your own model)."""

import streamlit as st

from app_pages.common import model_picker, upload_model_widget
from eipviz.attribution.cams import METHODS
from eipviz.errors import EipvizError
from eipviz.explain.predict import explain_images
from eipviz.images import IMAGE_TYPES, read_image, resize_note
from eipviz.plots import top_classes_figure

st.title("Explain your images")
upload_model_widget("up")
classifier, _ = model_picker("up")
if classifier is None:
    st.stop()

files = st.file_uploader("Images (PNG, JPEG, WebP, BMP)", type=IMAGE_TYPES, accept_multiple_files=True)
c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("CAM method", list(METHODS))
layers = classifier.cam_layers
layer = c2.selectbox("Layer", layers, index=layers.index(classifier.cam_layer) if classifier.cam_layer in layers else 0)
target = c3.selectbox("Explain class", ["top prediction", *classifier.class_names])
alpha = c4.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05)

if not files:
    st.info(f"Upload images to classify with {classifier.name} (input {'x'.join(map(str, classifier.input_size))}).")
    st.stop()

good, names = [], []
for file in files:
    try:
        good.append(read_image(file.getvalue(), file.name))
        names.append(file.name)
    except EipvizError as error:
        st.error(str(error))
if not good:
    st.stop()

class_index = None if target == "top prediction" else classifier.class_index(target)
try:
    with st.spinner("Predicting and explaining…"):
        explanations = explain_images(classifier, good, method=method, layer=layer, class_index=class_index,
                                      alpha=alpha)
except EipvizError as error:
    st.error(str(error))
    st.stop()

for name, image, explanation in zip(names, good, explanations):
    with st.container(border=True):
        st.markdown(f"**{name}**")
        note = resize_note(image, classifier.input_size)
        if note:
            st.caption(f"Note: {note} to fit the model.")
        left, middle, right = st.columns([1, 1, 2])
        left.image(image, caption="upclassifier", width="stretch")
        middle.image(explanation.overlay, width="stretch",
                     caption=f"{method}: {classifier.class_names[explanation.class_index]}")
        right.plotly_chart(top_classes_figure(explanation.top(classifier.class_names)), key=f"top5-{name}")
