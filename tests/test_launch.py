"""Launching anywhere: the install cell of every notebook, the wheel and sdist, Binder's environment.

The two install tests share one fresh virtual environment (no system site-packages, so no sheaflab)
in which pip installs from PyPI what the package needs; they take a minute or so, most of it
downloading numpy and scipy. They install the core package: the ``viz`` extra adds only plotly,
ipywidgets and anywidget, which the Binder test below checks against requirements.txt.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("install_cell", ROOT / "book" / "_ext" / "install_cell.py")
install_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_cell)

# what a copy of the repository needs to build the package (what git would check out, less the book)
PACKAGE_FILES = ["pyproject.toml", "README.md", "sheaflab"]


def _code_cells(path: Path) -> list:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", install_cell.NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_current_install_cell(path):
    first = _code_cells(path)[0]
    assert install_cell.TAG in first["metadata"].get("tags", []), \
        f"{path.name}: its first code cell is not the install cell; run python book/_ext/install_cell.py"
    assert "".join(first["source"]) == install_cell.source(), \
        f"{path.name}: the install cell is out of date; run python book/_ext/install_cell.py"
    assert "remove-cell" in first["metadata"]["tags"]          # the pages do not show it


def test_the_install_cell_names_the_configured_repository_and_version():
    req = install_cell.requirement()
    assert req == f"sheaflab[viz] @ git+{install_cell.repository_url()}@v{install_cell.version()}"
    import sheaflab
    assert install_cell.version() == sheaflab.__version__
    assert install_cell.repository_url() in (ROOT / "README.md").read_text(), \
        "the README should name the repository the launch buttons open"


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    """(python, copy): a new virtual environment without sheaflab, and a copy of the repository."""
    where = tmp_path_factory.mktemp("launch")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(where / "env")
    python = where / "env" / "bin" / "python"
    copy = where / "repo"
    copy.mkdir()
    for name in PACKAGE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, copy / name)
    probe = subprocess.run([python, "-c", "import importlib.util; print(importlib.util.find_spec('sheaflab'))"],
                           capture_output=True, text=True, cwd=where)
    assert probe.stdout.strip() == "None", "the fresh environment already sees a sheaflab"
    return python, copy


def _run(python, code, cwd, timeout=600):
    return subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_the_install_cell_installs_sheaflab_where_it_is_missing(fresh_env):
    python, copy = fresh_env
    cell = install_cell.source()
    local = f"sheaflab @ {copy.as_uri()}"        # the cell's requirement, pointed at the local copy
    assert install_cell.requirement() in cell
    run = _run(python, cell.replace(install_cell.requirement(), local), copy.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    check = _run(python, "import sheaflab; print(sheaflab.__version__, sheaflab.__file__)", copy.parent)
    assert check.returncode == 0, check.stderr[-2000:]
    got_version, where = check.stdout.split()
    assert got_version == install_cell.version() and "site-packages" in where
    again = _run(python, cell, copy.parent)      # now present: the cell does nothing (no pip, no URL)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""


def _quickstart() -> str:
    """The README's first Python block, with its epochs cut to keep the test short."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Using the package\s+```python\n(.*?)```", text, flags=re.S).group(1)
    return re.sub(r"epochs=\d+", "epochs=20", block) + "\nprint(hist.train_mse[-1] < hist.train_mse[0])\n"


def test_the_wheel_installs_and_runs_the_readme_quickstart(fresh_env, tmp_path):
    python, copy = fresh_env
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", tmp_path, copy],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = tmp_path.glob("sheaflab-*.whl")
    sdist, = tmp_path.glob("sheaflab-*.tar.gz")
    assert wheel.name.startswith(f"sheaflab-{install_cell.version()}-")
    assert sdist.name == f"sheaflab-{install_cell.version()}.tar.gz"
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", wheel], capture_output=True,
                           text=True).stdout
    assert "sheaflab/sheaf.py" in names and "tests/" not in names and "book/" not in names
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", wheel],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    run = _run(python, _quickstart(), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "True"


def _pins(path: Path) -> dict:
    """``name==version`` lines of a requirements file, read as pip (and repo2docker) read them."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def test_binder_builds_the_environment_the_tests_run_in():
    """repo2docker reads runtime.txt (``python-X.Y``) and then pip-installs requirements.txt."""
    runtime = (ROOT / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-\d+\.\d+", runtime), runtime
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}"
    pins = _pins(ROOT / "requirements.txt")
    assert {"numpy", "scipy", "plotly", "ipywidgets", "jupyterlab", "jupyter-book"} <= set(pins)
    wrong = {name: (want, importlib.metadata.version(name)) for name, want in pins.items()
             if importlib.metadata.version(name) != want}
    assert not wrong, f"installed versions differ from requirements.txt's pins: {wrong}"
    assert re.search(r"^-e \.\[viz\]", (ROOT / "requirements.txt").read_text(), flags=re.M)
