"""Tonight's status: is a session due, done, or not allowed yet; and is it due now.

Owns: one pure function from the prescription, its course, the ledger's sessions, the
time now, the patient's zone, the controller's next allowed start (read from the
ledger with the controller's schedule rule, ``safety.records``) and the record's own
refusal (``Records.record_problem``) to a ``Tonight``:

- "done": a session that delivered light started in tonight's window (today, without
  a window);
- "course over" / "not valid": the prescription cannot be used today;
- "record problem": the record refuses any start until a caregiver acts (lost, a
  clock jump not confirmed, the clock behind the record), in the controller's words;
- "week done": this course week already has its prescribed sessions;
- "window passed": tonight's window is over;
- "not allowed": the schedule allows the next start only after tonight's window;
- "due": otherwise; ``due_now`` is True only inside the window once the schedule
  allows a start (what ``nirpad remind`` answers).

A window ending before it starts spans midnight: at 00:30 inside a 22:00–01:00 window,
"tonight" is the evening that began yesterday.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from care.adherence import is_done
from care.course import Course
from profiles.schema import Profile
from safety.records import SessionRecord

__all__ = ["Tonight", "tonight"]

_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Tonight:
    kind: str
    text: str
    due_now: bool = False


def tonight(
    rx: Profile,
    course: Course,
    sessions: Iterable[SessionRecord],
    now: datetime,
    tz: tzinfo,
    next_allowed: datetime | None,
    *,
    record_problem: str | None,
) -> Tonight:
    """Tonight's status as of ``now`` (timezone-aware) in the zone ``tz``."""
    local = now.astimezone(tz)
    opens, closes = _evening(rx, local, tz)
    problem = rx.validity_problem(local.date())
    if course.end is not None and local.date() >= course.end:
        return Tonight("course over", f"The course ended on {course.end.isoformat()}.")
    if problem is not None:
        return Tonight("not valid", problem)
    if record_problem is not None:  # before the schedule, as the controller's guards
        return Tonight("record problem", record_problem)
    ours = [s for s in sessions if s.profile_id == rx.id and is_done(s)]
    if any(opens <= s.started_at <= closes for s in ours):
        return Tonight("done", "done: tonight's session is recorded")
    week = course.current_week
    if week is not None and course.weeks[week - 1].figures.done >= rx.sessions_per_week:
        return Tonight("week done", f"done: this week's {rx.sessions_per_week} sessions")
    span = f"{_hhmm(opens, tz)} and {_hhmm(closes, tz)}"
    if now > closes:
        return Tonight("window passed", f"tonight's window ({span}) has passed")
    if next_allowed is not None and next_allowed > closes:
        when = _when(next_allowed, local.date(), tz)
        return Tonight("not allowed", f"not allowed before {when}")
    if next_allowed is not None and next_allowed > opens:
        opens = _ceil_minute(next_allowed)
        span = f"{_hhmm(opens, tz)} and {_hhmm(closes, tz)}"
    word = "tonight" if rx.window is not None else "today"
    return Tonight("due", f"session due {word} between {span}", opens <= now <= closes)


def _evening(rx: Profile, local: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """Tonight's window as (opens, closes), aware; the whole day without a window."""
    day = local.date()
    if rx.window is None:
        return _at(day, time.min, tz), _at(day + timedelta(days=1), time.min, tz) - _SECOND
    start, end = time.fromisoformat(rx.window.start), time.fromisoformat(rx.window.end)
    spans_midnight = end < start
    if spans_midnight and local.time() <= end.replace(second=59):
        day -= timedelta(days=1)
    end_day = day + timedelta(days=1) if spans_midnight else day
    closes = _at(end_day, end, tz) + timedelta(seconds=59)  # the end minute is inside
    return _at(day, start, tz), closes


def _at(day: date, clock: time, tz: tzinfo) -> datetime:
    """A local wall time as an aware UTC time (fold 0 in a repeated hour)."""
    return datetime.combine(day, clock, tz).astimezone(UTC)


def _ceil_minute(at: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(at.timestamp() / 60.0) * 60.0, UTC)


def _hhmm(at: datetime, tz: tzinfo) -> str:
    return f"{at.astimezone(tz):%H:%M}"


def _when(at: datetime, today: date, tz: tzinfo) -> str:
    local = _ceil_minute(at).astimezone(tz)
    days = (local.date() - today).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local.date().isoformat()}")
    return f"{local:%H:%M} {day}"
