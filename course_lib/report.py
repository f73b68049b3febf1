"""Small result tables that render as HTML on the site and as aligned text in a console."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """Rows of already-formatted cells under a header; a notebook displays it as HTML."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"row {row!r} has {len(row)} cells, header has {len(self.header)}")

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
