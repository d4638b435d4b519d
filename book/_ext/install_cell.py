"""The install cell: the first code cell of every notebook, so that a notebook opened on its own works.

On Colab, or anywhere sheaflab is not installed, the cell installs this book's version of the package
(with its plotting extra) from the repository that ``repository.url`` in ``_config.yml`` names, at the
tag ``v<version>`` (``sheaflab/_version.py``). Where sheaflab is importable (Binder, a local install,
the tests) it does nothing. The pages do not show it (tag ``remove-cell``).

The URL and the version are written into the cells from their one source each; run

    python book/_ext/install_cell.py

after changing either, and tests/test_launch.py checks that every notebook's cell is the current one.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted([*ROOT.glob("book/*.ipynb"), *ROOT.glob("labs/*.ipynb")])
TAG = "install-sheaflab"


def repository_url() -> str:
    """``repository.url`` of ``_config.yml`` (read without a YAML parser: the key is fixed)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, flags=re.M)
    if not match:
        raise ValueError("_config.yml has no repository.url")
    return match.group(1).rstrip("/")


def version() -> str:
    text = (ROOT / "sheaflab" / "_version.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, flags=re.M).group(1)


def requirement(url: str | None = None, ver: str | None = None) -> str:
    """The pip requirement the cell installs: the package with its extra, at the book's tag."""
    return f"sheaflab[viz] @ git+{url or repository_url()}@v{ver or version()}"


def source(req: str | None = None) -> str:
    return ("# Colab, or this notebook opened on its own: install sheaflab (this book's version) if it\n"
            "# is missing. Where sheaflab is installed (Binder, a local install) this does nothing.\n"
            "import importlib.util, subprocess, sys\n"
            "if importlib.util.find_spec(\"sheaflab\") is None:\n"
            f"    SHEAFLAB = \"{req or requirement()}\"\n"
            "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", SHEAFLAB], check=True)")


def cell(nb: dict) -> dict | None:
    """The notebook's install cell, or None."""
    return next((c for c in nb["cells"] if TAG in c.get("metadata", {}).get("tags", [])), None)


def sync(paths=NOTEBOOKS) -> list:
    """Put the current install cell before the first code cell of each notebook; returns the
    notebooks it changed (their JSON kept as the repository writes it: indent 1, newline at end)."""
    changed = []
    want = source()
    for path in paths:
        nb = json.loads(path.read_text())
        old = cell(nb)
        if old is not None and "".join(old["source"]) == want:
            continue
        if old is None:
            first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
            old = {"cell_type": "code", "id": "install-sheaflab", "metadata": {"tags": ["remove-cell", TAG]},
                   "execution_count": None, "outputs": [], "source": []}
            nb["cells"].insert(first, old)
        old["source"] = want.splitlines(True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        changed.append(path)
    return changed


if __name__ == "__main__":
    for path in sync():
        print("updated", path.relative_to(ROOT))
    sys.exit(0)
