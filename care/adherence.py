"""The adherence rule: when a week of the course is "on target", stated once.

Owns: the CPAP-style rule (a week is on target when at least the prescribed number of
sessions each delivered at least 90 % of their planned fluence), what a "full"
session is, what a session "done" is, and how a site tightens the rule (``[course]
min_fluence_fraction`` and ``min_sessions_per_week`` in the site configuration: only
tighter values are taken; a looser or malformed one is refused with a sentence).
``[course] irls_wording`` belongs to the diary (``care.irls``) and is passed over.

Does not own the calendar or the figures per week (``care.course``).
docs/course.md quotes this rule; keep the two in step.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from profiles.errors import SiteFileError
from profiles.site_file import read_site_file
from safety.records import SessionRecord

__all__ = [
    "DEFAULT_RULE",
    "AdherenceRule",
    "SiteConfigError",
    "is_done",
    "is_full",
    "read_site_table",
    "rule_from_site",
]

MIN_FLUENCE_FRACTION: Final = 0.9
"""A session counts toward the target when it delivered at least 90 % of its plan."""
_COURSE_KEYS: Final = ("min_fluence_fraction", "min_sessions_per_week", "irls_wording")
_MAX_SESSIONS_PER_WEEK: Final = 7


class SiteConfigError(ValueError):
    """A site configuration value the course cannot use; the message is for people."""


@dataclass(frozen=True, slots=True)
class AdherenceRule:
    """``min_fluence_fraction`` of the planned fluence makes a session full; a week is
    on target with at least ``weekly_target(prescribed)`` full sessions."""

    min_fluence_fraction: float = MIN_FLUENCE_FRACTION
    min_sessions_per_week: int = 0
    """A site's floor on the weekly count (0: the prescription's count alone)."""

    def weekly_target(self, prescribed_per_week: int) -> int:
        """Full sessions a week needs: the prescription's count, or the site's if higher."""
        return max(prescribed_per_week, self.min_sessions_per_week)

    def on_target(self, full_sessions: int, prescribed_per_week: int) -> bool:
        """THE rule: at least the target number of full sessions in the week."""
        return full_sessions >= self.weekly_target(prescribed_per_week)

    def describe(self) -> str:
        """The rule in one sentence, for the table, the report and the docs."""
        floor = (
            f" (at least {self.min_sessions_per_week}, set by the clinic)"
            if self.min_sessions_per_week
            else ""
        )
        return (
            f"A week is on target when it has at least the prescribed number of sessions"
            f"{floor}, each delivering at least {self.min_fluence_fraction:.0%} of its "
            f"planned fluence."
        )


DEFAULT_RULE: Final = AdherenceRule()


def is_done(session: SessionRecord) -> bool:
    """A session that counts at all: it delivered light or is still running (the same
    sessions the controller's schedule counts)."""
    return session.delivered_fluence_total_j_cm2 > 0 or session.ended_at is None


def is_full(session: SessionRecord, rule: AdherenceRule) -> bool:
    """A session that delivered at least the rule's share of its own planned fluence."""
    planned = session.planned_fluence_total_j_cm2
    return planned > 0 and session.delivered_fluence_total_j_cm2 >= (
        rule.min_fluence_fraction * planned - 1e-9
    )


def read_site_table(site_config: Path | None, table: str) -> dict[str, object]:
    """The ``[table]`` of the site configuration, or {} (no file given, no table).

    A file named but missing, or one ``profiles.site_file`` refuses, is a
    ``SiteConfigError`` with its sentence."""
    if site_config is None:
        return {}
    try:
        document = read_site_file(site_config)
    except SiteFileError as exc:
        raise SiteConfigError(str(exc)) from exc
    value = document.get(table, {})
    if not isinstance(value, dict):
        raise SiteConfigError(f"In {site_config}, '{table}' must be a table ([{table}]).")
    return value


def rule_from_site(site_config: Path | None) -> AdherenceRule:
    """The default rule, tightened by the site's ``[course]`` table."""
    table = read_site_table(site_config, "course")
    where = f"In {site_config}, [course]"
    for key in table:
        if key not in _COURSE_KEYS:
            close = difflib.get_close_matches(key, _COURSE_KEYS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SiteConfigError(f"{where} has an unknown setting '{key}'.{hint}")
    fraction = table.get("min_fluence_fraction", MIN_FLUENCE_FRACTION)
    # The range alone: NaN and inf fail it, and it compares an integer of hundreds of
    # digits exactly, where math.isfinite would raise OverflowError.
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not MIN_FLUENCE_FRACTION <= fraction <= 1
    ):
        raise SiteConfigError(
            f"{where} min_fluence_fraction = {fraction!r}: must be a number from "
            f"{MIN_FLUENCE_FRACTION:g} to 1 (a site may only tighten the rule)."
        )
    sessions = table.get("min_sessions_per_week", 0)
    if not (
        isinstance(sessions, int)
        and not isinstance(sessions, bool)
        and (sessions == 0 or 1 <= sessions <= _MAX_SESSIONS_PER_WEEK)
        and (sessions != 0 or "min_sessions_per_week" not in table)
    ):
        raise SiteConfigError(
            f"{where} min_sessions_per_week = {sessions!r}: must be a whole number from 1 "
            f"to {_MAX_SESSIONS_PER_WEEK}."
        )
    return AdherenceRule(float(fraction), sessions)
