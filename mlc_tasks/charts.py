"""Small inline SVG line charts of a metric over days, for the Command Center's model page.

Pure: results in, SVG text out. Every label and value that reaches the SVG is escaped here
(a metric or window name comes from a package and is not to be trusted), and the chart uses
presentation attributes only (no style attribute, no script), so it renders under a strict
Content-Security-Policy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from pydantic import BaseModel, ConfigDict

from mlc_tasks.registry.records import ResultOutcome, TestResult

WIDTH, HEIGHT = 360, 150
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 24, 28


class Series(BaseModel):
    """One metric of one kind of result over days: (day, value) sorted by day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    metric: str
    points: list[tuple[str, float]]
    threshold: float | None = None


def day_of(result: TestResult) -> str:
    """The day a result covers: its window (a backtest's date), else the day it was made."""
    return result.window or result.created_at.date().isoformat()


def metric_series(results: Sequence[TestResult]) -> list[Series]:
    """Each (kind, metric) of the tested results as a series over days; a later result for
    the same day replaces an earlier one, a value that is not finite is left out."""
    found: dict[tuple[str, str], dict[str, float]] = {}
    limits: dict[tuple[str, str], float] = {}
    for result in sorted(results, key=lambda r: r.created_at):
        if result.outcome is not ResultOutcome.TESTED:
            continue
        for metric, value in result.metrics.items():
            if math.isfinite(value):
                found.setdefault((result.kind, metric), {})[day_of(result)] = value
        for check in result.thresholds:
            limits[(result.kind, check.metric)] = check.threshold
    return [Series(kind=kind, metric=metric, points=sorted(days.items()),
                   threshold=limits.get((kind, metric)))
            for (kind, metric), days in sorted(found.items())]


def _scale(low: float, high: float, top: float, bottom: float) -> tuple[float, float]:
    """(factor, offset) mapping [low, high] onto [bottom, top] pixels; a flat line sits mid."""
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    factor = (top - bottom) / (high - low)
    return factor, bottom - low * factor


def _number(value: float) -> str:
    return escape(f"{value:.4g}")


def line_chart(series: Series, width: int = WIDTH, height: int = HEIGHT) -> str:
    """An SVG line chart of the series (with its threshold as a dashed line), titled
    "<kind> · <metric>", its first and last day under the x axis."""
    points = series.points
    title = escape(f"{series.kind} · {series.metric}", quote=True)
    values = [v for _, v in points] + ([series.threshold] if series.threshold is not None
                                       else [])
    if not points:
        return (f'<svg class="chart" role="img" aria-label="{title}" viewBox="0 0 {width} '
                f'{height}" width="{width}" height="{height}"><text x="8" y="20">{title}: no '
                f"data</text></svg>")
    low, high = min(values), max(values)
    top, bottom = PAD_TOP, height - PAD_BOTTOM
    factor, offset = _scale(low, high, top, bottom)
    span = max(len(points) - 1, 1)
    step = (width - PAD_LEFT - PAD_RIGHT) / span

    def xy(index: int, value: float) -> str:
        return f"{PAD_LEFT + index * step:.1f},{value * factor + offset:.1f}"

    parts = [f'<svg class="chart" role="img" aria-label="{title}" viewBox="0 0 {width} '
             f'{height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{title}</title>",
             f'<text x="{PAD_LEFT}" y="15" font-size="12" font-weight="600" '
             f'fill="#1f2937">{title}</text>',
             f'<line x1="{PAD_LEFT}" y1="{bottom}" x2="{width - PAD_RIGHT}" y2="{bottom}" '
             'stroke="#d1d5db"/>',
             f'<text x="{PAD_LEFT - 6}" y="{top + 4}" font-size="10" text-anchor="end" '
             f'fill="#6b7280">{_number(high)}</text>',
             f'<text x="{PAD_LEFT - 6}" y="{bottom}" font-size="10" text-anchor="end" '
             f'fill="#6b7280">{_number(low) if high > low else ""}</text>']
    if series.threshold is not None:
        y = series.threshold * factor + offset
        parts.append(f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{width - PAD_RIGHT}" '
                     f'y2="{y:.1f}" stroke="#dc2626" stroke-dasharray="4 3"/>')
    line = " ".join(xy(i, v) for i, (_, v) in enumerate(points))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="2"/>')
    for i, (day, value) in enumerate(points):
        label = escape(f"{day}: {value:.4g}", quote=True)
        parts.append(f'<circle cx="{xy(i, value).split(",")[0]}" '
                     f'cy="{xy(i, value).split(",")[1]}" r="3" fill="#2563eb">'
                     f"<title>{label}</title></circle>")
    parts += [f'<text x="{PAD_LEFT}" y="{height - 8}" font-size="10" '
              f'fill="#6b7280">{escape(points[0][0])}</text>',
              f'<text x="{width - PAD_RIGHT}" y="{height - 8}" font-size="10" '
              f'text-anchor="end" fill="#6b7280">{escape(points[-1][0])}</text>', "</svg>"]
    return "".join(parts)
