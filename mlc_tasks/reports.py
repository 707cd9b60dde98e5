"""Stored HTML reports (Evidently's drift report) and the links a browser opens them by: the
installation's API serves `<api>/reports/<sha256>.html` from the artifact store."""

from __future__ import annotations

import re

SUFFIX = ".html"
NAME = re.compile(r"^(?P<digest>[0-9a-f]{64})\.html$")


def report_link(api_url: str, report_uri: str | None) -> str | None:
    """The browser link of a stored report (its URI ends with `<sha256>.html`), else None."""
    name = (report_uri or "").rsplit("/", 1)[-1]
    return f"{api_url.rstrip('/')}/reports/{name}" if NAME.match(name) else None
