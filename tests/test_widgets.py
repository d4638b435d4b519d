"""The chapter's figures: static ones hold the simulated data, live ones re-simulate on a slider change."""

import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

import sheaflab
from sheaflab import widgets
from sheaflab.experiments import PhaseCost, StepCosts
from sheaflab.datasets import paraboloid, paraboloid_grid

import anywidget  # noqa: F401  (go.FigureWidget needs it with plotly >= 6; required, not optional)
import ipywidgets

EPS = (0.3, 0.1, 0.03, 0.01)
THETA_TIME = 0.5
LR, TAU, MAX_EPOCHS = 0.05, 1e-4, 6


def descendants(widget):
    """Every widget inside an ipywidgets container, depth first."""
    out = [widget]
    for child in getattr(widget, "children", ()):
        out += descendants(child)
    return out


def find(box, cls):
    return [w for w in descendants(box) if isinstance(w, cls)]


def serialises(fig):
    assert fig.to_json()
    html = pio.to_html(fig, include_plotlyjs=False, full_html=False)
    assert "Plotly.newPlot" in html


def worked_example():
    X, Y = paraboloid_grid(4)
    return sheaflab.NeuralSheaf.random([2, 4, 1], seed=0), X, Y


@pytest.fixture(scope="module")
def timescale_fig():
    return widgets.timescale_diagram(eps_values=EPS, theta_time=THETA_TIME, tol=TAU, lr=LR,
                                     max_epochs=MAX_EPOCHS)


def group(fig, g):
    """Trace indices of the slider's visibility group ``g`` (the Algorithm 4 curve excluded)."""
    vis = fig.layout.sliders[0].steps[g].args[0]["visible"]
    return [i for i, v in enumerate(vis[:-1]) if v]


def by_name(fig, idx, start):
    hits = [i for i in idx if fig.data[i].name.startswith(start)]
    assert len(hits) == 1, start
    return fig.data[hits[0]]


# ---------------------------------------------------------------------------------- timescale
def test_timescale_slider_has_one_step_per_eps(timescale_fig):
    steps = timescale_fig.layout.sliders[0].steps
    assert [float(s.label) for s in steps] == list(EPS)
    groups = [group(timescale_fig, g) for g in range(len(EPS))]
    assert len({len(g) for g in groups}) == 1                    # same traces per eps
    assert not set(groups[0]) & set(groups[1])                   # disjoint groups
    assert timescale_fig.data[-1].visible is not False           # Algorithm 4 always shown
    assert sum(len(g) for g in groups) + 1 == len(timescale_fig.data)
    serialises(timescale_fig)


@pytest.mark.parametrize("g", [1, 3])
def test_timescale_traces_equal_an_uninterrupted_joint_flow(timescale_fig, g):
    sheaf, X, Y = worked_example()
    eps = EPS[g]
    flow = sheaflab.JointFlow(sheaf, eps=eps)
    n = math.ceil(THETA_TIME / flow.eta_theta - 1e-9)
    h = flow.run(X, Y, n, record_every=1)
    idx = group(timescale_fig, g)
    mean = by_name(timescale_fig, idx, "mean energy")
    steps = np.rint(np.asarray(mean.x) / flow.eta_c).astype(int)
    assert steps[0] == 1 and steps[-1] == n and np.all(np.diff(steps) > 0)
    np.testing.assert_allclose(mean.y, h.energy[steps].mean(axis=1), rtol=1e-12, atol=1e-12)
    mse = by_name(timescale_fig, idx, "train MSE, joint")
    np.testing.assert_allclose(np.asarray(mse.x), steps * flow.eta_theta, rtol=1e-12)
    np.testing.assert_allclose(mse.y, h.train_mse[steps], rtol=1e-12, atol=1e-12)
    change = by_name(timescale_fig, idx, "‖θ")
    np.testing.assert_allclose(change.y, h.weight_change[steps], rtol=1e-10, atol=1e-12)
    examples = [timescale_fig.data[i] for i in idx if timescale_fig.data[i].legendgroup == "examples"]
    E0 = h.energy[0]
    assert examples and np.asarray(examples[0].y)[0] == h.energy[1, np.argmax(E0)]
    for tr in examples:
        i = int(tr.hovertemplate.split("example ")[-1].split("<")[0])
        np.testing.assert_allclose(tr.y, h.energy[steps, i], rtol=1e-12, atol=1e-12)


def test_timescale_separation_shows_in_the_traces(timescale_fig):
    """The cochain's mean energy ends on the equilibrium energy R(theta) for small eps, not for large."""
    gaps = []
    for g in range(len(EPS)):
        idx = group(timescale_fig, g)
        E = by_name(timescale_fig, idx, "mean energy").y[-1]
        R = by_name(timescale_fig, idx, "mean equilibrium").y[-1]
        gaps.append((E - R) / R)
    assert gaps[0] > 0.05 and gaps[-1] < 1e-3
    assert all(a > b for a, b in zip(gaps, gaps[1:]))


def test_timescale_axes_are_aligned(timescale_fig):
    for g, eps in enumerate(EPS):
        lay = timescale_fig.layout.sliders[0].steps[g].args[1]
        top, bottom = lay["xaxis.range"], lay["xaxis2.range"]
        np.testing.assert_allclose(np.subtract(bottom, top), math.log10(eps), rtol=1e-12)
        assert str(eps) in lay["title.text"]


def test_timescale_algorithm_curve_is_a_real_run(timescale_fig):
    sheaf, X, Y = worked_example()
    epochs = min(math.ceil(THETA_TIME / LR), MAX_EPOCHS)
    tr = sheaflab.SheafTrainer(sheaf, lr=LR, optimizer="sgd", method="diffusion", tol=TAU, progress=False)
    h = tr.fit(X, Y, epochs=epochs)
    alg = timescale_fig.data[-1]
    assert alg.name.startswith("train MSE, sheaf trainer")
    np.testing.assert_allclose(alg.x, LR * np.arange(1, epochs + 1), rtol=1e-12)
    np.testing.assert_allclose(alg.y, h.train_mse, rtol=1e-12, atol=1e-12)


def test_timescale_live_recomputes_on_slider_change():
    box = widgets.timescale_diagram(theta_time=0.2, max_epochs=3, live=True)
    assert isinstance(box, ipywidgets.Box)
    (fw,) = find(box, go.FigureWidget)
    sliders = {w.description.split(" ")[0]: w for w in find(box, ipywidgets.FloatLogSlider)}
    assert set(sliders) == {"ε", "τ_c", "lr"}
    mean = next(i for i, t in enumerate(fw.data) if t.name.startswith("mean energy"))
    y_before, x_before = np.array(fw.data[mean].y), np.array(fw.data[mean].x)
    sliders["ε"].value = 0.1
    assert len(fw.data[mean].x) != len(x_before) or not np.allclose(fw.data[mean].y, y_before)
    # the new trace is the joint flow at the new eps
    sheaf, X, Y = worked_example()
    flow = sheaflab.JointFlow(sheaf, eps=0.1)
    h = flow.run(X, Y, math.ceil(0.2 / flow.eta_theta - 1e-9))
    steps = np.rint(np.asarray(fw.data[mean].x) / flow.eta_c).astype(int)
    np.testing.assert_allclose(fw.data[mean].y, h.energy[steps].mean(axis=1), rtol=1e-12)
    alg_before = np.array(fw.data[-1].y)
    sliders["lr"].value = 0.1
    assert len(fw.data[-1].y) != len(alg_before) or not np.allclose(fw.data[-1].y, alg_before)
    assert "lr=0.1" in fw.data[-1].name


def test_timescale_rejects_bad_input():
    with pytest.raises(ValueError, match=r"eps_values\[1\]"):
        widgets.timescale_diagram(eps_values=(0.1, -0.01))
    with pytest.raises(ValueError, match="eps_values"):
        widgets.timescale_diagram(eps_values=())
    with pytest.raises(TypeError, match="eps_values"):
        widgets.timescale_diagram(eps_values=0.1)
    with pytest.raises(ValueError, match="theta_time"):
        widgets.timescale_diagram(theta_time=0.0)
    with pytest.raises(TypeError, match="live"):
        widgets.timescale_diagram(live="yes")
    with pytest.raises(ValueError, match="X and Y"):
        widgets.timescale_diagram(X=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="sheaf"):
        widgets.timescale_diagram(sheaf=[2, 4, 1])
    with pytest.raises(ValueError, match="X"):
        widgets.timescale_diagram(X=np.zeros((3, 3)), Y=np.zeros((3, 1)))


# ---------------------------------------------------------------------------------- ops chart
RAW = {"sgd": {"forward": (1.0, 2.0e-5), "backward": (1.0, 4.0e-5), "update": (1.0, 3.0e-5),
               "diagnostics": (0.0, 0.0)},
       "sheaf": {"fast phase": (1.29, 2.5e-4), "local gradients": (1.0, 2.2e-5),
                 "update": (1.0, 3.0e-5), "diagnostics": (1.0, 3.1e-5)}}
COSTS = StepCosts(sgd={k: PhaseCost(*v) for k, v in RAW["sgd"].items()},
                  sheaf={k: PhaseCost(*v) for k, v in RAW["sheaf"].items()},
                  dims=[2, 30, 1], batch_size=300, optimizer="adam")


def test_ops_chart_bars_equal_the_costs():
    fig = widgets.ops_per_step_chart(costs=COSTS)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 4
    for key in ("sgd", "sheaf"):
        mine = [b for b in bars if b.legendgroup == key]
        counts, times = (mine[0], mine[1]) if mine[0].xaxis == "x" else (mine[1], mine[0])
        assert list(counts.customdata) == list(RAW[key])
        np.testing.assert_array_equal(counts.y, [v[0] for v in RAW[key].values()])
        np.testing.assert_allclose(times.y, [v[1] * 1e6 for v in RAW[key].values()], rtol=1e-12)
        # the times' unit is in the panel's title, not on every bar (shorter labels, drawn larger)
        assert all(t for t in counts.text) and all(float(t) > 0 for t in times.text if t != "0")
    assert any("µs" in a.text for a in fig.layout.annotations)
    assert list(bars[0].x) == ["forward /<br>fast phase", "backward /<br>local gradients", "update",
                               "diagnostics"]
    assert "(3.7× SGD)" in fig.layout.title.text      # (250 + 22 + 30 + 31) / (20 + 40 + 30) = 3.70
    assert "[2, 30, 1], B = 300, adam" in fig.layout.title.text    # the costs carry their problem
    serialises(fig)


def test_ops_chart_measures_by_default_and_live_remeasures():
    X, Y = paraboloid(60, noise=0.02, seed=0)
    fig = widgets.ops_per_step_chart(sheaf=sheaflab.NeuralSheaf.random([2, 10, 1], seed=0), X=X, Y=Y)
    assert "[2, 10, 1]" in fig.layout.title.text
    count = [t for t in fig.data if t.legendgroup == "sheaf" and t.xaxis == "x"][0]
    assert count.y[0] >= 1.0                          # at least one region solve per example
    box = widgets.ops_per_step_chart(costs=COSTS, live=True)
    (fw,) = find(box, go.FigureWidget)
    (dd,) = find(box, ipywidgets.Dropdown)
    before = [np.array(t.y) for t in fw.data]
    dd.value = 10
    assert "[2, 10, 1]" in fw.layout.title.text
    assert any(not np.array_equal(b, t.y) for b, t in zip(before, fw.data))


def test_ops_chart_rejects_bad_costs():
    with pytest.raises(TypeError, match="costs must be a sheaflab.experiments.StepCosts"):
        widgets.ops_per_step_chart(costs=[1, 2])
    with pytest.raises(TypeError, match="costs must be a sheaflab.experiments.StepCosts"):
        widgets.ops_per_step_chart(costs=RAW)          # the nested-dict form is gone
    with pytest.raises(ValueError, match=r"costs\['sgd'\]\['update'\]"):
        StepCosts(sgd=dict(RAW["sgd"], update=(1.0, -1.0)), sheaf=dict(RAW["sheaf"]))
    with pytest.raises(ValueError, match="same number of phases"):
        StepCosts(sgd=dict(RAW["sgd"]), sheaf={"fast phase": (1.0, 1e-4)})
    with pytest.raises(ValueError, match="trainer must be"):
        COSTS.phases("adam")
    with pytest.raises(ValueError, match="costs"):
        widgets.ops_per_step_chart(costs=COSTS, sheaf=sheaflab.NeuralSheaf.random([2, 3, 1]))


# ---------------------------------------------------------------------------------- dashboard
@pytest.fixture(scope="module")
def history():
    X, Y = paraboloid(40, noise=0.02, seed=0)
    tr = sheaflab.SheafTrainer(sheaflab.NeuralSheaf.random([2, 6, 1], seed=0), lr=0.02,
                               track_gap=10, progress=False)
    return tr.fit(X, Y, epochs=80)


def test_dashboard_holds_the_history(history):
    fig = widgets.discord_dashboard(history, log_color=False, max_steps=30)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)][0]
    np.testing.assert_array_equal(heat.z, history.edge_discord.T)
    assert list(heat.y) == history.edges
    res = [t for t in fig.data if t.name == "residual R̄"][0]
    np.testing.assert_array_equal(res.y, history.residual)
    gap = [t for t in fig.data if t.name.startswith("λ")][0]
    np.testing.assert_array_equal(gap.x, [10, 20, 30, 40, 50, 60, 70, 80])
    np.testing.assert_array_equal(gap.y, history.lambda_min[9::10])
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 30 and steps[0].label == "1" and steps[-1].label == "80"
    bar_index = len(fig.data) - 1
    for s in steps[::7]:
        k = int(s.label)
        data, lay, which = s.args
        assert list(which) == [bar_index]
        np.testing.assert_array_equal(data["x"][0], history.edge_discord[k - 1])
        assert lay["shapes"][0]["x0"] == k
    serialises(fig)


def test_dashboard_log_colours_and_missing_gap(history):
    fig = widgets.discord_dashboard(history, log_color=True)
    heat = fig.data[0]
    D = history.edge_discord.T
    np.testing.assert_allclose(10.0 ** np.asarray(heat.z, dtype=float)[D > 0], D[D > 0], rtol=1e-12)
    np.testing.assert_array_equal(heat.customdata, D)
    X, Y = paraboloid(20, seed=1)
    h = sheaflab.SheafTrainer(sheaflab.NeuralSheaf.random([2, 4, 1], seed=0), progress=False).fit(X, Y, 5)
    fig = widgets.discord_dashboard(h)
    assert any("not tracked" in a.text for a in fig.layout.annotations)
    assert len(fig.layout.sliders[0].steps) == 5
    serialises(fig)


def test_dashboard_live_moves_the_marker(history):
    box = widgets.discord_dashboard(history, live=True)
    (fw,) = find(box, go.FigureWidget)
    (slider,) = find(box, ipywidgets.IntSlider)
    assert slider.max == history.epochs
    slider.value = 3
    np.testing.assert_array_equal(fw.data[-1].x, history.edge_discord[2])
    assert fw.layout.shapes[0].x0 == 3
    assert any(a.text == "per-edge discord at epoch 3" for a in fw.layout.annotations)


def test_dashboard_rejects_bad_history(history):
    with pytest.raises(TypeError, match="history must be a sheaflab History"):
        widgets.discord_dashboard(object())
    with pytest.raises(TypeError, match="log_color"):
        widgets.discord_dashboard(history, log_color="yes")
    with pytest.raises(ValueError, match="no epochs"):
        widgets.discord_dashboard(sheaflab.History(history.edges))
    X, Y = paraboloid(20, seed=1)
    sgd = sheaflab.SGDTrainer(sheaflab.NeuralSheaf.random([2, 4, 1]), progress=False).fit(X, Y, 2)
    with pytest.raises(ValueError, match="SGDTrainer"):
        widgets.discord_dashboard(sgd)


@pytest.mark.parametrize("make", ["timescale", "ops", "dashboard"])
def test_live_box_displays_live_or_static(make, history):
    """One cell serves JupyterLab and the static book: the live box's display bundle holds the
    widget view (JupyterLab draws it) and the static figure's plotly JSON (the book draws it)."""
    if make == "timescale":
        box = widgets.timescale_diagram(theta_time=0.2, max_epochs=3, live=True)
    elif make == "ops":
        box = widgets.ops_per_step_chart(costs=COSTS, live=True)
    else:
        box = widgets.discord_dashboard(history, live=True)
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    static = bundle[widgets.PLOTLY_MIME]
    assert static["data"] == box.static.to_dict()["data"]
    if make != "ops":   # the static versions explore with plotly's own sliders
        assert static["layout"]["sliders"][0]["steps"]
