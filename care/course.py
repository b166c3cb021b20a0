"""The course of treatment: its calendar, its figures per week and its checkpoints.

Owns: pure functions from the prescription (``profiles.schema.Profile``) and the
ledger's sessions (``safety.records``) to a ``Course``:

- the calendar: day 1 is the patient's local date of the first counted session under
  the prescription's id on or after its issue date (the controller's own rule, so a
  renewal starts a new course); week n is days 7(n-1)+1 … 7n; the course has
  ``course_weeks`` weeks. Sessions of other prescriptions (or of this id before its
  issue date) are kept as earlier courses.
- per week and for the course: sessions done (delivered light) against those
  prescribed, full sessions (``care.adherence``), the share of the planned fluence
  delivered, early stops by outcome (stopped, fault, power lost), starts inside and
  outside the evening window in the patient's zone, missed sessions (in weeks that are
  over), whether the week is on target, and the longest run of weeks on target.
  A pause for lost skin contact is not an outcome: such a session counts by how it
  ended and what it delivered.
- checkpoints: reviews at the end of week 2 and week 4, and a follow-up 4 weeks after
  the course (week 8 of a four-week course), each with the adherence up to it and,
  when IRLS totals are given, the change since the baseline: the latest IRLS marked
  baseline from the prescription's issue date to day 1, else the last IRLS on or
  before day 1.

Does not own the rule itself (``care.adherence``), reading the ledger (``safety.records``)
or showing anything (``firmware_host.course_commands``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final, NamedTuple

from care.adherence import AdherenceRule, is_done, is_full
from care.irls import Band, band_of
from profiles.schema import Profile
from safety.records import Outcome, SessionRecord

__all__ = [
    "Checkpoint",
    "Course",
    "EarlierCourse",
    "Figures",
    "IrlsTotal",
    "SymptomTrend",
    "WeekFigures",
    "build_course",
    "first_day_of",
    "in_window",
]

EARLY_STOPS: Final = (Outcome.STOPPED, Outcome.FAULT, Outcome.POWER_LOST)
FOLLOW_UP_AFTER: Final = timedelta(weeks=4)
REVIEW_WEEKS: Final = (2, 4)


@dataclass(frozen=True, slots=True)
class Figures:
    """Adherence over some weeks. ``missed`` counts only weeks that are over."""

    prescribed: int = 0
    done: int = 0
    full: int = 0
    delivered_j_cm2: float = 0.0
    planned_j_cm2: float = 0.0
    early_stops: dict[str, int] = field(default_factory=lambda: {str(o): 0 for o in EARLY_STOPS})
    inside_window: int = 0
    outside_window: int = 0
    missed: int = 0

    @property
    def fluence_share(self) -> float:
        """Delivered over prescribed fluence (prescribed sessions × the plan)."""
        return self.delivered_j_cm2 / self.planned_j_cm2 if self.planned_j_cm2 else 0.0

    def plus(self, other: Figures) -> Figures:
        return Figures(
            self.prescribed + other.prescribed,
            self.done + other.done,
            self.full + other.full,
            self.delivered_j_cm2 + other.delivered_j_cm2,
            self.planned_j_cm2 + other.planned_j_cm2,
            {k: v + other.early_stops[k] for k, v in self.early_stops.items()},
            self.inside_window + other.inside_window,
            self.outside_window + other.outside_window,
            self.missed + other.missed,
        )


@dataclass(frozen=True, slots=True)
class WeekFigures:
    """One course week: days ``start`` … ``end - 1``. ``status``: "on target",
    "below target", "in progress" (the current week, not yet on target) or "to come"."""

    number: int
    start: date
    end: date
    figures: Figures
    on_target: bool
    status: str


class IrlsTotal(NamedTuple):
    """An IRLS total from the diary; ``baseline``: it was recorded as the baseline."""

    on: date
    total: int
    baseline: bool = False


@dataclass(frozen=True, slots=True)
class SymptomTrend:
    """IRLS totals: the baseline (``baseline_marked``: the one recorded as the baseline;
    else the last on or before day 1) and the latest after day 1 up to a date."""

    baseline: tuple[date, int] | None
    latest: tuple[date, int] | None
    baseline_marked: bool = False

    @property
    def baseline_band(self) -> Band | None:
        return None if self.baseline is None else band_of(self.baseline[1])

    @property
    def latest_band(self) -> Band | None:
        return None if self.latest is None else band_of(self.latest[1])

    @property
    def change(self) -> int | None:
        """Latest minus baseline (negative is better), or None without both."""
        if self.baseline is None or self.latest is None:
            return None
        return self.latest[1] - self.baseline[1]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A review day; ``figures`` cover the course weeks that end on or before it."""

    name: str
    on: date
    weeks: int
    figures: Figures
    weeks_on_target: int
    symptoms: SymptomTrend


@dataclass(frozen=True, slots=True)
class EarlierCourse:
    """Sessions of another prescription (id and file), kept for the history."""

    profile_id: str
    profile_sha256: str
    first_day: date
    last_day: date
    done: int
    full: int


@dataclass(frozen=True, slots=True)
class Course:
    """The installed prescription's course as of ``today``; ``first_day`` None: no
    session yet (the weeks and checkpoints are then empty)."""

    profile_id: str
    today: date
    first_day: date | None
    end: date | None
    weeks: tuple[WeekFigures, ...]
    total: Figures
    weeks_on_target: int
    longest_run_on_target: int
    checkpoints: tuple[Checkpoint, ...]
    earlier: tuple[EarlierCourse, ...]
    rule: AdherenceRule

    @property
    def current_week(self) -> int | None:
        """The week ``today`` falls in (1-based), or None outside the course."""
        if self.first_day is None or self.end is None or not self.first_day <= self.today:
            return None
        return (self.today - self.first_day).days // 7 + 1 if self.today < self.end else None

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        return next((c for c in self.checkpoints if c.on >= self.today), None)


def in_window(rx: Profile, started_at: datetime, tz: tzinfo) -> bool:
    """Whether a start falls in the prescription's evening window, in the zone ``tz``,
    to the minute, both ends included (a window may span midnight). No window: True."""
    if rx.window is None:
        return True
    local = started_at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    start, end = _minutes(rx.window.start), _minutes(rx.window.end)
    if start < end:
        return start <= minute <= end
    return minute >= start or minute <= end


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def first_day_of(rx: Profile, sessions: Iterable[SessionRecord], tz: tzinfo) -> date | None:
    """Day 1 of ``rx``'s course: the local date (in ``tz``) of its first session that
    counts, on or after its issue date; None before the first session."""
    counted = [s for s in _ours(rx, sessions) if is_done(s)]
    if not counted:
        return None
    first = min(counted, key=lambda s: (s.started_at, s.id))
    return first.started_at.astimezone(tz).date()


def _ours(rx: Profile, sessions: Iterable[SessionRecord]) -> list[SessionRecord]:
    since = datetime.combine(rx.issued, time.min, UTC)
    return [s for s in sessions if s.profile_id == rx.id and s.started_at >= since]


def build_course(
    rx: Profile,
    sessions: Iterable[SessionRecord],
    today: date,
    tz: tzinfo,
    rule: AdherenceRule,
    symptoms: Sequence[IrlsTotal | tuple[date, int]] = (),
) -> Course:
    """The course of ``rx`` as of ``today`` (a local date in ``tz``), from all the
    ledger's sessions; ``symptoms`` are the diary's IRLS totals (a plain (date, total)
    pair is one not marked baseline), optional. Sessions and totals after ``today``
    are left out."""
    ordered = sorted(
        (s for s in sessions if s.started_at.astimezone(tz).date() <= today),
        key=lambda s: (s.started_at, s.id),
    )
    ours = _ours(rx, ordered)
    counted = [s for s in ours if is_done(s)]
    others = [s for s in ordered if s not in ours]
    earlier = _earlier(others, tz, rule)
    if not counted:
        return Course(rx.id, today, None, None, (), Figures(), 0, 0, (), earlier, rule)
    first_day = counted[0].started_at.astimezone(tz).date()
    end = rx.course_end(first_day)
    weeks = tuple(_week(rx, ours, first_day, n, today, tz, rule) for n in range(rx.course_weeks))
    total = _sum(w.figures for w in weeks)
    points = [IrlsTotal(*point) for point in symptoms if point[0] <= today]
    checkpoints = _checkpoints(first_day, end, weeks, points, _baseline(points, rx, first_day))
    return Course(
        rx.id,
        today,
        first_day,
        end,
        weeks,
        total,
        sum(w.on_target for w in weeks),
        _longest_run(weeks),
        checkpoints,
        earlier,
        rule,
    )


def _week(
    rx: Profile,
    sessions: list[SessionRecord],
    first_day: date,
    index: int,
    today: date,
    tz: tzinfo,
    rule: AdherenceRule,
) -> WeekFigures:
    start = first_day + timedelta(weeks=index)
    end = start + timedelta(weeks=1)
    inside = [s for s in sessions if start <= s.started_at.astimezone(tz).date() < end]
    figures = _figures(rx, inside, tz, rule, over=end <= today)
    on_target = rule.on_target(figures.full, rx.sessions_per_week)
    if on_target:
        status = "on target"
    elif end <= today:
        status = "below target"
    else:
        status = "in progress" if start <= today else "to come"
    return WeekFigures(index + 1, start, end, figures, on_target, status)


def _figures(
    rx: Profile, sessions: list[SessionRecord], tz: tzinfo, rule: AdherenceRule, *, over: bool
) -> Figures:
    done = [s for s in sessions if is_done(s)]
    stops = {str(o): sum(s.outcome is o for s in sessions) for o in EARLY_STOPS}
    inside = sum(in_window(rx, s.started_at, tz) for s in done)
    return Figures(
        prescribed=rx.sessions_per_week,
        done=len(done),
        full=sum(is_full(s, rule) for s in done),
        delivered_j_cm2=sum(s.delivered_fluence_total_j_cm2 for s in done),
        planned_j_cm2=rx.sessions_per_week * rx.planned_fluence_total_j_cm2,
        early_stops=stops,
        inside_window=inside,
        outside_window=len(done) - inside,
        missed=max(0, rx.sessions_per_week - len(done)) if over else 0,
    )


def _sum(figures: Iterable[Figures]) -> Figures:
    total = Figures()
    for each in figures:
        total = total.plus(each)
    return total


def _longest_run(weeks: Sequence[WeekFigures]) -> int:
    best = run = 0
    for week in weeks:
        run = run + 1 if week.on_target else 0
        best = max(best, run)
    return best


def _baseline(points: Sequence[IrlsTotal], rx: Profile, first_day: date) -> IrlsTotal | None:
    """The latest IRLS marked baseline from the issue date to day 1, else the last
    IRLS on or before day 1."""
    marked = [p for p in points if p.baseline and rx.issued <= p.on <= first_day]
    if marked:
        return max(marked, key=lambda p: p.on)
    last = _last_on_or_before([(p.on, p.total) for p in points], first_day)
    return None if last is None else IrlsTotal(*last)


def _checkpoints(
    first_day: date,
    end: date,
    weeks: Sequence[WeekFigures],
    symptoms: Sequence[IrlsTotal],
    baseline: IrlsTotal | None,
) -> tuple[Checkpoint, ...]:
    days = [(f"week {n} review", first_day + timedelta(weeks=n)) for n in REVIEW_WEEKS]
    days.append(("follow-up, 4 weeks after the course", end + FOLLOW_UP_AFTER))
    start = None if baseline is None else (baseline.on, baseline.total)
    marked = baseline is not None and baseline.baseline
    after_start = [(p.on, p.total) for p in symptoms if p.on > first_day]
    checkpoints = []
    for name, on in days:
        counted = [w for w in weeks if w.end <= on]
        trend = SymptomTrend(start, _last_on_or_before(after_start, on), marked)
        checkpoints.append(
            Checkpoint(
                name, on, len(counted), _sum(w.figures for w in counted),
                sum(w.on_target for w in counted), trend,
            )
        )  # fmt: skip
    return tuple(checkpoints)


def _last_on_or_before(symptoms: Sequence[tuple[date, int]], day: date) -> tuple[date, int] | None:
    before = [entry for entry in symptoms if entry[0] <= day]
    return max(before, key=lambda entry: entry[0]) if before else None


def _earlier(
    sessions: list[SessionRecord], tz: tzinfo, rule: AdherenceRule
) -> tuple[EarlierCourse, ...]:
    groups: dict[tuple[str, str], list[SessionRecord]] = {}
    for session in sessions:
        if is_done(session):
            groups.setdefault((session.profile_id, session.profile_sha256), []).append(session)
    return tuple(
        EarlierCourse(
            profile_id,
            sha256,
            group[0].started_at.astimezone(tz).date(),
            group[-1].started_at.astimezone(tz).date(),
            len(group),
            sum(is_full(s, rule) for s in group),
        )
        for (profile_id, sha256), group in groups.items()
    )
