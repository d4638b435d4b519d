"""The version of sheaflab: the one place it is written.

``pyproject.toml`` reads it (setuptools' dynamic ``attr``, which parses this file without importing
the package) and ``sheaflab.__version__`` re-exports it; the book's landing page prints it.
"""

__version__ = "0.2.0"
