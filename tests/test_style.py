"""sheaflab.style designs each figure for a phone and for dark mode, and stores both in the figure
(``layout.meta["sheaflab"]``) as plain plotly updates that the book's figures.js only applies."""

import copy
import json
import re

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from sheaflab import style, widgets
from sheaflab.style import COLORS, DARK, LEGEND_BELOW, PHONE, apply_style


def _set(tree, path, value):
    """Plotly.relayout's rule for one attribute path on a plain dict (None removes it)."""
    parts = re.sub(r"\[(\d+)\]", r".\1", path).split(".")
    for part in parts[:-1]:
        tree = tree[int(part)] if isinstance(tree, list) else tree.setdefault(part, {})
    if isinstance(tree, list):
        tree[int(parts[-1])] = value
    elif value is None:
        tree.pop(parts[-1], None)
    else:
        tree[parts[-1]] = value


def _prune(tree):
    """The dict without empty containers (what relayout leaves when it removes their last key)."""
    if isinstance(tree, dict):
        out = {k: _prune(v) for k, v in tree.items()}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(tree, list):
        return [_prune(v) for v in tree]
    return tree


def _relayout(layout, update):
    out = copy.deepcopy(layout)
    for path, value in update.items():
        _set(out, path, copy.deepcopy(value))
    return out


def two_panels():
    fig = make_subplots(rows=1, cols=2, subplot_titles=("final loss of every seed", "seconds to the target"))
    for col in (1, 2):
        fig.add_trace(go.Scatter(x=[1, 2], y=[1, 2], name=f"a long legend entry for panel {col}"), 1, col)
    fig.add_trace(go.Scatter(x=[1, 2], y=[2, 1], name="mean", line=dict(color=COLORS["mean"])), 1, 1)
    fig.update_xaxes(title_text="an axis title long enough to need two lines on a phone", row=1, col=1)
    return apply_style(fig, "A title that is much too long to fit the width of a phone on one line", 420,
                       legend=LEGEND_BELOW, margin=dict(b=120))


def stored(fig):
    v = fig.layout.meta["sheaflab"]
    assert set(v) == {"below", "phone", "desktop", "dark", "light"}
    assert v["below"] == PHONE["width"]
    return v


def test_phone_then_desktop_is_the_figure_as_built():
    fig = two_panels()
    v = stored(fig)
    layout = fig.layout.to_plotly_json()
    phone = _relayout(layout, v["phone"]["layout"])
    assert phone != layout
    assert _prune(_relayout(phone, v["desktop"]["layout"])) == _prune(layout)
    # the two updates name the same attributes and traces
    assert set(v["phone"]["layout"]) == set(v["desktop"]["layout"])
    assert [i for i, _ in v["phone"]["traces"]] == [i for i, _ in v["desktop"]["traces"]]


def test_phone_texts_fit_a_phone():
    fig = two_panels()
    phone = stored(fig)["phone"]["layout"]
    room = PHONE["design_width"] - 24
    assert style.text_width(phone["title.text"], PHONE["title_size"]) <= room + 1e-9
    assert phone["title.text"].replace("<br>", " ") == fig.layout.title.text.replace("<br>", " ")
    # the subplot titles: smaller, each within its column
    for i in (0, 1):
        assert phone[f"annotations[{i}].font.size"] == PHONE["subtitle_size"]
        text = phone.get(f"annotations[{i}].text", fig.layout.annotations[i].text)
        assert style.text_width(text, PHONE["subtitle_size"]) <= 0.5 * PHONE["design_width"]
    assert "<br>" in phone["xaxis.title.text"]
    # legend under the plot, across the width; the figure grows to hold it
    assert phone["legend.orientation"] == "h" and phone["legend.yref"] == "container"
    assert phone["height"] > fig.layout.height
    assert phone["margin.l"] <= PHONE["margin"]["l"] and phone["margin.r"] <= PHONE["margin"]["r"]


def test_dark_inks_near_black_and_light_puts_it_back():
    fig = two_panels()
    v = stored(fig)
    assert v["dark"]["layout"]["template"] == style.dark_template()
    assert v["light"]["layout"]["template"] == fig.layout.template.to_plotly_json()
    mean = [i for i, t in enumerate(fig.data) if t.name == "mean"][0]
    assert v["dark"]["traces"] == [[mean, {"line.color": DARK["ink"]}]]
    assert v["light"]["traces"] == [[mean, {"line.color": COLORS["mean"]}]]
    # the palette's colours read on dark as they are
    assert not any(i != mean for i, _ in v["dark"]["traces"])


def test_phone_and_dark_touch_different_attributes():
    v = stored(two_panels())
    assert not set(v["phone"]["layout"]) & set(v["dark"]["layout"])


def test_slider_steps_set_phone_texts_on_the_phone():
    """A slider step that sets a title or a subplot title sets the phone's text on the phone."""
    X = np.random.default_rng(0).uniform(-2, 2, (20, 2))
    import sheaflab
    h = sheaflab.SheafTrainer(sheaflab.NeuralSheaf.random([2, 4, 1], seed=0), progress=False,
                              track_gap=2).fit(X, (X ** 2).sum(1, keepdims=True), epochs=6)
    fig = widgets.discord_dashboard(h)
    v = stored(fig)
    steps = v["phone"]["layout"]["sliders[0].steps"]
    desktop = fig.layout.sliders[0].to_plotly_json()["steps"]
    as_json = lambda x: json.dumps(x, cls=plotly.utils.PlotlyJSONEncoder, sort_keys=True)  # noqa: E731
    assert len(steps) == len(desktop)
    assert as_json(v["desktop"]["layout"]["sliders[0].steps"]) == as_json(desktop)
    for step in steps:
        texts = [t for k, t in step["args"][1].items() if k.startswith("annotations")]
        assert texts and all("<br>" in t for t in texts)      # wrapped to the narrow bar column
        assert all(t.replace("<br>", " ").startswith("per-edge discord at epoch") for t in texts)


def test_store_variants_follows_later_changes():
    fig = go.Figure([go.Scatter(y=[1, 2], name="a"), go.Scatter(y=[2, 1], name="b")])
    apply_style(fig, "Short", 400)
    assert stored(fig)["phone"]["traces"] == []
    fig.data[0].name = "a legend entry much too long to fit on one line of a phone's legend, really"
    style.store_variants(fig)
    (i, upd), = stored(fig)["phone"]["traces"]
    assert i == 0 and "<br>" in upd["name"]
    style.set_height(fig, 500)
    assert stored(fig)["desktop"]["layout"]["height"] == 500


@pytest.mark.parametrize("text, px, size", [("a b c", 1000, 13), ("", 10, 13)])
def test_wrap_px_keeps_texts_that_fit(text, px, size):
    assert style.wrap_px(text, px, size) == text
