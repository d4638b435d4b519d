"""One look for every figure of the book and the labs, static and live: palette, template, layout.

Plotly-free on purpose (it holds only names and numbers), so that importing it never needs the
optional plotting packages; :func:`require_plotting` turns their absence into a clear error.
"""

from __future__ import annotations

TEMPLATE = "plotly_white"
FONT = dict(family="Helvetica, Arial, sans-serif", size=13)

#: One colour per meaning, the same in every figure: a trainer keeps its colour from page to page.
COLORS = {
    "sheaf": "#1f77b4",        # the sheaf trainer / Algorithm 4
    "sgd": "#d62728",          # the backprop baseline
    "fit": "#2ca02c",          # least-squares fits
    "prediction": "#7f7f7f",   # a theory's prediction
    "mean": "#222222",         # batch means
    "equilibrium": "#ff7f0e",  # R(theta), the relaxed energy
    "weights": "#17becf",      # ||theta - theta_0||
    "fast": "#9467bd",         # fast-timescale marker
    "slow": "#8c564b",         # slow-timescale marker
    "selection": "#e377c2",    # the selected epoch or step of a slider
    "kink": "#222222",         # units on the kink z = 0
}
#: Individual examples drawn next to their mean.
EXAMPLE_COLORS = ["#8DA0CB", "#66C2A5", "#E5C494", "#E78AC3", "#A6D854", "#B3B3B3"]
#: A horizontal legend above the plot area, right-aligned (figures with two or three short entries).
LEGEND_TOP = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0)
#: A horizontal legend under the plot area, clear of the title and of plotly's mode bar.
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0.0)
MARGIN = dict(l=70, r=30, t=90, b=60)

# The top of every figure, from the edge down: a band for plotly's mode bar (it shows while the
# pointer is over the figure), the title (wrapped to fit a 600 px figure, the narrowest the book
# draws), then a legend set with LEGEND_TOP, then the plot area.
#: Height of the mode bar's band (px).
MODEBAR_BAND = 34
#: Height of one line of the title (px), and of one row of a legend.
TITLE_LINE = 24
LEGEND_ROW = 22
#: Title lines are wrapped at this many characters (a 600 px figure at the title's font size).
TITLE_CHARS = 66


#: The figures in the book theme's dark mode. The book's pages re-style every figure in the browser
#: with these colours (book/_ext/figures.js, through :func:`dark_template`; nothing needs a kernel):
#: backgrounds match the theme's own dark background and text its text, so a figure reads as part of
#: the page. Trace colours (:data:`COLORS`) read on dark as they are, except near-black ones
#: (:data:`COLORS` "mean", "kink"), which are drawn in ``ink``.
DARK = {
    "paper": "#14181e",          # pydata-sphinx-theme's dark --pst-color-background
    "font": "#ced6dd",           # ... and its --pst-color-text-base
    "grid": "#2b333f",           # grid lines: visible, quieter than the data
    "line": "#48566b",           # axis and zero lines, borders (the theme's --pst-color-border)
    "slider": "#48566b",         # slider rail and buttons
    "slider_active": "#9ca4af",  # the slider's handle while pressed
    "ink": "#e6eaee",            # what black and near-black trace, shape and text colours become
}

#: The figures on a phone: below ``width`` px of figure the book's pages re-lay every figure out
#: (book/_ext/figures.js): margins shrink to these (axes still make room for their labels), the
#: legend goes under the plot, horizontal, the title and subplot titles are set smaller and
#: re-wrapped to the width, and the figure grows by what the legend takes from the plot area.
PHONE = {
    "width": 600,
    "margin": dict(l=8, r=12, b=8),
    "title_size": 15,
    "subtitle_size": 12,
    "axis_title_size": 14,
    #: average glyph width / font size, to wrap titles to a width in pixels
    "char_em": 0.56,
}


def dark_template() -> dict:
    """:data:`TEMPLATE` in :data:`DARK` colours, as a plotly template dict (needs plotly)."""
    import plotly.io as pio

    light = pio.templates[TEMPLATE].to_plotly_json()
    swap = {"white": DARK["paper"], "#2a3f5f": DARK["font"], "#ebf0f8": DARK["grid"],
            "#dfe8f3": DARK["grid"], "#e5ecf6": DARK["paper"], "#c8d4e3": DARK["line"],
            "#a2b1c6": DARK["line"]}

    def recolour(value, key=""):
        if isinstance(value, dict):
            return {k: recolour(v, k) for k, v in value.items()}
        if isinstance(value, list):
            # colour scales and the colourway keep their colours
            return value if "colorscale" in key or key in ("colorway", "sequential", "diverging",
                                                            "sequentialminus") else [recolour(v) for v in value]
        return swap.get(value.lower(), value) if isinstance(value, str) else value

    dark = recolour(light)
    layout = dark["layout"]
    for axis in ("xaxis", "yaxis"):
        layout[axis].update(tickcolor=DARK["line"])
    layout["legend"] = dict(bgcolor="rgba(0,0,0,0)", font=dict(color=DARK["font"]))
    slider = dict(bgcolor=DARK["slider"], activebgcolor=DARK["slider_active"], bordercolor=DARK["line"],
                  tickcolor=DARK["font"], font=dict(color=DARK["font"]))
    layout["sliderdefaults"] = {**layout.get("sliderdefaults", {}), **slider}
    layout["updatemenudefaults"] = {**layout.get("updatemenudefaults", {}), "bgcolor": DARK["slider"],
                                    "bordercolor": DARK["line"], "font": dict(color=DARK["font"])}
    layout["annotationdefaults"] = {**layout.get("annotationdefaults", {}), "font": dict(color=DARK["font"])}
    layout["hoverlabel"] = {**layout.get("hoverlabel", {}), "bgcolor": DARK["paper"],
                            "bordercolor": DARK["line"], "font": dict(color=DARK["font"])}
    return dark


def wrap_title(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` with ``<br>`` between words so that no line is longer than ``width`` characters
    (markup such as ``<sub>`` not counted); existing ``<br>`` breaks are kept."""
    import re

    out = []
    for line in text.split("<br>"):
        words, cur, cur_len = line.split(" "), [], 0
        for w in words:
            n = len(re.sub(r"<[^>]+>", "", w))
            if cur and cur_len + 1 + n > width:
                out.append(" ".join(cur))
                cur, cur_len = [], 0
            cur.append(w)
            cur_len += n + (1 if cur_len else 0)
        out.append(" ".join(cur))
    return "<br>".join(out)


def title_lines(text: str) -> int:
    """Number of lines of a (wrapped) title; 0 for none."""
    return text.count("<br>") + 1 if text else 0


def trainer_color(label: str) -> str | None:
    """The palette colour of a curve label that names a trainer ("sheaf ..." or "SGD ..."), else None."""
    low = label.lower()
    return COLORS["sheaf"] if "sheaf" in low else COLORS["sgd"] if "sgd" in low else None


def _head(lines: int) -> int:
    """Pixels from the figure's top edge to the bottom of a title of ``lines`` lines."""
    # plotly anchors a title of two or more lines about half a line higher than one of one line
    return MODEBAR_BAND + (16 if lines > 1 else 0) + lines * TITLE_LINE


def _place_head(fig, lines: int, top_legend: bool) -> None:
    """Put the title (and a top legend) at fixed pixel offsets from the top edge, for the figure's
    current height: the title under the mode bar's band, the legend under the title."""
    height = fig.layout.height
    fig.update_layout(title=dict(y=1 - (MODEBAR_BAND + (16 if lines > 1 else 0)) / height))
    if top_legend:
        fig.update_layout(legend=dict(y=1 - (_head(lines) + 2) / height))
    fig._sheaflab_head = (lines, top_legend)


def set_height(fig, height: int):
    """Change the height of a figure styled by :func:`apply_style`, keeping its title and top legend
    where they belong."""
    fig.update_layout(height=height)
    if hasattr(fig, "_sheaflab_head"):
        _place_head(fig, *fig._sheaflab_head)
    return fig


def apply_style(fig, title: str, height: int, margin: dict | None = None, legend: dict | None = None,
                lines: int | None = None):
    """Give a plotly figure the common look: template, font, height, margins, hover labels, and the
    title under the mode bar's band, wrapped to fit (see :data:`MODEBAR_BAND`).

    The top margin grows to hold the title (``lines`` of it, when the title text is set later), a
    top legend (:data:`LEGEND_TOP`, one row, placed under the title) and subplot titles; ``margin``
    sets the other sides. Change the height afterwards with :func:`set_height`.
    """
    text = wrap_title(title)
    lines = title_lines(text) if lines is None else lines
    top_legend = legend is not None and legend.get("y", 0) >= 1
    if top_legend:
        legend = {**legend, "yref": "container", "yanchor": "top"}
    # subplot titles sit just above their panels, in the top margin
    sub = [a.text for a in fig.layout.annotations
           if a.text and a.y is not None and a.y >= 0.999 and a.yanchor == "bottom"]
    sub_lines = max((t.count("<br>") + 1 for t in sub), default=0)
    margin = dict(MARGIN if margin is None else margin)
    margin["t"] = max(margin.get("t", 0),
                      _head(lines) + (LEGEND_ROW if top_legend else 0) + 20 * sub_lines + 12)
    fig.update_layout(template=TEMPLATE, font=FONT, height=height,
                      title=dict(text=text, x=0.01, xanchor="left", yref="container", yanchor="top"),
                      margin=margin, hoverlabel=dict(namelength=-1))
    if legend is not None:
        fig.update_layout(legend=legend)
    _place_head(fig, lines, top_legend)
    return fig


def require_plotting(module: str) -> None:
    """Raise a clear ImportError naming what ``module`` needs when plotly is not installed."""
    try:
        import plotly  # noqa: F401  (only whether it imports matters)
    except ImportError as exc:
        raise ImportError(f"{module} draws with plotly, which is not installed. Install the plotting "
                          "extra: pip install 'sheaflab[viz]' (plotly, ipywidgets, anywidget)") from exc
