"""eipviz: the Streamlit entry point. Pages only lay out widgets and call ``eipviz``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st

from eipviz.quiet import import_keras_quietly

import_keras_quietly()  # TensorFlow's native start-up lines stay out of the `make run` terminal

from app_pages.common import (  # noqa: E402  (imports Keras: after the quiet import)
    hold_kept_widgets,
    login_configured,
    signed_in_editor,
)
from eipviz.access import writes_allowed  # noqa: E402

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

with st.sidebar:
    if not writes_allowed():
        st.caption("Viewer mode: browse runs, curves and explanations; training and model uploads are off.")
    elif login_configured():  # [auth] in .streamlit/secrets.toml: changes need a signed-in editor
        if st.user.is_logged_in:
            role = "editor" if signed_in_editor() else "viewer: not listed in EIPVIZ_EDITORS"
            st.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'} ({role}).")
            st.button("Sign out", on_click=st.logout)
        else:
            st.button("Sign in to train and upload models", on_click=st.login)

hold_kept_widgets()  # a page's chosen filters and settings are there again when it is opened again
st.navigation(PAGES).run()
