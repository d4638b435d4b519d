"""sheaflab.tables.Table: the same rows as HTML and as aligned text."""

import html.parser

import pytest

from sheaflab.tables import Table


class _Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.tag = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        self.tag = tag

    def handle_data(self, data):
        if self.tag in ("th", "td"):
            self.rows[-1].append(data)

    def handle_endtag(self, tag):
        self.tag = None


def test_html_and_text_hold_the_same_cells_escaped_and_aligned():
    t = Table(["task", "ratio"], [["a<b", "1.25"], ["circle", "10.0"]], caption="two & two")
    parser = _Cells()
    parser.feed(t._repr_html_())
    assert parser.rows == [["task", "ratio"], ["a<b", "1.25"], ["circle", "10.0"]]   # unescaped back
    assert "a&lt;b" in t._repr_html_() and "two &amp; two" in t._repr_html_()
    lines = str(t).splitlines()
    assert lines[0] == "two & two"
    assert lines[1:] == ["task    ratio", "a<b      1.25", "circle   10.0"]   # numbers right-aligned


def test_a_row_of_the_wrong_length_is_named():
    with pytest.raises(ValueError, match=r"rows\[1\] has 1 cells; the header has 2"):
        Table(["a", "b"], [["1", "2"], ["3"]])
