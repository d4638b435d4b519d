"""Every notebook is shown by the book and executed by nbval: each one runs exactly once per test
run (under nbval; tests/test_render.py builds the book from that run), and none escapes."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent


def notebooks() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for d in ("book", "labs")
                  for p in (ROOT / d).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def toc_files(entry) -> list[str]:
    """Every `file:` (and the `root:`) of a Jupyter Book 1 _toc.yml, at any depth."""
    found = []
    if isinstance(entry, dict):
        for key, value in entry.items():
            if key in ("file", "root"):
                found.append(value)
            else:
                found += toc_files(value)
    elif isinstance(entry, list):
        for value in entry:
            found += toc_files(value)
    return found


def test_every_notebook_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = {str(Path(f).with_suffix("")) for f in toc_files(toc)}
    missing = [nb for nb in notebooks() if nb.removesuffix(".ipynb") not in listed]
    assert notebooks(), "no notebook found under book/ and labs/"
    assert not missing, f"notebooks the book does not show (add them to _toc.yml): {missing}"


def _collected_by_the_default_command(config, nbval_run) -> dict:
    """notebook -> code cells nbval collects with the default test command (testpaths and addopts,
    no paths given). This session's own collection when it is that command (the README's), else a
    ``pytest --collect-only`` in a subprocess."""
    if not config.option.file_or_dir:          # this session is the default command: read its items
        return nbval_run.collected
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--ignore=tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"collection failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    cells: dict[str, int] = {}
    for path in re.findall(r"^(\S+\.ipynb)::Cell \d+$", proc.stdout, flags=re.MULTILINE):
        cells[path] = cells.get(path, 0) + 1
    return cells


def test_every_notebook_is_collected_by_nbval(pytestconfig, nbval_run):
    """The default test command (testpaths and addopts, no arguments) collects every code cell."""
    cells = _collected_by_the_default_command(pytestconfig, nbval_run)
    for nb in notebooks():
        code = sum(c.cell_type == "code" for c in nbformat.read(ROOT / nb, as_version=4).cells)
        assert cells.get(nb) == code, (
            f"{nb}: nbval collects {cells.get(nb, 0)} of its {code} code cells")


def test_nbval_cell_timeout_matches_the_book(pytestconfig):
    """A cell slower than the book build allows (execute.timeout) fails under nbval too."""
    execute = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["execute"]
    assert pytestconfig.option.nbval_cell_timeout <= execute["timeout"]
