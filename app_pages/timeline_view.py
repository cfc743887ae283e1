"""The explanation timeline of one run (not a page itself): an epoch slider over its probe images' Grad-CAMs,
and its curves with that epoch marked. The Train page shows it for live and finished runs, Curves for any."""

import streamlit as st

from app_pages.common import show_error
from eipviz.errors import EipvizError
from eipviz.explain.timeline import TIMELINE_FILE, read_timeline, timeline_tiles
from eipviz.plots import timeline_figure

COLUMNS = 8


def timeline_section(store, run, key: str) -> None:
    """Draw ``run``'s timeline, or say why it has none."""
    try:
        timeline = read_timeline(store.run_dir(run.id) / TIMELINE_FILE)
    except EipvizError as error:
        show_error(error)
        return
    if timeline is None or not len(timeline.epochs):
        st.caption("No explanation timeline: the run has not finished an epoch yet, or it was trained before "
                   "eipviz recorded timelines." if run.kind == "trained" else "Only trained runs have a timeline.")
        return
    epochs = [int(e) for e in timeline.epochs]
    epoch = _epoch_slider(epochs, f"{key}-epoch") if len(epochs) > 1 else epochs[0]
    row = timeline.position(epoch)
    st.caption(f"Epoch {epoch}: {timeline.accuracy()[row]:.0%} of the 16 probe images right; Grad-CAM of the "
               f"predicted class at {timeline.layer}. ✅ right, ❌ wrong (true class in brackets).")
    tiles = timeline_tiles(timeline, epoch)
    for start in range(0, len(tiles), COLUMNS):
        for column, tile in zip(st.columns(COLUMNS), tiles[start:start + COLUMNS]):
            column.image(tile.overlay, caption=f"{'✅' if tile.right else '❌'} {tile.caption} ({tile.truth})",
                         width="stretch")
    st.plotly_chart(timeline_figure(store.epoch_rows(run.id), epoch), key=f"{key}-chart")


def _epoch_slider(epochs: list[int], key: str) -> int:
    """The epoch slider. It follows the newest epoch as a live run records more, until the user moves it
    elsewhere; moved back to the newest, it follows again."""
    follow = f"{key}-follow"
    if st.session_state.get(follow, True):
        st.session_state[key] = epochs[-1]

    def moved():
        st.session_state[follow] = st.session_state[key] == epochs[-1]

    return st.select_slider("Epoch", epochs, key=key, on_change=moved)
