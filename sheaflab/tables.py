"""Tables of results: HTML in a notebook and on the book's pages, aligned text anywhere else.

A :class:`Table` is what a study's summary cell displays in place of printed columns: on a page it
is a real HTML table in its own box, which scrolls sideways on a narrow screen instead of running
past the column's edge; ``print(table)`` gives the same rows as aligned plain text.
"""

from __future__ import annotations

import html


class Table:
    """Rows of already formatted cells under a header.

    columns: the header, one string per column; rows: sequences of cells (each shown with
    ``str``; format numbers before, to the digits that matter); caption: an optional line above.
    Columns after the first are right-aligned (numbers line up), the first is left-aligned.
    """

    def __init__(self, columns, rows, caption: str | None = None):
        self.columns = [str(c) for c in columns]
        self.rows = [[str(v) for v in row] for row in rows]
        for k, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"rows[{k}] has {len(row)} cells; the header has "
                                 f"{len(self.columns)} columns")
        self.caption = caption

    def _repr_html_(self) -> str:
        def cells(tag, values):
            return "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        body = "".join(f"<tr>{cells('td', row)}</tr>" for row in self.rows)
        return (f'<div class="sheaflab-table"><table>{caption}<thead><tr>{cells("th", self.columns)}'
                f"</tr></thead><tbody>{body}</tbody></table></div>")

    def __str__(self) -> str:
        widths = [max(len(r[k]) for r in [self.columns, *self.rows]) for k in range(len(self.columns))]

        def line(values):
            return "  ".join(v.ljust(w) if k == 0 else v.rjust(w)
                             for k, (v, w) in enumerate(zip(values, widths)))
        out = [self.caption] if self.caption else []
        return "\n".join(out + [line(self.columns), *map(line, self.rows)])

    def __repr__(self) -> str:
        return str(self)
