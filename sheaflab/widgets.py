"""The chapter's figures: the dual time-axis diagram, the cost of one step, the discord dashboard.

Every public function returns a static ``plotly.graph_objects.Figure`` by default. Its exploration is
precomputed into plotly's own ``layout.sliders``, so it works on a static HTML page with no kernel.
With ``live=True`` it returns an ``ipywidgets.VBox`` of controls above a ``go.FigureWidget`` whose
traces are recomputed from a fresh simulation when a control changes (JupyterLab; with plotly >= 6
``FigureWidget`` needs the ``anywidget`` package). The live box carries its static figure too: its
display bundle holds both the widget view and the static figure's plotly JSON, and each front end
draws what it can. JupyterLab ranks the widget view first and shows the live controls; a page with no
kernel (the rendered book, whose extension ranks plotly JSON first; nbviewer) shows the static
figure with its plotly sliders. One cell, ``widgets.timescale_diagram(live=True)``, serves both.

The module has three layers, shared by the static and the live paths:

* ``_*_run`` / ``_measure_*``: simulate or measure, return plain arrays (no plotly);
* ``_*_traces`` / ``_*_layout``: turn those arrays into plotly traces and layout updates;
* the public functions: assemble a figure from the traces; live callbacks copy freshly built
  traces into the FigureWidget (:func:`_assign`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._checks import positive
from .datasets import paraboloid, paraboloid_grid
from .experiments import (AlgorithmRun, JointRun, StepCosts, algorithm_run, joint_run,
                          step_costs)
from .sheaf import NeuralSheaf
from .timescales import timescales
from .style import (COLORS, EXAMPLE_COLORS, FONT, apply_style, require_plotting, set_height, store_variants,
                    wrap_title)
from .train import TRAINERS, History

require_plotting("sheaflab.widgets")
import plotly.graph_objects as go  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

__all__ = ["timescale_diagram", "ops_per_step_chart", "discord_dashboard"]


def _style(fig: go.Figure, title: str, height: int, **kwargs) -> go.Figure:
    return apply_style(fig, title, height, **kwargs)


def _ipywidgets():
    """The ipywidgets module, or a clear error naming what live=True needs."""
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError("live=True needs ipywidgets (and anywidget for plotly's FigureWidget): "
                          "pip install 'sheaflab[viz]'; or use live=False for a static figure") from exc
    return ipywidgets


def _check_live(live) -> bool:
    if not isinstance(live, bool):
        raise TypeError(f"live must be True or False, got {type(live).__name__}")
    return live


def _figure_widget(fig: go.Figure):
    """``go.FigureWidget`` of ``fig``; a clear error when the widget stack is missing."""
    try:
        return go.FigureWidget(fig)
    except ImportError as exc:
        raise ImportError(f"live=True needs ipywidgets and anywidget installed ({exc}); "
                          "use live=False for a static figure") from None


PLOTLY_MIME = "application/vnd.plotly.v1+json"
_LIVE_CLASS = None


def _live_box(children: list, static: go.Figure):
    """An ``ipywidgets.VBox`` of ``children`` (controls, the FigureWidget) that displays as the live
    widget where a widget manager runs (JupyterLab) and as ``static`` elsewhere (see the module
    docstring). ``box.static`` is that figure."""
    global _LIVE_CLASS
    widgets = _ipywidgets()
    if _LIVE_CLASS is None:
        class LiveFigure(widgets.VBox):
            """A VBox of live controls whose display bundle also holds a static plotly figure."""

            def _repr_mimebundle_(self, **kwargs):
                bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
                static = getattr(self, "static", None)
                if static is not None:
                    import plotly.io as pio
                    bundle.update(pio.renderers["plotly_mimetype"].to_mimebundle(static.to_dict()))
                return bundle

        _LIVE_CLASS = LiveFigure
    box = _LIVE_CLASS(children)
    box.static = static
    return box


def _assign(fw, start: int, traces) -> None:
    """Copy the data of freshly built ``traces`` into ``fw.data[start:]`` (same trace types)."""
    for j, tr in enumerate(traces):
        props = tr.to_plotly_json()
        props.pop("type", None)
        fw.data[start + j].update(props, overwrite=True)


def _xaxis(fig: go.Figure, row: int, col: int) -> tuple:
    """(layout key, reference) of a subplot's x axis, e.g. ("xaxis2", "x2")."""
    name = fig.get_subplot(row, col).xaxis.plotly_name
    return name, "x" + name[len("xaxis"):]


def _problem(sheaf, X, Y, default_dims, default_data):
    """Resolve the (sheaf, X, Y) of a figure: defaults when omitted, checked shapes otherwise."""
    if sheaf is None:
        sheaf = NeuralSheaf.random(list(default_dims), seed=0)
    elif not isinstance(sheaf, NeuralSheaf):
        raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
    if (X is None) != (Y is None):
        raise ValueError("X and Y must be given together (or both omitted for the default data)")
    if X is None:
        if sheaf.dims[0] != 2 or sheaf.dims[-1] != 1:
            raise ValueError(f"X and Y must be given for a sheaf with dims {sheaf.dims}: the default "
                             "data (the paraboloid) has 2 inputs and 1 output")
        X, Y = default_data()
    X = sheaf.check_input(X, "X")
    Y = sheaf.check_target(Y, X.shape[0], "Y")
    return sheaf, X, Y


# ============================================================================ 1. timescale diagram
def _timescale_traces(run: JointRun) -> list:
    """Traces of one joint-flow run as ``(trace, row, secondary_y)``: the example energies, their mean
    and the mean equilibrium energy vs fast time (row 1); train MSE and ``||theta - theta_0||`` vs
    slow time (row 2). Step 0 is left out: both time axes are logarithmic."""
    k = slice(1, None)
    step = run.step[k]
    t_c, t_th = step * run.eta_c, step * run.eta_theta
    tip_c = "step %{customdata}<br>t<sub>c</sub> = %{x:.3g}<br>"
    tip_th = "step %{customdata}<br>t<sub>θ</sub> = %{x:.3g}<br>"
    out = []
    for j, i in enumerate(run.examples):
        out.append((go.Scatter(
            x=t_c, y=run.energy[k, i], customdata=step, mode="lines", opacity=0.9,
            line=dict(width=1.3, color=EXAMPLE_COLORS[j % len(EXAMPLE_COLORS)]),
            name=f"examples {', '.join(str(int(e)) for e in run.examples)}: energy",
            legendgroup="examples", showlegend=j == 0,
            hovertemplate=tip_c + f"E<sub>{int(i)}</sub> = %{{y:.4g}}<extra>example {int(i)}</extra>"),
            1, False))
    out.append((go.Scatter(
        x=t_c, y=run.energy[k].mean(axis=1), customdata=step, mode="lines",
        line=dict(width=3, color=COLORS["mean"]), name="mean energy of the cochain",
        hovertemplate=tip_c + "mean E = %{y:.4g}<extra></extra>"), 1, False))
    out.append((go.Scatter(
        x=t_c, y=run.energy_eq[k].mean(axis=1), customdata=step, mode="lines",
        line=dict(width=2, color=COLORS["equilibrium"], dash="dash"),
        name="mean equilibrium energy R(θ(t))",
        hovertemplate=tip_c + "mean R(θ) = %{y:.4g}<extra></extra>"), 1, False))
    out.append((go.Scatter(
        x=t_th, y=run.train_mse[k], customdata=step, mode="lines",
        line=dict(width=2.5, color=COLORS["mean"]), name="train MSE, joint flow",
        hovertemplate=tip_th + "MSE = %{y:.4g}<extra>joint flow</extra>"), 2, False))
    out.append((go.Scatter(
        x=t_th, y=run.weight_change[k], customdata=step, mode="lines",
        line=dict(width=2, color=COLORS["weights"], dash="dot"),
        name="‖θ − θ<sub>0</sub>‖ (right axis)",
        hovertemplate=tip_th + "‖θ − θ<sub>0</sub>‖ = %{y:.4g}<extra></extra>"), 2, True))
    return out


def _algorithm_traces(alg: AlgorithmRun) -> list:
    """The Algorithm 4 loss curve vs slow time ``epoch * lr`` as ``[(trace, 2, False)]``."""
    note = f" ({alg.note})" if alg.note else ""
    e = alg.epoch[1:]
    return [(go.Scatter(
        x=alg.t_theta[1:], y=alg.train_mse[1:], mode="lines+markers",
        customdata=np.stack([e, np.round(alg.euler_steps, 1)], axis=1),
        line=dict(width=2, color=COLORS["sheaf"]), marker=dict(size=5),
        name=f"train MSE, sheaf trainer (diffusion τ<sub>c</sub>={alg.tol:.2g}, lr={alg.lr:.2g}){note}",
        hovertemplate=("epoch %{customdata[0]}<br>t<sub>θ</sub> = epoch × lr = %{x:.3g}<br>"
                       "MSE = %{y:.4g}<br>fast phase: %{customdata[1]} Euler steps per example"
                       "<extra>sheaf trainer</extra>")), 2, False)]


def _timescale_layout(run: JointRun, x_top: tuple, x_bottom: tuple) -> dict:
    """Layout update for one run: aligned log ranges (the same step sits at the same horizontal
    position in both panels), the two timescale markers and the title."""
    n = int(run.step[-1])
    lo, hi = math.log10(run.eta_c), math.log10(n * run.eta_c)
    shift = math.log10(run.eps)
    shapes = []
    marks = [(run.tau_fast, COLORS["fast"],
              f"fast: t<sub>c</sub> = 1/λ<sub>min</sub> ≈ {run.tau_fast:.2g}")]
    if math.isfinite(run.tau_slow):
        marks.append((run.tau_slow / run.eps, COLORS["slow"],
                      f"slow: t<sub>θ</sub> = ‖θ‖/‖∇R‖ ≈ {run.tau_slow:.2g}"))
    for x, color, text in marks:   # one line through both panels, placed in fast time
        # the label reads away from the nearer edge, so that it is never cut off there
        right_half = math.log10(x) > (lo + hi) / 2 if x > 0 else False
        shapes.append(dict(type="line", xref=x_top[1], yref="paper", x0=x, x1=x, y0=0, y1=1,
                           line=dict(color=color, width=1.5, dash="dashdot"),
                           label=dict(text=text, textposition="end", textangle=0,
                                      font=dict(size=11, color=color),
                                      xanchor="right" if right_half else "left")))
    steps_fast = run.tau_fast / run.eta_c
    steps_slow = run.tau_slow / run.eta_theta
    title = (f"Timescale separation, ε = η<sub>θ</sub>/η<sub>c</sub> = {run.eps:g}<br>"
             f"<sup>the cochain relaxes in ~{steps_fast:.0f} steps, the weights move over "
             f"~{steps_slow:.0f} steps (ratio {steps_slow / steps_fast:.3g})</sup>")
    return {f"{x_top[0]}.range": [lo, hi], f"{x_bottom[0]}.range": [lo + shift, hi + shift],
            "shapes": shapes, "title.text": title}


def _timescale_figure(runs: list, alg: AlgorithmRun, active: int) -> tuple:
    """The two-panel figure with one visibility group per run (only ``active`` shown) plus the
    Algorithm 4 curve. Returns (figure, per-run layout updates, traces per run)."""
    fig = make_subplots(rows=2, cols=1, specs=[[{}], [{"secondary_y": True}]], vertical_spacing=0.16)
    x_top, x_bot = _xaxis(fig, 1, 1), _xaxis(fig, 2, 1)
    per_run = None
    for g, run in enumerate(runs):
        traces = _timescale_traces(run)
        per_run = len(traces)
        for tr, row, sec in traces:
            tr.visible = g == active
            fig.add_trace(tr, row=row, col=1, secondary_y=sec)
    for tr, row, sec in _algorithm_traces(alg):
        fig.add_trace(tr, row=row, col=1, secondary_y=sec)
    layouts = [_timescale_layout(run, x_top, x_bot) for run in runs]
    fig.update_xaxes(type="log", row=1, col=1,
                     title_text="fast time t<sub>c</sub> = step × η<sub>c</sub>  (log scale)")
    fig.update_xaxes(type="log", row=2, col=1,
                     title_text="slow time t<sub>θ</sub> = step × η<sub>θ</sub> = ε t<sub>c</sub>  "
                                "(log scale),<br>aligned with the axis above")
    fig.update_yaxes(title_text="<b>fast</b>: energy E(c) = ½Σ‖d<sub>e</sub>‖²", rangemode="tozero",
                     row=1, col=1)
    fig.update_yaxes(title_text="<b>slow</b>: train MSE", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="‖θ − θ<sub>0</sub>‖", row=2, col=1, secondary_y=True, showgrid=False,
                     rangemode="tozero", tickmode="auto", nticks=5, color=COLORS["weights"],
                     ticklabelstandoff=4)
    _style(fig, "", 720, lines=2, margin=dict(l=70, r=30, t=0, b=170))
    fig.update_layout(layouts[active], legend=dict(orientation="h", x=0, y=-0.2, yanchor="top"))
    return fig, layouts, per_run


def _timescale_static(runs: list, alg: AlgorithmRun, active: int) -> go.Figure:
    """The static diagram: one visibility group per run, switched by a plotly slider over eps."""
    fig, layouts, per_run = _timescale_figure(runs, alg, active)
    n_tr = len(fig.data)
    steps = []
    for g, run in enumerate(runs):
        vis = [g * per_run <= i < (g + 1) * per_run for i in range(n_tr - 1)] + [True]
        steps.append(dict(method="update", label=f"{run.eps:g}", args=[{"visible": vis}, layouts[g]]))
    fig.update_layout(sliders=[dict(active=active, steps=steps, x=0.0, len=1.0, y=-0.5,
                                    yanchor="top", pad=dict(t=10),
                                    currentvalue=dict(prefix="ε = η<sub>θ</sub>/η<sub>c</sub> = "))],
                      margin=dict(b=340))
    return set_height(fig, 920)


def timescale_diagram(sheaf=None, X=None, Y=None, eps_values=(0.3, 0.1, 0.03, 0.01),
                      theta_time: float = 1.0, eta_c=None, tol: float = 1e-4, lr: float = 0.01,
                      live: bool = False, max_epochs: int = 40, n_examples: int = 4,
                      n_points: int = 60):
    """Dual time-axis diagram of the joint flow (cochains and weights together): fast cochains above, slow weights below.

    For each ``eps`` in ``eps_values`` a :class:`~sheaflab.JointFlow` (cochain step ``eta_c``, weight
    step ``eta_theta = eps * eta_c``) is integrated on the full batch to slow time ``theta_time``.
    Top panel: the energy of a few examples' cochains, their mean, and the mean equilibrium energy
    ``R(theta(t))`` of the current weights (dashed), vs fast time ``t_c = step * eta_c``. Bottom panel:
    train MSE and ``||theta - theta_0||`` vs slow time ``t_theta = step * eta_theta``. The log axes are
    aligned (same step, same horizontal position); dash-dotted lines mark the fast timescale
    ``1/lambda_min`` and the slow one ``||theta||/||grad R||`` of Definition 1. Also in the bottom panel:
    Algorithm 4 (diffusion fast phase with tolerance ``tol``, plain gradient descent with step
    ``lr``) for ``min(ceil(theta_time / lr), max_epochs)`` epochs, its MSE vs ``t_theta = epoch * lr``.

    Parameters
    ----------
    sheaf, X, Y : network and data, X (B, n_0), Y (B, n_L); default [2, 4, 1] He init (seed 0) on
        ``paraboloid_grid(4)`` (B = 16), the worked example.
    eps_values : positive timescale ratios, one slider step each (static) / the live slider's start.
    theta_time : slow time every run reaches (time units of ``t_theta``).
    eta_c : cochain step; default ``0.9 / sheaf.lambda_max_bound()``.
    tol, lr : fast-phase tolerance (on ``||dc/dt||``) and step of the Algorithm 4 curve.
    live : False for a static plotly Figure with an eps slider; True for an ipywidgets VBox with
        sliders for eps (log), tol and lr that re-run the simulations, which displays as the
        static figure where no widget manager runs (``box.static``).
    max_epochs : cap on the Algorithm 4 epochs.
    n_examples : examples drawn individually, at evenly spaced ranks of their initial energy.
    n_points : recorded (log-spaced) steps per run.
    """
    live = _check_live(live)
    sheaf, X, Y = _problem(sheaf, X, Y, (2, 4, 1), lambda: paraboloid_grid(4))
    if isinstance(eps_values, (str, bytes)) or not hasattr(eps_values, "__iter__"):
        raise TypeError(f"eps_values must be a sequence of positive numbers, got {eps_values!r}")
    eps_values = [positive(e, f"eps_values[{i}]") for i, e in enumerate(eps_values)]
    if not eps_values:
        raise ValueError("eps_values must hold at least one positive number")
    theta_time = positive(theta_time, "theta_time")
    eta_c = None if eta_c is None else positive(eta_c, "eta_c")
    tol, lr = positive(tol, "tol"), positive(lr, "lr")
    max_epochs = positive(max_epochs, "max_epochs", integer=True)
    n_examples = positive(n_examples, "n_examples", integer=True)
    n_points = positive(n_points, "n_points", integer=True)
    # examples at evenly spaced ranks of the initial energy, from the largest (visible on a linear axis)
    B = X.shape[0]
    E0 = sheaf.energy(sheaf.forward_cochain(X, Y))
    ranks = np.unique(np.floor(np.arange(min(n_examples, B)) * B / min(n_examples, B)).astype(np.int64))
    examples = np.argsort(-E0, kind="stable")[ranks]
    scales = timescales(sheaf, X, Y)

    def joint(eps):
        return joint_run(sheaf, X, Y, eps, theta_time, eta_c, n_points, examples, scales)

    def algorithm(tau, rate):
        return algorithm_run(sheaf, X, Y, tau, rate, min(math.ceil(theta_time / rate), max_epochs))

    alg = algorithm(tol, lr)
    runs = [joint(e) for e in eps_values]
    active = int(np.argmin(eps_values))                # open on the most separated case
    static = _timescale_static(runs, alg, active)
    if not live:
        return static

    widgets = _ipywidgets()
    eps0 = eps_values[active]
    fig, _, per_run = _timescale_figure([runs[active]], alg, 0)
    fw = _figure_widget(fig)
    x_top, x_bot = _xaxis(fig, 1, 1), _xaxis(fig, 2, 1)
    log = dict(base=10, continuous_update=False, readout_format=".2g",
               style={"description_width": "initial"})

    def slider(value, lo, hi, step, description):
        """Log slider over [10^lo, 10^hi], widened to hold ``value``."""
        e = math.log10(value)
        return widgets.FloatLogSlider(value=value, min=min(lo, math.floor(e)), max=max(hi, math.ceil(e)),
                                      step=step, description=description, **log)

    w_eps = slider(eps0, -3, 0, 0.1, "ε = η_θ/η_c")
    w_tau = slider(tol, -8, -1, 0.25, "τ_c (fast tol)")
    w_lr = slider(lr, -3, -0.5, 0.1, "lr (sheaf trainer)")
    status = widgets.HTML(value="")

    def on_eps(change):
        status.value = f"running the joint flow at ε = {w_eps.value:.2g}…"
        try:
            run = joint(w_eps.value)
        except FloatingPointError as exc:
            status.value = f"<b>{exc}</b>"
            return
        with fw.batch_update():
            _assign(fw, 0, [t for t, _, _ in _timescale_traces(run)])
            fw.update_layout(_timescale_layout(run, x_top, x_bot))
        status.value = ""

    def on_alg(change):
        status.value = "running Algorithm 4…"
        new = algorithm(w_tau.value, w_lr.value)
        with fw.batch_update():
            _assign(fw, per_run, [t for t, _, _ in _algorithm_traces(new)])
        status.value = ""

    w_eps.observe(on_eps, names="value")
    w_tau.observe(on_alg, names="value")
    w_lr.observe(on_alg, names="value")
    return _live_box([widgets.HBox([w_eps, w_tau, w_lr]), status, fw], static)


# ============================================================================ 2. operations per step


def _check_costs(costs) -> StepCosts:
    """``costs`` itself, checked to be a StepCosts (what :func:`sheaflab.experiments.step_costs` returns)."""
    if not isinstance(costs, StepCosts):
        raise TypeError(f"costs must be a sheaflab.experiments.StepCosts (from experiments.step_costs); "
                        f"got {type(costs).__name__}")
    return costs


def _phase_labels(costs: StepCosts) -> list:
    """Category per phase position: 'forward / fast phase' where the two trainers' names differ."""
    return [a if a == b else f"{a} /<br>{b}" for a, b in zip(costs.sgd, costs.sheaf)]


def _ops_traces(costs: StepCosts) -> list:
    """Grouped bars as ``(trace, col)``: counts per example per step (col 1) and measured time per
    step in microseconds (col 2), one bar group per trainer."""
    cats = _phase_labels(costs)
    out = []
    for key, name in ((k, cls.title) for k, cls in TRAINERS.items()):
        phases = costs.phases(key)
        counts = np.array([p.count for p in phases.values()], dtype=np.float64)
        micros = np.array([p.seconds for p in phases.values()], dtype=np.float64) * 1e6
        common = dict(x=cats, name=name, legendgroup=key, offsetgroup=key, customdata=list(phases),
                      marker_color=COLORS[key], textposition="outside", cliponaxis=False)
        out.append((go.Bar(y=counts, text=[f"{c:.3g}" for c in counts],
                           hovertemplate="%{customdata}: %{y:.3g} per example per step"
                                         f"<extra>{name}</extra>", **common), 1))
        # the panel's title gives the unit: a shorter label is drawn larger on a narrow bar
        out.append((go.Bar(y=micros, text=[f"{m:.3g}" for m in micros], showlegend=False,
                           hovertemplate="%{customdata}: %{y:.3g} µs per step"
                                         f"<extra>{name}</extra>", **common), 2))
    return out


def _ops_layout(costs: StepCosts) -> dict:
    """Title with the problem, the total measured time per step of each trainer and their ratio."""
    tot = {k: costs.total(k) * 1e6 for k in StepCosts.TRAINERS}
    ratio = f" ({tot['sheaf'] / tot['sgd']:.2g}× SGD)" if tot["sgd"] > 0 else ""
    context = "" if costs.dims is None else f", {costs.dims}, B = {costs.batch_size}, {costs.optimizer}"
    return {"title.text": wrap_title(f"One training step, phase by phase{context}: SGD {tot['sgd']:.3g} µs, "
                                     f"sheaf trainer {tot['sheaf']:.3g} µs{ratio}")}


def _measure_costs(width: int, optimizer: str) -> StepCosts:
    """``step_costs`` of a [2, width, 1] He-init network (seed 0) on paraboloid(300, noise=0.02, seed=0)."""
    X, Y = paraboloid(300, noise=0.02, seed=0)
    return step_costs(NeuralSheaf.random([2, width, 1], seed=0), X, Y, optimizer=optimizer)


def _ops_figure(costs: StepCosts) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("operations per example<br>per step (count)",
                                        "time per full-batch step<br>(µs, measured)"))
    for tr, col in _ops_traces(costs):
        fig.add_trace(tr, row=1, col=col)
    fig.update_yaxes(title_text="count per example per step", rangemode="tozero", row=1, col=1)
    # no axis title on the right panel: its subplot title says what it counts, and an axis title
    # between the panels would run into the left panel's bars on a phone
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_xaxes(title_text="phase (SGD / sheaf trainer)")
    _style(fig, "", 460, lines=2, legend=dict(orientation="h", x=0, xanchor="left", y=1.0))
    fig.update_layout(_ops_layout(costs), barmode="group", bargap=0.25, uniformtext_minsize=9)
    return store_variants(fig)  # for the title set after the style


def ops_per_step_chart(costs=None, sheaf=None, X=None, Y=None, optimizer: str = "adam",
                       live: bool = False):
    """Grouped bars: what one training step costs, SGD vs the sheaf trainer, phase by phase.

    Phases are paired by position: forward / fast phase, backward / local gradients, update,
    diagnostics. Left: how many times each phase runs per example per step (the fast phase's count
    is its measured mean number of region solves). Right: the measured wall time of each phase on
    the whole batch, in microseconds.

    costs : a :func:`sheaflab.experiments.step_costs` result to draw (so a page can reuse one
        measurement); if None it is measured on ``sheaf, X, Y`` with ``optimizer``, by default
        [2, 30, 1] He init (seed 0) on ``paraboloid(300, noise=0.02, seed=0)``.
    live : True returns an ipywidgets VBox with a hidden-width dropdown (10, 30, 100) that
        re-measures on [2, width, 1] and redraws the FigureWidget; without a widget manager it
        displays as the static chart (``box.static``).
    """
    live = _check_live(live)
    if costs is None:
        sheaf, X, Y = _problem(sheaf, X, Y, (2, 30, 1), lambda: paraboloid(300, noise=0.02, seed=0))
        costs = step_costs(sheaf, X, Y, optimizer=optimizer)
    elif sheaf is not None or X is not None or Y is not None:
        raise ValueError("give either costs or (sheaf, X, Y) to measure, not both")
    costs = _check_costs(costs)
    fig = _ops_figure(costs)
    if not live:
        return fig

    widgets = _ipywidgets()
    fw = _figure_widget(fig)
    dims = costs.dims or []
    width0 = dims[1] if len(dims) == 3 and dims[1] in (10, 30, 100) else 30
    w = widgets.Dropdown(options=[10, 30, 100], value=width0, description="hidden width")

    def on_width(change):
        new = _measure_costs(w.value, costs.optimizer or optimizer)
        with fw.batch_update():
            _assign(fw, 0, [t for t, _ in _ops_traces(new)])
            fw.update_layout(_ops_layout(new))

    w.observe(on_width, names="value")
    return _live_box([w, fw], _ops_figure(costs))


# ============================================================================ 3. discord dashboard
@dataclass
class _Dashboard:
    """Arrays of the dashboard. discord: (E, n_edges) mean discord norm per edge and epoch;
    edges: (n_edges,) names; residual: (E,); epoch: (E,) 1..E; gap_epoch, gap: the epochs with a
    finite ``lambda_min`` and its values; log_color: colour on a log10 scale."""

    discord: np.ndarray
    edges: list
    residual: np.ndarray
    epoch: np.ndarray
    gap_epoch: np.ndarray
    gap: np.ndarray
    log_color: bool


def _dashboard_data(history, log_color) -> _Dashboard:
    """The arrays of a sheaf-trainer :class:`~sheaflab.History`, checked."""
    if not isinstance(history, History):
        raise TypeError("history must be a sheaflab History (what SheafTrainer.fit returns), "
                        f"got {type(history).__name__}")
    if history.epochs == 0:
        raise ValueError("history has no epochs yet; fit at least one epoch first")
    res = history.residual
    if np.all(np.isnan(res)):
        raise ValueError("history has no residual R (an SGDTrainer history?); the dashboard shows "
                         "the sheaf trainer's diagnostics")
    D, gap = history.edge_discord, history.lambda_min
    epoch = np.arange(1, history.epochs + 1)
    ok = np.isfinite(gap)
    pos = D[np.isfinite(D) & (D > 0)]
    if log_color is None:       # auto: log colours when the positive values span over two decades
        log_color = pos.size > 0 and pos.max() / pos.min() > 100.0
    elif not isinstance(log_color, bool):
        raise TypeError(f"log_color must be True, False or None, got {type(log_color).__name__}")
    return _Dashboard(D, list(history.edges), res, epoch, epoch[ok], gap[ok], log_color)


def _dashboard_traces(data: _Dashboard, at: int) -> list:
    """Traces as ``(trace, row, col)``: heatmap (edges x epochs), residual, lambda_min and the bar
    chart of epoch index ``at``'s per-edge discords (last: the one the slider restyles)."""
    z = data.discord.T
    if data.log_color:
        with np.errstate(divide="ignore", invalid="ignore"):
            zc = np.where(z > 0, np.log10(z), np.nan)
        lo, hi = np.nanmin(zc), np.nanmax(zc)
        vals = [m * 10.0 ** k for k in range(int(np.floor(lo)), int(np.ceil(hi)) + 1) for m in (1, 2, 5)]
        vals = [v for v in vals if lo - 1e-9 <= np.log10(v) <= hi + 1e-9]
        bar = dict(title="discord<br>(log scale)", tickvals=np.log10(vals), ticktext=[f"{v:g}" for v in vals])
    else:
        zc, bar = z, dict(title="discord")
    out = [(go.Heatmap(z=zc, x=data.epoch, y=data.edges, customdata=z, colorscale="Viridis",
                       colorbar=dict(**bar, len=0.42, y=1.0, yanchor="top"), name="edge discord",
                       hovertemplate="edge %{y}<br>epoch %{x}<br>mean ‖d<sub>e</sub>‖ = %{customdata:.3g}"
                                     "<extra></extra>"), 1, 1)]
    out.append((go.Scatter(x=data.epoch, y=data.residual, mode="lines",
                           line=dict(color=COLORS["sheaf"], width=2), name="residual R̄",
                           hovertemplate="epoch %{x}<br>R̄ = %{y:.4g}<extra></extra>"), 2, 1))
    out.append((go.Scatter(x=data.gap_epoch, y=data.gap, mode="lines+markers",
                           line=dict(color=COLORS["fast"], width=2), marker=dict(size=6),
                           name="λ<sub>min</sub>(L<sub>free</sub>)",
                           hovertemplate="epoch %{x}<br>λ<sub>min</sub> = %{y:.4g}<extra></extra>"), 3, 1))
    out.append((_dashboard_bar(data, at), 1, 2))
    return out


def _dashboard_bar(data: _Dashboard, at: int) -> go.Bar:
    """Horizontal bars of epoch index ``at``'s per-edge mean discords (edges on the y axis)."""
    return go.Bar(x=data.discord[at], y=data.edges, orientation="h", marker_color=COLORS["sheaf"],
                  name="discord at the selected epoch", showlegend=False,
                  hovertemplate="%{y}: %{x:.3g}<extra>epoch " + str(int(data.epoch[at])) + "</extra>")


_BAR_TITLE = "per-edge discord at the selected epoch"


def _dashboard_marker(data: _Dashboard, at: int, x_ref: str, bar_title: int) -> dict:
    """Layout update for epoch index ``at``: a vertical line across the left column and the title of
    the bar chart (annotation number ``bar_title``)."""
    ep = int(data.epoch[at])
    return {"shapes": [dict(type="line", xref=x_ref, yref="paper", x0=ep, x1=ep, y0=0, y1=1,
                            line=dict(color=COLORS["selection"], width=2))],
            f"annotations[{bar_title}].text": f"per-edge discord at epoch {ep}"}


def discord_dashboard(history, live: bool = False, log_color=None, max_steps: int = 60):
    """Dashboard of a sheaf-trainer History (Step 3 of Algorithm 4: the logged diagnostics).

    Left column, sharing the epoch axis: heatmap of the per-edge mean discord norm
    (``history.edge_discord.T``, edges x epochs), the residual (mean equilibrium energy) and the
    finite entries of ``history.lambda_min`` (recorded with ``SheafTrainer(track_gap=k)``). Right:
    the per-edge discords of the selected epoch. A slider (at most ``max_steps`` evenly spaced
    epochs; every epoch in live mode) moves a red marker and redraws the bars.

    history : a :class:`~sheaflab.History` of :class:`~sheaflab.SheafTrainer` (at least one epoch).
    log_color : colour the heatmap by log10 (zeros left blank); None = when values span > 2 decades.
    live : True returns an ipywidgets VBox with an IntSlider over epochs and a FigureWidget; without
        a widget manager it displays as the static dashboard with its plotly slider (``box.static``).
    """
    live = _check_live(live)
    max_steps = positive(max_steps, "max_steps", integer=True)
    data = _dashboard_data(history, log_color)
    E = data.epoch.size
    at0 = E - 1
    gap_note = "" if data.gap.size else " — not tracked (fit with SheafTrainer(track_gap=k))"
    fig = make_subplots(rows=3, cols=2, column_widths=[0.74, 0.26], row_heights=[0.46, 0.27, 0.27],
                        specs=[[{}, {}], [{}, None], [{}, None]], shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.1, vertical_spacing=0.09,
                        subplot_titles=("mean discord ‖d<sub>e</sub>‖ per edge and epoch", _BAR_TITLE,
                                        "residual R̄ (mean equilibrium energy)",
                                        "spectral gap λ<sub>min</sub>(L<sub>free</sub>),<br>mean over the "
                                        "training set" + gap_note))
    for tr, row, col in _dashboard_traces(data, at0):
        fig.add_trace(tr, row=row, col=col)
    x_ref = _xaxis(fig, 1, 1)[1]
    bar_title = [a.text for a in fig.layout.annotations].index(_BAR_TITLE)
    fig.update_yaxes(autorange="reversed", row=1, col=1)  # edges top to bottom in path order
    pos_res = bool(np.all(data.residual > 0))
    fig.update_yaxes(title_text="R̄", type="log" if pos_res else "linear", row=2, col=1)
    fig.update_yaxes(title_text="λ<sub>min</sub>", tickformat=".4g", row=3, col=1)
    if data.gap.size and np.ptp(data.gap) < 1e-3 * max(abs(float(data.gap.mean())), 1e-12):
        # a flat trajectory: show it flat instead of autoscaling round-off into wiggles
        m = float(data.gap.mean())
        fig.update_yaxes(range=[m - max(0.05 * abs(m), 1e-3), m + max(0.05 * abs(m), 1e-3)], row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=3, col=1)
    fig.update_xaxes(title_text="mean ‖d<sub>e</sub>‖", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(showticklabels=True, row=1, col=1)
    _style(fig, "Discord dashboard: where the network disagrees with itself", 720)
    fig.update_layout(_dashboard_marker(data, at0, x_ref, bar_title), showlegend=False)
    fig.update_xaxes(range=[0, 1.05 * max(float(np.nanmax(data.discord)), 1e-300)], row=1, col=2)
    bar_index = len(fig.data) - 1
    if not live:
        picks = np.unique(np.round(np.linspace(0, E - 1, min(E, max_steps))).astype(np.int64))
        steps = []
        for i in picks:
            bar = _dashboard_bar(data, int(i))
            steps.append(dict(method="update", label=str(int(data.epoch[i])),
                              args=[{"x": [bar.x], "hovertemplate": [bar.hovertemplate]},
                                    _dashboard_marker(data, int(i), x_ref, bar_title), [bar_index]]))
        fig.update_layout(sliders=[dict(active=len(steps) - 1, steps=steps, x=0.0, len=1.0, y=-0.1,
                                        yanchor="top", font=dict(size=9),
                                        currentvalue=dict(prefix="epoch ", font=FONT))],
                          margin=dict(b=130))
        return set_height(fig, 780)

    widgets = _ipywidgets()
    fw = _figure_widget(fig)
    w = widgets.IntSlider(value=E, min=1, max=E, step=1, description="epoch",
                          continuous_update=True, layout=widgets.Layout(width="60%"))

    def on_epoch(change):
        i = int(w.value) - 1
        with fw.batch_update():
            _assign(fw, bar_index, [_dashboard_bar(data, i)])
            fw.update_layout(_dashboard_marker(data, i, x_ref, bar_title))

    w.observe(on_epoch, names="value")
    static = discord_dashboard(history, live=False, log_color=log_color, max_steps=max_steps)
    return _live_box([w, fw], static)
