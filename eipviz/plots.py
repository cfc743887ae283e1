"""Plotly figures shared by the pages (kept here so they are testable without Streamlit)."""

import html
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from eipviz.curves import PALETTE, CurveRun, best_epoch, debiased_ema
from eipviz.run_compare import group_band, group_legend, mean_run
from eipviz.training.store import run_label

# Plotly's toolbar sits in the top margin on hover: subplot titles need a margin that holds both.
TITLED_TOP_MARGIN = 70


def plain(text) -> str:
    """``text`` as Plotly shows it literally where Plotly reads HTML (legend names, titles, hover text, category
    axis ticks, parcoords axis labels: ``<b>``, ``<a href>``), decoding the entities back: a run named
    ``<a href=…>`` put a link into every viewer's legend. Not for parcoords tick text, which is plain text."""
    return html.escape(str(text), quote=False)


def training_curves_figure(rows: list[dict]) -> go.Figure:
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
    # Whole epochs only (Plotly would tick 1.5 on a two-epoch run), at most about ten ticks.
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, math.ceil(max(epochs, default=1) / 10)))
    fig.update_layout(height=340, margin={"t": TITLED_TOP_MARGIN, "b": 30, "l": 40, "r": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


CONFUSION_VIEWS = {
    "counts": "counts",
    "confusions": "confusions only (diagonal masked)",
    "row %": "row-normalised % (diagonal masked)",
}


def confusion_values(matrix, view: str = "counts") -> list[list]:
    """The heatmap's cell values for ``view`` (a key of ``CONFUSION_VIEWS``), as plain lists.

    ``counts``: the matrix. ``confusions``: the counts off the diagonal, the diagonal None, so the colour
    scale spans the confusions alone (the right answers dwarf them). ``row %``: each off-diagonal count
    as a percentage of its true class's images, the diagonal None.
    """
    if view not in CONFUSION_VIEWS:
        raise ValueError(f"Unknown confusion-matrix view. Received: view={view!r}; "
                         f"choose one of {', '.join(CONFUSION_VIEWS)}.")
    counts = [[int(v) for v in row] for row in matrix]  # plain lists: Plotly 7 would base64-encode an array
    if view == "counts":
        return counts
    if view == "confusions":
        return [[None if i == j else v for j, v in enumerate(row)] for i, row in enumerate(counts)]
    return [[None if i == j else round(100 * v / max(1, sum(row)), 2) for j, v in enumerate(row)]
            for i, row in enumerate(counts)]


def confusion_figure(matrix, class_names, view: str = "counts",
                     highlight: tuple[int | None, int | None] | None = None) -> go.Figure:
    """Confusion-matrix heatmap whose cells can be clicked, in one of ``CONFUSION_VIEWS``.

    Plotly heatmaps are not point-selectable, so a transparent square marker
    sits on every cell: clicking it selects (predicted, true) as x and y.
    ``highlight`` = (true index, predicted index) outlines that cell; with one
    of them None, that whole row (true class) or column (predicted class).
    """
    names = list(class_names)
    counts = confusion_values(matrix, "counts")
    values = confusion_values(matrix, view)
    text = [["" if v is None else f"{v:.1f}" if view == "row %" else str(v) for v in row] for row in values]
    title = {"counts": "images", "confusions": "images", "row %": "% of true"}[view]
    fig = go.Figure(go.Heatmap(z=values, x=names, y=names, colorscale="Blues", text=text, texttemplate="%{text}",
                               hoverinfo="none", colorbar={"title": {"text": title}}))
    cells = [(p, t, counts[i][j], round(100 * counts[i][j] / max(1, sum(counts[i])), 1))
             for i, t in enumerate(names) for j, p in enumerate(names)]
    fig.add_trace(go.Scatter(
        x=[c[0] for c in cells], y=[c[1] for c in cells], mode="markers", showlegend=False,
        marker={"symbol": "square", "size": 28, "color": "rgba(0,0,0,0)"},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}},
        customdata=[[c[2], c[3]] for c in cells],
        hovertemplate="true %{y}, predicted %{x}: %{customdata[0]} (%{customdata[1]}% of true %{y})<extra></extra>",
    ))
    if highlight is not None and highlight != (None, None):
        true_index, predicted_index = highlight
        # Category axes place category k at k: a cell spans k - 0.5 to k + 0.5.
        rows = (-0.5, len(names) - 0.5) if true_index is None else (true_index - 0.5, true_index + 0.5)
        columns = (-0.5, len(names) - 0.5) if predicted_index is None else (
            predicted_index - 0.5, predicted_index + 0.5)
        fig.add_shape(type="rect", xref="x", yref="y", x0=columns[0], x1=columns[1], y0=rows[0], y1=rows[1],
                      line={"color": "#d62728", "width": 3}, fillcolor="rgba(0,0,0,0)", layer="above")
    fig.update_layout(xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      xaxis_type="category", yaxis_type="category", height=420, margin={"t": 10, "b": 10},
                      # Room for the class names: in the report, outside Streamlit, they fell below the chart.
                      xaxis_automargin=True, yaxis_automargin=True,
                      clickmode="event+select", dragmode=False)
    return fig


def per_class_accuracy_figure(per_class: dict[str, float]) -> go.Figure:
    """One horizontal bar per true class, in the confusion matrix's row order, labelled with its accuracy.

    A chart, not a table: beside the confusion matrix, Plotly is loaded already, while a table would load
    Streamlit's dataframe code (1.4 MB of JavaScript) into the Misclassified page's first visit.
    """
    names, percents = list(per_class), [100 * value for value in per_class.values()]
    fig = go.Figure(go.Bar(x=percents, y=names, orientation="h", marker_color=PALETTE[0],
                           # Inside a bar where the label fits, beside a short one, never turned or shrunk (a
                           # weak model's short bars had their labels squeezed unreadable).
                           text=[f"{value:.1f}%" for value in percents], textposition="auto", textangle=0,
                           insidetextanchor="end", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.2f}% correct<extra></extra>"))
    fig.update_layout(xaxis={"range": [0, 100], "title": {"text": "accuracy %"}, "fixedrange": True},
                      yaxis={"autorange": "reversed", "type": "category", "fixedrange": True},
                      height=420, margin={"t": 10, "b": 10, "l": 10, "r": 10}, dragmode=False)
    return fig


# Below this many points a series is drawn raw, dots on every epoch, and never smoothed: TensorBoard's
# debiased EMA does not pass through a 2-point series' last point (its issue #1127).
SHORT_SERIES = 10


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _xs_and_points(run: CurveRun, metric: str, x_axis: str) -> tuple[list, list[dict]]:
    points = [row for row in run.rows if row.get(metric) is not None]
    if x_axis == "wall time":
        points = [row for row in points if row.get("wall_time") is not None]
        return [row["wall_time"] for row in points], points
    return [row["epoch"] for row in points], points


def curves_figure(runs: list[CurveRun], metrics: list[str], smoothing: float = 0.0, log_y: bool = False,
                  x_axis: str = "epoch", groups: dict[str, list[CurveRun]] | None = None, band: str = "min-max",
                  best_metric: str | None = None, direction: str | None = None) -> go.Figure:
    """One panel per metric; a colour per run; smoothed curve over its faded raw curve; best-epoch markers.

    A series shorter than ``SHORT_SERIES`` is drawn raw with its points and not smoothed. With ``groups``
    (label -> runs, see ``run_compare.group_runs``) each group is drawn as its mean over a shaded ``band``
    (``"min-max"`` or ``"std"``), its members faded underneath, mean and band smoothed like a run's curve. The
    star marks each run's best epoch of ``best_metric`` in ``direction`` (see ``curves.best_epoch``), or each
    group mean's.
    """
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=[plain(m) for m in metrics] or [""])
    # Each group mean's best epoch, once: every panel stars the same epoch.
    group_bests = {label: best_epoch(mean_run(label, members), best_metric, direction)
                   for label, members in (groups or {}).items()}
    for col, metric in enumerate(metrics, start=1):
        if groups:
            for index, (label, members) in enumerate(groups.items()):
                _add_group(fig, col, metric, label, members, PALETTE[index % len(PALETTE)], x_axis, band,
                           smoothing, group_bests[label])
        else:
            for run in runs:
                _add_run(fig, col, metric, run, smoothing, x_axis, best_metric, direction)
        if log_y:
            fig.update_yaxes(type="log", row=1, col=col)
    fig.update_xaxes(title_text="wall time (s)" if x_axis == "wall time" else "epoch")
    fig.update_layout(height=440, margin={"t": TITLED_TOP_MARGIN, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def _add_run(fig, col, metric, run, smoothing, x_axis, best_metric, direction):
    xs, points = _xs_and_points(run, metric, x_axis)
    if not points:
        return
    ys = [row[metric] for row in points]
    short = len(points) < SHORT_SERIES
    if smoothing > 0 and not short:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": run.color, "width": 1},
                                 opacity=0.25, showlegend=False, hoverinfo="skip"), row=1, col=col)
        ys = debiased_ema(ys, smoothing)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if short else "lines", name=plain(run_label(run)),
                             legendgroup=run.id, line={"color": run.color}, showlegend=col == 1),
                  row=1, col=col)
    best = best_epoch(run, best_metric, direction)
    if best:
        at = next((i for i, row in enumerate(points) if row["epoch"] == best[0]), None)
        if at is not None:
            fig.add_trace(go.Scatter(x=[xs[at]], y=[ys[at]], mode="markers", legendgroup=run.id,
                                     marker={"color": run.color, "size": 10, "symbol": "star"},
                                     name=f"best epoch {best[0]}", showlegend=False,
                                     hovertemplate=f"{plain(run.name)}: best epoch {best[0]} ({best[1]})"),
                          row=1, col=col)


def _add_group(fig, col, metric, label, members, color, x_axis, band, smoothing, best):
    raw_label, label = label, plain(label)  # a hyperparameter's value or a model's name
    for run in members:  # faded, so the band's spread can be traced to its runs
        xs, points = _xs_and_points(run, metric, x_axis)
        if points:
            fig.add_trace(go.Scatter(x=xs, y=[row[metric] for row in points], mode="lines",
                                     line={"color": color, "width": 1}, opacity=0.2, showlegend=False,
                                     hovertemplate=f"{plain(run.name)}: %{{y}}<extra></extra>"), row=1, col=col)
    stats = group_band(members, metric, "epoch" if x_axis == "epoch" else "wall time", band)
    if not stats["x"]:
        return
    legend = plain(group_legend(raw_label, members, metric))
    if smoothing > 0 and len(stats["x"]) >= SHORT_SERIES:  # the mean and its band, as a single run's curve is
        for key in ("mean", "lower", "upper"):
            stats[key] = debiased_ema(stats[key], smoothing)
    fig.add_trace(go.Scatter(x=stats["x"], y=stats["upper"], mode="lines", line={"width": 0}, showlegend=False,
                             legendgroup=label, hoverinfo="skip"), row=1, col=col)
    fig.add_trace(go.Scatter(x=stats["x"], y=stats["lower"], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor=_rgba(color, 0.2), showlegend=False, legendgroup=label,
                             name=f"{label} {band}", hoverinfo="skip"), row=1, col=col)
    fig.add_trace(go.Scatter(x=stats["x"], y=stats["mean"], mode="lines+markers" if len(stats["x"]) < SHORT_SERIES
                             else "lines", line={"color": color, "width": 3},
                             name=legend,  # the legend shows the first panel's; hovering, each panel's own
                             legendgroup=label, showlegend=col == 1,
                             customdata=[f"{n} run{'s' if n != 1 else ''}" for n in stats["count"]],
                             hovertemplate="%{y} (mean of %{customdata})<extra>" + legend + "</extra>"),
                  row=1, col=col)
    if best and best[0] in stats["epoch"]:
        at = stats["epoch"].index(best[0])
        fig.add_trace(go.Scatter(x=[stats["x"][at]], y=[stats["mean"][at]], mode="markers", legendgroup=label,
                                 marker={"color": color, "size": 12, "symbol": "star"}, showlegend=False,
                                 name=f"best epoch {best[0]}",
                                 hovertemplate=f"{label}: the mean's best epoch {best[0]} ({best[1]})"),
                      row=1, col=col)


def hyperparameters_figure(rows: list[dict], hyperparameters: list[str], target: str) -> go.Figure:
    """Plotly's parallel coordinates: one axis per hyperparameter that varies between the runs, then ``target``.

    ``rows`` are ``run_compare.hyperparameter_table`` rows; runs without a ``target`` value are left out. Text
    and true/false settings get an axis of their values (ticks named), numbers a numeric one.
    """
    rows = [row for row in rows if row.get(target) is not None and math.isfinite(row[target])]
    dimensions = []
    for name in hyperparameters:
        values = [row.get(name) for row in rows]
        if len({repr(v) for v in values}) < 2:
            continue  # a setting all runs share says nothing about the target
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dimensions.append({"label": plain(name), "values": [float(v) for v in values if v is not None]})
        else:
            labels = sorted({str(v) for v in values})
            dimensions.append({"label": plain(name), "values": [labels.index(str(v)) for v in values],
                               # Ticks are plain text to Plotly (d3's .text): escaped, they showed "&amp;".
                               "tickvals": list(range(len(labels))), "ticktext": labels})
    targets = [float(row[target]) for row in rows]
    dimensions.append({"label": plain(target), "values": targets})
    # Over six axes their names overlap side by side: slanted, they get the room above the plot.
    crowded = len(dimensions) > 6
    fig = go.Figure(go.Parcoords(dimensions=dimensions, labelangle=-30 if crowded else 0,
                                 line={"color": targets, "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": {"text": plain(target)}, "x": 1.06, "thickness": 14}}))
    fig.update_layout(height=480 if crowded else 380,
                      margin={"t": 160 if crowded else 60, "b": 30, "l": 60, "r": 150})
    return fig


def top_classes_figure(top: list[dict]) -> go.Figure:
    """Horizontal bars of the top classes' probabilities (rows of ``ImageExplanation.top``), best first."""
    fig = go.Figure(go.Bar(x=[row["probability"] for row in top], y=[row["class"] for row in top], orientation="h",
                           text=[f"{row['probability']:.1%}" for row in top], textposition="auto",
                           hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(height=220, margin={"t": 10, "b": 10}, xaxis={"range": [0, 1], "tickformat": ".0%"},
                      yaxis={"autorange": "reversed", "type": "category"})
    return fig


def timeline_figure(rows: list[dict], epoch: int) -> go.Figure:
    """Accuracy (validation and probe set) and the probe set's faithfulness by epoch, ``epoch`` marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "probe-set faithfulness"),
                        specs=[[{}, {"secondary_y": True}]])
    epochs = [row["epoch"] for row in rows]
    for name, dash in (("val_accuracy", "solid"), ("probe_accuracy", "dot")):
        fig.add_trace(go.Scatter(x=epochs, y=[row.get(name) for row in rows], name=name, mode="lines+markers",
                                 line={"dash": dash}), row=1, col=1)
    fig.add_trace(go.Scatter(x=epochs, y=[row.get("probe_deletion_auc") for row in rows], mode="lines+markers",
                             name="deletion AUC (lower is better)"), row=1, col=2)
    fig.add_trace(go.Scatter(x=epochs, y=[row.get("probe_average_drop_pct") for row in rows], mode="lines+markers",
                             name="average drop % (lower is better)", line={"dash": "dot"}),
                  row=1, col=2, secondary_y=True)
    for col in (1, 2):
        fig.add_vline(x=epoch, line={"color": "grey", "dash": "dash"}, row=1, col=col)
    # Two scales on one chart: each axis says whose it is (the right one's ticks read as unlabelled numbers).
    # Each on its whole scale: fitted to the data, a drop flat at 26.1% read 26.095 to 26.1617, noise as a trend.
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="deletion AUC", range=[0, 1.02], row=1, col=2, secondary_y=False)
    fig.update_yaxes(title_text="average drop %", range=[0, 102], row=1, col=2, secondary_y=True)
    # Whole epochs only, as on the training curves.
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, math.ceil(max(epochs, default=1) / 10)))
    fig.update_layout(height=320, margin={"t": TITLED_TOP_MARGIN, "b": 30, "l": 40, "r": 10},
                      legend={"orientation": "h", "y": -0.3})
    return fig


def agreement_figure(both_wrong, names) -> go.Figure:
    """Heatmap of test images each pair of models gets wrong together (the diagonal: each model's errors)."""
    labels = [plain(name) for name in names]  # run names
    fig = go.Figure(go.Heatmap(z=both_wrong, x=labels, y=labels, colorscale="Reds", text=both_wrong,
                               texttemplate="%{text}",
                               hovertemplate="%{y} and %{x}: %{z} wrong together<extra></extra>"))
    fig.update_layout(height=120 + 60 * len(labels), margin={"t": 30, "b": 10, "l": 10, "r": 10},
                      yaxis={"autorange": "reversed"},
                      title="Test images both models get wrong (the diagonal: each model's own errors)")
    return fig


def sanity_figure(curve: list[dict], threshold: float) -> go.Figure:
    """Spearman and SSIM of the randomised maps to the original ones, as more layers are re-initialised."""
    fig = go.Figure()
    x = [point["randomised_layers"] for point in curve]
    for name in ("spearman", "ssim"):
        fig.add_trace(go.Scatter(x=x, y=[point[name] for point in curve], name=name, mode="lines+markers",
                                 text=[f"down to {point['down_to']}" for point in curve]))
    mean = sum(point["spearman"] for point in curve) / len(curve)
    fig.add_hline(y=mean, line={"color": "#1f77b4", "dash": "dot"}, annotation_position="bottom right",
                  annotation_text=f"mean Spearman {mean:.2f}: the verdict's figure")
    fig.add_hline(y=threshold, line={"color": "grey", "dash": "dash"},
                  annotation_text=f"fails when the mean Spearman over the depths is above {threshold}")
    fig.update_layout(height=300, margin={"t": 30, "b": 40, "l": 40, "r": 10}, yaxis={"range": [-0.5, 1.05]},
                      xaxis_title="layers re-initialised, from the output down",
                      yaxis_title="similarity to the trained model's maps")
    return fig
