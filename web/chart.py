"""The fluence-per-session chart: a small SVG drawn on the server, no script, no library.

Owns: the geometry of one bar per session (the newest ``MAX_BARS``, oldest on the left):
the delivered fluence filled, the planned fluence as an outline behind it, a bar's
colour class by outcome, and the axis labels. The page inlines the result (the template
escapes every text); CSS classes style it, because the page's CSP allows no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MAX_BARS: Final = 30
WIDTH: Final = 600
HEIGHT: Final = 200
LEFT: Final = 40
BOTTOM: Final = 20
TOP: Final = 10


@dataclass(frozen=True)
class SessionPoint:
    label: str  # the session's local date, for the bar's tooltip
    delivered_j_cm2: float
    planned_j_cm2: float
    outcome: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    delivered_y: float
    delivered_height: float
    planned_y: float
    planned_height: float
    css_class: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    top_label: str
    baseline_y: float
    left: int


def fluence_chart(points: Sequence[SessionPoint]) -> Chart:
    """Bars for the newest sessions; the scale's top is the largest planned or delivered."""
    shown = list(points)[-MAX_BARS:]
    top = max([1.0, *(max(p.delivered_j_cm2, p.planned_j_cm2) for p in shown)])
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(shown), 1)
    bars = []
    for i, point in enumerate(shown):
        delivered_h = plot_h * max(point.delivered_j_cm2, 0.0) / top
        planned_h = plot_h * max(point.planned_j_cm2, 0.0) / top
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.15, 1),
                width=round(slot * 0.7, 1),
                delivered_y=round(TOP + plot_h - delivered_h, 1),
                delivered_height=round(delivered_h, 1),
                planned_y=round(TOP + plot_h - planned_h, 1),
                planned_height=round(planned_h, 1),
                css_class=_css_class(point.outcome),
                title=(
                    f"{point.label}: {point.delivered_j_cm2:.1f} of "
                    f"{point.planned_j_cm2:.1f} J/cm², {point.outcome}"
                ),
            )
        )
    return Chart(WIDTH, HEIGHT, tuple(bars), f"{top:.0f} J/cm²", HEIGHT - BOTTOM, LEFT)


def _css_class(outcome: str) -> str:
    if outcome.startswith("completed"):
        return "bar-done"
    if outcome.startswith("in progress"):
        return "bar-running"
    return "bar-short"
