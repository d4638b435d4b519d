"""Plotly figures of the chapter's measurements (the interactive widgets live in :mod:`sheaflab.widgets`).

Every function takes data computed elsewhere in the package and returns a ``plotly.graph_objects``
Figure, so the book and the labs share one implementation of each picture.
"""

from __future__ import annotations

import numpy as np

from .style import COLORS, LEGEND_BELOW, LEGEND_TOP, apply_style, require_plotting, trainer_color

require_plotting("sheaflab.figures")
import plotly.graph_objects as go  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402


def _style(fig, title, height=420, legend=LEGEND_TOP, margin=None):
    return apply_style(fig, title, height, margin={**dict(l=60, r=20, t=0, b=50), **(margin or {})},
                       legend=legend)


def loss_curves(histories: dict, metric: str = "train_mse", against: str = "epoch",
                log_y: bool = True, title: str = "Training loss") -> go.Figure:
    """One line per trainer: ``histories`` maps a label (e.g. "sheaf", "sgd") to a History.

    metric: a History column ("train_mse", "val_mse", "residual"); against: "epoch" or "time"
    (cumulative wall-clock seconds).
    """
    if against not in ("epoch", "time"):
        raise ValueError(f"against must be 'epoch' or 'time'; got {against!r}")
    fig = go.Figure()
    seen = {}
    for label, h in histories.items():
        y = getattr(h, metric)
        x = np.arange(1, len(y) + 1) if against == "epoch" else h.wall_time
        # colour by trainer (labels mentioning "sheaf" or "sgd"), line style by repeat
        color = trainer_color(label)
        dash = ("solid", "dash", "dot", "dashdot")[seen.get(color, 0) % 4]
        seen[color] = seen.get(color, 0) + 1
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label, line=dict(color=color, dash=dash)))
    fig.update_xaxes(title="epoch" if against == "epoch" else "wall-clock time [s]")
    fig.update_yaxes(title=metric.replace("_", " "), type="log" if log_y else "linear")
    return _style(fig, title, legend=LEGEND_TOP if len(histories) <= 2 else LEGEND_BELOW,
                  margin=None if len(histories) <= 2 else dict(b=120))


def slowdown_figure(rows: list, fit: tuple | None = None) -> go.Figure:
    """Measured epoch slowdown (sheaf / SGD) against the predicted ``1 / lambda_min`` per configuration.

    rows: :class:`~sheaflab.experiments.SlowdownRow` list from :func:`~sheaflab.experiments.slowdown_study`; fit: optional ``(slope, intercept)``
    of a least-squares line through the points. The dashed diagonal is the prediction itself.
    """
    pts = [r for r in rows if r.ratio is not None]
    x = np.array([r.inv_lambda_min for r in pts])
    y = np.array([r.ratio for r in pts])
    fig = go.Figure()
    shapes = sorted({str(r.dims) for r in pts}, key=len)
    for k, shape in enumerate(shapes):   # one legend entry per architecture; details on hover
        sel = [i for i, r in enumerate(pts) if str(r.dims) == shape]
        fig.add_trace(go.Scatter(
            x=x[sel], y=y[sel], mode="markers", name=f"measured, {shape}",
            text=[f"{pts[i].dims}, init scale {pts[i].scale:g}, n<sub>train</sub> {pts[i].n_train}" for i in sel],
            marker=dict(size=11, symbol=["circle", "square", "diamond", "triangle-up", "cross"][k % 5],
                        line=dict(width=1, color="white")),
            hovertemplate="%{text}<br>1/λ<sub>min</sub> %{x:.2f}<br>slowdown %{y:.2f}<extra></extra>"))
    span = np.linspace(0, max(x.max(), y.max()) * 1.1, 50)
    fig.add_trace(go.Scatter(x=span, y=span, mode="lines", name="prediction: slowdown = 1/λ<sub>min</sub>",
                             line=dict(dash="dash", color=COLORS["prediction"])))
    if fit is not None:
        slope, intercept = fit
        fig.add_trace(go.Scatter(x=span, y=slope * span + intercept, mode="lines",
                                 name=f"least squares: {slope:.2f}·x + {intercept:.2f}",
                                 line=dict(color=COLORS["fit"])))
    fig.update_xaxes(title="predicted slowdown 1/λ<sub>min</sub>(L<sub>free</sub>), mean over examples")
    fig.update_yaxes(title="measured slowdown (epochs, sheaf / SGD)")
    return _style(fig, "The source's rate heuristic: predicted against measured slowdown", height=520,
                  legend=LEGEND_BELOW, margin=dict(b=150))


def rate_figure(rows: list, fit: tuple | None = None) -> go.Figure:
    """Convergence rate of the training loss against ``1 / n_train``.

    rows: :class:`~sheaflab.experiments.RateRow` list from :func:`~sheaflab.experiments.rate_vs_n_train`
    (one run per row: pass every seed's rows, the points the fit was made on); fit: ``(c0, c1, r2)``
    from :func:`sheaflab.experiments.fit_inverse_n` over those same rows.
    """
    inv = np.array([1.0 / r.n_train for r in rows])
    rate = np.array([r.rate for r in rows])
    # several runs (seeds) per size: every run is a marker, each size is labelled once
    first = {n: k for k, n in reversed(list(enumerate(r.n_train for r in rows)))}
    labels = [f"n={r.n_train}" if first[r.n_train] == k else "" for k, r in enumerate(rows)]
    # the labels alternate above and below their markers, in order of 1/n: the largest sizes sit
    # close together at the left, where labels all above would run into one another
    order = sorted(first, key=lambda n: 1.0 / n)
    above = {n: i % 2 == 0 for i, n in enumerate(order)}
    where = ["top center" if above[r.n_train] else "bottom center" for r in rows]
    fig = go.Figure(go.Scatter(x=inv, y=rate, mode="markers+text", name="measured rate (each run)",
                               text=labels, textposition=where,
                               marker=dict(size=10, color=COLORS["sheaf"])))
    if fit is not None:
        c0, c1, r2 = fit
        xs = np.linspace(0, inv.max() * 1.05, 50)
        fig.add_trace(go.Scatter(x=xs, y=c0 + c1 * xs, mode="lines", line=dict(color=COLORS["fit"]),
                                 name=f"fit c0 + c1/n (R² = {r2:.2f})"))
    fig.update_xaxes(title="1 / n<sub>train</sub>")
    fig.update_yaxes(title="rate β per epoch (fit of log MSE)")
    return _style(fig, "Is β proportional to 1/n<sub>train</sub>?")


def equilibrium_figure(sheaf, eq, i: int = 0) -> "go.Figure":
    """Stalks and per-edge discords of example ``i`` of an Equilibrium: what the fast phase returns.

    Left: each vertex's stalk (x, z_l, a_l, target), units side by side; right: the norm of each
    edge's discord. Kinks (units on z = 0) are marked.
    """
    c = eq.cochain
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38],
                        subplot_titles=("stalks at equilibrium", "discord norm per edge"))
    names = ["x"]
    values = [c.x[i]]
    for l in range(sheaf.depth):
        names.append(f"z_{l + 1}")
        values.append(c.z[l][i])
        if l < sheaf.depth - 1:
            names.append(f"a_{l + 1}")
            values.append(c.a[l][i])
    names.append("y (pinned)")
    values.append(c.yhat[i])
    for name, v in zip(names, values):
        fig.add_trace(go.Bar(x=[f"{name}[{j}]" for j in range(v.size)], y=v, name=name), row=1, col=1)
    kinks = [f"z_{l + 1}[{j}]" for l, k in enumerate(eq.kinks) for j in np.flatnonzero(k[i])]
    if kinks:
        fig.add_trace(go.Scatter(x=kinks, y=[0.0] * len(kinks), mode="markers", name="kink (z = 0)",
                                 marker=dict(symbol="x", size=10, color=COLORS["kink"])), row=1, col=1)
    norms = eq.discord.norms()[i]
    fig.add_trace(go.Bar(x=[e.name for e in sheaf.edges], y=norms, name="‖discord‖",
                         marker_color=COLORS["sheaf"], showlegend=False), row=1, col=2)
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=8), row=1, col=1)
    return _style(fig, f"Example {i}: energy {eq.energy[i]:.4g}, {int(eq.iterations[i])} region solve(s)",
                  height=440)


def slowdown_factor_figure(rows: list, factors) -> go.Figure:
    """Measured slowdown against two predictions, side by side: the step factor (left; ``2 D`` with
    one hidden layer, the mean ``1 / S`` of :func:`sheaflab.closed_form.stiffness` deeper) and
    ``1 / lambda_min`` (right), one marker per configuration, one colour per depth.

    rows: :class:`~sheaflab.experiments.SlowdownRow` list (rows without a ratio are left out);
    factors: the step factor of each row, in the same order (NaN where it does not apply).
    """
    factors = np.asarray(factors, dtype=np.float64)
    keep = [i for i, r in enumerate(rows) if r.ratio is not None and np.isfinite(factors[i])]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.08,
                        subplot_titles=("against the step factor", "against 1/λ<sub>min</sub>(L<sub>free</sub>)"))
    depths = sorted({len(rows[i].dims) - 2 for i in keep})
    palette = [COLORS["sheaf"], COLORS["equilibrium"], COLORS["sgd"], COLORS["fit"]]
    top = max(max(factors[keep]), max(rows[i].ratio for i in keep), max(rows[i].inv_lambda_min for i in keep))
    for col in (1, 2):
        for k, depth in enumerate(depths):
            sel = [i for i in keep if len(rows[i].dims) - 2 == depth]
            x = factors[sel] if col == 1 else np.array([rows[i].inv_lambda_min for i in sel])
            text = [f"{rows[i].dims}, scale {rows[i].scale:g}, n {rows[i].n_train}, lr {rows[i].lr:g}, "
                    f"SGD {rows[i].sgd_epochs} epochs" for i in sel]
            fig.add_trace(go.Scatter(
                x=x, y=[rows[i].ratio for i in sel], mode="markers", text=text,
                name=f"{depth} hidden layer{'s' if depth > 1 else ''}", legendgroup=str(depth),
                marker=dict(size=10, symbol=["circle", "square", "diamond", "triangle-up"][k % 4],
                            color=palette[k % len(palette)], line=dict(width=1, color="white")),
                showlegend=col == 1,
                hovertemplate="%{text}<br>x %{x:.2f}<br>slowdown %{y:.2f}<extra></extra>"), row=1, col=col)
        span = np.linspace(0, 1.1 * top, 50)
        fig.add_trace(go.Scatter(x=span, y=span, mode="lines", name="slowdown = prediction",
                                 line=dict(dash="dash", color=COLORS["prediction"]), showlegend=col == 1),
                      row=1, col=col)
    fig.update_xaxes(title_text="step factor (2D, or 1/S), mean over the examples", row=1, col=1)
    fig.update_xaxes(title_text="1/λ<sub>min</sub>, mean over the examples", row=1, col=2)
    fig.update_yaxes(title_text="measured slowdown (epochs, sheaf / SGD)", row=1, col=1)
    _style(fig, "What sets the slowdown at one learning rate", height=460,
           legend=LEGEND_BELOW, margin=dict(b=110))
    return fig


def rescaling_figure(rows: list) -> go.Figure:
    """Mean R, its share on the first affine and ReLU edges, and the MSE along the rescaling
    ``(W_1 / c, b_1 / c, c W_2)``: rows from :func:`~sheaflab.experiments.rescaling_curve`."""
    c = np.array([r.c for r in rows])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=c, y=[r.residual for r in rows], mode="lines+markers",
                             name="mean R (relaxed energy)", line=dict(color=COLORS["sheaf"])))
    fig.add_trace(go.Scatter(x=c, y=[r.first_edges for r in rows], mode="lines+markers",
                             name="its part on the first two edges",
                             line=dict(color=COLORS["equilibrium"], dash="dot")))
    fig.add_trace(go.Scatter(x=c, y=[r.mse for r in rows], mode="lines", name="MSE (right axis)",
                             line=dict(color=COLORS["sgd"], dash="dash")), secondary_y=True)
    fig.update_xaxes(type="log", title="rescaling factor c")
    fig.update_yaxes(type="log", title="mean R", secondary_y=False)
    top = 1.5 * max(r.mse for r in rows)
    fig.update_yaxes(title="training MSE", secondary_y=True, showgrid=False, range=[0, top])
    _style(fig, "Same function, smaller relaxed energy: R along the ReLU rescaling", height=460,
           legend=LEGEND_BELOW, margin=dict(b=110))
    return fig


def drift_figure(drifts: list) -> go.Figure:
    """Output-weight norm against training MSE as training proceeds, sheaf trainer (solid) and SGD
    (dashed), one pair per :class:`~sheaflab.experiments.WeightDrift` (labelled by its ``l2``)."""
    fig = go.Figure()
    for k, d in enumerate(drifts):
        dash = ("solid", "dot", "dashdot")[k % 3]
        for name, norm, mse, color in (("sheaf trainer", d.sheaf, d.sheaf_mse, COLORS["sheaf"]),
                                       ("SGD", d.sgd, d.sgd_mse, COLORS["sgd"])):
            fig.add_trace(go.Scatter(x=mse[1:], y=norm[1:], mode="lines", text=d.epoch[1:],
                                     name=f"{name}, l2 = {d.l2:g}", line=dict(color=color, dash=dash),
                                     hovertemplate="epoch %{text}<br>MSE %{x:.4g}<br>‖W<sub>L</sub>‖ %{y:.4g}"
                                                   "<extra></extra>"))
    fig.update_xaxes(type="log", autorange="reversed", title="training MSE (training runs to the right)")
    fig.update_yaxes(title="‖W<sub>L</sub>‖ (output weights)")
    # the legend a little lower than LEGEND_BELOW: a label in powers of ten (10⁻¹) is taller
    _style(fig, "Output weights at equal fit: the drift along the rescaling", height=460,
           legend={**LEGEND_BELOW, "y": -0.28}, margin=dict(b=140))
    return fig


def epoch_ratio_figure(targets, curves: dict, marks: dict | None = None) -> go.Figure:
    """Epoch ratio (sheaf / SGD) against the training-MSE target, one line per entry of ``curves``
    (label -> ratios from :func:`~sheaflab.experiments.epoch_ratio_curve`); ``marks`` (label -> MSE)
    draws vertical lines at chosen targets."""
    targets = np.asarray(targets, dtype=np.float64)
    fig = go.Figure()
    for k, (label, ratios) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=targets, y=ratios, mode="lines+markers", name=label,
                                 line=dict(color=COLORS["sheaf"], dash=("solid", "dash", "dot")[k % 3])))
    for label, x in (marks or {}).items():
        fig.add_vline(x=x, line=dict(color=COLORS["prediction"], dash="dot"),
                      annotation_text=label, annotation_position="top")
    fig.update_xaxes(type="log", autorange="reversed", title="training-MSE target (harder to the right)")
    fig.update_yaxes(title="epochs to target, sheaf / SGD", rangemode="tozero")
    _style(fig, "The epoch ratio depends on the target", height=440,
           legend={**LEGEND_BELOW, "y": -0.3}, margin=dict(b=130))
    return fig


def branch_figure(values, energies, label: str) -> go.Figure:
    """One example's relaxed energy R as one parameter moves (``values`` on the x axis, ``label``
    names it): a jump is the direct solve landing on another local minimum."""
    fig = go.Figure(go.Scatter(x=np.asarray(values), y=np.asarray(energies), mode="lines",
                               line=dict(color=COLORS["sheaf"]), name="R, direct solve from the forward pass"))
    fig.update_xaxes(title=label)
    fig.update_yaxes(title="R of the example")
    _style(fig, "The selected local minimum can jump as the weights move", height=380,
           legend=LEGEND_BELOW, margin=dict(b=100))
    return fig


def decision_figure(nets: dict, X, Y, resolution: int = 120, title: str = "Decision regions") -> go.Figure:
    """The predicted class over the input plane, one panel per trained network, with the data on top.

    nets: ``{label: NeuralSheaf}`` with a sigmoid or softmax head (e.g. ``{"sheaf trainer": ...,
    "SGD": ...}``); X (n, 2), Y (n, n_L): the points to draw (0/1 or one-hot labels).
    resolution: grid points per axis. Each panel's title gives the network's accuracy on (X, Y).
    """
    if not nets:
        raise ValueError("nets must map at least one label to a trained NeuralSheaf")
    first = next(iter(nets.values()))
    if first.head not in ("sigmoid", "softmax"):
        raise ValueError(f"decision regions need a classification head; the networks have {first.head!r}")
    X = first.check_input(X)
    Y = first.check_target(Y, X.shape[0])
    pad = 0.3
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    g1, g2 = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    grid = np.stack(np.meshgrid(g1, g2), axis=-1).reshape(-1, 2)
    label = (Y[:, 0] > 0.5).astype(int) if Y.shape[1] == 1 else Y.argmax(axis=1)
    k = max(2, Y.shape[1])
    palette = [COLORS["sheaf"], COLORS["sgd"], COLORS["fit"], COLORS["equilibrium"]][:k]
    scale = [[i / (k - 1), c] for i, c in enumerate(palette)]
    titles = [f"{name}: accuracy {net.accuracy(X, Y):.0%}" for name, net in nets.items()]
    fig = make_subplots(rows=1, cols=len(nets), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=titles)
    for col, net in enumerate(nets.values(), start=1):
        P = net.forward(grid)
        cls = (P[:, 0] > 0.5).astype(int) if P.shape[1] == 1 else P.argmax(axis=1)
        fig.add_trace(go.Heatmap(x=g1, y=g2, z=cls.reshape(resolution, resolution), zmin=0, zmax=k - 1,
                                 colorscale=scale, opacity=0.25, showscale=False, hoverinfo="skip"),
                      row=1, col=col)
        for c in range(k):
            sel = label == c
            fig.add_trace(go.Scatter(x=X[sel, 0], y=X[sel, 1], mode="markers", name=f"class {c}",
                                     legendgroup=str(c), showlegend=col == 1,
                                     marker=dict(size=6, color=palette[c], line=dict(width=0.5, color="white"))),
                          row=1, col=col)
    fig.update_xaxes(title_text="x₁")
    fig.update_yaxes(title_text="x₂", row=1, col=1)
    _style(fig, title, height=450,
           legend={**LEGEND_BELOW, "y": -0.3}, margin=dict(b=120))
    return fig


def comparison_figure(cells: list, quantities=("loss_ratio", "time_ratio")) -> go.Figure:
    """Per-seed ratios of the four-task comparison with their medians and, as error bars, the 95%
    bootstrap interval of the median where every cell has enough seeds for one
    (:meth:`~sheaflab.comparison.Cell.has_interval`), else the range over the seeds (the title says which).

    cells: :class:`~sheaflab.comparison.Cell` list; one row per cell (task, network, protocol), one
    panel per quantity (a :class:`~sheaflab.comparison.Pair` property such as ``"loss_ratio"``,
    ``"time_ratio"`` or ``"epoch_ratio"``), on log axes with the parity line at 1.
    """
    names = {"loss_ratio": "final test loss,<br>sheaf / SGD", "time_ratio": "seconds to the common<br>"
             "training loss, sheaf / SGD", "epoch_ratio": "epochs to the common<br>training loss, sheaf / SGD"}
    fig = make_subplots(rows=1, cols=len(quantities), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[names.get(q, q) for q in quantities])
    labels = [f"{c.task} {list(c.dims)} {c.protocol}" for c in cells]
    for col, q in enumerate(quantities, start=1):
        for protocol, symbol in (("seed", "circle"), ("tuned", "diamond")):
            rows = [i for i, c in enumerate(cells) if c.protocol == protocol]
            if not rows:
                continue
            med, lo, hi = np.array([cells[i].summary(q) for i in rows]).T
            fig.add_trace(go.Scatter(
                x=med, y=[labels[i] for i in rows], mode="markers", name=f"median, {protocol} protocol",
                legendgroup=protocol, showlegend=col == 1,
                marker=dict(size=10, symbol=symbol, color=COLORS["sheaf"] if protocol == "seed" else COLORS["fit"]),
                error_x=dict(type="data", symmetric=False, array=hi - med, arrayminus=med - lo),
                hovertemplate="%{y}<br>median %{x:.3g}<extra></extra>"), row=1, col=col)
            seeds = [(v, labels[i]) for i in rows for v in cells[i].values(q)]
            fig.add_trace(go.Scatter(x=[v for v, _ in seeds], y=[s for _, s in seeds], mode="markers",
                                     name="one seed", legendgroup="seeds", showlegend=col == 1 and protocol == "seed",
                                     marker=dict(size=5, color=COLORS["prediction"], opacity=0.5),
                                     hoverinfo="skip"), row=1, col=col)
        fig.add_vline(x=1.0, line=dict(dash="dash", color="#888888"), row=1, col=col)
    fig.update_xaxes(type="log")
    fig.update_yaxes(autorange="reversed")
    bars = ("95% bootstrap intervals" if all(c.has_interval(q) for c in cells for q in quantities)
            else "ranges over the seeds")
    _style(fig, f"The sheaf trainer against SGD on the four tasks ({bars})",
           height=170 + 28 * len(cells), legend=LEGEND_BELOW, margin=dict(l=200, b=90))
    return fig


def rescaling_grid_figure(grid) -> go.Figure:
    """log10 of the mean reached R over the rescaling group of a net with two hidden layers, with the
    issue's curve (c_2 = 1) and the first layer scaled against the last (c_1 = c_2) marked; ``grid``
    from :func:`~sheaflab.rescaling.rescaling_grid`."""
    x, y = np.log10(grid.c1), np.log10(grid.c2)
    fig = go.Figure(go.Contour(x=x, y=y, z=np.log10(np.maximum(grid.reached, 1e-300)), colorscale="Viridis",
                               colorbar=dict(title="log10 R"), contours=dict(showlabels=True),
                               hovertemplate="log10 c1 %{x:.2f}<br>log10 c2 %{y:.2f}<br>log10 R %{z:.3f}"
                                             "<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=np.zeros_like(x), mode="lines", name="(W1/c, b1/c, c W2): c2 = 1",
                             line=dict(color=COLORS["sgd"], width=3)))
    d = np.intersect1d(x, y) if np.intersect1d(x, y).size else x
    fig.add_trace(go.Scatter(x=d, y=d, mode="lines", name="first against last: c1 = c2",
                             line=dict(color=COLORS["sheaf"], width=3, dash="dash")))
    fig.update_xaxes(title="log10 c1")
    fig.update_yaxes(title="log10 c2")
    return _style(fig, "The relaxed energy over the rescaling group (same function everywhere)", height=500,
                  legend=LEGEND_BELOW, margin=dict(b=120))


def arrival_figure(arrival) -> go.Figure:
    """Discord norm of each edge (rows, in path order) against the Euler step of the pinned heat flow
    from the forward pass, log colour scale (exact zeros blank), each edge's arrival step marked;
    ``arrival`` from :func:`~sheaflab.locality.arrival_steps`."""
    n = arrival.norms
    with np.errstate(divide="ignore"):
        z = np.where(n > 0, np.log10(np.where(n > 0, n, 1.0)), np.nan).T
    steps = np.arange(n.shape[0])
    fig = go.Figure(go.Heatmap(x=steps, y=arrival.edges, z=z, colorscale="Viridis",
                               colorbar=dict(title="log10 ||d||"),
                               hovertemplate="step %{x}<br>%{y}<br>log10 ||d|| %{z:.2f}<extra></extra>"))
    keep = arrival.arrival >= 0
    fig.add_trace(go.Scatter(x=arrival.arrival[keep], y=np.array(arrival.edges)[keep], mode="markers",
                             name="first nonzero step", marker=dict(symbol="x", size=12, color=COLORS["sgd"])))
    fig.update_xaxes(title="Euler step")
    fig.update_yaxes(title="edge (path order)", autorange="reversed")
    return _style(fig, "The target's error reaches the edges one vertex per Euler step", height=420,
                  legend=LEGEND_BELOW, margin=dict(b=110, l=90))


def parameter_sheaf_figure(psheaf) -> go.Figure:
    """Network diagram of a :class:`~sheaflab.parameter_sheaf.ParameterSheaf`: one large node per
    parameter stalk theta_l, a ring of pinned vertices z_l^(i) around it, one edge per (l, i), its discord
    norm in the pinned vertex's hover text, and the zero anchor with its reluctance edges if any."""
    L = len(psheaf.stalk_dims)
    d = psheaf.discord()
    fig = go.Figure()
    ex, ey, px, py, ptext, norms = [], [], [], [], [], []
    centres = [(3.0 * l, 0.0) for l in range(L)]
    for k, (name, l, i) in enumerate(psheaf.edges):
        if i < 0:
            continue
        cx, cy = centres[l - 1]
        ang = 2 * np.pi * i / psheaf.B
        x, y = cx + np.cos(ang), cy + np.sin(ang)
        ex += [cx, x, None]
        ey += [cy, y, None]
        nrm = float(np.linalg.norm(d[psheaf.edge_rows[k]:psheaf.edge_rows[k + 1]]))
        px.append(x)
        py.append(y)
        norms.append(nrm)
        ptext.append(f"z_{l}^({i}) pinned, dim {psheaf.dims[l]}<br>edge discord {nrm:.3g}")
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=COLORS["prediction"], width=1),
                             hoverinfo="skip", showlegend=False))
    if any(i < 0 for _, _, i in psheaf.edges):
        ax, ay = 1.5 * (L - 1), -2.0
        lx, ly = [], []
        for cx, cy in centres:
            lx += [cx, ax, None]
            ly += [cy, ay, None]
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="reluctance edges",
                                 line=dict(color=COLORS["slow"], dash="dot")))
        fig.add_trace(go.Scatter(x=[ax], y=[ay], mode="markers+text", text=["anchor 0"],
                                 textposition="bottom center", name="zero anchor",
                                 marker=dict(size=14, color=COLORS["slow"])))
    fig.add_trace(go.Scatter(x=px, y=py, mode="markers", text=ptext, hovertemplate="%{text}<extra></extra>",
                             name="pinned vertices z<sub>ℓ</sub><sup>(i)</sup>",
                             marker=dict(size=10, color=COLORS["sgd"])))
    fig.add_trace(go.Scatter(x=[c[0] for c in centres], y=[c[1] for c in centres], mode="markers+text",
                             text=[f"θ_{l} ∈ R^{n}" for l, n in enumerate(psheaf.stalk_dims, start=1)],
                             textposition="middle center", name="parameter stalks θ<sub>l</sub> = (W<sub>l</sub>, b<sub>l</sub>)",
                             marker=dict(size=46, color=COLORS["weights"], opacity=0.5),
                             hovertemplate="%{text}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, "The parameter sheaf H<sub>W</sub> at the equilibrium cochains of one batch", height=460,
                  legend=LEGEND_BELOW, margin=dict(b=100))
