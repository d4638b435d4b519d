"""The package as a whole: what importing it does and needs, its layout, and the book's numbering."""

import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sheaflab"

# Blocks the optional plotting packages, as on a machine that installed only the core.
BLOCK_PLOTTING = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('plotly', 'ipywidgets', 'anywidget'):
            raise ImportError(f'No module named {name!r} (blocked by the test)')
sys.meta_path.insert(0, _Block())
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_core_imports_and_trains_without_the_plotting_extra():
    proc = run_python(BLOCK_PLOTTING + """
import numpy as np
import sheaflab
from sheaflab.datasets import paraboloid
X, Y = paraboloid(30, seed=0)
h = sheaflab.SheafTrainer(sheaflab.NeuralSheaf.random([2, 5, 1]), progress=False).fit(X, Y, epochs=2)
assert 'plotly' not in sys.modules and 'ipywidgets' not in sys.modules
for name in ('figures', 'widgets'):
    try:
        __import__('sheaflab.' + name)
    except ImportError as exc:
        print(name, 'ImportError:', exc)
    else:
        raise SystemExit(name + ' imported without plotly')
""")
    assert proc.returncode == 0, proc.stderr
    for name in ("figures", "widgets"):
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(name))
        assert f"sheaflab.{name} draws with plotly" in line and "sheaflab[viz]" in line


def test_import_changes_nothing_process_wide():
    """The allocator is tuned by the first fit, not by ``import sheaflab``."""
    proc = run_python("""
import sheaflab, sheaflab._alloc as a
from sheaflab.datasets import paraboloid
print('after import:', a._state)
X, Y = paraboloid(20, seed=0)
sheaflab.SGDTrainer(sheaflab.NeuralSheaf.random([2, 3, 1]), progress=False).fit(X, Y, epochs=1)
print('after fit:', a._state)
""")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "after import: {}"
    # glibc on Linux takes the tuning; elsewhere it is skipped (platform.libc_ver is an independent probe)
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert lines[1] == f"after fit: {{'tuned': {glibc}}}"
    off = subprocess.run([sys.executable, "-c", "import sheaflab; print(sheaflab.tune_allocator())"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={"SHEAFLAB_NO_MALLOPT": "1", "PATH": ""})
    assert off.stdout.strip() == "False", off.stderr


def test_readme_layout_lists_every_module():
    """The README's layout section has one line for each module of the package, and no stale ones."""
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Repository layout"):]
    listed = set(re.findall(r"^\s+(\w+)\.py\s", layout, flags=re.M))
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert listed == modules, f"missing from README: {modules - listed}; stale: {listed - modules}"


# A number from the source text's numbering (its chapters 10 to 14: "Algorithm 12" "." "4" and the like)
FOREIGN_NUMBER = re.compile(r"\b(Algorithm|Definition|Def\.|Proposition|Prop\.|Theorem|Thm\.?|Remark|"
                            r"Corollary|Cor\.)\s*1[0-4]\.\d")


@pytest.mark.parametrize("path", sorted([*PACKAGE.glob("*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py"),
                                         *ROOT.glob("labs/*.ipynb"), *ROOT.glob("book/*.ipynb"),
                                         ROOT / "README.md"]), ids=lambda p: p.name)
def test_one_numbering_scheme(path):
    """What a reader sees uses the book's own numbers (Definition 1 ... Remark 9)."""
    hits = [m.group(0) for m in FOREIGN_NUMBER.finditer(path.read_text())]
    assert not hits, f"{path.name} uses the source text's numbering: {sorted(set(hits))}"
