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
#: A horizontal legend above the plot area, right-aligned.
LEGEND_TOP = dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0)
#: A horizontal legend under the plot area, clear of the title and of plotly's mode bar.
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0.0)
MARGIN = dict(l=70, r=30, t=90, b=60)


def trainer_color(label: str) -> str | None:
    """The palette colour of a curve label that names a trainer ("sheaf ..." or "SGD ..."), else None."""
    low = label.lower()
    return COLORS["sheaf"] if "sheaf" in low else COLORS["sgd"] if "sgd" in low else None


def apply_style(fig, title: str, height: int, margin: dict | None = None, legend: dict | None = None):
    """Give a plotly figure the common look: template, font, title, height, margins, hover labels."""
    fig.update_layout(template=TEMPLATE, font=FONT, height=height, title=dict(text=title, x=0.01),
                      margin=MARGIN if margin is None else margin, hoverlabel=dict(namelength=-1))
    if legend is not None:
        fig.update_layout(legend=legend)
    return fig


def require_plotting(module: str) -> None:
    """Raise a clear ImportError naming what ``module`` needs when plotly is not installed."""
    try:
        import plotly  # noqa: F401  (only whether it imports matters)
    except ImportError as exc:
        raise ImportError(f"{module} draws with plotly, which is not installed. Install the plotting "
                          "extra: pip install 'sheaflab[viz]' (plotly, ipywidgets, anywidget)") from exc
