"""Repository-wide pytest plugin: each notebook executes once per test run.

nbval (``--nbval-lax``) executes every notebook under book/ and labs/, cell by cell. This plugin
records what the kernel sent for each cell and, when a notebook's last cell has run, writes the
executed notebook to ``_build/executed/<path>.ipynb`` with a status file
``_build/executed/<path>.ipynb.json`` (this session's run id, the cells that failed, and why the
build would have to execute it anyway, if it must).
tests/test_render.py builds the book from those notebooks with execution off, instead of running
every notebook a second time.

Cells run as nbclient (what the book build executes with) runs them: with ``store_history=True``,
so that a trailing ``;`` hides a result on the pages as in the book (nbval's own request shows it).
The outputs are rebuilt from the kernel's IOPub messages the way nbclient assembles them: one output
per stream message, ``clear_output``, ``update_display_data`` and the widget state from comm
messages. nbval's own ``test_outputs`` would not do: it merges a cell's streams across its figures
and drops comm and clear/update messages.

Why two nbval methods are replaced (in :meth:`_Recorder.attach`) rather than hooked: nbval offers no
hook for the kernel's messages or for the execute request, and pytest's hooks see a cell only as a
test item, after nbval has already consumed its messages. The replacements wrap nbval's own
``execute_cell_input`` and ``get_kernel_message`` on one notebook's objects (no class is patched),
keep their signatures and return what nbval's would, so nbval's comparison and reporting still run;
everything else here uses pytest's hooks (``pytest_runtest_protocol``/``setup``/``call``/``makereport``).

The notebooks are collected first and tests marked ``after_notebooks`` next, so those are handed
out only after every notebook (pytest-xdist's ``--dist loadscope`` hands out work units in
collection order with ``--no-loadscope-reorder``); the ``nbval_run`` fixture waits for the
executed notebooks of this session.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell

ROOT = Path(__file__).resolve().parent
EXPORTS = ROOT / "_build" / "executed"

_RUN = pytest.StashKey[dict]()  # {"id": ..., "started": ...}, the same in every xdist worker
_COLLECTED = pytest.StashKey[dict]()  # notebook (relative path) -> code cells, if collected in full
_RECORDER = pytest.StashKey["_Recorder"]()  # on each notebook's nbval file node


def status_path(notebook: Path) -> Path:
    return notebook.with_name(notebook.name + ".json")


def _write_atomically(path: Path, text: str) -> None:
    """Readers in another worker see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Session: run id, collection order


#: One BLAS thread per process, for the xdist workers, the notebooks' kernels and everything they
#: start (set before any of them is spawned; a variable the caller set is kept). The suite already
#: runs two workers on two cores, each notebook's kernel beside its joblib workers: OpenBLAS's own
#: threads on top of those oversubscribe the cores, and its waiting threads spin. Measured here:
#: two processes training sheaf and SGD models side by side took 12 s each with OpenBLAS's
#: default two threads apiece and 4 s with one (alone: 3.6 s and 4.1 s).
BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
for _name, _value in BLAS_THREADS.items():
    os.environ.setdefault(_name, _value)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "after_notebooks: runs after the notebooks (and waits for their execution)")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "sheaflab_run" in workerinput:
        config.stash[_RUN] = workerinput["sheaflab_run"]
    else:
        config.stash[_RUN] = {"id": uuid.uuid4().hex, "started": time.time()}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist (controller): every worker gets the controller's run id."""
    node.workerinput["sheaflab_run"] = node.config.stash[_RUN]


def pytest_collection_modifyitems(config, items):
    """Notebooks first, then the tests that wait for them, then the rest: while those wait for the
    last notebook, the other xdist worker finishes it and moves on to the remaining tests."""
    def rank(item):
        if isinstance(item, IPyNbCell):
            return 0
        return 1 if item.get_closest_marker("after_notebooks") else 2
    items.sort(key=rank)  # stable: collection order within each group


def pytest_collection_finish(session):
    counts: dict[str, int] = {}
    files = {}
    for item in session.items:
        if _recorded(item):
            rel = item.parent.path.relative_to(ROOT).as_posix()
            counts[rel] = counts.get(rel, 0) + 1
            files[rel] = item.parent
    session.config.stash[_COLLECTED] = {
        rel: n for rel, n in counts.items()
        if n == sum(c.cell_type == "code" for c in files[rel].nb.cells)
    }


class NbvalRun:
    """This session's nbval run, as seen by a test that needs its executed notebooks."""

    def __init__(self, config):
        self.id = config.stash[_RUN]["id"]
        #: When this session started: sources read after this are what the notebooks ran on.
        self.started = config.stash[_RUN]["started"]
        #: Notebooks (paths relative to the repository) whose every code cell nbval runs here.
        self.collected = dict(config.stash.get(_COLLECTED, {}))
        # Only under xdist can another process still be executing a notebook.
        self._parallel = hasattr(config, "workerinput")

    def export(self, rel: str) -> Path:
        return EXPORTS / rel

    def statuses(self, notebooks: list[str], timeout: float) -> dict[str, dict]:
        """The status of each notebook's export from this session, waiting up to timeout s."""
        deadline = time.monotonic() + timeout
        found: dict[str, dict] = {}
        while True:
            for rel in notebooks:
                if rel not in found:
                    status = self._status(rel)
                    if status is not None:
                        found[rel] = status
            missing = [rel for rel in notebooks if rel not in found]
            if not missing:
                return found
            if not self._parallel or time.monotonic() > deadline:
                waited = f"after waiting {timeout:.0f} s " if self._parallel else ""
                pytest.fail(
                    f"nbval did not write an executed notebook for this session (run {self.id}) "
                    f"{waited}for: {', '.join(missing)}. Their cells must run before the tests "
                    f"marked after_notebooks (see conftest.py); did a worker crash?")
            time.sleep(0.5)

    def _status(self, rel: str) -> dict | None:
        path = status_path(self.export(rel))
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return status if status.get("run") == self.id else None  # else: left by an earlier run


@pytest.fixture(scope="session")
def nbval_run(request) -> NbvalRun:
    return NbvalRun(request.config)


# ---------------------------------------------------------------------------------------------
# Recording each cell's outputs


class _Recorder:
    """Assembles one notebook's outputs from its kernel's IOPub messages, as nbclient would."""

    def __init__(self, file, run_id: str):
        self.run = run_id
        self.rel = file.path.relative_to(ROOT).as_posix()
        self.nb = copy.deepcopy(file.nb)
        self.code_cells = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]
        for i in self.code_cells:
            self.nb.cells[i].outputs = []
            self.nb.cells[i].execution_count = None
        self.passed: set[int] = set()
        self.failed: list[str] = []
        self.incomplete: list[str] = []  # why the book build must execute it anyway
        self.executed = 0
        self.started = time.monotonic()
        self.cell: int | None = None  # index in nb.cells of the running cell
        self.msg_id: str | None = None  # its execute request
        self.clear_pending = False
        self.display_ids: dict[str, list[tuple[int, int]]] = {}  # id -> [(cell, output)]
        self.widgets: dict[str, dict] = {}  # comm id -> state
        self.buffers: dict[str, dict[tuple, dict]] = {}  # comm id -> path -> encoded buffer
        self.attached = False

    def attach(self, file) -> None:
        """Tap the running kernel: run each cell as nbclient does, and see every IOPub message that
        nbval reads."""
        kernel = file.kernel
        self.nb.metadata["language_info"] = _language_info(kernel.kc)
        read = file.get_kernel_message

        def execute_cell_input(cell_input, allow_stdin=None):
            # As nbclient (the book build) runs a cell: with history, so that a trailing `;`
            # hides the result and In/Out/_ work. nbval's store_history=False shows the result.
            self.msg_id = kernel.kc.execute(cell_input, store_history=True,
                                            allow_stdin=allow_stdin, stop_on_error=False)
            return self.msg_id

        def get_kernel_message(*args, **kwargs):
            msg = read(*args, **kwargs)
            if self.cell is not None and msg["parent_header"].get("msg_id") == self.msg_id:
                self._on_message(msg)
            return msg

        kernel.execute_cell_input = execute_cell_input
        file.get_kernel_message = get_kernel_message
        self.attached = True

    def start_cell(self, item) -> None:
        self.cell = self.code_cells[item.cell_num]
        self.msg_id = None

    def end_cell(self, item) -> None:
        cell = self.nb.cells[self.cell]
        if cell.source.strip():  # nbclient neither runs nor numbers an empty cell
            self.executed += 1
            cell.execution_count = self.executed
        self.cell = None

    def _on_message(self, msg: dict) -> None:
        kind, content = msg["msg_type"], msg["content"]
        outputs = self.nb.cells[self.cell].outputs
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id and kind in ("display_data", "execute_result", "update_display_data"):
            self._update_display(display_id, content)
        if kind == "clear_output":
            if content.get("wait"):
                self.clear_pending = True
            else:
                self._clear(outputs)
        elif kind.startswith("comm_"):
            self._on_comm(msg)
        elif kind in ("stream", "display_data", "execute_result", "error"):
            if self.clear_pending:
                self._clear(outputs)
                self.clear_pending = False
            if display_id:
                self.display_ids.setdefault(display_id, []).append((self.cell, len(outputs)))
            outputs.append(nbformat.v4.output_from_msg(msg))

    def _clear(self, outputs: list) -> None:
        outputs.clear()
        for where in self.display_ids.values():
            where[:] = [(c, o) for c, o in where if c != self.cell]

    def _update_display(self, display_id: str, content: dict) -> None:
        for c, o in self.display_ids.get(display_id, []):
            out = self.nb.cells[c].outputs[o]
            out["data"], out["metadata"] = content["data"], content["metadata"]

    def _on_comm(self, msg: dict) -> None:
        content = msg["content"]
        data = content.get("data") or {}
        if "state" not in data:  # custom messages carry no model state
            return
        comm = content["comm_id"]
        self.widgets.setdefault(comm, {}).update(data["state"])
        for path, buf in zip(data.get("buffer_paths") or [], msg.get("buffers") or []):
            self.buffers.setdefault(comm, {})[tuple(path)] = {
                "data": base64.b64encode(bytes(buf)).decode("ascii"),
                "encoding": "base64", "path": path}
        if self.widgets[comm].get("_model_name") == "OutputModel":
            # nbclient routes captured outputs into an Output widget by talking back to the
            # kernel; nbval cannot, so the book build executes this notebook itself.
            self.incomplete.append("an ipywidgets Output widget is not recorded from nbval")

    def record(self, item, report) -> None:
        if report.failed:
            self.failed.append(f"Cell {item.cell_num} failed ({report.when})")
            # Now, not at the last cell: with -x the session stops here, and whoever waits for
            # this notebook learns at once that it failed.
            self.write()
        elif report.skipped:
            self.incomplete.append(f"nbval skipped Cell {item.cell_num}")
        elif report.when == "call":
            self.passed.add(item.cell_num)

    def write(self) -> None:
        not_run = [n for n in range(len(self.code_cells)) if n not in self.passed]
        incomplete = list(dict.fromkeys(self.incomplete))
        if not_run and not self.failed and not incomplete:
            incomplete.append(f"nbval did not run cells {not_run}")
        if self.widgets:
            state = {}
            for comm, s in self.widgets.items():
                if "_model_name" in s:
                    state[comm] = {"model_name": s["_model_name"],
                                   "model_module": s.get("_model_module"),
                                   "model_module_version": s.get("_model_module_version"),
                                   "state": s}
                    if comm in self.buffers:
                        state[comm]["buffers"] = list(self.buffers[comm].values())
            self.nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
                "state": state, "version_major": 2, "version_minor": 0}}
        export = EXPORTS / self.rel
        # Not nbformat.writes, which sorts keys: the pages keep the kernel's key order (plotly's
        # JSON included), as when the build executes the notebook.
        _write_atomically(export, json.dumps(self.nb, ensure_ascii=False, indent=1))
        status = {
            "run": self.run,
            "notebook": self.rel,
            "failed": self.failed,
            "incomplete": incomplete,
            "seconds": round(time.monotonic() - self.started, 1),
        }
        _write_atomically(status_path(export), json.dumps(status, indent=1))


def _language_info(kc, timeout: float = 30) -> dict:
    """The kernel's language_info, which nbclient stores in the notebook (it picks the lexer)."""
    msg_id = kc.kernel_info()
    deadline = time.monotonic() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]["language_info"]


def _recorded(item) -> bool:
    """An nbval cell of a notebook in this repository (the book's sources)."""
    return isinstance(item, IPyNbCell) and item.parent.path.is_relative_to(ROOT)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _recorded(item):
        return (yield)
    file = item.parent
    if _RECORDER not in file.stash:
        file.stash[_RECORDER] = _Recorder(file, item.config.stash[_RUN]["id"])
    try:
        return (yield)
    finally:
        if nextitem is None or nextitem.parent is not file:  # the notebook's last cell is done
            file.stash[_RECORDER].write()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    result = yield  # nbval's file setup starts the kernel before the first cell
    if _recorded(item):
        recorder = item.parent.stash[_RECORDER]
        if not recorder.attached:
            recorder.attach(item.parent)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not _recorded(item):
        return (yield)
    recorder = item.parent.stash[_RECORDER]
    recorder.start_cell(item)
    try:
        return (yield)
    finally:
        recorder.end_cell(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if _recorded(item):
        item.parent.stash[_RECORDER].record(item, report)
    return report
