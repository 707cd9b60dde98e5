"""Text tables for the `mlc` command line, in the manner of `gh` and `kubectl`: tab-separated
lines when piped (`width=None`), and on a terminal a titled grid that fits the given width by
folding free text and dropping the least useful columns. Ids, version refs and links are never
cut, so they can always be copied whole."""

from __future__ import annotations

import re
import textwrap
from typing import Literal

from pydantic import BaseModel, ConfigDict

GAP = "  "
TEXT_MIN = 12
LINK_INDENT = "    "
CONTROL = re.compile(r"[\t\r\n]+")


class Column(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["key", "text", "link"] = "text"
    # When the grid does not fit, columns with the highest drop go first; 0 = never dropped.
    drop: int = 0


def cell(value: object) -> str:
    """One value as a single line of text: None is empty, a bool is yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return CONTROL.sub(" ", str(value))


def render(title: str, columns: list[Column], rows: list[list[object]], width: int | None) -> str:
    """The table as text ending in a newline; `width` is the terminal's, None when piped."""
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} values for {len(columns)} columns: {row!r}")
    cells = [[cell(value) for value in row] for row in rows]
    if width is None:
        return piped(columns, cells)
    if not cells:
        return "\n".join([*fold(title, width), "(none)"]) + "\n"
    return "\n".join(terminal(title, columns, cells, width)) + "\n"


def piped(columns: list[Column], cells: list[list[str]]) -> str:
    lines = [[cell(column.name) for column in columns], *cells]
    return "".join("\t".join(line) + "\n" for line in lines)


def terminal(title: str, columns: list[Column], cells: list[list[str]], width: int) -> list[str]:
    grid = [i for i, column in enumerate(columns) if column.kind != "link"]
    natural = {i: max([len(cell(columns[i].name)), *(len(row[i]) for row in cells)]) for i in grid}
    floors = {i: floor(columns[i], natural[i]) for i in grid}
    shown = fitting(columns, floors, width)
    widths = allot([floors[i] for i in shown], [natural[i] for i in shown], width)
    lines = [*fold(title, width), *grid_lines([cell(columns[i].name) for i in shown], widths)]
    lines.append("-" * span(widths))
    for row in cells:
        lines += grid_lines([row[i] for i in shown], widths)
        lines += links_below(columns, row, width)
    hidden = [columns[i].name for i in grid if i not in shown]
    if hidden:
        footer = f"(not shown at {width} columns: {', '.join(hidden)}; use --json for everything)"
        lines += fold(footer, width)
    return lines


def floor(column: Column, natural: int) -> int:
    """The narrowest a grid column may be: keys are never folded, text keeps a readable width."""
    return natural if column.kind == "key" else min(natural, TEXT_MIN)


def span(widths: list[int]) -> int:
    """How wide a grid of columns this wide is, gaps included."""
    return sum(widths) + len(GAP) * max(len(widths) - 1, 0)


def fitting(columns: list[Column], floors: dict[int, int], width: int) -> list[int]:
    """The grid columns left after dropping, highest drop first (ties: rightmost), until the
    rest fits at its narrowest or nothing droppable is left."""
    shown = list(floors)
    while span([floors[i] for i in shown]) > width:
        droppable = [i for i in shown if columns[i].drop > 0]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    return shown


def allot(floors: list[int], natural: list[int], width: int) -> list[int]:
    """Column widths from their floors: the room left goes one character at a time to the
    narrowest column still short of its natural width (only text columns ever are)."""
    widths = list(floors)
    for _ in range(width - span(widths)):
        short = [k for k, w in enumerate(widths) if w < natural[k]]
        if not short:
            break
        widths[min(short, key=lambda k: widths[k])] += 1
    return widths


def fold(text: str, width: int) -> list[str]:
    """Text wrapped at spaces to `width`; never truncated. A word longer than `width` is split
    into pieces beginning on a new line, so shorter tokens such as dates more often stay whole."""
    width = max(width, 1)
    pieces = [word[k : k + width] for word in text.split() for k in range(0, len(word), width)]
    return textwrap.wrap(" ".join(pieces), width, break_long_words=False) or [""]


def grid_lines(values: list[str], widths: list[int]) -> list[str]:
    """One record as grid lines; a folded cell leaves the others blank on its later lines."""
    parts = [
        fold(value, w) if len(value) > w else [value]
        for value, w in zip(values, widths, strict=True)
    ]
    height = max((len(part) for part in parts), default=1)
    padded = [part + [""] * (height - len(part)) for part in parts]
    return [
        GAP.join(part[n].ljust(w) for part, w in zip(padded, widths, strict=True)).rstrip()
        for n in range(height)
    ]


def links_below(columns: list[Column], row: list[str], width: int) -> list[str]:
    return [
        line
        for column, value in zip(columns, row, strict=True)
        if column.kind == "link" and value
        for line in link_lines(column.name, value, width)
    ]


def link_lines(name: str, url: str, width: int) -> list[str]:
    """A link below its record; when the line is too wide the url moves to the next line
    (flush left if even that is too wide: links are never cut)."""
    line = f"{LINK_INDENT}{cell(name)}: {url}"
    if len(line) <= width:
        return [line]
    indent = LINK_INDENT + "  " if len(LINK_INDENT) + 2 + len(url) <= width else ""
    return [f"{LINK_INDENT}{cell(name)}:", indent + url]
