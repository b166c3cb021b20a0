"""The course as plain data (``nirpad course --json``, later the caregiver's page).

Owns: the JSON shape of a ``care.course.Course`` and tonight's status: dates as ISO
8601, fluence in J/cm², shares as fractions 0–1 rounded to 3 places, early stops by
outcome, and for each checkpoint the IRLS trend (``irls_baseline``/``_on``/``_marked``/
``_band``, ``irls_latest``/``_on``/``_band``, ``irls_change``; null without an IRLS). Keys
are stable: scripts and the web page read them.
"""

from __future__ import annotations

from typing import Any

from care.course import Checkpoint, Course, EarlierCourse, Figures, WeekFigures
from care.irls import Band
from care.tonight import Tonight

__all__ = ["course_json"]


def course_json(course: Course, tonight: Tonight | None) -> dict[str, Any]:
    """``course`` and ``tonight`` as a JSON-ready dict."""
    checkpoint = course.next_checkpoint
    return {
        "profile_id": course.profile_id,
        "today": course.today.isoformat(),
        "first_day": None if course.first_day is None else course.first_day.isoformat(),
        "end": None if course.end is None else course.end.isoformat(),
        "current_week": course.current_week,
        "rule": {
            "text": course.rule.describe(),
            "min_fluence_fraction": course.rule.min_fluence_fraction,
            "min_sessions_per_week": course.rule.min_sessions_per_week,
        },
        "weeks": [_week(w) for w in course.weeks],
        "total": _figures(course.total),
        "weeks_on_target": course.weeks_on_target,
        "longest_run_on_target": course.longest_run_on_target,
        "checkpoints": [_checkpoint(c) for c in course.checkpoints],
        "next_checkpoint": None if checkpoint is None else _checkpoint(checkpoint),
        "earlier_courses": [_earlier(e) for e in course.earlier],
        "tonight": None
        if tonight is None
        else {"status": tonight.kind, "text": tonight.text, "due_now": tonight.due_now},
    }


def _figures(figures: Figures) -> dict[str, Any]:
    return {
        "prescribed": figures.prescribed,
        "done": figures.done,
        "full": figures.full,
        "missed": figures.missed,
        "delivered_j_cm2": round(figures.delivered_j_cm2, 3),
        "planned_j_cm2": round(figures.planned_j_cm2, 3),
        "fluence_share": round(figures.fluence_share, 3),
        "early_stops": dict(figures.early_stops),
        "inside_window": figures.inside_window,
        "outside_window": figures.outside_window,
    }


def _week(week: WeekFigures) -> dict[str, Any]:
    return {
        "week": week.number,
        "start": week.start.isoformat(),
        "end": week.end.isoformat(),
        "status": week.status,
        "on_target": week.on_target,
        **_figures(week.figures),
    }


def _checkpoint(checkpoint: Checkpoint) -> dict[str, Any]:
    trend = checkpoint.symptoms
    return {
        "name": checkpoint.name,
        "on": checkpoint.on.isoformat(),
        "weeks": checkpoint.weeks,
        "weeks_on_target": checkpoint.weeks_on_target,
        "figures": _figures(checkpoint.figures),
        "irls_baseline": None if trend.baseline is None else trend.baseline[1],
        "irls_baseline_on": None if trend.baseline is None else trend.baseline[0].isoformat(),
        "irls_baseline_marked": trend.baseline_marked,
        "irls_baseline_band": _band(trend.baseline_band),
        "irls_latest": None if trend.latest is None else trend.latest[1],
        "irls_latest_on": None if trend.latest is None else trend.latest[0].isoformat(),
        "irls_latest_band": _band(trend.latest_band),
        "irls_change": trend.change,
    }


def _band(band: Band | None) -> str | None:
    return None if band is None else band.value


def _earlier(earlier: EarlierCourse) -> dict[str, Any]:
    return {
        "profile_id": earlier.profile_id,
        "profile_sha256": earlier.profile_sha256,
        "first_day": earlier.first_day.isoformat(),
        "last_day": earlier.last_day.isoformat(),
        "done": earlier.done,
        "full": earlier.full,
    }
