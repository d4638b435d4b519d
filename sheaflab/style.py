"""One look for every figure of the book and the labs, static and live: palette, template, layout.

Each styled figure also carries its variants for the book's pages (:func:`store_variants`): its
layout on a phone and its colours in dark mode, designed here as plain plotly updates, so that the
browser (book/_ext/figures.js) only applies them.

Importing it needs no plotly (it works on plain dicts, and on figures it is given), so that the
optional plotting packages stay optional; :func:`require_plotting` turns their absence into a
clear error.
"""

from __future__ import annotations

import re

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

#: Tick labels. Plotly labels the ticks of a log axis between decades with bare digits (2, 3 ... 9),
#: which run together on a short axis (and on a phone): every axis of a styled figure labels
#: decades only (``minorloglabels``, which a linear axis ignores), and :func:`store_variants` gives
#: each log axis it finds labels in powers of ten (10⁻³), or, where its data span fewer than
#: ``decades`` decade ticks, labels at 1, 2 and 5 times each power, written out (0.02). Set an
#: axis' type before the style (or call :func:`store_variants` after). On a phone a log x axis
#: shows at most one label per ``phone_label_px`` px of its length (a power of ten is wide).
TICKS = {"decades": 2, "phone_label_px": 60}


#: The figures in the book theme's dark mode. Every figure carries its dark variant
#: (:func:`store_variants`, through :func:`dark_template`), which the book's pages switch to in the
#: browser (book/_ext/figures.js; nothing needs a kernel):
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

#: The figures on a phone. Below ``width`` px of figure, the book's pages switch every figure to
#: its phone layout, which :func:`store_variants` designs here for a figure ``design_width`` px
#: wide (a 390 px phone's column): margins shrink to ``margin`` (axes still make room for their
#: labels), the legend goes under the plot, the title and subplot titles are set smaller and
#: wrapped to the width, and the figure grows by what the legend and the wrapped texts take.
PHONE = {
    "width": 600,
    "design_width": 340,
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


def text_width(text: str, size: float) -> float:
    """Estimated width (px) of the widest line of ``text`` at font ``size``: markup such as ``<sub>``
    not counted, a line set in ``<sup>``/``<sub>`` (a subtitle) at 70% of the size."""
    widths = [0.0]
    for line in str(text).split("<br>"):
        scale = 0.7 if re.match(r"\s*<su[bp]>", line) else 1.0
        widths.append(len(re.sub(r"<[^>]+>", "", line)) * size * scale * PHONE["char_em"])
    return max(widths)


def wrap_title(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` with ``<br>`` between words so that no line is longer than ``width`` characters
    (markup such as ``<sub>`` not counted; a line that opens in ``<sup>`` or ``<sub>``, set smaller,
    gets ``width / 0.7``); existing ``<br>`` breaks are kept."""
    out = []
    for line in text.split("<br>"):
        room = int(width / 0.7) if re.match(r"\s*<su[bp]>", line) else width
        words, cur, cur_len = line.split(" "), [], 0
        for w in words:
            n = len(re.sub(r"<[^>]+>", "", w))
            if cur and cur_len + 1 + n > room:
                out.append(" ".join(cur))
                cur, cur_len = [], 0
            cur.append(w)
            cur_len += n + (1 if cur_len else 0)
        out.append(" ".join(cur))
    return "<br>".join(out)


def wrap_px(text: str, px: float, size: float) -> str:
    """``text`` wrapped (:func:`wrap_title`) so that it fits ``px`` pixels at font ``size``; a text
    that fits already is returned as it is."""
    if not text or text_width(text, size) <= px:
        return text
    return wrap_title(text, max(6, int(px / (size * PHONE["char_em"]))))


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
        store_variants(fig)
    return fig


def apply_style(fig, title: str, height: int, margin: dict | None = None, legend: dict | None = None,
                lines: int | None = None):
    """Give a plotly figure the common look: template, font, height, margins, hover labels, and the
    title under the mode bar's band, wrapped to fit (see :data:`MODEBAR_BAND`).

    The top margin grows to hold the title (``lines`` of it, when the title text is set later), a
    top legend (:data:`LEGEND_TOP`, one row, placed under the title) and subplot titles; ``margin``
    sets the other sides. Change the height afterwards with :func:`set_height`. The figure carries
    its phone and dark variants (:func:`store_variants`) for the book's pages.
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
    # every axis there is (a go.Figure's first two included): decade labels only on a log axis,
    # also where the axis turns log after the style
    fig.update_layout(xaxis_minorloglabels="none", yaxis_minorloglabels="none")
    fig.update_xaxes(minorloglabels="none")
    fig.update_yaxes(minorloglabels="none")
    _place_head(fig, lines, top_legend)
    return store_variants(fig)


# ---------------------------------------------------------------------------------------------
# Variants for the book's pages: the phone layout and the dark colours of a figure, designed here
# when the figure is built and stored in it, so that the browser only applies them.

#: Height (px) of a slider under a figure (rail, step labels and current value).
SLIDER_BAND = 90
#: Height (px) of a text line in a horizontal legend; each row adds 10 px of gaps.
LEGEND_LINE = 17


def _get(tree, path: str):
    """The value at a plotly attribute path ("legend.x", "annotations[2].font.size") of a plain
    layout or trace dict, or None where it is not set."""
    for part in re.sub(r"\[(\d+)\]", r".\1", path).split("."):
        if isinstance(tree, dict):
            tree = tree.get(part)
        elif isinstance(tree, (list, tuple)) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return None
    return tree


def _near_black(colour) -> bool:
    """Too dark to read on :data:`DARK`'s background (grey #888 and the palette's colours are not)."""
    if not isinstance(colour, str):
        return False
    c = colour.strip().lower()
    if c == "black":
        rgb = (0, 0, 0)
    elif m := re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", c):
        h = m[1] if len(m[1]) == 6 else "".join(ch * 2 for ch in m[1])
        rgb = tuple(int(h[k:k + 2], 16) for k in (0, 2, 4))
    elif m := re.match(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)", c):
        rgb = tuple(float(v) for v in m.groups())
    else:
        return False
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 60


def _dark_paths(tree, prefix: str = "") -> list:
    """(path, colour) of every near-black colour attribute in a plain dict (colour scales kept)."""
    out = []
    for key, value in (tree or {}).items():
        if key.endswith("color") and _near_black(value):
            out.append((prefix + key, value))
        elif isinstance(value, dict) and "colorscale" not in key:
            out += _dark_paths(value, f"{prefix}{key}.")
    return out


class _Phone:
    """The phone layout of one figure (a plain layout dict ``L`` and its traces), in pixels of a
    figure :data:`PHONE` ``["design_width"]`` wide."""

    def __init__(self, L: dict, traces: list):
        self.L, self.traces = L, traces
        self.W = PHONE["design_width"]
        margin = L.get("margin") or {}
        self.H = L.get("height") or 450
        # the plot area keeps its desktop height; the figure grows around it
        self.plot_h = max(self.H - margin.get("t", 100) - margin.get("b", 80), 150)
        right = any(_get(L, f"{k}.side") == "right" for k in L if _is_axis(k)) or any(
            t.get("type") in ("heatmap", "contour") and t.get("showscale") is not False for t in traces)
        # plot width: the figure less the margins, the y axis' labels and a right axis or colour bar
        self.plot_w = self.W - 20 - 60 - (50 if right else 0)

    # -- what each text becomes ------------------------------------------------------------------

    def title(self, text):
        """The title wrapped afresh to the phone's width: its breaks are taken for the desktop's
        wrapping, except those before a subtitle (a line in ``<sup>`` or ``<sub>``)."""
        if not isinstance(text, str):
            return text
        text = re.sub(r"<br>(?!\s*<su[bp]>)", " ", text)
        return wrap_px(text, self.W - 24, PHONE["title_size"])

    def subplot_column(self, a: dict) -> float:
        """The paper width of the column of panels a subplot title (make_subplots' annotations:
        paper coordinates, centred over its column, just above a panel) stands over; 0 if ``a``
        is not one."""
        if a.get("xref") != "paper" or a.get("yref") != "paper" or a.get("yanchor") != "bottom" \
                or a.get("showarrow") is not False:
            return 0.0
        for k in self.L:
            d = _get(self.L, f"{k}.domain") if k.startswith("xaxis") and _is_axis(k) else None
            if d and abs((d[0] + d[1]) / 2 - (a.get("x") or 0)) < 0.005:
                return d[1] - d[0]
        return 0.0

    def annotation(self, a: dict) -> tuple:
        """(text, font size) of an annotation on the phone: a subplot title set smaller and
        wrapped to its column, another label wrapped to a third of the plot's width."""
        column = self.subplot_column(a)
        if column:
            size = PHONE["subtitle_size"]
            return wrap_px(a.get("text") or "", column * self.plot_w, size), size
        size = _get(a, "font.size") or FONT["size"]
        return wrap_px(a.get("text") or "", 0.3 * self.plot_w, size), size

    def shapes(self, shapes):
        """Shapes with their labels wrapped to a third of the plot's width (the timescale
        diagram's marker lines would run into each other across a narrow plot)."""
        out = []
        for sh in shapes or []:
            text = _get(sh, "label.text")
            if text:
                size = _get(sh, "label.font.size") or 12
                sh = {**sh, "label": {**sh["label"], "text": wrap_px(text, 0.3 * self.plot_w, size)}}
            out.append(sh)
        return out

    def step_args(self, update: dict) -> dict:
        """A slider step's layout update with the texts it sets made the phone's."""
        out = {}
        for key, value in update.items():
            if key == "title.text":
                value = self.title(value)
            elif key == "shapes":
                value = self.shapes(value)
            elif (m := re.fullmatch(r"annotations\[(\d+)\]\.text", key)) and int(m[1]) < len(self.annotations):
                value = self.annotation({**self.annotations[int(m[1])], "text": value})[0]
            out[key] = value
        return out

    # -- the layout ------------------------------------------------------------------------------

    def layout(self) -> tuple:
        """(layout update, trace updates) of the phone layout."""
        L, upd = self.L, {}
        self.annotations = list(L.get("annotations") or [])
        sliders = list(L.get("sliders") or [])
        # slider steps that set texts: their phone versions
        step_layouts = []
        for k, sl in enumerate(sliders):
            steps = []
            for st in sl.get("steps") or []:
                args = list(st.get("args") or [])
                at = {"update": 1, "relayout": 0}.get(st.get("method"))
                if at is not None and len(args) > at and isinstance(args[at], dict):
                    args[at] = self.step_args(args[at])
                    step_layouts.append(args[at])
                steps.append({**st, "args": args})
            if steps != list(sl.get("steps") or []):
                upd[f"sliders[{k}].steps"] = steps
            upd.update({f"sliders[{k}].x": 0, f"sliders[{k}].len": 1, f"sliders[{k}].yanchor": "top"})

        # title: smaller, wrapped, at the left edge under the mode bar's band
        title = _get(L, "title.text") or ""
        phone_title = self.title(title)
        if phone_title != title:
            upd["title.text"] = phone_title
        lines = max([title_lines(phone_title)] + [title_lines(u["title.text"]) for u in step_layouts
                                                  if "title.text" in u])
        # annotations: subplot titles set smaller and wrapped; the band above the top panels
        band, lowered = 0.0, {}
        for i, a in enumerate(self.annotations):
            text, size = self.annotation(a)
            texts = [text] + [u[f"annotations[{i}].text"] for u in step_layouts if f"annotations[{i}].text" in u]
            if text != (a.get("text") or ""):
                upd[f"annotations[{i}].text"] = text
            if self.subplot_column(a):
                upd[f"annotations[{i}].font.size"] = size
            need = max(title_lines(t) for t in texts) * size * 1.3 + 4
            if a.get("yanchor") == "bottom" and self._panel_top(a) >= 0.999:
                band = max(band, need)
            elif self.subplot_column(a):
                # a title above a lower panel sits in the gap between panels, made for one line at
                # make_subplots' font: the panel's top comes down by what more it needs
                extra = need - (16 * 1.3 + 4)
                if extra > 0:
                    lowered[i] = extra
        for i, extra in lowered.items():
            a = self.annotations[i]
            top = a["y"] - extra / self.plot_h
            for k in L:
                d = _get(L, f"{k}.domain") if k.startswith("yaxis") and _is_axis(k) else None
                if d and abs(d[1] - a["y"]) < 0.005 and top > d[0]:
                    upd[f"{k}.domain"] = [d[0], top]
            upd[f"annotations[{i}].y"] = top
        phone_shapes = self.shapes(L.get("shapes"))
        if phone_shapes != list(L.get("shapes") or []):
            upd["shapes"] = phone_shapes
        for sh in phone_shapes + [s for u in step_layouts for s in u.get("shapes", [])]:
            text = _get(sh, "label.text")
            if text and sh.get("yref") == "paper" and max(sh.get("y0", 0), sh.get("y1", 0)) >= 0.999:
                band = max(band, title_lines(text) * (_get(sh, "label.font.size") or 12) * 1.3 + 4)

        # axis titles: at most the phone's size, wrapped to the axis' length
        x_lines, ticks = 0, 30
        # every axis, and the first two even where unset yet: a title given after the style
        # (a notebook's update_layout(xaxis_title=...)) is set at the phone's size too
        for k in sorted({k for k in L if _is_axis(k)} | {"xaxis", "yaxis"}):
            text = _get(L, f"{k}.title.text")
            if _get(L, f"{k}.tickangle"):
                ticks = 70
            size = min(_get(L, f"{k}.title.font.size") or 16, PHONE["axis_title_size"])
            upd[f"{k}.title.font.size"] = size
            d = _get(L, f"{k}.domain") or [0, 1]
            room = (d[1] - d[0]) * (self.plot_w if k[0] == "x" else self.plot_h)
            if k[0] == "x" and _get(L, f"{k}.type") == "log" and _get(L, f"{k}.dtick") is None:
                # plotly spaces a log axis' ticks for short labels: powers of ten need more room
                upd[f"{k}.nticks"] = max(2, int(room // TICKS["phone_label_px"]))
            if not text:
                continue
            wrapped = wrap_px(text, room, size)
            if wrapped != text:
                upd[f"{k}.title.text"] = wrapped
            if k[0] == "x":
                x_lines = max(x_lines, title_lines(wrapped))
        x_band = ticks + x_lines * PHONE["axis_title_size"] * 1.3 + 6

        # legend: horizontal under the plot (and under its sliders), its long entries wrapped
        traces, legend_h = self._legend(upd, x_band + SLIDER_BAND * len(sliders), bool(sliders))
        for k in range(len(sliders)):
            upd[f"sliders[{k}].y"] = -x_band / self.plot_h

        # margins, title position and height
        top = MODEBAR_BAND + (13 if lines > 1 else 0)
        t = round(top + lines * 20 + 8 + band)
        below = x_band + SLIDER_BAND * len(sliders) + legend_h + 8
        height = round(t + self.plot_h + sum(lowered.values()) + below)
        m = L.get("margin") or {}
        upd.update({
            "margin.l": min(m.get("l", 80), PHONE["margin"]["l"]),
            "margin.r": min(m.get("r", 80), PHONE["margin"]["r"]),
            # with sliders the bottom margin holds them (and the legend under them); else the axes
            # and the legend take what they need
            "margin.b": round(below) if sliders else PHONE["margin"]["b"],
            "margin.t": t, "height": height, "autosize": True, "width": None,
            "title.font.size": PHONE["title_size"], "title.x": 0, "title.xref": "container",
            "title.xanchor": "left", "title.pad.l": 8, "title.yref": "container",
            "title.yanchor": "top", "title.y": 1 - top / height,
        })
        return upd, traces

    def _panel_top(self, a: dict) -> float:
        """The top (paper) of the panel an annotation refers to: 1 for paper coordinates."""
        yref = str(a.get("yref") or "paper")
        if yref == "paper":
            return a.get("y") or 0
        axis = "yaxis" + yref.split()[0][1:]
        d = _get(self.L, f"{axis}.domain") or [0, 1]
        return d[1] if (a.get("y") or 0) >= 0.999 else 0

    def _legend(self, upd: dict, above: float, paper: bool) -> tuple:
        """Trace updates (long names wrapped) and the legend's estimated height; the legend's
        phone placement goes into ``upd``."""
        # the entries shown now (a slider that switches traces shows as many at every step)
        entries = [(i, t.get("name")) for i, t in enumerate(self.traces)
                   if t.get("showlegend") is not False and t.get("visible") is not False
                   and t.get("type") not in ("heatmap", "contour") and isinstance(t.get("name"), str)]
        shown = self.L.get("showlegend")
        if shown is False or (shown is None and len(entries) < 2):
            return [], 0
        size = _get(self.L, "legend.font.size") or FONT["size"]
        room = self.W - 60  # the entry's symbol and the legend's padding
        traces, rows, row_w, extra = [], 1, 0.0, 0
        for i, name in entries:
            wrapped = wrap_px(name, room, size)
            if wrapped != name:
                traces.append([i, {"name": wrapped}])
            w = 40 + text_width(wrapped, size)
            if row_w and row_w + w > self.W - 10:
                rows, row_w = rows + 1, 0.0
            row_w += w
            extra += title_lines(wrapped) - 1
        height = rows * (LEGEND_LINE + 10) + extra * LEGEND_LINE + 12
        if paper:   # under the sliders, which plotly places in paper coordinates
            upd.update({"legend.orientation": "h", "legend.xref": "paper", "legend.x": 0,
                        "legend.xanchor": "left", "legend.yref": "paper", "legend.y": -above / self.plot_h,
                        "legend.yanchor": "top"})
        else:       # at the figure's bottom edge, across its width (plotly keeps the axes above it)
            upd.update({"legend.orientation": "h", "legend.xref": "container", "legend.x": 0,
                        "legend.xanchor": "left", "legend.yref": "container", "legend.y": 0,
                        "legend.yanchor": "bottom"})
        return traces, height


def _is_axis(key: str) -> bool:
    """Whether a layout key names an axis ("xaxis", "yaxis3")."""
    return re.fullmatch(r"[xy]axis\d*", key) is not None


def variants(fig) -> dict:
    """The figure's variants for the book's pages, as plain plotly updates:
    ``{"below": px, "phone": u, "desktop": u, "dark": u, "light": u}``, each ``u`` being
    ``{"layout": relayout update, "traces": [[trace index, restyle update], ...]}``.

    ``phone`` lays the figure out for a phone (:data:`PHONE`) and ``desktop`` puts back what it
    changes; ``dark`` draws it with :func:`dark_template`, its near-black trace, shape and
    annotation colours in :data:`DARK` ``["ink"]``, and ``light`` puts those back. The phone and
    the dark updates touch different attributes, so either can be on or off independently.
    """
    L = fig.layout.to_plotly_json()
    L.pop("meta", None)
    traces = [t.to_plotly_json() for t in fig.data]
    phone, phone_traces = _Phone(L, traces).layout()
    dark, light = {"template": _dark_template()}, {"template": L.get("template")}
    for key in ("shapes", "annotations"):
        for i, item in enumerate(L.get(key) or []):
            for path, colour in _dark_paths(item):
                dark[f"{key}[{i}].{path}"], light[f"{key}[{i}].{path}"] = DARK["ink"], colour
    dark_traces, light_traces = [], []
    for i, tr in enumerate(traces):
        paths = _dark_paths(tr)
        if paths:
            dark_traces.append([i, {p: DARK["ink"] for p, _ in paths}])
            light_traces.append([i, dict(paths)])
    return {
        "below": PHONE["width"],
        "phone": {"layout": phone, "traces": phone_traces},
        "desktop": {"layout": {k: _get(L, k) for k in phone},
                    "traces": [[i, {k: _get(traces[i], k) for k in u}] for i, u in phone_traces]},
        "dark": {"layout": dark, "traces": dark_traces},
        "light": {"layout": light, "traces": light_traces},
    }


def _axis_data(fig, L: dict, key: str) -> list:
    """The positive finite values that axis ``key`` ("xaxis2") shows: its traces' coordinates (and
    error bars), over every axis it is matched with, and a range set on it or by a slider step.
    L: the figure's layout as plotly JSON (``fig.layout.to_plotly_json()``)."""
    import numpy as np

    letter = key[0]
    ref = lambda k: letter + k[5:]  # "xaxis2" -> "x2"
    # the axes that show one range: matched with one another (make_subplots' shared axes)
    same = {k: {k} for k in L if _is_axis(k) and k[0] == letter}
    same.setdefault(key, {key})
    for k in list(same):
        m = _get(L, f"{k}.matches")
        other = next((o for o in same if ref(o) == m), None)
        if other is not None:
            joined = same[k] | same[other]
            for o in joined:
                same[o] = joined
    group = same[key]
    refs = {ref(g) for g in group}
    values = []
    for tr in fig.data:
        if (getattr(tr, f"{letter}axis", None) or letter) not in refs:
            continue
        v = getattr(tr, letter, None)
        if v is None:
            continue
        try:
            arr = np.asarray(v, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            continue
        values.append(arr)
        err = getattr(tr, f"error_{letter}", None)
        if err is not None and err.array is not None:
            plus = np.asarray(err.array, dtype=np.float64).ravel()
            minus = np.asarray(err.arrayminus if err.arrayminus is not None else err.array,
                               dtype=np.float64).ravel()
            if plus.size == arr.size and minus.size == arr.size:
                values += [arr + plus, arr - minus]
    ranges = [_get(L, f"{g}.range") for g in group]
    for sl in L.get("sliders") or []:
        for st in sl.get("steps") or []:
            for arg in st.get("args") or []:
                if isinstance(arg, dict):
                    ranges += [arg.get(f"{g}.range") for g in group]
    for r in ranges:
        if isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r):
            values.append(10.0 ** np.asarray(r, dtype=np.float64))  # a log axis' range is in log10
    if not values:
        return []
    flat = np.concatenate(values)
    return flat[np.isfinite(flat) & (flat > 0)].tolist()


def _log_ticks(fig) -> None:
    """Tick labels of every log axis of the figure (see :data:`TICKS`); an axis with ticks set by
    hand (``dtick``, ``tickvals``) is left as it is."""
    import math

    L = fig.layout.to_plotly_json()
    for key in sorted(k for k in L if _is_axis(k) and _get(L, f"{k}.type") == "log"):
        if _get(L, f"{key}.dtick") is not None or _get(L, f"{key}.tickvals") is not None \
                or _get(L, f"{key}.tickmode") == "array":
            continue
        values = _axis_data(fig, L, key)
        axis = fig.layout[key]
        if not values:
            axis.update(minorloglabels="none", exponentformat="power")
            continue
        lo, hi = math.log10(min(values)), math.log10(max(values))
        decade_ticks = math.floor(hi + 1e-9) - math.ceil(lo - 1e-9) + 1
        if decade_ticks >= TICKS["decades"]:
            axis.update(minorloglabels="none", exponentformat="power")
        elif hi - lo > 0.3:
            # 1, 2 and 5 times each power, labelled in full (every digit would crowd a decade's top)
            axis.update(dtick="D2", minorloglabels="complete", exponentformat="none")
        else:
            # a fraction of a decade: plotly's own ticks, labelled in full
            axis.update(minorloglabels="complete", exponentformat="none")


def store_variants(fig):
    """Store :func:`variants` in the figure, as ``layout.meta["sheaflab"]``, where the book's
    figures.js finds them, after giving its log axes their tick labels (:data:`TICKS`).
    :func:`apply_style` and :func:`set_height` call it; call it again after changing a styled
    figure's texts, legend, sliders or axis types."""
    _log_ticks(fig)
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    fig.layout.meta = {**{k: v for k, v in meta.items() if k != "sheaflab"}, "sheaflab": variants(fig)}
    return fig


_DARK_TEMPLATE: dict | None = None


def _dark_template() -> dict:
    """:func:`dark_template`, computed once (every figure carries a copy)."""
    global _DARK_TEMPLATE
    if _DARK_TEMPLATE is None:
        _DARK_TEMPLATE = dark_template()
    return _DARK_TEMPLATE


def require_plotting(module: str) -> None:
    """Raise a clear ImportError naming what ``module`` needs when plotly is not installed."""
    try:
        import plotly  # noqa: F401  (only whether it imports matters)
    except ImportError as exc:
        raise ImportError(f"{module} draws with plotly, which is not installed. Install the plotting "
                          "extra: pip install 'sheaflab[viz]' (plotly, ipywidgets, anywidget)") from exc
