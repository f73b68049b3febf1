"""Small result tables that render as HTML on the site and as aligned text in a console."""

from __future__ import annotations

import html
from dataclasses import dataclass

from course_lib.engine._checks import check_type


def _check_cells(name: str, cells: tuple[str, ...], header: tuple[str, ...] = ()) -> None:
    check_type(name, cells, (tuple, list), "a tuple of str cells")
    for j, cell in enumerate(cells):
        column = f" (column {header[j]!r})" if header else ""
        check_type(f"{name}[{j}]{column}", cell, str, "a str: format numbers first, e.g. course_lib.i18n.number(x, lang)")


@dataclass(frozen=True)
class Table:
    """Rows of already-formatted cells under a header; a notebook displays it as HTML."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        _check_cells("header", self.header)
        if not self.header:
            raise ValueError("header is empty: a table needs at least one column")
        check_type("rows", self.rows, (tuple, list), "a tuple of rows, each a tuple of str cells")
        for i, row in enumerate(self.rows):
            check_type(f"rows[{i}]", row, (tuple, list), "a tuple of str cells, one per column")
            if len(row) != len(self.header):
                raise ValueError(f"rows[{i}] = {row!r} has {len(row)} cells, header has {len(self.header)}")
            _check_cells(f"rows[{i}]", row, self.header)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in self.rows
        )
        return f'<table class="course-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def __str__(self) -> str:
        lines = [self.header, *self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.header))]
        fmt = lambda line: " | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        rule = "-+-".join("-" * width for width in widths)
        return "\n".join([fmt(self.header), rule, *(fmt(row) for row in self.rows)])

    __repr__ = __str__
