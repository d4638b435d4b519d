"""The book's version on its pages: ``{{ version }}`` (a MyST substitution) is sheaflab's version.

One number for the package and the book, written once in ``sheaflab/_version.py``; the landing page
shows it. Read from the installed package, the one the book's notebooks run (requirements.txt
installs this repository's, editable).
"""

from __future__ import annotations

from typing import Any

__version__ = "1.0"


def _add_substitution(app, config) -> None:
    import sheaflab
    config.myst_substitutions = {**config.myst_substitutions, "version": sheaflab.__version__}


def setup(app) -> dict[str, Any]:
    app.connect("config-inited", _add_substitution)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
