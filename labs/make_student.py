"""Generate the student notebook of Lab 12 from the solutions notebook.

    python labs/make_student.py            # write labs/lab12_sheaf_trainer.ipynb
    python labs/make_student.py --check    # exit 1 if the committed student notebook is out of date

The solutions notebook ``labs/lab12_solutions.ipynb`` is the only one to edit. In it:

* a code block between a line ``# BEGIN SOLUTION`` and a line ``# END SOLUTION`` is the answer to a TODO.
  The student version replaces the block by ``raise NotImplementedError("TODO: <hint>")`` at the
  indentation of the ``# BEGIN SOLUTION`` line. The hint is the text of the nearest ``# TODO:`` comment
  above the block in the same cell (that comment stays, as the student's instructions);
* markdown between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` is dropped;
* the line ``STRICT = True ...`` becomes ``STRICT = False ...``: in the student version the
  ``sheaflab.labcheck`` checks print a verdict and never stop the notebook;
* every output and execution count is cleared;
* a page title ending in ``(worked solutions)`` ends in ``(student version)`` instead, so that the
  book's sidebar tells the two pages apart;
* every label the notebook defines, a figure's ``name`` in a code cell's ``mystnb.figure`` metadata or a
  MyST target ``(label)=`` in markdown, gets the suffix ``-student`` (``fig-lab-curves`` becomes
  ``fig-lab-curves-student``), and so does every reference to one of them (a ``[text](#label)``
  link, or a ``{numref}``/``{ref}`` role), in
  markdown and in figure captions. Both pages are in the book, and Sphinx labels are global: the
  same label on both would be a duplicate-label warning, which fails the ``-W`` build. References to
  labels defined elsewhere (the chapter's figures) are left alone.

Solution blocks must sit inside function bodies: the student notebook still runs top to bottom, because
nothing calls those functions except the checks, which catch ``NotImplementedError``.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE / "lab12_solutions.ipynb"
STUDENT = HERE / "lab12_sheaf_trainer.ipynb"

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
TODO = re.compile(r"^\s*# TODO:\s*(.*?)\s*$")
STRICT_LINE = re.compile(r"^STRICT = True\b.*$", re.MULTILINE)
STRICT_STUDENT = "STRICT = False  # the checks print a verdict and never stop the notebook"
DEFAULT_HINT = "complete this block"
TITLE = re.compile(r"^(# .*)\(worked solutions\)[ \t]*$", re.MULTILINE)
TITLE_STUDENT = r"\1(student version)"
LABEL_SUFFIX = "-student"
#: A MyST target line, ``(label)=``, in markdown.
MD_TARGET = re.compile(r"^\((?P<label>[^()\s]+)\)=[ \t]*$", re.MULTILINE)
#: A cross-reference role to a label: ``{numref}`label` ``, ``{ref}`label` `` or with a text,
#: ``{numref}`Figure %s <label>` ``.
XREF = re.compile(r"\{(?P<role>numref|ref)\}`(?P<text>[^`<]*?<)?(?P<label>[^`<>\s]+)(?P<close>>?)`")
#: A Markdown link to a label, ``[the loss curves](#fig-lab-curves)``: what the lab's prose uses,
#: since JupyterLab shows a MyST role as raw text and a link as a link.
LINK = re.compile(r"\]\(#(?P<label>[^)\s]+)\)")


class MarkerError(ValueError):
    """A solution marker is unmatched or misplaced; the message names the cell."""


def _strip_code(source: str, where: str) -> tuple[str, int]:
    """Replace every solution block of one code cell; returns (new source, number of blocks)."""
    out, hint, inside, blocks = [], DEFAULT_HINT, False, 0
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MarkerError(f"{where}: nested '{BEGIN}'")
            inside, blocks = True, blocks + 1
            indent = line[: len(line) - len(line.lstrip())]
            message = f"TODO: {hint}".replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{indent}raise NotImplementedError("{message}")')
            continue
        if stripped == END:
            if not inside:
                raise MarkerError(f"{where}: '{END}' without '{BEGIN}'")
            inside, hint = False, DEFAULT_HINT
            continue
        if inside:
            continue
        match = TODO.match(line)
        if match:
            hint = match.group(1) or DEFAULT_HINT
        out.append(line)
    if inside:
        raise MarkerError(f"{where}: '{BEGIN}' without '{END}'")
    return "\n".join(out), blocks


def _strip_markdown(source: str, where: str) -> str:
    """Drop solutions-only markdown between the HTML comment markers."""
    pattern = re.compile(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END) + r"\n?", re.DOTALL)
    result = re.sub(r"\n{3,}", "\n\n", pattern.sub("", source))
    if MD_BEGIN in result or MD_END in result:
        raise MarkerError(f"{where}: unmatched '{MD_BEGIN}' / '{MD_END}'")
    return result.strip("\n")


def _figure_options(cell) -> dict | None:
    """The ``mystnb.figure`` metadata of a code cell (a dict), or None."""
    figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
    return figure if isinstance(figure, dict) else None


def defined_labels(nb: nbformat.NotebookNode) -> list:
    """Every label a notebook defines, in order: figure names of code cells and ``(label)=`` targets."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            figure = _figure_options(cell)
            if figure and figure.get("name"):
                found.append(str(figure["name"]))
        elif cell.cell_type == "markdown":
            found += MD_TARGET.findall(cell.source)
    return found


def references(text: str) -> list:
    """The labels that ``{numref}`` and ``{ref}`` roles and ``[text](#label)`` links in ``text``
    point to (roles first, then links)."""
    return [m.group("label") for m in XREF.finditer(text)] + [m.group("label") for m in LINK.finditer(text)]


def _rename_refs(text: str, renamed: dict) -> str:
    def sub(m):
        label = renamed.get(m.group("label"))
        if label is None:
            return m.group(0)
        return f"{{{m.group('role')}}}`{m.group('text') or ''}{label}{m.group('close')}`"

    def sub_link(m):
        return f"](#{renamed.get(m.group('label'), m.group('label'))})"
    return LINK.sub(sub_link, XREF.sub(sub, text))


def rename_labels(nb: nbformat.NotebookNode, suffix: str = LABEL_SUFFIX) -> dict:
    """Append ``suffix`` to every label ``nb`` defines and to every reference to one of them (in
    markdown and in figure captions), in place; returns ``{old label: new label}``."""
    renamed = {label: label + suffix for label in defined_labels(nb)}
    if not renamed:
        return renamed
    for cell in nb.cells:
        if cell.cell_type == "code":
            figure = _figure_options(cell)
            if figure:
                if figure.get("name"):
                    figure["name"] = renamed[str(figure["name"])]
                if figure.get("caption"):
                    figure["caption"] = _rename_refs(str(figure["caption"]), renamed)
        elif cell.cell_type == "markdown":
            source = MD_TARGET.sub(lambda m: f"({renamed[m.group('label')]})=", cell.source)
            cell.source = _rename_refs(source, renamed)
    return renamed


def make_student(solutions: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student notebook for a solutions notebook (a new object; the input is not modified)."""
    nb = copy.deepcopy(solutions)
    cells = []
    for k, cell in enumerate(nb.cells):
        where = f"cell {k} ({cell.get('id', '?')})"
        if cell.cell_type == "code":
            cell.source, _ = _strip_code(cell.source, where)
            cell.source = STRICT_LINE.sub(STRICT_STUDENT, cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = TITLE.sub(TITLE_STUDENT, _strip_markdown(cell.source, where))
            if not cell.source.strip():
                continue  # a cell that held only solutions text
        cells.append(cell)
    nb.cells = cells
    rename_labels(nb)  # after the solutions-only markdown is gone: its targets are not defined here
    return nb


def solution_blocks(nb: nbformat.NotebookNode) -> list:
    """``[(cell id, hint), ...]`` for every code solution block, in order (used by the tests)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        hint = DEFAULT_HINT
        for line in cell.source.split("\n"):
            match = TODO.match(line)
            if match:
                hint = match.group(1) or DEFAULT_HINT
            if line.strip() == BEGIN:
                found.append((cell.get("id"), hint))
                hint = DEFAULT_HINT
    return found


def render(solutions_path: Path = SOLUTIONS) -> str:
    """The student notebook's file contents for the solutions notebook at ``solutions_path``."""
    solutions = nbformat.read(solutions_path, as_version=4)
    student = make_student(solutions)
    nbformat.validate(student)
    text = nbformat.writes(student)
    return text if text.endswith("\n") else text + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the student notebook differs from the generated one")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = STUDENT.read_text(encoding="utf-8") if STUDENT.exists() else ""
        if current != text:
            print(f"{STUDENT.name} is out of date: run python labs/make_student.py", file=sys.stderr)
            return 1
        print(f"{STUDENT.name} is up to date")
        return 0
    STUDENT.write_text(text, encoding="utf-8")
    print(f"wrote {STUDENT.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
