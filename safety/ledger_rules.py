"""The ledger's rules as pure functions: the schedule and the dose after a crash.

Owns: when the minimum-interval and weekly rules next allow a start, given the recent
counted sessions, and the refusal's words (the interval runs from the last session, or
from what counted as one: ``Counted.since``); how much dose to count for a session cut
off by a crash (always at least what was delivered). Times are unix seconds (UTC), so
daylight saving and the local zone never change an answer; only ``format_time`` uses a
zone, for display.

Does not own: reading or writing the database (``safety.ledger``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Final, NamedTuple

from safety.limits import IRRADIANCE_MAX_MW_CM2

__all__ = [
    "RECORD_TIME_MAX_S",
    "RECORD_TIME_MIN_S",
    "WEEK_S",
    "Blocked",
    "Counted",
    "format_time",
    "is_record_time",
    "power_lost_dose",
    "schedule_block",
]

WEEK_S: Final = 7 * 24 * 3600.0
UNKNOWN_RATE_J_CM2_S: Final = IRRADIANCE_MAX_MW_CM2 / 1000.0
"""Rate assumed after a crash when the plan's duration is unknown: the hard maximum."""
RECORD_TIME_MIN_S: Final = datetime(1, 1, 2, tzinfo=UTC).timestamp()
RECORD_TIME_MAX_S: Final = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""A record's times are unix seconds in this range. It is far beyond any pad's life,
and far enough from the limits of Python's dates that such a time, plus any interval,
in any zone, is still a date. A number outside it (or NaN) is a damaged row."""


def is_record_time(at_s: float) -> bool:
    """Whether ``at_s`` can be a record's time (``RECORD_TIME_MIN_S`` to ``_MAX_S``)."""
    return RECORD_TIME_MIN_S <= at_s <= RECORD_TIME_MAX_S


class Counted(NamedTuple):
    """One of the newest counted sessions: a session (``ended_at_s`` None while it runs),
    or an event that counts as one (start = end = its time), whose ``since`` says in words
    what happened then ("the clock was confirmed"): what the interval runs from when it
    is the latest end. None for a session."""

    started_at_s: float
    ended_at_s: float | None
    since: str | None = None


@dataclass(frozen=True, slots=True)
class Blocked:
    """A start is refused until ``at_s``; ``message`` has an ``{at}`` for that time."""

    at_s: float
    message: str


def format_time(at_s: float, tz: tzinfo | None, *, seconds: bool = False) -> str:
    """``at_s`` as local wall time in ``tz`` (None: the system's zone).

    Without seconds the minute is rounded up, so the time shown is never too early.
    """
    if not is_record_time(at_s):  # a damaged row, or a clock set beyond any date
        return f"{at_s:g} s since 1970 (not a date)"
    if not seconds:
        at_s = math.ceil(at_s / 60.0) * 60.0
    local = datetime.fromtimestamp(at_s, UTC).astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def schedule_block(
    recent: list[Counted],
    now_s: float,
    min_interval_h: float,
    max_sessions_per_week: int,
) -> Blocked | None:
    """Whether the interval or weekly rule blocks a start at ``now_s``, and until when.

    ``recent`` holds the newest counted sessions, newest first, at most
    ``max_sessions_per_week`` of them. The interval runs from the latest end (an
    unfinished session ends "now"), named in the refusal: "the last one", or what counted
    as a session then (an event at the same time as a session's end is named: a confirmed
    clock moves the ends before it to its time); the week is any rolling 7 days of
    starts. When both block, the later time wins.
    """
    if not recent:
        return None
    last = max(recent, key=lambda row: (_end_s(row, now_s), row.since is not None))
    candidates = [
        Blocked(
            _end_s(last, now_s) + min_interval_h * 3600.0,
            f"The next session is allowed at {{at}} ({min_interval_h:g} h after "
            f"{last.since or 'the last one'}).",
        )
    ]
    if len(recent) >= max_sessions_per_week:
        oldest_start_s = recent[max_sessions_per_week - 1].started_at_s
        sessions = "session" if max_sessions_per_week == 1 else "sessions"
        candidates.append(
            Blocked(
                oldest_start_s + WEEK_S,
                f"{max_sessions_per_week} {sessions} in 7 days is the most allowed. "
                f"The next session is allowed at {{at}}.",
            )
        )
    latest = max(candidates, key=lambda blocked: blocked.at_s)
    return latest if latest.at_s > now_s else None


def _end_s(row: Counted, now_s: float) -> float:
    return now_s if row.ended_at_s is None else row.ended_at_s


def power_lost_dose(
    planned_j_cm2: dict[int, float],
    planned_duration_s: float | None,
    checkpoints: list[tuple[float, dict[int, float]]],
    extra_s: float,
) -> dict[int, float]:
    """The dose to count for a session cut off after its newest checkpoint.

    ``checkpoints`` are ``(elapsed_s, delivered)`` pairs, newest first (at most two
    are used). Per channel: last delivered + ``extra_s`` at the higher of the planned
    average rate and the last observed rate, capped at the plan, never below the last
    checkpoint.
    """
    base = checkpoints[0][1] if checkpoints else {}
    observed: dict[int, float] = {}
    if len(checkpoints) >= 2 and checkpoints[0][0] > checkpoints[1][0]:
        span_s = checkpoints[0][0] - checkpoints[1][0]
        before = checkpoints[1][1]
        observed = {ch: (j - before.get(ch, 0.0)) / span_s for ch, j in base.items()}
    counted: dict[int, float] = {}
    for channel in planned_j_cm2.keys() | base.keys():
        plan = planned_j_cm2.get(channel, 0.0)
        rate = plan / planned_duration_s if planned_duration_s else UNKNOWN_RATE_J_CM2_S
        rate = max(rate, observed.get(channel, 0.0))
        done = base.get(channel, 0.0)
        counted[channel] = max(done, min(plan, done + rate * extra_s))
    return counted
