"""eipviz: the Streamlit entry point. Pages only lay out widgets and call ``eipviz``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st

from eipviz.quiet import import_keras_quietly

import_keras_quietly()  # TensorFlow's native start-up lines stay out of the `make run` terminal

# An emoji favicon: a :material: one is fetched from Google Fonts, which fails offline.
st.set_page_config(page_title="eipviz", page_icon="🔍", layout="wide")

PAGES = [
    st.Page("app_pages/models.py", title="Models", icon=":material/account_tree:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/curves.py", title="Curves", icon=":material/show_chart:"),
    st.Page("app_pages/misclassified.py", title="Misclassified", icon=":material/image_search:"),
    st.Page("app_pages/upload.py", title="Upload", icon=":material/upload:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
]

st.navigation(PAGES).run()
