"""Plotly figures shared by the pages (kept here so they are testable without Streamlit)."""

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def training_curves_figure(rows: list[dict], title: str = "") -> go.Figure:
    """Loss, accuracy (train vs val) and learning rate per epoch, side by side."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "accuracy", "learning rate"))
    epochs = [row["epoch"] for row in rows]
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, dash in (("", "solid"), ("val_", "dot")):
            name = prefix + metric
            values = [row.get(name) for row in rows]
            if any(v is not None for v in values):
                fig.add_trace(go.Scatter(x=epochs, y=values, name=name, mode="lines+markers",
                                         line={"dash": dash}), row=1, col=col)
    rates = [row.get("learning_rate") for row in rows]
    if any(r is not None for r in rates):
        fig.add_trace(go.Scatter(x=epochs, y=rates, name="learning_rate", mode="lines+markers"), row=1, col=3)
        fig.update_yaxes(type="log", row=1, col=3)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=320, margin={"t": 40, "b": 30, "l": 40, "r": 10}, title=title or None,
                      legend={"orientation": "h", "y": -0.25})
    return fig


def confusion_figure(matrix, class_names) -> go.Figure:
    """Confusion-matrix heatmap whose cells can be clicked.

    Plotly heatmaps are not point-selectable, so a transparent square marker
    sits on every cell: clicking it selects (predicted, true) as x and y.
    """
    names = list(class_names)
    counts = [[int(v) for v in row] for row in matrix]  # plain lists: Plotly 7 would base64-encode an array
    fig = go.Figure(go.Heatmap(z=counts, x=names, y=names, colorscale="Blues", text=counts,
                               texttemplate="%{text}", hoverinfo="none"))
    cells = [(p, t, counts[i][j]) for i, t in enumerate(names) for j, p in enumerate(names)]
    fig.add_trace(go.Scatter(
        x=[c[0] for c in cells], y=[c[1] for c in cells], mode="markers", showlegend=False,
        marker={"symbol": "square", "size": 28, "color": "rgba(0,0,0,0)"},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}},
        customdata=[c[2] for c in cells], hovertemplate="true %{y}, predicted %{x}: %{customdata}<extra></extra>",
    ))
    fig.update_layout(xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      xaxis_type="category", yaxis_type="category", height=420, margin={"t": 10, "b": 10},
                      clickmode="event+select", dragmode=False)
    return fig
