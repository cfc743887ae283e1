"""Models page: the zoo, layer by layer, with receptive fields against the seed's."""

import pandas as pd
import streamlit as st

from eipviz.data import dataset_label
from eipviz.tables import layer_frame, recipe_table, rf_annotation_check, zoo_overview
from eipviz.zoo import MODELS


@st.cache_data(show_spinner="Building the models…")
def cached_overview():
    return zoo_overview()


@st.cache_data(show_spinner="Computing receptive fields…")
def cached_layer_frame(name):
    return layer_frame(name)


st.title("Model zoo")
st.caption("The five models documented in the course write-ups, built exactly as documented.")

overview = pd.DataFrame(cached_overview())
st.dataframe(overview, hide_index=True, width="stretch")

name = st.selectbox("Model", list(MODELS), format_func=lambda n: f"{n} — {MODELS[n].title}")
spec = MODELS[name]
row = overview.set_index("model").loc[name]

cols = [*st.columns(2), *st.columns(2)]  # two rows: four across cut "11,192,458" to "11,1…" at 800 px
cols[0].metric("Parameters (built)", f"{row['params']:,}",
               delta="matches the seed" if row["params_match"] else "differs from the seed",
               delta_color="normal" if row["params_match"] else "inverse")
cols[1].metric("Documented", f"{spec.documented_params.total:,}",
               help=f"trainable {spec.documented_params.trainable:,}, "
                    f"non-trainable {spec.documented_params.non_trainable:,}")
cols[2].metric("Documented accuracy", f"{spec.documented_accuracy:.2f}%", help=spec.accuracy_kind)
cols[3].metric("Dataset", dataset_label(spec.dataset), help="input " + "x".join(map(str, spec.input_shape)))

st.markdown(
    f"**Source:** `../shared/seeds/{spec.seed_file}` · **Preprocessing:** `{spec.preprocessing}` · "
    f"**Default Grad-CAM layer:** `{spec.cam_layer}`"
)
if spec.notes:
    st.info(spec.notes)

st.subheader("Recipes")
st.dataframe(pd.DataFrame(recipe_table(name)), hide_index=True, width="stretch")

st.subheader("Layers and receptive fields")
table = cached_layer_frame(name)
differs = table["rf_differs"].fillna(False).astype(bool)
kind, message = rf_annotation_check(table)
{"info": st.info, "success": st.success, "warning": st.warning}[kind](message)
st.table(  # every layer at once, blank where a column does not apply to a layer
    table.style.apply(lambda r: ["background-color: #ffd6d6" if differs[r.name] else "" for _ in r], axis=1)
    .format(na_rep="").hide(axis="index"),
)
