"""Output for people and scripts: a table that fits the terminal (tab-separated lines when
piped), JSON with `--json`, and the few ways values are written everywhere (times, refs,
tags). deployments/tables.py (pydantic) is imported only when a table is shown."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from deployments.tables import Column


def emit_json(records: Any) -> None:
    """Records (pydantic, or the API's JSON of them) as indented JSON."""
    def plain(record: Any) -> Any:
        return record.model_dump(mode="json") if hasattr(record, "model_dump") else record

    data = [plain(r) for r in records] if isinstance(records, list) else plain(records)
    typer.echo(json.dumps(data, indent=2))


def key(name: str, drop: int = 0) -> Column:
    """A column whose values are never cut: ids, refs, states, times."""
    from deployments.tables import Column  # pydantic: only when a table is shown

    return Column(name=name, kind="key", drop=drop)


def text(name: str, drop: int = 0) -> Column:
    """Free text, folded to fit."""
    from deployments.tables import Column

    return Column(name=name, drop=drop)


def link(name: str) -> Column:
    """A link, on its own line below its record."""
    from deployments.tables import Column

    return Column(name=name, kind="link")


def show_table(title: str, columns: list[Column], rows: list[list[Any]]) -> None:
    """A table that fits the terminal, or tab-separated lines when piped."""
    from deployments.tables import render

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    typer.echo(render(title, columns, rows, width), nl=False)


def when(at: datetime | str | None, seconds: bool = False) -> str:
    """A time (UTC) to the minute, or to the second; empty for none."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return "" if at is None else f"{at:%Y-%m-%d %H:%M:%S}" if seconds else f"{at:%Y-%m-%d %H:%M}"


def ref(record: dict[str, Any]) -> str:
    """A version as people name it: model:number."""
    return f"{record['model']}:{record['number']}"


def tag_list(tags: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
