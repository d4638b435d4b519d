"""Sphinx extension: the built book draws its figures offline, from files it serves itself.

Registered in ``_config.yml`` (``sphinx: local_extensions: offline_assets: book/_ext``). It does four
things for HTML builders:

1. **Plotly figures.** Plotly 6+ in a kernel displays a figure as one mime bundle,
   ``application/vnd.plotly.v1+json``, which JupyterLab renders natively but which myst-nb has no
   renderer for (it warns and drops it). This extension adds a myst-nb mime renderer for that type:
   the figure JSON becomes the same ``<div class="plotly-graph-div">`` + ``Plotly.newPlot(...)`` HTML
   that ``plotly.io.to_html`` writes (frames, sliders and buttons included; no autoplay), and the page
   gets one ``<script src=".../_vendor/plotly.min.js">``. Notebooks need nothing special: display a
   ``go.Figure`` (last expression or ``fig.show()``) and leave plotly's default renderer alone.
   The plotly JSON outranks ``text/html`` in the priority list, so a figure shown with a
   ``plotly_mimetype+...`` renderer is drawn the same way.

2. **plotly.js from the book itself.** ``plotly.min.js`` is copied from the installed plotly wheel
   (``plotly/package_data/plotly.min.js``) to ``<outdir>/_static/_vendor/plotly.min.js``: the version
   always matches the Python package, and nothing is committed for it.

3. **Other vendored bundles.** ``book/_vendor/`` (the ipywidgets embed manager and MathJax 3,
   re-vendored with ``book/_vendor/update.sh``) is copied to ``<outdir>/_static/_vendor/``.
   ``_config.yml`` points ``mathjax_path`` and ``nb_ipywidgets_js`` at them as ``_vendor/...``: like
   every relative script path in Sphinx, that is relative to ``_static`` and rewritten per page, so
   pages in subfolders (``labs/...``) work too. If either setting names a URL (a CDN) or a file that
   is not vendored, the build warns (and ``-W`` fails it).

4. **Widgets next to MathJax 3.** ipywidgets' controls typeset descriptions with MathJax 2's
   ``MathJax.Hub.Queue`` whenever ``window.MathJax`` exists; MathJax 3 has no ``Hub``, so every
   widget with a description throws on a page that also has math. Pages with widget state get a
   few lines that map ``Hub.Queue`` onto MathJax 3's ``typesetPromise``.

5. **The book's own stylesheet.** ``book/_ext/book.css`` (figures that fill their cell, code cells
   that wrap) is copied to ``<outdir>/_static/sheaflab-book.css`` and linked from every page.

8. **Figures in dark mode and on a phone.** Pages with a figure load
   ``<outdir>/_static/sheaflab-figures.js``, a copy of ``book/_ext/figures.js``. Each figure carries
   its own phone and dark layouts, designed in Python when it was built
   (:func:`sheaflab.style.store_variants`, in ``layout.meta.sheaflab``); the script only applies
   them with ``Plotly.relayout`` / ``Plotly.restyle`` when the theme is dark or the figure is
   narrower than a phone's width, and puts back the stored originals when that stops being so.

6. **Figure config.** Every figure is drawn without plotly's logo in its mode bar, which then shows
   only while the pointer is over the figure (it sits above the figure's title band).

7. **Widget state the page can use.** A live figure of the labs (``sheaflab.widgets``, ``live=True``)
   displays as a bundle of its widget view and its static plotly figure; the page draws the static
   figure. The notebook's widget state still holds the live figure's models, among them plotly's
   FigureWidget, which the embedded widget manager cannot draw (it needs a kernel) and which would
   put megabytes of JavaScript state in the page. Models from modules other than the built-in
   ipywidgets ones are left out of the page, with every model that contains one and every model
   only those contain (their controls, layouts and styles).

Nothing is put in a source ``_static/`` folder at the book root: Jupyter Book would add every script
there to every page. This extension copies the files itself, and each page loads only what it needs
(plotly.js where a figure is, the widget manager where widget state is, MathJax where math is).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

__version__ = "1.0"

logger = logging.getLogger(__name__)

PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: Folder of everything served offline, inside the output's _static (Sphinx's relative script
#: paths are relative to _static).
VENDOR = "_vendor"
PLOTLY_JS = f"{VENDOR}/plotly.min.js"
#: Source of the committed bundles: book/_vendor, next to this extension's folder.
VENDOR_SRC = Path(__file__).resolve().parent.parent / VENDOR
#: Files in book/_vendor that are repository tooling, not served.
NOT_SERVED = ("update.sh", "VENDORED.txt")
#: The book's stylesheet, next to this extension, and its name in the output's _static.
BOOK_CSS_SRC = Path(__file__).resolve().parent / "book.css"
BOOK_CSS = "sheaflab-book.css"
#: The figures' dark mode and phone layout (point 8): source next to this extension, name in _static.
FIGURES_JS_SRC = Path(__file__).resolve().parent / "figures.js"
FIGURES_JS = "sheaflab-figures.js"
#: Plotly config for every figure of the book (a figure's own config wins).
FIGURE_CONFIG = {"displaylogo": False, "displayModeBar": "hover", "responsive": True}
#: Height of a figure whose layout sets none (what plotly's notebook renderer uses).
DEFAULT_HEIGHT_PX = 525


#: Runs before the widget manager renders (it waits for ``load``; deferred MathJax has run by
#: ``DOMContentLoaded``): gives MathJax 3 the MathJax 2 call that ipywidgets' controls make.
WIDGETS_MATHJAX3_SHIM = """document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (mj && mj.version && String(mj.version).charAt(0) === "3" && !mj.Hub) {
    mj.Hub = {Queue: function (cmd) {
      var el = cmd && cmd[2];
      if (mj.typesetPromise) { mj.typesetPromise(el ? [el] : undefined).catch(function () {}); }
    }};
  }
});"""


def _html_builders() -> list[str]:
    """Names of the builders in myst-nb's priority table that render text/html."""
    from myst_nb.core.render import base_render_priority

    return sorted(name for name, prio in base_render_priority().items() if "text/html" in prio)


def figure_html(figure: dict[str, Any], div_id: str) -> str:
    """The HTML for one figure JSON (data/layout/frames/config), drawn by a global ``Plotly``."""
    import plotly.io as pio

    config = {**FIGURE_CONFIG, **(figure.get("config") or {})}
    body = {k: v for k, v in figure.items() if k != "config"}
    return pio.to_html(
        body,
        config=config,
        auto_play=False,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        div_id=div_id,
        default_width="100%",
        default_height=DEFAULT_HEIGHT_PX,
        validate=False,
    )


def figures_js() -> str:
    """book/_ext/figures.js (point 8): the figures bring their own layouts, so it needs no settings."""
    return FIGURES_JS_SRC.read_text(encoding="utf-8")


class PlotlyMimeRenderer:
    """myst-nb mime renderer plugin (``myst_nb.core.render.MimeRenderPlugin``) for plotly JSON."""

    #: Plotly JSON first (before widget views and text/html) on every HTML builder.
    mime_priority_overrides = [(name, PLOTLY_MIME, 5) for name in _html_builders()]

    @staticmethod
    def handle_mime(renderer, data, inline: bool):
        if data.mime_type != PLOTLY_MIME:
            return None
        content = data.content
        if isinstance(content, str):  # a notebook saved with the JSON as text
            content = json.loads(content)
        digest = hashlib.sha1(
            json.dumps(content, sort_keys=True, default=str).encode()
            + f"{data.cell_index}/{data.output_index}".encode()
        ).hexdigest()[:16]
        html = figure_html(content, f"plotly-{digest}")
        # Per page: myst-nb stores it and adds the <script> in html-page-context (path made relative).
        renderer.add_js_file("plotly_js", PLOTLY_JS, {})
        renderer.add_js_file("sheaflab_figures", FIGURES_JS, {})
        return [nodes.raw("", html, format="html", classes=["output", "text_html"])]


#: Widget modules the embedded manager draws without a kernel.
BUILT_IN_WIDGET_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls",
                           "@jupyter-widgets/output"}


def _model_refs(value: Any) -> set[str]:
    """Model ids referenced (``"IPY_MODEL_<id>"``) anywhere inside a widget's state."""
    if isinstance(value, str):
        return {value[len("IPY_MODEL_"):]} if value.startswith("IPY_MODEL_") else set()
    if isinstance(value, dict):
        return set().union(*(_model_refs(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_model_refs(v) for v in value)) if value else set()
    return set()


def page_widget_state(state: dict[str, Any]) -> dict[str, Any]:
    """The models of a notebook's widget state that a static page can draw (see point 7)."""
    refs = {mid: _model_refs(m.get("state", {})) for mid, m in state.items()}
    drop = {mid for mid, m in state.items() if m.get("model_module") not in BUILT_IN_WIDGET_MODULES}
    while True:  # containers of dropped models
        more = {mid for mid in state if mid not in drop and refs[mid] & drop}
        if not more:
            break
        drop |= more
    while True:  # models only dropped ones refer to
        kept_refs = set().union(*(refs[mid] for mid in state if mid not in drop)) if state else set()
        dropped_refs = set().union(*(refs[mid] for mid in drop)) if drop else set()
        more = {mid for mid in dropped_refs - kept_refs if mid in state and mid not in drop}
        if not more:
            break
        drop |= more
    return {mid: m for mid, m in state.items() if mid not in drop}


def _install_widget_state_filter() -> None:
    """Filter the widget state myst-nb embeds in a page through :func:`page_widget_state`."""
    from myst_nb.core import render

    original = render.NbElementRenderer.render_nb_finalise
    if getattr(original, "_offline_assets", False):
        return

    def render_nb_finalise(self, metadata: dict) -> None:
        widgets = metadata.get("widgets") or {}
        mime = widgets.get(render.WIDGET_STATE_MIMETYPE) or {}
        if mime.get("state"):
            mime = {**mime, "state": page_widget_state(mime["state"])}
            metadata = {**metadata, "widgets": {**widgets, render.WIDGET_STATE_MIMETYPE: mime}}
        return original(self, metadata)

    render_nb_finalise._offline_assets = True  # type: ignore[attr-defined]
    render.NbElementRenderer.render_nb_finalise = render_nb_finalise


def _install_mime_renderer() -> None:
    """Add :class:`PlotlyMimeRenderer` to the plugins myst-nb loads from entry points.

    myst-nb only discovers mime renderers through the ``myst_nb.mime_renderers`` entry point group,
    which a local extension cannot declare; so the module-level loader is wrapped (it is looked up
    at call time). myst-nb is pinned; if a release moves this, the build stops here, loudly.
    """
    from sphinx.errors import ExtensionError

    try:
        from myst_nb.core import render
    except ImportError as exc:  # pragma: no cover - myst-nb is a Jupyter Book dependency
        raise ExtensionError("offline_assets needs myst-nb") from exc
    original = getattr(render, "load_mime_renders", None)
    if original is None or not hasattr(render, "MimeData"):
        raise ExtensionError(
            "offline_assets: myst_nb.core.render.load_mime_renders not found; this myst-nb version "
            "is not supported (plotly figures would be dropped)"
        )
    if getattr(original, "_offline_assets", False):
        return

    def load_mime_renders():
        return [*original(), PlotlyMimeRenderer]

    load_mime_renders._offline_assets = True  # type: ignore[attr-defined]
    render.load_mime_renders = load_mime_renders


def _check_offline_config(app: Sphinx) -> None:
    """Warn when MathJax or the widget manager would load from the network or a missing file."""
    wanted = {"mathjax_path": [app.config.mathjax_path]}
    widgets_js = getattr(app.config, "nb_ipywidgets_js", None) or {}
    wanted["nb_ipywidgets_js"] = list(widgets_js)
    for setting, uris in wanted.items():
        for uri in uris:
            if "://" in uri or uri.startswith("//"):
                logger.warning(
                    f"offline_assets: {setting} loads {uri} from the network; "
                    f"vendor it under book/{VENDOR}/ instead",
                    type="offline_assets",
                    subtype="cdn",
                )
            elif uri.startswith(f"{VENDOR}/") and not (VENDOR_SRC / uri[len(VENDOR) + 1 :]).is_file():
                logger.warning(
                    f"offline_assets: {setting} names {uri}, which is not in book/{VENDOR}/ "
                    "(run book/_vendor/update.sh)",
                    type="offline_assets",
                    subtype="missing",
                )


def _copy_assets(app: Sphinx) -> None:
    """Copy book/_vendor and plotly.min.js to <outdir>/_static/_vendor (before pages are written,
    so that Sphinx appends ``?v=<checksum>`` to their URLs)."""
    if app.builder is None or app.builder.format != "html":
        return
    _check_offline_config(app)
    dest = Path(app.outdir) / "_static" / VENDOR
    dest.mkdir(parents=True, exist_ok=True)
    if VENDOR_SRC.is_dir():
        shutil.copytree(
            VENDOR_SRC, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_SERVED)
        )
    shutil.copyfile(BOOK_CSS_SRC, Path(app.outdir) / "_static" / BOOK_CSS)
    (Path(app.outdir) / "_static" / FIGURES_JS).write_text(figures_js(), encoding="utf-8")
    plotly_js = resources.files("plotly") / "package_data" / "plotly.min.js"
    with resources.as_file(plotly_js) as src:
        target = dest / "plotly.min.js"
        if not target.is_file() or target.read_bytes() != src.read_bytes():
            shutil.copyfile(src, target)


def _widget_pages_shim(app: Sphinx, pagename: str, *args: Any) -> None:
    """On pages that carry ipywidgets state, add :data:`WIDGETS_MATHJAX3_SHIM`."""
    if app.builder is None or app.builder.format != "html" or app.env is None:
        return
    from myst_nb.sphinx_ import NbMetadataCollector

    if "ipywidgets_state" in NbMetadataCollector.get_js_files(app.env, pagename):
        app.add_js_file(None, body=WIDGETS_MATHJAX3_SHIM)


def _drop_repeated_inline_scripts(app: Sphinx, pagename: str, templatename: str, context: dict,
                                  doctree: Any) -> None:
    """Keep one copy of each inline script on a page.

    sphinx-thebe adds its inline ``const THEBE_JS_URL = ...`` configuration once per build
    environment it sees, and under Jupyter Book 1 that is twice (once with the file name ``None``,
    once with ``""``, so Sphinx does not see them as equal): the second copy throws "Identifier
    'THEBE_JS_URL' has already been declared" in the browser on every page.
    """
    seen, kept = set(), []
    for js in context.get("script_files", []):
        attributes = getattr(js, "attributes", None)
        if attributes is not None and attributes.get("body") and not getattr(js, "filename", None):
            key = tuple(sorted(attributes.items()))
            if key in seen:
                continue
            seen.add(key)
        kept.append(js)
    context["script_files"][:] = kept     # in place: the builder adds later scripts to this list


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("myst_nb")
    _install_mime_renderer()
    _install_widget_state_filter()
    app.connect("builder-inited", _copy_assets)
    app.add_css_file(BOOK_CSS)
    app.connect("html-page-context", _widget_pages_shim)
    # late (priority 900): after every extension has added its page scripts
    app.connect("html-page-context", _drop_repeated_inline_scripts, priority=900)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
