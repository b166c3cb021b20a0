"""The clinic report's content, as plain data: what the PDF (and any other form) shows.

Owns: gathering a ``ReportData`` from the prescription (and whether its signature was
verified), the ledger's records (``safety.records``, read-only), the course
(``care.course.build_course``), the symptom diary's current entries, a period and the
device's identity: the course weeks that overlap the period, their figures and total,
the checkpoints, the early stops, faults and starts outside the evening window in
plain words, the IRLS totals (the baseline marked), the nightly scores and the side
effects reported. Every value says where it comes from: ``Source.DEVICE`` (the pad's
treatment record) or ``Source.PATIENT`` (the patient's diary).

Does not own the course figures or the rule (``care.course``, ``care.adherence``),
reading files (the caller passes records and entries), nor any rendering
(``care.report_pdf``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

from care.adherence import AdherenceRule, is_done
from care.course import (
    Checkpoint,
    Course,
    Figures,
    IrlsTotal,
    WeekFigures,
    build_course,
    in_window,
)
from care.diary import StoredIrls, StoredNightly
from care.irls import Band
from profiles.schema import Profile
from safety.records import FAULT_MESSAGES, FaultCode, FaultRecord, Outcome, Records, SessionRecord

__all__ = [
    "OUTCOME_WORDS",
    "Device",
    "IrlsPoint",
    "NightlyPoint",
    "Period",
    "ReportData",
    "ReportError",
    "ReportEvent",
    "SignatureStatus",
    "Source",
    "clock_note",
    "default_period",
    "gather_report",
]


class ReportError(ValueError):
    """A report that cannot be made as asked; the message is for people."""


class Source(enum.StrEnum):
    """Where a value comes from; the report marks every value with one."""

    DEVICE = "device-measured"
    PATIENT = "patient-reported"


SOURCE_MEANING: Final = {
    Source.DEVICE: "recorded by the pad (times, doses, outcomes)",
    Source.PATIENT: "entered by the patient in the diary",
}


class SignatureStatus(enum.StrEnum):
    """The installed prescription's signature, as the device saw it when loading it
    (a signature that does not verify is refused: no such prescription is installed)."""

    VERIFIED = "verified"
    NOT_CHECKED = "not checked"
    UNSIGNED = "unsigned"

    @property
    def text(self) -> str:
        return _SIGNATURE_TEXT[self]


_SIGNATURE_TEXT: Final = {
    SignatureStatus.VERIFIED: "verified against a trusted clinic key",
    SignatureStatus.NOT_CHECKED: "signed, but not checked: this device trusts no clinic keys",
    SignatureStatus.UNSIGNED: "not signed",
}

OUTCOME_WORDS: Final = {
    Outcome.COMPLETED: "completed",
    Outcome.STOPPED: "stopped before the end (the stop button or a long press)",
    Outcome.FAULT: "ended by a fault",
    Outcome.POWER_LOST: "ended when the power was lost",
}
"""How a session ended, in words for the clinic (the ledger's outcome values)."""

PERIOD_END_AFTER_TODAY_MAX_DAYS: Final = 366
"""A report's period may end at most this many days after today."""
_DETAIL: Final = re.compile(r"\s*\([^()]*\)\s*$")


@dataclass(frozen=True, slots=True)
class Period:
    """The report's days, ``start`` to ``end`` included (the patient's local dates)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ReportError(
                f"the period starts ({self.start.isoformat()}) after it ends "
                f"({self.end.isoformat()})"
            )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def holds(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Device:
    """What identifies the device and its software on the report."""

    serial: str
    software_version: str


@dataclass(frozen=True, slots=True)
class ReportEvent:
    """A line of the "early stops and faults" list (device-measured), local time."""

    at: datetime
    text: str
    kind: str
    """``early stop``, ``fault`` or ``outside window``."""


@dataclass(frozen=True, slots=True)
class IrlsPoint:
    """An IRLS total (patient-reported); ``baseline``: the course's baseline;
    ``stand_in``: the baseline is the last total before day 1, not one the patient
    recorded as the baseline (``care.course``), and the report says so."""

    day: date
    total: int
    band: Band
    baseline: bool
    stand_in: bool = False


@dataclass(frozen=True, slots=True)
class NightlyPoint:
    """A night's scores (patient-reported); None: not answered."""

    day: date
    leg_symptoms: int | None
    sleep_quality: int | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the clinic report shows. ``weeks``/``total``: the course weeks that
    overlap the period (device-measured); ``irls`` holds the baseline even before the
    period; ``events``, ``nightly`` and ``side_effects`` are within the period."""

    rx: Profile
    signature: SignatureStatus
    period: Period
    zone: str
    device: Device
    generated_at: datetime
    course: Course
    weeks: tuple[WeekFigures, ...]
    total: Figures
    checkpoints: tuple[Checkpoint, ...]
    events: tuple[ReportEvent, ...]
    irls: tuple[IrlsPoint, ...]
    nightly: tuple[NightlyPoint, ...]
    side_effects: dict[str, int]
    damaged_rows: int
    sessions_after_made: int = 0
    """Sessions in the record that start after ``generated_at``: a clock wrong then or now."""
    diary_damaged_rows: int = 0
    """Rows of the diary left out as damaged (``care.diary.Diary.damaged_rows``)."""

    @property
    def rule(self) -> AdherenceRule:
        return self.course.rule

    @property
    def weeks_on_target(self) -> int:
        return sum(w.on_target for w in self.weeks)

    @property
    def longest_run_on_target(self) -> int:
        """The most consecutive weeks on target among the period's weeks (the table's)."""
        best = run = 0
        for week in self.weeks:
            run = run + 1 if week.on_target else 0
            best = max(best, run)
        return best

    @property
    def baseline(self) -> IrlsPoint | None:
        return next((p for p in self.irls if p.baseline), None)

    @property
    def latest_irls(self) -> IrlsPoint | None:
        """The latest IRLS after day 1 in the period, as the checkpoints take it
        (``care.course``); None before the first session."""
        first_day = self.course.first_day
        if first_day is None:
            return None
        after = [p for p in self.irls if p.day > first_day and not p.baseline]
        return max(after, key=lambda p: p.day) if after else None


def default_period(course: Course, rx: Profile, today: date) -> Period:
    """Day 1 of the course (the issue date before any session) to ``today``."""
    start = course.first_day or rx.issued
    return Period(min(start, today), today)


def gather_report(
    rx: Profile,
    signature: SignatureStatus,
    records: Records,
    *,
    nightly: Sequence[StoredNightly],
    irls: Sequence[StoredIrls],
    period: Period | None,
    tz: tzinfo,
    zone_name: str,
    rule: AdherenceRule,
    device: Device,
    generated_at: datetime,
    diary_damaged_rows: int = 0,
) -> ReportData:
    """The report of ``rx``'s course over ``period`` (None: ``default_period`` as of
    ``generated_at``'s local date). Superseded diary entries must not be passed."""
    today = generated_at.astimezone(tz).date()
    if period is not None:
        _check_end(period, today)
    symptoms = [IrlsTotal(entry.entry_date, entry.total, entry.baseline) for entry in irls]
    probe = build_course(rx, records.sessions, today, tz, rule, symptoms)
    period = period or default_period(probe, rx, today)
    # As of the day after the period, from what happened up to its end: a week whose
    # last day is the period's last day is over (its missed sessions count). Never
    # later than today: a week that tonight or a later evening can still fill is in
    # progress, not missed, as ``nirpad course`` shows it.
    until = [s for s in records.sessions if s.started_at.astimezone(tz).date() <= period.end]
    upto = [point for point in symptoms if point.on <= period.end]
    as_of = min(period.end + timedelta(days=1), today)
    course = build_course(rx, until, as_of, tz, rule, upto)
    weeks = tuple(w for w in course.weeks if w.start <= period.end and w.end > period.start)
    total = Figures()
    for week in weeks:
        total = total.plus(week.figures)
    ours = _course_sessions(rx, records.sessions)
    return ReportData(
        rx=rx,
        signature=signature,
        period=period,
        zone=zone_name,
        device=device,
        generated_at=generated_at.astimezone(tz),
        course=course,
        weeks=weeks,
        total=total,
        checkpoints=course.checkpoints,
        events=_events(rx, ours, records.faults, period, tz),
        irls=_irls(irls, course, period),
        nightly=tuple(
            NightlyPoint(n.entry.entry_date, n.entry.leg_symptoms, n.entry.sleep_quality)
            for n in nightly
            if period.holds(n.entry.entry_date)
        ),
        side_effects=_side_effects(nightly, period),
        damaged_rows=records.damaged_rows,
        sessions_after_made=sum(s.started_at > generated_at for s in records.sessions),
        diary_damaged_rows=diary_damaged_rows,
    )


def clock_note(data: ReportData) -> str | None:
    """The sentence for sessions recorded after the report was made, or None."""
    later = data.sessions_after_made
    if not later:
        return None
    return (
        f"{later} session(s) in the treatment record start after this report was made "
        f"({data.generated_at:%Y-%m-%d %H:%M %Z}): the clock was wrong when they were "
        "recorded, or is wrong now. Set the date and time, then make the report again."
    )


def _check_end(period: Period, today: date) -> None:
    """Refuse a period that ends more than a year after today (no record can be in
    it, and the calendar's arithmetic ends in year 9999)."""
    latest = today + timedelta(days=PERIOD_END_AFTER_TODAY_MAX_DAYS)
    if period.end > latest:
        raise ReportError(
            f"the period ends on {period.end.isoformat()}, more than a year after today "
            f"({today.isoformat()}): end it by {latest.isoformat()}"
        )


def _course_sessions(rx: Profile, sessions: Iterable[SessionRecord]) -> list[SessionRecord]:
    """The sessions of ``rx``'s course: its id, on or after its issue date (UTC), as
    ``care.course`` counts them."""
    since = datetime.combine(rx.issued, time.min, UTC)
    return [s for s in sessions if s.profile_id == rx.id and s.started_at >= since]


def _events(
    rx: Profile,
    sessions: list[SessionRecord],
    faults: Sequence[FaultRecord],
    period: Period,
    tz: tzinfo,
) -> tuple[ReportEvent, ...]:
    events: list[ReportEvent] = []
    by_session: dict[int, list[FaultRecord]] = {}
    for record in sorted(faults, key=lambda f: f.at):
        if record.session_id is not None:
            by_session.setdefault(record.session_id, []).append(record)
    told: set[int] = set()
    for session in sessions:
        local = session.started_at.astimezone(tz)
        if not period.holds(local.date()):
            continue
        if session.outcome is not None and session.outcome is not Outcome.COMPLETED:
            fault = _ending_fault(session, by_session.get(session.id, []))
            told.update(() if fault is None else (fault.id,))
            events.append(ReportEvent(local, _stop_text(session, fault), "early stop"))
        if is_done(session) and rx.window is not None and not in_window(rx, session.started_at, tz):
            events.append(
                ReportEvent(
                    local,
                    f"started at {local:%H:%M}; the evening window is "
                    f"{rx.window.start}-{rx.window.end}",
                    "outside window",
                )
            )
    for fault in faults:
        local = fault.at.astimezone(tz)
        if period.holds(local.date()) and fault.id not in told:
            events.append(ReportEvent(local, fault_words(fault), "fault"))
    return tuple(sorted(events, key=lambda e: e.at))


def _ending_fault(session: SessionRecord, faults: list[FaultRecord]) -> FaultRecord | None:
    """The fault that ended ``session``: of its fault code, else its first; None unless it
    ended by a fault (a later one, found in light counted after its close, is told alone)."""
    if session.outcome is not Outcome.FAULT or not faults:
        return None
    return next((f for f in faults if f.code == session.fault_code), faults[0])


def _stop_text(session: SessionRecord, fault: FaultRecord | None) -> str:
    assert session.outcome is not None
    planned = session.planned_fluence_total_j_cm2
    share = session.delivered_fluence_total_j_cm2 / planned if planned else 0.0
    words = OUTCOME_WORDS[session.outcome]
    if fault is not None:
        told = fault_words(fault).rstrip(".")
        words = f"{words}: {told[:1].lower()}{told[1:]}"
    elif session.outcome is Outcome.FAULT and session.fault_code:
        words = f"{words} ({session.fault_code.replace('_', ' ')})"
    return f"{words}; {share:.0%} of the planned fluence delivered"


def fault_words(fault: FaultRecord) -> str:
    """A recorded fault in a caregiver's words: the controller's own sentence for its
    code (the record's message is the technical detail), else the message without a
    detail in brackets at its end."""
    if fault.code in FaultCode.__members__.values():
        return FAULT_MESSAGES[FaultCode(fault.code)]
    return _DETAIL.sub("", fault.message).strip() or fault.message


def _irls(entries: Sequence[StoredIrls], course: Course, period: Period) -> tuple[IrlsPoint, ...]:
    baseline_day = _baseline_day([e for e in entries if e.entry_date <= period.end], course)
    return tuple(
        IrlsPoint(
            e.entry_date,
            e.total,
            e.band,
            baseline=e.entry_date == baseline_day,
            stand_in=e.entry_date == baseline_day and not e.baseline,
        )
        for e in entries
        if period.holds(e.entry_date) or e.entry_date == baseline_day
    )


def _baseline_day(entries: Sequence[StoredIrls], course: Course) -> date | None:
    """The course's baseline as its checkpoints take it (``care.course``); before any
    session, the last IRLS marked baseline (``entries``: those up to the period's end,
    never one taken after it)."""
    if course.checkpoints:
        baseline = course.checkpoints[0].symptoms.baseline
        return None if baseline is None else baseline[0]
    marked = [e.entry_date for e in entries if e.baseline]
    return max(marked) if marked else None


def _side_effects(nightly: Sequence[StoredNightly], period: Period) -> dict[str, int]:
    counts: dict[str, int] = {}
    for night in nightly:
        if period.holds(night.entry.entry_date):
            for effect in night.entry.side_effects:
                counts[effect.value] = counts.get(effect.value, 0) + 1
    return dict(sorted(counts.items()))
