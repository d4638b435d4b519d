"""The built book renders offline in a real browser: plotly figures (sliders included), ipywidgets
views and math, with every script served by the book itself.

The module builds the book once (``jupyter-book build . --all -W -n --keep-going``) when
``_build/html`` is missing, older than a source, or not from a build that succeeded; serves
``_build/html`` on 127.0.0.1; and opens each page in Debian's headless Chromium, driven over the
DevTools protocol (through ``--remote-debugging-pipe``: standard library only). The browser can
reach 127.0.0.1 and nothing else: host names resolve to nothing and every other address goes to a
dead proxy, so a page that needs a CDN fails here. ``test_network_is_blocked`` proves it with local
servers that the browser must not reach.

When this session's nbval runs the book's notebooks (the full test command does), the build does
not execute them again: the root conftest.py saves each notebook as nbval executed it in
``_build/executed/``, and the book is built (same flags, into the same ``_build/html``) from a copy
of its sources in ``_build/render-src/`` holding those notebooks, marked not to be executed. The
module's tests are marked ``after_notebooks`` and wait for them; a notebook that failed under nbval
fails the build rather than being rendered from partial outputs. Run alone, the module builds
from the sources as above.

Screenshots land in ``_build/test-artifacts/``: ``<page>.png`` (the page) and ``<page>-figN.png``
(each plotly figure), next to ``build.log``. Without chromium (``bash .ci/browser.sh`` installs it)
the tests skip, except under ``CI=true`` where they fail.

Keep every browser test in this module: pytest-xdist's ``--dist loadscope`` then runs them in one
worker, and the book is built and the browser started once.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

# After every notebook: the book is built from the notebooks nbval executed in this session.
pytestmark = pytest.mark.after_notebooks

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
HTML = BUILD / "html"
ARTIFACTS = BUILD / "test-artifacts"
BUILD_OK = ARTIFACTS / "build-ok.json"
#: What the book is built from: a change to any of these rebuilds it.
SOURCES = ["_config.yml", "_toc.yml", "book", "labs", "sheaflab"]
#: What jupyter-book reads, copied to STAGE for a build from nbval's executed notebooks.
BOOK_SOURCES = ["_config.yml", "_toc.yml", "book", "labs"]
STAGE = BUILD / "render-src"

#: Pages to open (paths under _build/html). Every built page that shows a plotly figure or a widget
#: must be listed: test_every_figure_page_is_checked fails otherwise.
PAGES = [
    "book/index.html",
    "book/background.html",
    "book/chapter.html",
    "book/demonstrations.html",
    "book/minima.html",
    "book/comparison.html",
    "book/four_tasks.html",
    "book/practice.html",
    "labs/lab12_sheaf_trainer.html",
    "labs/lab12_solutions.html",
    "labs/exercises.html",
]

#: Console messages known not to come from this book's configuration, as (regex, reason).
#: Each match is reported in the test output, never silently dropped. (None: pydata-sphinx-theme's
#: "Got invalid theme mode" on a first visit came from an unset default mode, which _config.yml
#: now sets.)
KNOWN_CONSOLE_ERRORS: list[tuple[str, str]] = []
#: Widget modules that the vendored embed manager (@jupyter-widgets/html-manager embed.js) bundles.
BUILT_IN_WIDGET_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls",
                           "@jupyter-widgets/output"}
#: Requests the browser makes by itself, not the page (none: the book's favicon link stops the
#: browser's own request for /favicon.ico).
BROWSER_REQUESTS: tuple[str, ...] = ()

BUILD_TIMEOUT = 1200  # seconds; notebooks are executed (the build takes about 2 minutes)
NOTEBOOK_WAIT = 1200  # seconds to wait for the notebooks nbval executes in the other worker
PAGE_TIMEOUT = 45  # seconds for a page to load and draw
WINDOW = (1280, 2000)


# ---------------------------------------------------------------------------------------------
# The build


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for p in path.rglob("*"):
                if p.is_file() and not ({"__pycache__", ".ipynb_checkpoints"} & set(p.parts)):
                    newest = max(newest, p.stat().st_mtime)
    return newest


def _jupyter_book() -> str:
    local = Path(sys.executable).with_name("jupyter-book")
    return str(local) if local.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def chromium_path():
    path = _chromium()
    if path is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("chromium is not installed (CI=true); run: bash .ci/browser.sh")
        pytest.skip("chromium is not installed; run: bash .ci/browser.sh")
    return path


def book_notebooks() -> list[str]:
    """The notebooks the book builds (every one under book/ and labs/), relative to ROOT."""
    return sorted(p.relative_to(ROOT).as_posix() for d in ("book", "labs")
                  for p in (ROOT / d).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _stage(reused: list[str], nbval_run) -> Path:
    """A copy of the book's sources in which each notebook in reused is the one nbval executed in
    this session, marked not to be executed again (myst-nb's notebook-level execution_mode)."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    for name in BOOK_SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, STAGE / name,
                            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            STAGE.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, STAGE / name)
    for rel in reused:
        # json, not nbformat (which sorts keys): the outputs keep the kernel's key order.
        nb = json.loads(nbval_run.export(rel).read_text(encoding="utf-8"))
        nb["metadata"].setdefault("mystnb", {})["execution_mode"] = "off"
        (STAGE / rel).write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")
    return STAGE


def _executed_by_build(log: Path, source: Path) -> list[str]:
    """The notebooks (relative to the book root) that myst-nb executed, from its build log."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    found = set()
    for path in re.findall(r"^(\S+\.ipynb): Executing notebook", text, flags=re.MULTILINE):
        path = Path(path)
        found.add((path if not path.is_absolute() else path.relative_to(source)).as_posix())
    return sorted(found)


@pytest.fixture(scope="module")
def built_book(chromium_path, nbval_run):
    """_build/html, rebuilt when missing, older than a source, or left by a failed build; from
    the notebooks nbval executed in this session where it runs them all, else by executing them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    fresh = (
        (HTML / "index.html").is_file()
        and BUILD_OK.is_file()
        and BUILD_OK.stat().st_mtime >= _newest_source_mtime()
    )
    if not fresh:
        BUILD_OK.unlink(missing_ok=True)
        log = ARTIFACTS / "build.log"
        # --all: Sphinx re-reads only changed pages, so a change to sheaflab or to the book's
        # extension would otherwise leave pages (and their executed outputs) stale.
        flags = ["--all", "-W", "-n", "--keep-going"]
        reused = [nb for nb in book_notebooks() if nb in nbval_run.collected]
        if reused:
            statuses = nbval_run.statuses(reused, NOTEBOOK_WAIT)
            failed = {nb: s["failed"] for nb, s in statuses.items() if s["failed"]}
            if failed:
                pytest.fail("not building the book from partial outputs: these notebooks failed "
                            "under nbval in this session (their cell reports give the cause):\n"
                            + "\n".join(f"{nb}: {'; '.join(f)}" for nb, f in failed.items()))
            for nb in [nb for nb in reused if statuses[nb]["incomplete"]]:
                warnings.warn(f"{nb} is executed again by the book build: "
                              + "; ".join(statuses[nb]["incomplete"]))
                reused.remove(nb)
            source = _stage(reused, nbval_run)
            # The notebooks ran on the sources as they were when this session started.
            inputs_read = nbval_run.started
            cmd = [_jupyter_book(), "build", source.relative_to(ROOT).as_posix(),
                   "--path-output", ".", *flags]
        else:
            source, inputs_read = ROOT, time.time()
            cmd = [_jupyter_book(), "build", ".", *flags]
        start = time.monotonic()
        with log.open("w") as out:
            try:
                proc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"book build timed out after {BUILD_TIMEOUT} s; log: {log}\n"
                            + _tail(log))
        seconds = time.monotonic() - start
        text = log.read_text(errors="replace")
        if proc.returncode != 0 or "build succeeded" not in text:
            pytest.fail(f"book build failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                        f"log: {log}\n" + _tail(log))
        executed = _executed_by_build(log, source)
        twice = sorted(set(executed) & set(reused))
        if twice:
            pytest.fail(f"the build executed notebooks that nbval executed already: {twice}")
        for rel in reused:  # the download button serves the committed notebook, as in the book
            if (HTML / "_sources" / rel).is_file():
                shutil.copy2(ROOT / rel, HTML / "_sources" / rel)
        BUILD_OK.write_text(json.dumps({
            "seconds": round(seconds, 1), "command": cmd, "from_nbval": reused,
            "executed_by_build": executed, "nbval_run": nbval_run.id if reused else None}))
        os.utime(BUILD_OK, (inputs_read, inputs_read))  # a source changed since then is newer
    return HTML


def _tail(path: Path, lines: int = 40) -> str:
    """The build's warnings and errors (the cause), then the last lines of its log."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace")).splitlines()
    problems = [ln for ln in text if re.search(r"WARNING|ERROR|Error|Exception", ln)
                and "[IPKernelApp]" not in ln][:40]
    return ("--- warnings and errors ---\n" + "\n".join(problems)
            + f"\n--- last {lines} lines ---\n" + "\n".join(text[-lines:]))


# ---------------------------------------------------------------------------------------------
# A local web server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"reached")

    def log_message(self, *args):
        pass


def _serve(handler, host: str) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    server.hits = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def site(built_book):
    """Base URL of _build/html served on 127.0.0.1 (a free port)."""
    server = _serve(functools.partial(_QuietHandler, directory=str(built_book)), "127.0.0.1")
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------------------
# Headless Chromium over the DevTools protocol (pipe transport: fd 3 in, fd 4 out, NUL-separated)


def chromium_args(user_data_dir: str) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # Network: 127.0.0.1 only. Names resolve to nothing (no DNS query leaves the browser), and
        # everything else, other loopback addresses included, goes to a proxy that refuses.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>;127.0.0.1",
        "--remote-debugging-pipe",
        "about:blank",
    ]


class CDPError(RuntimeError):
    pass


class Browser:
    """A headless Chromium and a minimal DevTools client (browser-level, flattened sessions)."""

    def __init__(self, executable: str, log_path: Path):
        self._profile = tempfile.TemporaryDirectory(prefix="sheaflab-chromium-")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # The child gets our ends as fds 3 and 4: a tiny Python trampoline moves them there and
        # execs chromium (dup2 in preexec_fn could clobber subprocess's own error pipe).
        child_in = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
        os.close(to_r)
        os.close(from_w)
        trampoline = ("import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); "
                      "os.dup2(a, 3); os.dup2(b, 4); os.close(a); os.close(b); "
                      "os.execv(sys.argv[3], sys.argv[3:])")
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", trampoline, str(child_in), str(child_out), executable,
             *chromium_args(self._profile.name)],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(child_in)
        os.close(child_out)
        self._out = to_w
        self._in = from_r
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._responses: dict[int, dict] = {}
        self._events: dict[str, list[dict]] = {}  # sessionId -> events
        self._closed = False
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        try:
            self.version = self.call("Browser.getVersion", timeout=30)["product"]
        except CDPError as exc:
            self.close()
            raise CDPError(f"chromium did not start: {exc}\n{log_path.read_text(errors='replace')}")

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._responses[msg["id"]] = msg
                    else:
                        self._events.setdefault(msg.get("sessionId", ""), []).append(msg)
                self._cond.notify_all()

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        with self._lock:
            while data:
                data = data[os.write(self._out, data):]
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._responses:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    why = "browser exited" if self._closed else "timeout"
                    raise CDPError(f"{method}: no answer ({why})")
                self._cond.wait(left)
            msg = self._responses.pop(msg_id)
        if "error" in msg:
            raise CDPError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    def events(self, session: str) -> list[dict]:
        with self._cond:
            return list(self._events.get(session, []))

    def wait_event(self, session: str, method: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self._events.get(session, []):
                    if ev["method"] == method:
                        return ev
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(left)

    def new_page(self, width: int = WINDOW[0], mobile: bool = False, theme: str | None = None) -> str:
        """A new tab, width px wide (a phone's layout with mobile=True); theme "light" or "dark"
        preselects the book theme's colour mode (what its switch stores) before any page script."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": mobile},
                  session=session)
        if theme is not None:
            self.call("Page.addScriptToEvaluateOnNewDocument",
                      {"source": f"try {{ localStorage.setItem('mode', '{theme}');"
                                 f" localStorage.setItem('theme', '{theme}'); }} catch (e) {{}}"},
                      session=session)
        return session

    def evaluate(self, session: str, expression: str, timeout: float = 30):
        result = self.call("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           session=session, timeout=timeout)
        if "exceptionDetails" in result:
            raise CDPError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close_page(self, session: str) -> None:
        """Close a page; a page that is already gone (a redirect can detach it) counts as closed."""
        try:
            self.call("Page.close", session=session)
        except CDPError as exc:
            if "Not attached" not in str(exc):
                raise

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except CDPError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)  # the process group started for this browser only
            self.proc.wait()
        os.close(self._out)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            os.close(self._in)
        self._log.close()
        self._profile.cleanup()


@pytest.fixture(scope="module")
def browser(chromium_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    b = Browser(chromium_path, ARTIFACTS / "chromium.log")
    yield b
    b.close()


# ---------------------------------------------------------------------------------------------
# What a page should show (read from its static HTML) and what it does show (after its scripts)


class _StaticCounter(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.figures: list[str] = []
        self.widget_views = 0
        self.widget_state = 0
        self.widget_modules: set[str] = set()
        self.math = 0
        self._script: str | None = None
        self._scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "plotly-graph-div" in classes:
            self.figures.append(a.get("id", ""))
        if "math" in classes:
            self.math += 1
        if tag == "script":
            kind = a.get("type", "")
            self.widget_views += kind == "application/vnd.jupyter.widget-view+json"
            self.widget_state += kind == "application/vnd.jupyter.widget-state+json"
            self._script = ""

    def handle_data(self, data):
        if self._script is not None:
            self._script += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self._scripts.append(self._script)
            if '"model_module"' in self._script and '"state"' in self._script:
                try:
                    state = json.loads(self._script).get("state", {})
                except ValueError:
                    state = {}
                self.widget_modules |= {m.get("model_module", "") for m in state.values()}
            self._script = None

    def _figure_script(self, fig_id: str) -> str:
        for s in self._scripts:
            if "Plotly.newPlot(" in s and f'"{fig_id}"' in s:
                return s
        return ""

    def figures_with_sliders(self) -> list[str]:
        return [f for f in self.figures
                if re.search(r'"sliders"\s*:\s*\[\s*\{', self._figure_script(f))]

    def figures_with_frames(self) -> list[str]:
        return [f for f in self.figures if "Plotly.addFrames(" in self._figure_script(f)]


def expected(page_html: str) -> dict:
    p = _StaticCounter()
    p.feed(page_html)
    return {
        "figures": len(p.figures),
        "sliders": len(p.figures_with_sliders()),
        "framed": len(p.figures_with_frames()),
        "widget_views": p.widget_views,
        "widget_state": p.widget_state,
        "math": p.math,
        "kernel_only_widgets": sorted(p.widget_modules - BUILT_IN_WIDGET_MODULES),
    }


DOM_STATE = r"""
(() => {
  const figs = [...document.querySelectorAll('div.plotly-graph-div')];
  const views = [...document.querySelectorAll('.widget-subarea')];
  return {
    ready: document.readyState,
    plotly: typeof window.Plotly === 'object' && window.Plotly !== null,
    figures: figs.length,
    drawn: figs.filter(d => d.querySelector('svg.main-svg')).length,
    // the book's figures.js has brought each figure to the page's colour mode and width
    styled: figs.filter(d => d.hasAttribute('data-sheaflab-mode')).length,
    main_svg: document.querySelectorAll('svg.main-svg').length,
    sliders: figs.filter(d => d.querySelector('g.slider-container')).length,
    framed: figs.filter(d => d._transitionData && (d._transitionData._frames || []).length).length,
    widgets_drawn: views.filter(v => v.querySelector('.jupyter-widgets')).length,
    mathjax_done: !!(window.MathJax && MathJax.startup && MathJax.startup.promise &&
                     document.querySelector('mjx-container')),
    mjx: document.querySelectorAll('mjx-container').length,
  };
})()
"""


def _done(state: dict, want: dict) -> bool:
    return (
        state["ready"] == "complete"
        and state["drawn"] >= want["figures"]
        and state["styled"] >= want["figures"]
        and state["sliders"] >= want["sliders"]
        and state["framed"] >= want["framed"]
        and state["widgets_drawn"] >= want["widget_views"]
        and (state["mjx"] > 0 or want["math"] == 0)
    )


def load(browser: Browser, url: str, want: dict, shot: Path | None, width: int = WINDOW[0],
         theme: str | None = None, inspect: dict[str, str] | None = None) -> dict:
    """Open url, wait until it is drawn (or PAGE_TIMEOUT), and report what it did; at width px
    (below 600 px, as a phone), and with the results of the scripts in inspect (name -> script)."""
    session = browser.new_page(width=width, mobile=width < 600, theme=theme)
    nav = browser.call("Page.navigate", {"url": url}, session=session)
    if nav.get("errorText"):
        raise CDPError(f"navigation to {url} failed: {nav['errorText']}")
    browser.wait_event(session, "Page.loadEventFired", PAGE_TIMEOUT)
    deadline = time.monotonic() + PAGE_TIMEOUT
    state = browser.evaluate(session, DOM_STATE)
    while not _done(state, want) and time.monotonic() < deadline:
        time.sleep(0.25)
        state = browser.evaluate(session, DOM_STATE)
    if want["math"]:  # let MathJax finish its typeset pass, if it loaded at all
        browser.evaluate(session, "window.MathJax && MathJax.startup && MathJax.startup.promise"
                                  " ? MathJax.startup.promise.then(() => true) : false")
        state = browser.evaluate(session, DOM_STATE)
    time.sleep(0.5)  # late errors and requests
    state["requests"], state["failed"], state["errors"] = _network_and_errors(browser.events(session))
    for name, script in (inspect or {}).items():
        state[name] = browser.evaluate(session, script)
    if shot is not None:
        _screenshots(browser, session, shot, width)
    browser.close_page(session)
    return state


FIGURE_BOXES = r"""
[...document.querySelectorAll('div.plotly-graph-div')].map(d => {
  const r = d.getBoundingClientRect();
  return [r.x, r.y + window.scrollY, r.width, r.height];
})
"""


def _screenshots(browser: Browser, session: str, shot: Path, width: int = WINDOW[0]) -> None:
    """The whole page (up to Chromium's 16384 px limit) as shot, and each figure as shot-figN."""
    shot.parent.mkdir(parents=True, exist_ok=True)
    for old in shot.parent.glob(shot.stem + "-fig*.png"):
        old.unlink()

    def capture(path: Path, x: float, y: float, width: float, height: float) -> None:
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        png = browser.call("Page.captureScreenshot",
                           {"format": "png", "captureBeyondViewport": True, "clip": clip},
                           session=session, timeout=60)["data"]
        path.write_bytes(base64.b64decode(png))

    height = browser.call("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
    capture(shot, 0, 0, width, min(int(height), 16000))
    for i, (x, y, w, h) in enumerate(browser.evaluate(session, FIGURE_BOXES), start=1):
        if w and h:
            _capture_figure(browser, session, (x, y, w, h), shot.with_name(f"{shot.stem}-fig{i}.png"))


#: The theme's sticky headers (and a focused skip link), which would be drawn over a figure.
STICKY = "document.querySelectorAll('.bd-header, .bd-header-article, .skip-link')"


def _capture_figure(browser: Browser, session: str, box, path: Path) -> None:
    """A screenshot of one figure (box: x, y, width, height in page pixels, with a 10 px margin).
    The figure is scrolled into the viewport and only the viewport is captured: Chromium's
    captureBeyondViewport lays the whole page out again for each shot (about 1.3 s on a long page,
    against 0.1 s)."""
    x, y, w, h = box
    browser.evaluate(session, f"window.scrollTo(0, {max(y - 40, 0)})")
    browser.evaluate(session, f"{STICKY}.forEach(e => e.style.visibility = 'hidden')")
    png = browser.call("Page.captureScreenshot",
                       {"format": "png", "captureBeyondViewport": False,
                        "clip": {"x": max(x - 10, 0), "y": max(y - 10, 0), "width": w + 20,
                                 "height": h + 20, "scale": 1}}, session=session, timeout=60)["data"]
    browser.evaluate(session, f"{STICKY}.forEach(e => e.style.visibility = '')")
    path.write_bytes(base64.b64decode(png))


def _network_and_errors(events: list[dict]):
    urls: dict[str, str] = {}
    requests, failed, errors = [], [], []
    for ev in events:
        m, p = ev["method"], ev.get("params", {})
        if m == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"]
            requests.append(p["request"]["url"])
        elif m == "Network.loadingFailed":
            failed.append(f"{urls.get(p['requestId'], '?')}: {p.get('errorText')}")
        elif m == "Network.responseReceived" and p["response"].get("status", 200) >= 400:
            failed.append(f"{p['response']['url']}: HTTP {p['response']['status']}")
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            errors.append(f"uncaught: {text.splitlines()[0] if text else d}")
        elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            errors.append(f"console.{p['type']}: {args}")
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}".strip())
    return requests, failed, errors


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def page_loads(browser, site, built_book):
    """Loads each page once at each width of WIDTHS (lazily) and caches what it should show and
    what it showed, with the results of the layout scripts (LAYOUT_INSPECT) run in the same load.
    Screenshots: <page>.png (and -figN.png) at desktop width, <page>-<width>.png at the others."""
    cache: dict[tuple[str, str], tuple[dict, dict]] = {}

    def get(page: str, width: str) -> tuple[dict, dict]:
        if (page, width) not in cache:
            path = built_book / page
            assert path.is_file(), f"{page} was not built (is it in _toc.yml?)"
            want = expected(path.read_text())
            stem = page.replace("/", "__").removesuffix(".html")
            shot = ARTIFACTS / (stem + (".png" if width == "desktop" else f"-{width}.png"))
            cache[page, width] = (want, load(browser, site + page, want, shot, width=WIDTHS[width],
                                             inspect=LAYOUT_INSPECT))
        return cache[page, width]

    return get


@pytest.fixture(scope="module")
def rendered(page_loads):
    """What each page should show and what it showed, at desktop width (one load per page)."""
    return lambda page: page_loads(page, "desktop")


def _is_local(url: str, site: str) -> bool:
    return url.startswith(site) or url.startswith(("data:", "blob:", "about:"))


@pytest.mark.parametrize("page", PAGES)
def test_plotly_figures_drawn(rendered, page):
    want, got = rendered(page)
    assert got["plotly"] or want["figures"] == 0, "window.Plotly is missing: plotly.min.js did not load"
    assert got["drawn"] == want["figures"], (
        f"{got['drawn']} of {want['figures']} plotly figures drawn on {page}")
    assert got["main_svg"] >= want["figures"]


@pytest.mark.parametrize("page", PAGES)
def test_plotly_sliders_and_frames(rendered, page):
    want, got = rendered(page)
    assert got["sliders"] >= want["sliders"], (
        f"{got['sliders']} of {want['sliders']} figures with sliders show a slider on {page}")
    assert got["framed"] >= want["framed"], (
        f"{got['framed']} of {want['framed']} figures with animation frames have them on {page}")


@pytest.mark.parametrize("page", PAGES)
def test_widgets_drawn(rendered, page):
    want, got = rendered(page)
    if want["widget_views"] and not want["widget_state"]:
        pytest.fail(f"{page} has widget views but no widget state (was the notebook executed?)")
    assert got["widgets_drawn"] >= want["widget_views"], (
        f"{got['widgets_drawn']} of {want['widget_views']} widget views drawn on {page}")


@pytest.mark.parametrize("page", PAGES)
def test_no_kernel_only_widgets(rendered, page):
    """Static pages show only widgets the embedded manager can draw without a kernel. A plotly
    FigureWidget (an anywidget in plotly 6+) draws as an error box there and embeds ~5 MB of
    JavaScript in the page: static pages display a go.Figure (with plotly sliders) instead."""
    want, _ = rendered(page)
    assert not want["kernel_only_widgets"], (
        f"{page} embeds widgets that need a kernel: {want['kernel_only_widgets']}")


@pytest.mark.parametrize("page", PAGES)
def test_math_typeset(rendered, page):
    want, got = rendered(page)
    if want["math"] == 0:
        pytest.skip("no math on this page")
    assert got["mjx"] > 0, f"MathJax typeset nothing on {page} ({want['math']} math elements)"


@pytest.mark.parametrize("page", PAGES)
def test_no_request_outside_the_book(rendered, site, page):
    _, got = rendered(page)
    outside = sorted({u for u in got["requests"] if not _is_local(u, site)})
    assert not outside, f"{page} requested URLs outside the book (a CDN?):\n" + "\n".join(outside)
    by_browser = tuple(site.rstrip("/") + path for path in BROWSER_REQUESTS)
    local_failures = [f for f in got["failed"]
                      if f.startswith(site) and not f.startswith(by_browser)]
    assert not local_failures, f"{page} failed to load its own files:\n" + "\n".join(local_failures)


@pytest.mark.parametrize("page", PAGES)
def test_no_console_errors(rendered, page):
    _, got = rendered(page)
    unexplained = []
    for err in got["errors"]:
        reason = next((why for rx, why in KNOWN_CONSOLE_ERRORS if re.search(rx, err)), None)
        if reason:
            print(f"known console error on {page} ({reason}): {err}")
        else:
            unexplained.append(err)
    assert not unexplained, f"console errors on {page}:\n" + "\n".join(unexplained)


def test_plotly_json_becomes_offline_html():
    """Without a browser: the book extension turns plotly's mime bundle (what a kernel displays)
    into HTML that draws with a global Plotly, frames included, and ranks it first for HTML."""
    import plotly.graph_objects as go
    import plotly.io as pio

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import offline_assets
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    fig = go.Figure(go.Scatter(y=[1, 2]), frames=[go.Frame(data=[go.Scatter(y=[2, 1])], name="a")])
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    html_out = offline_assets.figure_html(bundle[offline_assets.PLOTLY_MIME], "fig-1")
    assert 'id="fig-1" class="plotly-graph-div"' in html_out
    assert 'Plotly.newPlot(' in html_out and "Plotly.addFrames('fig-1'" in html_out
    assert "<script src" not in html_out and "cdn" not in html_out.lower()

    from myst_nb.core import render

    offline_assets._install_mime_renderer()
    order = render.get_mime_priority("html", [])
    assert order.index(offline_assets.PLOTLY_MIME) < order.index("text/html")
    assert order.index(offline_assets.PLOTLY_MIME) < order.index(
        "application/vnd.jupyter.widget-view+json")


def test_landing_page_shows_the_version(built_book):
    """One version number (sheaflab/_version.py), on the landing page through {{ version }}."""
    from sheaflab import __version__
    text = (built_book / "book" / "index.html").read_text()
    assert f"This is version {__version__} of the book" in text and "{{" not in text


def test_page_titles_are_unique(built_book):
    """The sidebar tells every page apart: each page of the table of contents has its own title."""
    titles = {}
    for page in PAGES:
        text = (built_book / page).read_text(errors="replace")
        match = re.search(r"<title>(.*?)</title>", text, flags=re.DOTALL)
        assert match, f"{page} has no <title>"
        titles[page] = re.sub(r"\s+", " ", html.unescape(match.group(1))).strip()
    same = {t: [p for p in titles if titles[p] == t] for t in titles.values()}
    clashes = {t: ps for t, ps in same.items() if len(ps) > 1}
    assert not clashes, f"pages share a title: {clashes}"
    print("page titles:", titles)


def test_page_widget_state_leaves_out_kernel_only_models():
    """Without a browser: the widget state a page embeds keeps what the embed manager draws and
    drops a live figure's FigureWidget with its container and that container's controls."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import offline_assets
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))

    def model(module, **state):
        return {"model_module": module, "model_name": "M", "state": state}

    state = {
        "fig": model("anywidget"),
        "live": model("@jupyter-widgets/controls", children=["IPY_MODEL_slider", "IPY_MODEL_fig"],
                      layout="IPY_MODEL_live_layout"),
        "slider": model("@jupyter-widgets/controls", layout="IPY_MODEL_slider_layout"),
        "live_layout": model("@jupyter-widgets/base"),
        "slider_layout": model("@jupyter-widgets/base"),
        "alone": model("@jupyter-widgets/controls", layout="IPY_MODEL_alone_layout"),
        "alone_layout": model("@jupyter-widgets/base"),
    }
    assert sorted(offline_assets.page_widget_state(state)) == ["alone", "alone_layout"]
    assert offline_assets.page_widget_state({k: state[k] for k in ("alone", "alone_layout")}) == {
        k: state[k] for k in ("alone", "alone_layout")}


def test_every_figure_page_is_checked(built_book):
    """Every built page with a plotly figure or a widget view is in PAGES."""
    missing = []
    for path in sorted(built_book.rglob("*.html")):
        rel = path.relative_to(built_book).as_posix()
        if rel.startswith("_") or rel in PAGES:
            continue
        text = path.read_text(errors="replace")
        if "plotly-graph-div" in text or "application/vnd.jupyter.widget-view+json" in text:
            missing.append(rel)
    assert not missing, "add these pages to PAGES in tests/test_render.py:\n" + "\n".join(missing)


def test_network_is_blocked(browser, site):
    """The browser reaches the book's server and nothing else. Two servers that count their hits
    stand in for the internet: one on another loopback address (127.0.0.2), one on 127.0.0.1 under
    a host name (localhost). Neither may be reached, nor a CDN's name."""
    by_address = _serve(_CountingHandler, "127.0.0.2")
    by_name = _serve(_CountingHandler, "127.0.0.1")
    try:
        session = browser.new_page()
        ok = browser.call("Page.navigate", {"url": site + "book/index.html"}, session=session)
        assert not ok.get("errorText"), f"the book's own server is unreachable: {ok}"
        blocked = {}
        for url in (f"http://127.0.0.2:{by_address.server_address[1]}/probe",
                    f"http://localhost:{by_name.server_address[1]}/probe",
                    "https://cdn.jsdelivr.net/npm/"):
            nav = browser.call("Page.navigate", {"url": url}, session=session)
            assert nav.get("errorText"), f"the browser loaded {url}: {nav}"
            blocked[url] = nav["errorText"]
        browser.call("Page.navigate", {"url": site + "book/index.html"}, session=session)
        browser.wait_event(session, "Page.loadEventFired", PAGE_TIMEOUT)
        fetched = browser.evaluate(session, f"""
            fetch('http://127.0.0.2:{by_address.server_address[1]}/fetch', {{mode: 'no-cors'}})
              .then(() => 'reached', e => 'blocked: ' + e)""")
        browser.close_page(session)
        print("blocked:", blocked)
        assert fetched.startswith("blocked"), fetched
        assert by_address.hits == 0 and by_name.hits == 0, "a probe server was reached"
    finally:
        for server in (by_address, by_name):
            server.shutdown()
            server.server_close()


# ---------------------------------------------------------------------------------------------
# Layout: every figure at desktop and at phone width, captions, dark mode, code cells

#: Widths at which every page's figures and code cells are checked: a desktop window, and a phone
#: (390 px, the theme's mobile layout).
WIDTHS = {"desktop": WINDOW[0], "phone": 390}
#: Pixels two boxes may share, or a text may stick out of its figure, before it counts (antialiasing).
TOLERANCE_PX = 1.5

FIGURE_LAYOUT = r"""
(() => {
  const tol = %(tol)s;
  const box = el => { const r = el.getBoundingClientRect(); return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; };
  const shown = el => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const st = getComputedStyle(e);
      if (st.display === 'none' || st.visibility === 'hidden') return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const meet = (a, b) => Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > tol &&
                         Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > tol;
  return [...document.querySelectorAll('div.plotly-graph-div')].map((d, k) => {
    const fig = box(d);
    const parts = [];
    const add = (kind, el, label) => { if (el && shown(el)) parts.push({kind, label, b: box(el)}); };
    d.querySelectorAll('.g-gtitle text.gtitle').forEach(t => add('title', t, t.textContent));
    d.querySelectorAll('g.legend').forEach(g => add('legend', g.querySelector('rect.bg') || g, 'legend'));
    d.querySelectorAll('g.slider-container').forEach(g => add('slider', g, 'slider'));
    d.querySelectorAll('g.annotation').forEach(g => add('annotation', g, g.textContent));
    d.querySelectorAll('.modebar-container .modebar').forEach(m => add('modebar', m, 'mode bar'));
    d.querySelectorAll('g.infolayer > g[class^="g-"][class$="title"] text').forEach(t => {
      if (!t.closest('.g-gtitle')) add('axis title', t, t.textContent); });
    const overlaps = [];
    for (let i = 0; i < parts.length; i++)
      for (let j = i + 1; j < parts.length; j++) {
        const p = parts[i], q = parts[j];
        if (p.kind === q.kind && (p.kind === 'annotation' || p.kind === 'axis title')) continue;
        if (meet(p.b, q.b)) overlaps.push(`${p.kind} "${p.label.slice(0, 40)}" / ${q.kind} "${q.label.slice(0, 40)}"`);
      }
    // texts that collide: a tick label or a text label of a trace (scatter text, bar text) with
    // any other text (another tick label, of its axis or another, a label, an annotation, a
    // title, the legend ...), each text as its rotated box (a rotated tick label's axis-aligned box overlaps its
    // neighbour's where the glyphs do not)
    const texts = [];
    d.querySelectorAll('svg text').forEach(t => {
      if (!t.textContent.trim() || !shown(t) || t.closest('g.slider-container, .modebar')) return;
      const cls = (t.parentElement.getAttribute('class') || '');
      let kind = null;
      if (/^[xy]\d*tick$/.test(cls) || /^[xy]cb.*tick$/.test(cls)) kind = 'tick';
      else if (t.closest('g.textpoint')) kind = 'text label';
      else if (t.closest('g.trace.bars g.point')) kind = 'bar label';
      else if (t.closest('g.annotation')) kind = 'annotation';
      else if (t.closest('g.legend')) kind = 'legend';
      else if (t.closest('.g-gtitle')) kind = 'title';
      else if (t.closest('g.infolayer') && /^g-.*title$/.test(cls)) kind = 'axis title';
      else if (cls === 'cbtitle' || t.closest('.cbtitle')) kind = 'axis title';
      else if (t.closest('.shape-label') || cls.includes('shape-label')) kind = 'shape label';
      else if (t.closest('g.contourlabels')) kind = 'contour label';
      if (!kind) return;
      const bb = t.getBBox(), m = t.getScreenCTM();
      if (!m || !bb.width || !bb.height) return;
      const quad = [[bb.x, bb.y], [bb.x + bb.width, bb.y], [bb.x + bb.width, bb.y + bb.height],
                    [bb.x, bb.y + bb.height]].map(([x, y]) => new DOMPoint(x, y).matrixTransform(m));
      texts.push({kind, axis: kind === 'tick' ? cls.replace(/tick$/, '') : null,
                  label: t.textContent.replace(/\u200b/g, ''), quad});
    });
    const depth = (a, b) => {  // how far two convex quads overlap (separating axis theorem)
      let least = Infinity;
      for (const q of [a, b])
        for (let i = 0; i < 4; i++) {
          const p0 = q[i], p1 = q[(i + 1) %% 4];
          let nx = p0.y - p1.y, ny = p1.x - p0.x;
          const n = Math.hypot(nx, ny);
          if (!n) continue;
          nx /= n; ny /= n;
          const pa = a.map(p => p.x * nx + p.y * ny), pb = b.map(p => p.x * nx + p.y * ny);
          least = Math.min(least, Math.min(Math.max(...pa), Math.max(...pb)) - Math.max(Math.min(...pa), Math.min(...pb)));
        }
      return least;
    };
    const labels = new Set(['text label', 'bar label']);
    const collisions = [];
    for (let i = 0; i < texts.length; i++)
      for (let j = i + 1; j < texts.length; j++) {
        const p = texts[i], q = texts[j];
        const tick = p.kind === 'tick' || q.kind === 'tick';
        const label = labels.has(p.kind) || labels.has(q.kind);
        if ((tick || label) && depth(p.quad, q.quad) > tol) {
          const name = t => t.kind + (t.axis ? ` (${t.axis})` : '') + ` "${t.label.slice(0, 30)}"`;
          collisions.push(`${name(p)} / ${name(q)}`);
        }
      }
    const cut = [];
    d.querySelectorAll('svg text').forEach(t => {
      if (!t.textContent.trim() || !shown(t)) return;
      const b = box(t);
      if (b.x0 < fig.x0 - tol || b.x1 > fig.x1 + tol || b.y0 < fig.y0 - tol || b.y1 > fig.y1 + tol)
        cut.push(`"${t.textContent.slice(0, 50)}" at [${b.x0.toFixed(0)}, ${b.x1.toFixed(0)}] in [${fig.x0.toFixed(0)}, ${fig.x1.toFixed(0)}]`);
    });
    const fg = d.closest('figure');
    const cap = fg && fg.querySelector('figcaption');
    const out = d.closest('div.cell_output') || d.parentElement;
    return {index: k + 1, width: Math.round(fig.x1 - fig.x0), parts: parts.length, overlaps, cut,
            texts: texts.length, collisions,
            caption: cap ? cap.textContent.trim().replace(/\s+/g, ' ').slice(0, 60) : null,
            filter: getComputedStyle(d).filter, mode: d.getAttribute('data-sheaflab-mode'),
            // the output area around the figure: no sideways scroll
            scroll: [out.scrollWidth, out.clientWidth], cell: Math.round(out.getBoundingClientRect().width)};
  });
})()
""" % {"tol": TOLERANCE_PX}

CODE_CELLS = r"""
(() => {
  const over = sel => [...document.querySelectorAll(sel)].filter(p => p.scrollWidth > p.clientWidth + 1)
      .map(p => `${p.scrollWidth} > ${p.clientWidth} px: ${p.textContent.split('\n').sort((a, b) => b.length - a.length)[0].slice(0, 70)}`);
  return {inputs: document.querySelectorAll('div.cell_input pre').length,
          wide_inputs: over('div.cell_input pre'),
          wide_outputs: over('div.cell_output pre')};
})()
"""

#: Every MathJax display (``mjx-container[display="true"]``, MathJax 3's CHTML output): its TeX,
#: the width of its typeset math, of its own box and of the column it stands in (the content box of
#: the block around it), whether its box scrolls (book.css lets a display scroll inside its own
#: box: the page never does), and whether the page itself scrolls sideways.
MATH_DISPLAYS = r"""
(() => {
  const tex = new Map();
  const doc = window.MathJax && MathJax.startup && MathJax.startup.document;
  for (const item of (doc && doc.math) || [])
    if (item.typesetRoot) tex.set(item.typesetRoot, String(item.math));
  const inner = el => {
    const st = getComputedStyle(el), r = el.getBoundingClientRect();
    return {x0: r.left + parseFloat(st.paddingLeft) + parseFloat(st.borderLeftWidth),
            x1: r.right - parseFloat(st.paddingRight) - parseFloat(st.borderRightWidth)};
  };
  const displays = [...document.querySelectorAll('mjx-container[display="true"]')].map(c => {
    // the math as typeset: its widest part (a tagged equation is a table as wide as the box)
    let x0 = Infinity, x1 = -Infinity;
    for (const m of c.querySelectorAll(':scope > mjx-math, :scope > mjx-math > *, mjx-mtd > *, mjx-mlabeledtr > *')) {
      const r = m.getBoundingClientRect();
      if (r.width > 0) { x0 = Math.min(x0, r.left); x1 = Math.max(x1, r.right); }
    }
    const box = c.getBoundingClientRect(), col = inner(c.parentElement);
    const st = getComputedStyle(c);
    return {tex: (tex.get(c) || c.textContent).trim().replace(/\s+/g, ' ').slice(0, 70),
            math: Math.round((x1 - x0) * 10) / 10, scroll: [c.scrollWidth, c.clientWidth],
            box: [Math.round(box.left * 10) / 10, Math.round(box.right * 10) / 10],
            column: [Math.round(col.x0 * 10) / 10, Math.round(col.x1 * 10) / 10],
            scrolls: /auto|scroll/.test(st.overflowX)};
  });
  const root = document.scrollingElement || document.documentElement;
  return {displays, page_scroll: [root.scrollWidth, root.clientWidth]};
})()
"""


#: Each figure's texts as drawn: its title, axis titles, legend entries and annotations.
FIGURE_TEXTS = r"""
[...document.querySelectorAll('div.plotly-graph-div')].map(d =>
  [...d.querySelectorAll('text[class$="title"], text.legendtext, g.annotation text')].map(t => t.textContent))
"""

#: The layout scripts run in every page load (at each width of WIDTHS).
LAYOUT_INSPECT = {"figure_layout": FIGURE_LAYOUT, "code": CODE_CELLS, "math_displays": MATH_DISPLAYS,
                  "figure_texts": FIGURE_TEXTS}

#: An underscore between two characters of a figure's text: a TeX-style subscript (``eta_theta``,
#: ``lambda_min``) that plotly draws as typed; figures write ``η<sub>θ</sub>``. The package's edge
#: names (``affine_1``, ``relu_2``) are names, not subscripts, and are allowed.
PLAIN_SUBSCRIPT = re.compile(r"[^\s_]_[^\s_]")
EDGE_NAME = re.compile(r"\b(?:affine|relu)_\d+\b")


def _plain_subscripts(texts: list) -> list:
    return [t for t in texts if PLAIN_SUBSCRIPT.search(EDGE_NAME.sub("", t))]


@pytest.fixture(scope="module")
def laid_out(page_loads):
    """Each page at each width of WIDTHS: its figures' layout, its code cells and its math displays,
    measured in the page's one load at that width (the desktop load is the one of ``rendered``)."""
    return lambda page, width: page_loads(page, width)[1]


#: What the layout tests measured, page by page and width by width (figures checked, overlaps,
#: texts cut, code cells wider than their box, printed outputs that scroll).
LAYOUT_REPORT = ARTIFACTS / "layout.json"


def _record_layout(key: str, **numbers) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        report = json.loads(LAYOUT_REPORT.read_text())
    except (FileNotFoundError, ValueError):
        report = {}
    built = BUILD_OK.stat().st_mtime if BUILD_OK.exists() else None
    if report.get("_built") != built:  # numbers from an earlier build: start afresh
        report = {"_built": built}
    report.setdefault(key, {}).update(numbers)
    LAYOUT_REPORT.write_text(json.dumps(report, indent=1, sort_keys=True))


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("page", PAGES)
def test_figure_layout(laid_out, page, width):
    """On every figure the title, legend, sliders, annotations (subplot titles among them), axis
    titles and the mode bar (shown on hover) keep clear of one another; no tick label overlaps
    another tick label (of its axis or another) or any other text, nor does a text label of a
    trace (scatter or bar text); no text is cut at the figure's edge. Each figure fits its cell (no sideways scroll) and, at phone width, is laid out
    for the phone by the book's figures.js (at desktop width, as drawn)."""
    got = laid_out(page, width)
    figs = got["figure_layout"]
    assert len(figs) == got["figures"], "a figure was not measured"
    overlaps = [f"figure {f['index']}: {o}" for f in figs for o in f["overlaps"]]
    cut = [f"figure {f['index']}: {c}" for f in figs for c in f["cut"]]
    collisions = [f"figure {f['index']}: {c}" for f in figs for c in f["collisions"]]
    wide = [f"figure {f['index']}: {f['width']} px wide, its output area scrolls "
            f"{f['scroll'][0]} > {f['scroll'][1]} px" for f in figs
            if f["scroll"][0] > f["scroll"][1] or f["width"] > f["cell"] + TOLERANCE_PX]
    phone = width != "desktop"
    not_laid_out = [f"figure {f['index']}: mode {f['mode']!r}" for f in figs
                    if (f["mode"] or "").endswith(" phone") != phone]
    _record_layout(f"{page} @ {WIDTHS[width]} px", figures=len(figs), overlaps=len(overlaps), cut=len(cut),
                   text_collisions=len(collisions),
                   wider_than_cell=len(wide), phone_layout=sum(bool(f["mode"] and "phone" in f["mode"])
                                                             for f in figs))
    print(f"{page} at {WIDTHS[width]} px: {len(figs)} figures checked, {len(overlaps)} overlaps, "
          f"{len(cut)} texts cut at the edge, {len(wide)} wider than their cell, "
          f"{len(collisions)} texts drawn over one another")
    assert not overlaps, f"{page} at {WIDTHS[width]} px:\n" + "\n".join(overlaps)
    assert not collisions, (f"{page} at {WIDTHS[width]} px, texts drawn over one another:\n"
                            + "\n".join(collisions))
    assert not cut, f"{page} at {WIDTHS[width]} px, text cut at the figure's edge:\n" + "\n".join(cut)
    assert not wide, f"{page} at {WIDTHS[width]} px, figures wider than their cell:\n" + "\n".join(wide)
    assert not not_laid_out, (f"{page} at {WIDTHS[width]} px, figures not laid out for the "
                              f"{'phone' if phone else 'desktop'}:\n" + "\n".join(not_laid_out))


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("page", PAGES)
def test_code_cells_fit(laid_out, page, width):
    """No code cell scrolls sideways: each input's content fits its box. (Printed outputs, tables
    among them, may scroll; they are counted in the test output.)"""
    code = laid_out(page, width)["code"]
    _record_layout(f"{page} @ {WIDTHS[width]} px", code_cells=code["inputs"],
                   wide_code_cells=len(code["wide_inputs"]), scrolling_outputs=len(code["wide_outputs"]))
    print(f"{page} at {WIDTHS[width]} px: {code['inputs']} code cells, {len(code['wide_inputs'])} wider "
          f"than their box; {len(code['wide_outputs'])} printed outputs scroll sideways")
    assert not code["wide_inputs"], (f"{page} at {WIDTHS[width]} px, code cells wider than their box:\n"
                                     + "\n".join(code["wide_inputs"]))


#: Math displays allowed to scroll inside their own box at a width, rather than fit their column,
#: as (page, width, start of the TeX) -> why. (pydata-sphinx-theme lets every display scroll:
#: with its scroll bar hidden, as on a phone, a reader sees it cut.)
SCROLLING_DISPLAYS: dict[tuple[str, str, str], str] = {}


def _allowed_to_scroll(page: str, width: str, tex: str) -> bool:
    return any(p == page and w == width and tex.startswith(t) for p, w, t in SCROLLING_DISPLAYS)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("page", PAGES)
def test_math_displays_fit(laid_out, page, width):
    """No MathJax display is wider than its column: its typeset math fits the content box of the
    block it stands in, and its own box does not scroll (long displays are broken over lines in
    the notebooks). Only a display of SCROLLING_DISPLAYS may scroll, inside its own box, which
    stays within the column; and the page never scrolls sideways."""
    got = laid_out(page, width)["math_displays"]
    tol = TOLERANCE_PX
    wide, scrolling = [], []
    for d in got["displays"]:
        col = d["column"][1] - d["column"][0]
        box_out = d["box"][0] < d["column"][0] - tol or d["box"][1] > d["column"][1] + tol
        too_wide = d["math"] > col + tol or d["scroll"][0] > d["scroll"][1] + 1
        where = f"{d['math']:.0f} px of math, column {col:.0f} px: {d['tex']}"
        if box_out:
            wide.append(where + f" (its box spans {d['box']}, the column {d['column']})")
        elif too_wide and d["scrolls"] and _allowed_to_scroll(page, width, d["tex"]):
            scrolling.append(where)
        elif too_wide:
            wide.append(where)
    page_scroll = got["page_scroll"][0] > got["page_scroll"][1] + 1
    _record_layout(f"{page} @ {WIDTHS[width]} px", math_displays=len(got["displays"]),
                   wide_math_displays=len(wide), scrolling_math_displays=len(scrolling),
                   page_scrolls_sideways=page_scroll)
    print(f"{page} at {WIDTHS[width]} px: {len(got['displays'])} math displays, {len(wide)} wider "
          f"than their column, {len(scrolling)} scroll in their own box"
          + "".join(f"\n  scrolls: {w}" for w in scrolling))
    assert not wide, (f"{page} at {WIDTHS[width]} px, math displays wider than their column:\n"
                      + "\n".join(wide))
    assert not page_scroll, (f"{page} at {WIDTHS[width]} px scrolls sideways: "
                             f"{got['page_scroll'][0]} > {got['page_scroll'][1]} px")


#: The chapter's pages (book/chapter.ipynb and its sections in _toc.yml); each shows figures.
CHAPTER_PAGES = ["book/chapter.html", "book/demonstrations.html", "book/minima.html", "book/comparison.html",
                 "book/four_tasks.html"]


@pytest.mark.parametrize("page", PAGES)
def test_figure_texts_have_no_plain_subscripts(laid_out, page):
    figures = laid_out(page, "desktop")["figure_texts"]
    bad = [(i, t) for i, texts in enumerate(figures, start=1) for t in _plain_subscripts(texts)]
    assert not bad, f"{page}: figure texts with a plain underscore (write <sub>...</sub>): {bad}"


def test_the_subscript_check_sees_plain_underscores():
    assert _plain_subscripts(["ε = η_θ / η_c", "1 / λ_min(L_free)", "ε = ηθ / ηc", "affine_1 and relu_12",
                              "train_mse", "a _ b"]) == ["ε = η_θ / η_c", "1 / λ_min(L_free)", "train_mse"]


def test_chapter_figures_are_numbered_and_captioned(laid_out):
    """Every figure of the chapter's pages sits in a numbered figure with a caption ("Fig. N ..."),
    and the numbers run on from page to page (Sphinx numbers figures across the whole book)."""
    numbers = []
    for page in CHAPTER_PAGES:
        figs = laid_out(page, "desktop")["figure_layout"]
        assert figs, f"{page}: no figure"
        bare = [f["index"] for f in figs if not f["caption"] or not re.match(r"Fig\. \d+", f["caption"])]
        assert not bare, f"{page}: figures without a numbered caption: {bare}"
        numbers += [int(re.match(r"Fig\. (\d+)", f["caption"]).group(1)) for f in figs]
    assert numbers == list(range(1, len(numbers) + 1)), f"figure numbers out of order: {numbers}"


#: Each figure as drawn: its mode (figures.js), CSS filter, background and text colours, and
#: fingerprints of its layout and data (plotly's own keys, "_..." and empty containers left out,
#: and the ranges of autoranged axes, which plotly recomputes for the figure's size, and of
#: matched axes), its drawn height and the height of its box. Plotly's responsive resize sets
#: autosize and drops the layout's height: those two are left out (the drawn height is kept).
FIGURE_STATE = r"""
(() => {
  const clean = v => {
    if (Array.isArray(v)) return v.map(clean);
    if (!v || typeof v !== 'object') return v;
    const o = {};
    for (const k of Object.keys(v).sort()) {
      if (k.startsWith('_')) continue;
      const c = clean(v[k]);
      if (c && typeof c === 'object' && !Array.isArray(c) && !Object.keys(c).length) continue;
      o[k] = c;
    }
    return o;
  };
  const hash = s => { let h = 5381; for (let i = 0; i < s.length; i++) h = (h * 33 + s.charCodeAt(i)) | 0; return h; };
  const lum = c => { const m = /rgba?\(([\d.]+), *([\d.]+), *([\d.]+)/.exec(c || '');
                     return m ? (0.2126 * m[1] + 0.7152 * m[2] + 0.0722 * m[3]) / 255 : null; };
  return [...document.querySelectorAll('div.plotly-graph-div')].map(d => {
    const layout = clean(d.layout);
    delete layout.autosize;
    delete layout.height;
    for (const k of Object.keys(layout))
      if (/^[xy]axis\d*$/.test(k)) {
        if (layout[k].autorange) delete layout[k].range;
        // an axis that matches another takes its range from it (plotly's resize sets its own
        // autorange "reversed" to true, and nothing changes on screen)
        if (layout[k].matches) { delete layout[k].range; delete layout[k].autorange; }
      }
    const svg = d.querySelector('svg.main-svg');
    const texts = [...d.querySelectorAll('.g-gtitle text, .xtick text, .ytick text, .legendtext')];
    // the darkest drawn line or marker of the traces (a black line stays black in a bad dark mode)
    const ink = [...d.querySelectorAll('.scatterlayer path.js-line, .scatterlayer path.point')]
      .map(e => lum(getComputedStyle(e).stroke !== 'none' && e.classList.contains('js-line')
                    ? getComputedStyle(e).stroke : getComputedStyle(e).fill)).filter(x => x !== null);
    return {mode: d.getAttribute('data-sheaflab-mode'), filter: getComputedStyle(d).filter,
            background: lum(getComputedStyle(svg).backgroundColor),
            text: texts.length ? Math.min(...texts.map(t => lum(getComputedStyle(t).fill))) : null,
            text_max: texts.length ? Math.max(...texts.map(t => lum(getComputedStyle(t).fill))) : null,
            ink: ink.length ? Math.min(...ink) : null,
            layout: hash(JSON.stringify(layout)), data: hash(JSON.stringify(clean(d.data))),
            height: d._fullLayout.height, box: d.parentElement.style.height};
  });
})()
"""
#: Resolves when every figure of the page is in the given mode ("dark", "light phone", ...).
WAIT_MODE = r"""
new Promise(done => {
  const until = Date.now() + %d * 1000;
  const check = () => {
    const modes = [...document.querySelectorAll('div.plotly-graph-div')].map(d => d.getAttribute('data-sheaflab-mode'));
    if (modes.every(m => m === MODE) || Date.now() > until) done(modes); else setTimeout(check, 100);
  };
  setTimeout(check, 300);  // figures.js waits for plotly's resize before it re-lays out
})
""" % PAGE_TIMEOUT
#: The theme's colour-mode button, as a reader clicks it, until <html data-mode> is the wanted mode.
SWITCH_MODE = r"""
(() => {
  const button = document.querySelector('.theme-switch-button');
  for (let i = 0; i < 3 && document.documentElement.dataset.mode !== MODE; i++) button.click();
  return [document.documentElement.dataset.mode, document.documentElement.dataset.theme];
})()
"""
def _open_drawn(browser: Browser, url: str, want: dict, width: int = WINDOW[0],
                theme: str | None = None) -> str:
    session = browser.new_page(width=width, mobile=width < 600, theme=theme)
    browser.call("Page.navigate", {"url": url}, session=session)
    browser.wait_event(session, "Page.loadEventFired", PAGE_TIMEOUT)
    deadline = time.monotonic() + PAGE_TIMEOUT
    while not _done(browser.evaluate(session, DOM_STATE), want) and time.monotonic() < deadline:
        time.sleep(0.25)
    return session


def _wait_mode(browser: Browser, session: str, mode: str) -> list:
    return browser.evaluate(session, WAIT_MODE.replace("MODE", json.dumps(mode)), timeout=PAGE_TIMEOUT + 10)


def _shot_figure(browser: Browser, session: str, index: int, path: Path) -> None:
    _capture_figure(browser, session, browser.evaluate(session, FIGURE_BOXES)[index], path)


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_figures_follow_the_colour_mode(browser, site, built_book, page):
    """In the theme's dark mode every figure is re-styled dark by plotly itself (no CSS filter):
    dark background, light text, no black trace left black; switching back to light (the theme's
    button, as a reader does) restores each figure's layout and data exactly, and its colours. The
    theme's "auto" mode follows the system's dark mode, and a page opened in dark mode draws dark.
    Screenshots, per page: <page>-light.png, <page>-dark.png (the first figure), <page>-dark-ink.png
    (a figure whose black traces turned light), e.g. chapter-dark.png."""
    stem = Path(page).stem
    want = expected((built_book / page).read_text())
    session = _open_drawn(browser, site + page, want, theme="light")
    light = browser.evaluate(session, FIGURE_STATE)
    _shot_figure(browser, session, 0, ARTIFACTS / f"{stem}-light.png")
    assert len(light) == want["figures"] and all(f["mode"] == "light" for f in light), light

    switched = browser.evaluate(session, SWITCH_MODE.replace("MODE", '"dark"'))
    assert switched == ["dark", "dark"], switched
    _wait_mode(browser, session, "dark")
    dark = browser.evaluate(session, FIGURE_STATE)
    # a figure whose stored dark variant re-colours traces (near-black ones drawn light)
    inked = browser.evaluate(session, "[...document.querySelectorAll('div.plotly-graph-div')]"
                                      ".findIndex(d => d.layout.meta.sheaflab.dark.traces.length > 0)")
    _shot_figure(browser, session, 0, ARTIFACTS / f"{stem}-dark.png")
    if inked >= 0:
        _shot_figure(browser, session, inked, ARTIFACTS / f"{stem}-dark-ink.png")

    # auto: follows the system (light in headless Chromium), then the system's dark mode
    switched = browser.evaluate(session, SWITCH_MODE.replace("MODE", '"auto"'))
    assert switched == ["auto", "light"], switched
    _wait_mode(browser, session, "light")
    back = browser.evaluate(session, FIGURE_STATE)
    browser.call("Emulation.setEmulatedMedia",
                 {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}, session=session)
    auto_dark = _wait_mode(browser, session, "dark")
    browser.close_page(session)

    session = _open_drawn(browser, site + page, want, theme="dark")
    opened_dark = _wait_mode(browser, session, "dark")
    browser.close_page(session)

    problems = []
    for k, (lt, dk, bk) in enumerate(zip(light, dark, back), start=1):
        if dk["mode"] != "dark" or dk["filter"] != "none":
            problems.append(f"figure {k}: mode {dk['mode']!r}, filter {dk['filter']!r} in dark mode")
        if dk["background"] is None or dk["background"] > 0.15:
            problems.append(f"figure {k}: background luminance {dk['background']} in dark mode")
        if dk["text"] is not None and dk["text"] < 0.6:
            problems.append(f"figure {k}: text luminance down to {dk['text']:.2f} in dark mode")
        if dk["ink"] is not None and dk["ink"] < 0.25:
            problems.append(f"figure {k}: a trace drawn at luminance {dk['ink']:.2f} in dark mode")
        if lt["background"] < 0.9 or (lt["text_max"] is not None and lt["text_max"] > 0.5):
            problems.append(f"figure {k}: light mode background {lt['background']}, text {lt['text_max']}")
        if bk != lt:
            diff = {key: (lt[key], bk[key]) for key in lt if lt[key] != bk[key]}
            problems.append(f"figure {k}: back in light mode, not as it was: {diff}")
    report = {"figures": len(light), "dark": sum(d["mode"] == "dark" for d in dark),
              "dark_with_filter": sum(d["filter"] != "none" for d in dark),
              "restored_exactly": sum(b == lt for b, lt in zip(back, light)),
              "auto_follows_system_dark": sum(m == "dark" for m in auto_dark),
              "opened_in_dark": sum(m == "dark" for m in opened_dark),
              "max_background_luminance_dark": max(d["background"] for d in dark),
              "min_text_luminance_dark": min(d["text"] for d in dark if d["text"] is not None),
              "problems": len(problems)}
    _record_layout(f"{page} dark mode", **report)
    print("dark mode:", report)
    assert not problems, "\n".join(problems)
    assert report["auto_follows_system_dark"] == report["opened_in_dark"] == len(light), report


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_figures_relayout_back_when_widened(browser, site, built_book, page):
    """A figure laid out for a phone goes back to its desktop layout, exactly, when the window
    widens (and to the phone's again when it narrows)."""
    want = expected((built_book / page).read_text())
    session = _open_drawn(browser, site + page, want, theme="light")
    desktop = browser.evaluate(session, FIGURE_STATE)
    browser.close_page(session)

    session = _open_drawn(browser, site + page, want, width=WIDTHS["phone"], theme="light")
    phone = browser.evaluate(session, FIGURE_STATE)

    def resize(width: int) -> None:
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": width < 600},
                     session=session)

    resize(WINDOW[0])
    widened_modes = _wait_mode(browser, session, "light")
    widened = browser.evaluate(session, FIGURE_STATE)
    resize(WIDTHS["phone"])
    narrowed_modes = _wait_mode(browser, session, "light phone")
    browser.close_page(session)
    report = {"figures": len(desktop), "phone_layout": sum(f["mode"] == "light phone" for f in phone),
              "desktop_after_widening": sum(m == "light" for m in widened_modes),
              "restored_exactly": sum(w == d for w, d in zip(widened, desktop)),
              "phone_after_narrowing": sum(m == "light phone" for m in narrowed_modes)}
    _record_layout(f"{page} phone -> desktop -> phone", **report)
    print("phone -> desktop -> phone:", report)
    diffs = [f"figure {k}: " + str({key: (d[key], w[key]) for key in d if d[key] != w[key]})
             for k, (d, w) in enumerate(zip(desktop, widened), start=1) if d != w]
    assert report["phone_layout"] == len(desktop), report
    assert not diffs, "widened, not as at desktop width:\n" + "\n".join(diffs)
    assert report["phone_after_narrowing"] == len(desktop), report


# ---------------------------------------------------------------------------------------------
# The student's path: Lab 12 in JupyterLab, in the same headless Chromium

STUDENT_LAB = "labs/lab12_sheaf_trainer.ipynb"
#: The TODO filled through the notebook, and a correct answer to it.
STUDENT_TODO_CELL = "lab12-28"
STUDENT_ANSWER = '''def epochs_to_target(curve, target):
    """First 1-based epoch with curve[epoch - 1] <= target, or None."""
    hits = np.flatnonzero(np.asarray(curve) <= target)
    return int(hits[0]) + 1 if hits.size else None'''
LAB_START_TIMEOUT = 90  # seconds for JupyterLab to answer and its kernel to start
RUN_ALL_TIMEOUT = 180  # seconds for "run all" (about 30 s measured)
#: Where the student test writes its numbers (run-all time, figures, verdicts, slider).
STUDENT_REPORT = ARTIFACTS / "student.json"

LAB_PANEL = "window.jupyterapp && jupyterapp.shell.currentWidget"
LAB_STATE = r"""
(() => {
  const panel = jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return {ready: false};
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const outs = [];
  for (const c of cells)
    for (let k = 0; k < c.model.outputs.length; k++) outs.push(c.model.outputs.get(k));
  const has = (o, mime) => Object.prototype.hasOwnProperty.call(o.data, mime);
  const text = o => String(o.data['application/vnd.jupyter.stdout'] || o.data['text/plain'] || '');
  const FIG = 'application/vnd.plotly.v1+json', LIVE = 'application/vnd.jupyter.widget-view+json';
  return {
    ready: panel.context.isReady && !!kernel,
    kernel: kernel ? kernel.status : null,
    code_cells: cells.length,
    executed: cells.filter(c => typeof c.model.executionCount === 'number').length,
    running: cells.filter(c => { const p = c.node.querySelector('.jp-InputPrompt');
                                 return p && p.textContent.includes('*'); }).length,
    errors: outs.filter(o => o.type === 'error').map(o => {
      const e = o.data['application/vnd.jupyter.error'] || {}; return `${e.ename}: ${e.evalue}`; }),
    figure_outputs: outs.filter(o => has(o, FIG) || has(o, LIVE)).length,
    live_outputs: outs.filter(o => has(o, LIVE)).length,
    drawn: [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')]
             .filter(p => p.querySelector('svg.main-svg')).length,
    verdicts: outs.map(text).join('\n').match(/\[(correct|wrong|not implemented yet)\]/g) || [],
  };
})()
"""


#: Scrolls to every cell with a figure output and waits (up to 10 s each) for plotly to draw it;
#: resolves to the number of figures drawn.
SCROLL_AND_COUNT = r"""
(async () => {
  const FIG = 'application/vnd.plotly.v1+json', LIVE = 'application/vnd.jupyter.widget-view+json';
  const nb = jupyterapp.shell.currentWidget.content;
  let drawn = 0;
  for (let i = 0; i < nb.widgets.length; i++) {
    const c = nb.widgets[i];
    if (c.model.type !== 'code') continue;
    let figs = 0;
    for (let k = 0; k < c.model.outputs.length; k++) {
      const d = c.model.outputs.get(k).data;
      if (FIG in d || LIVE in d) figs++;
    }
    if (!figs) continue;
    if (nb.scrollToItem) await nb.scrollToItem(i, 'center'); else c.node.scrollIntoView({block: 'center'});
    const until = Date.now() + 10000;
    let here = 0;
    while (Date.now() < until) {
      here = [...c.node.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('svg.main-svg')).length;
      if (here >= figs) break;
      await new Promise(r => setTimeout(r, 200));
    }
    drawn += Math.min(here, figs);
  }
  return drawn;
})()
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving a copy of the student notebook (the test edits it), with
    every cell rendered (windowing off: JupyterLab 4 otherwise detaches cells off screen)."""
    root = tmp_path_factory.mktemp("student")
    shutil.copy2(ROOT / STUDENT_LAB, root / "lab12.ipynb")
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), os.urandom(16).hex()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"), "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    jupyter = Path(sys.executable).with_name("jupyter")
    log = (ARTIFACTS / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [str(jupyter) if jupyter.exists() else "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0", "--allow-root"],
        cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + LAB_START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"JupyterLab did not start; log: {ARTIFACTS / 'jupyterlab.log'}")
        time.sleep(0.5)
    yield {"url": f"{base}/lab/tree/lab12.ipynb?token={token}", "root": root}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the process group started for this server only
        proc.wait()
    log.close()


def _lab_wait(browser: Browser, session: str, expression: str, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = browser.evaluate(session, expression, timeout=120)
        if value:
            return value
        if time.monotonic() > deadline:
            state = browser.evaluate(session, LAB_STATE, timeout=120)
            state = {k: v for k, v in state.items() if k != "verdicts"} if state else state
            _lab_shot(browser, session, "student-timeout.png")
            pytest.fail(f"JupyterLab: timed out after {timeout:.0f} s waiting for {what}; "
                        f"notebook state: {state}")
        time.sleep(0.5)


def _lab_shot(browser: Browser, session: str, name: str) -> None:
    png = browser.call("Page.captureScreenshot", {"format": "png"}, session=session, timeout=60)["data"]
    (ARTIFACTS / name).write_bytes(base64.b64decode(png))


def test_student_runs_lab12_in_jupyterlab(built_book, browser, jupyterlab):
    """A student opens Lab 12 in JupyterLab and runs all: no cell errors, every figure draws, each
    TODO check prints a verdict; a live slider re-runs the model and changes the figure's data;
    filling one TODO with a correct answer through the notebook prints [correct].

    (It asks for the built book only to run after the notebooks and the build, not next to them:
    its kernel would slow the notebooks' timed cells down.)"""
    report = {}
    for old in ARTIFACTS.glob("student*"):
        old.unlink()
    session = browser.new_page()
    started = time.monotonic()
    browser.call("Page.navigate", {"url": jupyterlab["url"]}, session=session)
    _lab_wait(browser, session, f"!!({LAB_PANEL}) && ({LAB_STATE}).ready && ({LAB_STATE}).kernel === 'idle'",
              LAB_START_TIMEOUT, "the notebook and an idle kernel")
    report["open_s"] = round(time.monotonic() - started, 1)

    t0 = time.monotonic()
    # not awaited: the command's promise settles only when every cell has run
    browser.evaluate(session, "(jupyterapp.commands.execute('notebook:run-all-cells'), true)")
    state = _lab_wait(browser, session, f"""(() => {{ const s = {LAB_STATE};
        return s.kernel === 'idle' && s.running === 0 && s.executed === s.code_cells ? s : null; }})()""",
                      RUN_ALL_TIMEOUT, "run all to finish")
    report["run_all_s"] = round(time.monotonic() - t0, 1)
    # JupyterLab draws only the cells near the view: scroll to each figure and wait for it
    state["drawn"] = browser.evaluate(session, SCROLL_AND_COUNT, timeout=180)
    report.update({k: state[k] for k in ("code_cells", "figure_outputs", "live_outputs", "drawn")})
    report["verdicts"] = len(state["verdicts"])
    _lab_shot(browser, session, "student-run-all.png")
    assert not state["errors"], f"cells show errors after run all: {state['errors']}"
    checks = sum("labcheck.check_" in c.source
                 for c in json_cells(ROOT / STUDENT_LAB) if c.cell_type == "code")
    assert len(state["verdicts"]) == checks, (state["verdicts"], checks)
    assert all(v == "[not implemented yet]" for v in state["verdicts"]), state["verdicts"]
    assert state["figure_outputs"] >= 3 and state["live_outputs"] >= 3, state
    assert state["drawn"] >= state["figure_outputs"]

    # a live slider: the timescale diagram's eps, one step to the right, re-runs the joint flow
    find = r"""(() => {
      const label = [...document.querySelectorAll('.widget-slider .widget-label')]
                      .find(l => l.textContent.startsWith('ε'));
      if (!label) return null;
      const area = label.closest('.jp-OutputArea-output');
      const plot = area && area.querySelector('.js-plotly-plot');
      const handle = label.closest('.widget-slider').querySelector('.noUi-handle');
      return plot && handle ? true : null; })()"""
    _lab_wait(browser, session, find, 30, "the live timescale diagram's ε slider")
    data = r"""(() => {
      const label = [...document.querySelectorAll('.widget-slider .widget-label')]
                      .find(l => l.textContent.startsWith('ε'));
      const plot = label.closest('.jp-OutputArea-output').querySelector('.js-plotly-plot');
      return JSON.stringify(plot.data.map(t => [t.x, t.y]));
    })()"""
    before = browser.evaluate(session, data)
    browser.evaluate(session, r"""(() => {
      const label = [...document.querySelectorAll('.widget-slider .widget-label')]
                      .find(l => l.textContent.startsWith('ε'));
      const handle = label.closest('.widget-slider').querySelector('.noUi-handle');
      handle.scrollIntoView({block: 'center'}); handle.focus(); return true; })()""")
    moved = time.monotonic()
    for kind in ("keyDown", "keyUp"):
        browser.call("Input.dispatchKeyEvent", {"type": kind, "key": "ArrowRight", "code": "ArrowRight",
                                                "windowsVirtualKeyCode": 39}, session=session)
    _lab_wait(browser, session, f"({data}) !== {json.dumps(before)}", 60,
              "the figure's data to change after the slider moved")
    report["slider_update_s"] = round(time.monotonic() - moved, 1)
    _lab_shot(browser, session, "student-live-widget.png")

    # fill TODO 4 through the notebook and re-run it and its check
    filled = browser.evaluate(session, f"""(() => {{
      const nb = jupyterapp.shell.currentWidget.content;
      const i = nb.widgets.findIndex(c => c.model.id === {json.dumps(STUDENT_TODO_CELL)});
      if (i < 0) return -1;
      nb.widgets[i].model.sharedModel.setSource({json.dumps(STUDENT_ANSWER)});
      nb.activeCellIndex = i;
      return i; }})()""")
    assert filled >= 0, f"cell {STUDENT_TODO_CELL} not found"
    for _ in range(2):  # the answer, then its check
        browser.evaluate(session, "jupyterapp.commands.execute('notebook:run-cell-and-select-next')"
                                  ".then(() => true)", timeout=120)
    verdict = _lab_wait(browser, session, f"""(() => {{
      const nb = jupyterapp.shell.currentWidget.content;
      const outs = nb.widgets[{filled} + 1].model.outputs;
      let text = '';
      for (let k = 0; k < outs.length; k++)
        text += String(outs.get(k).data['application/vnd.jupyter.stdout'] || '');
      const m = text.match(/\\[(correct|wrong|not implemented yet)\\]/);
      return m && !text.includes('not implemented yet') ? m[0] : null; }})()""", 30, "the TODO's verdict")
    report["filled_todo_verdict"] = verdict
    report["total_s"] = round(time.monotonic() - started, 1)
    browser.close_page(session)
    STUDENT_REPORT.write_text(json.dumps(report, indent=1))
    print("student test:", report)
    assert verdict == "[correct]", verdict
    assert report["run_all_s"] < 60, f"run all took {report['run_all_s']} s"


def json_cells(path: Path) -> list:
    import nbformat

    return nbformat.read(path, as_version=4).cells


class _ProseText(html.parser.HTMLParser):
    """The text a reader sees as prose: everything but code, outputs, figures and typeset math
    (MyST turns each ``$...$`` into a ``math`` span, so raw LaTeX left in the text never typesets)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
            "source", "track", "wbr"}
    SKIP_TAGS = {"script", "style", "pre", "code", "textarea", "svg", "math"}
    SKIP_CLASSES = {"math", "highlight", "cell_output", "output", "js-plotly-plot", "widget-area"}

    def __init__(self):
        super().__init__()
        self.open, self.skipping, self.parts = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        skip = tag in self.SKIP_TAGS or bool(classes & self.SKIP_CLASSES)
        self.open.append(skip)
        self.skipping += skip

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.open:
            self.skipping -= self.open.pop()

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_latex_in_the_prose(built_book, page):
    """No TeX command (``\\frac``, ``\\tfrac`` ...) and no ``$`` shows as text: each is math that
    did not typeset (a line of inline math that starts with ``+`` becomes a list item, say)."""
    parser = _ProseText()
    parser.feed((built_book / page).read_text(errors="replace"))
    text = re.sub(r"\s+", " ", " ".join(parser.parts))
    raw = [text[max(m.start() - 40, 0):m.end() + 20] for m in re.finditer(r"\\[A-Za-z]+|\$", text)]
    assert not raw, f"{page} shows raw LaTeX as text:\n" + "\n".join(raw[:8])


def test_the_raw_latex_check_sees_raw_latex():
    parser = _ProseText()
    parser.feed('<p>fine <span class="math">\\(\\tfrac12\\)</span> but <em>then</em> $r = \\big(W</p>'
                '<pre>$x \\alpha</pre>')
    text = " ".join(parser.parts)
    assert re.findall(r"\\[A-Za-z]+|\$", text) == ["$", "\\big"]
