"""The package's structure (ARCHITECTURE.md): layers that import only downwards, no import cycle
(imports inside functions counted), no private name imported across modules, and private attributes
read only in the module of the class that owns them, with the documented exceptions."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "sheaflab"

# bottom up; a module imports from its own layer (without a cycle) or from below
LAYERS = [
    ("foundations", {"_version", "_checks", "_alloc", "checkpoint", "measure", "style", "tables"}),
    ("the sheaf", {"heads", "sheaf"}),
    ("reduced systems and spectra", {"reduced", "spectral"}),
    ("the fast phase", {"dynamics", "direct", "one_hidden", "solve", "global_min"}),
    ("the local rule", {"local_rule", "backprop", "augment", "parameter_sheaf", "joint", "timescales"}),
    ("closed forms and analysis", {"closed_form", "rescaling", "locality"}),
    ("training", {"optim", "datasets", "parallel", "train"}),
    ("experiments", {"experiments", "comparison", "minima", "labcheck"}),
    ("figures and widgets", {"figures", "widgets"}),
]
LAYER = {m: k for k, (_, mods) in enumerate(LAYERS) for m in mods}
# attributes of objects sheaflab does not own, named here so that a new one is a decision
FOREIGN_PRIVATE = {("parallel", "os._exit"),                # a killed worker's test hook: no cleanup
                   ("style", "fig._sheaflab_head"),         # the package's tag on a plotly figure
                   }


def _modules():
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def _imports(tree):
    """(module imported, names) for every relative or sheaflab import, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("sheaflab")):
            mod = node.module or ""
            mod = mod.removeprefix("sheaflab").lstrip(".") if node.level == 0 else mod
            if mod:
                yield mod.split(".")[0], [a.name for a in node.names]
            else:
                for a in node.names:
                    yield a.name, []
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sheaflab."):
                    yield a.name.split(".")[1], []


def _graph():
    mods = _modules()
    return mods, {m: {t for t, _ in _imports(tree) if t in mods and t != m} for m, tree in mods.items()}


def test_every_module_has_a_layer():
    mods, _ = _graph()
    assert set(mods) == set(LAYER), "add the new module to LAYERS here and to ARCHITECTURE.md"


def _upward(graph, layer):
    return [(m, t) for m, ts in graph.items() for t in ts if layer[t] > layer[m]]


def _cycle(graph):
    """One import cycle of ``graph`` (module -> set of modules) as a list, or None."""
    state = {}

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                return path[path.index(t):] + [t]
            if t not in state:
                found = visit(t, path + [t])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return None


def test_imports_go_down_the_layers():
    _, graph = _graph()
    assert not _upward(graph, LAYER), f"imports from a higher layer: {_upward(graph, LAYER)}"


def test_no_import_cycle():
    _, graph = _graph()
    assert _cycle(graph) is None, "import cycle: " + " -> ".join(_cycle(graph))


def test_the_checks_fail_on_a_cycle_and_an_upward_import():
    # the package before this structure: sheaf -> checkpoint -> train -> sheaf
    old = {"sheaf": {"checkpoint"}, "checkpoint": {"train"}, "train": {"sheaf"}, "heads": set()}
    assert _cycle(old) == ["checkpoint", "train", "sheaf", "checkpoint"]   # found from the first name in order
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _upward({"sheaf": {"train"}, "train": {"sheaf"}}, LAYER) == [("sheaf", "train")]


def test_no_private_name_imported_across_modules():
    bad = [(m, t, n) for m, tree in _modules().items() for t, names in _imports(tree)
           for n in names if n.startswith("_") and not n.startswith("__") and t != "_version"]
    assert not bad, bad


def _own_private_attributes(tree):
    """Private attribute names this module's classes define (assigned on self / cls, or as methods)."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in ast.walk(node):
                if isinstance(item, (ast.FunctionDef, ast.Assign, ast.AnnAssign)):
                    if isinstance(item, ast.FunctionDef):
                        own.add(item.name)
                    for t in getattr(item, "targets", [getattr(item, "target", None)]):
                        if isinstance(t, ast.Name):
                            own.add(t.id)
                if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) \
                        and item.value.id in ("self", "cls") and isinstance(item.ctx, ast.Store):
                    own.add(item.attr)
    return own


def test_private_attributes_are_read_by_their_own_module_only():
    reach = []
    for m, tree in _modules().items():
        own = _own_private_attributes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                v = node.value
                if isinstance(v, ast.Name) and v.id in ("self", "cls"):
                    continue
                if isinstance(v, ast.Call) and getattr(v.func, "id", None) == "super":
                    continue
                if node.attr in own:       # another instance of a class of this module
                    continue
                reach.append((m, ast.unparse(node)))
    unexplained = sorted(set(reach) - FOREIGN_PRIVATE)
    assert not unexplained, f"reach-ins into another object's private names: {unexplained}"
    assert len(reach) <= 5, reach


def test_the_drawing_in_architecture_md_is_the_layers_checked_here():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    drawing = text.split("```")[1]
    rows = {}
    for line in drawing.strip().splitlines():
        number, rest = line.split(maxsplit=1)
        rows[int(number)] = {w for w in rest.split() if w in LAYER}
    assert rows == {k + 1: mods for k, (_, mods) in enumerate(LAYERS)}


def test_the_page_script_is_short_and_reads_no_plotly_internals():
    """book/_ext/figures.js only applies the layouts sheaflab.style designed (ARCHITECTURE.md)."""
    script = (PACKAGE.parent / "book" / "_ext" / "figures.js").read_text()
    assert len(script.splitlines()) <= 150
    assert "_fullLayout" not in script and "._size" not in script
