"""The guards of ``start``, as functions over the safety core's parts.

Owns: the ordered checks before a session may begin (the core's state, the
prescription and the clock, the ledger's rules, the schedule, the patient's readiness)
and each reason in words a person can read; when the schedule next allows a start, shown
only while no guard before the schedule refuses (that one needs a person to act, and
the schedule's time would promise a start that will not come). Does not own
the thresholds (``limits``, ``supervisor``), the schedule rules themselves (``ledger``,
``records``) or the state machine that asks (``firmware_host``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Final

from drivers.protocol import BoardFault, Telemetry
from profiles.schema import Profile
from safety.core_events import FaultStatus
from safety.errors import LedgerError, StartRefusedError
from safety.interlock import Interlock
from safety.ledger import Ledger
from safety.ledger_handle import LedgerHandle
from safety.limits import Limits, check_profile
from safety.plan import plan_from_profile
from safety.records import schedule_rule
from safety.supervisor import Supervisor
from safety.trusted_clock import TrustedClock

__all__ = [
    "CLOCK_PLAUSIBLE_FROM",
    "CoreState",
    "GuardParts",
    "next_start_allowed_at",
    "rail_refusal",
    "start_refusal",
]

log = logging.getLogger(__name__)

CLOCK_PLAUSIBLE_FROM: Final = date(2026, 1, 1)
"""A wall clock before this date was never set (a Pi without an RTC boots at 1970, or at
the image's build date): treatment waits for the date and time."""


@dataclass(frozen=True, slots=True)
class GuardParts:
    """The parts the guards read (the core builds this once)."""

    limits: Limits
    interlock: Interlock
    supervisor: Supervisor
    ledgers: LedgerHandle
    trusted: TrustedClock
    wall_clock: Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class CoreState:
    """What the core holds now, as the guards need it."""

    fault: FaultStatus | None
    session_open: bool
    self_test_passed: bool
    telemetry: Telemetry | None


def start_refusal(rx: Profile, parts: GuardParts, now: CoreState) -> str | None:
    """The first reason ``start`` is not allowed now, in words; None if it is."""
    return (
        _before_schedule_refusal(rx, parts, now)
        or _schedule_refusal(rx, parts)
        or _patient_refusal(rx, parts, now.telemetry)
    )


def _before_schedule_refusal(rx: Profile, parts: GuardParts, now: CoreState) -> str | None:
    """The guards before the schedule: the core's state, the prescription and the clock,
    the record's rules and the course. While one refuses, the schedule's time is not when
    a start becomes possible: a fault, the clock, the prescription, the record or the
    course needs a person to act; a running session's interval runs from an end not yet
    known; a pad not yet through its self-test is not ready."""
    return _state_refusal(now) or _prescription_refusal(rx, parts) or _ledger_refusal(rx, parts)


def _state_refusal(now: CoreState) -> str | None:
    if now.fault is not None:
        return f"{now.fault.message} Acknowledge the fault first."
    if now.session_open:
        return "A session is already running."
    if not now.self_test_passed:
        return "The pad has not passed its self-test yet."
    return None


def _prescription_refusal(rx: Profile, parts: GuardParts) -> str | None:
    today = parts.wall_clock().date()
    if today < CLOCK_PLAUSIBLE_FROM:
        return (
            f"The pad's clock is not set (it reads {today.isoformat()}). "
            "Set the date and time, then try again."
        )
    problem = rx.validity_problem(today)
    if problem is not None:
        return problem
    violations = check_profile(rx, parts.limits)
    if violations:
        return f"This prescription is outside the pad's limits: {violations[0]}."
    try:
        plan_from_profile(rx, parts.interlock.calibration)
    except StartRefusedError as exc:
        return exc.reason
    return None


def _schedule_rule(rx: Profile, limits: Limits) -> tuple[float, int]:
    rule = schedule_rule(rx, limits)  # the same rule `nirpad course` reads
    return rule.min_interval_h, rule.max_sessions_per_week


def _ledger_refusal(rx: Profile, parts: GuardParts) -> str | None:
    """The record's rules before the schedule: lost, a clock jump not confirmed, the clock
    behind the newest record, the record not writable, the course over."""
    ledger = parts.ledgers.reopened()
    if ledger is None:
        return parts.ledgers.problem
    try:
        return (
            ledger.record_refusal()
            or ledger.writable_refusal()
            or _course_refusal(rx, ledger, parts.wall_clock)
        )
    except LedgerError as exc:
        return str(exc)


def _schedule_refusal(rx: Profile, parts: GuardParts) -> str | None:
    """The interval and the weekly budget (the ledger guards before it passed)."""
    try:
        return parts.ledgers.ledger_or_raise().schedule_refusal(
            *_schedule_rule(rx, parts.limits), now_s=parts.trusted.now_s()
        )
    except LedgerError as exc:
        return str(exc)


def _course_refusal(rx: Profile, ledger: Ledger, wall_clock: Callable[[], datetime]) -> str | None:
    """The course runs ``course_weeks`` from the first session of this prescription
    (its id, on or after its issue date: a renewal starts a new course)."""
    first = ledger.first_session_at(rx.id, datetime.combine(rx.issued, time.min, UTC))
    return rx.course_problem_at(first, wall_clock())


def _patient_refusal(rx: Profile, parts: GuardParts, tm: Telemetry | None) -> str | None:
    if tm is None or not tm.contact:
        return "Place the pad on the skin: there is no skin contact."
    skin_c = max(tm.skin_a_c, tm.skin_b_c)
    warn_c = parts.supervisor.skin_warn_c
    if rx.skin_temp_stop_c is not None:
        warn_c = min(warn_c, rx.skin_temp_stop_c - 1.0)
    if skin_c >= warn_c:
        return f"The skin is too warm to start ({skin_c:.1f} °C; it must be below {warn_c:g} °C)."
    if tm.faults != BoardFault.NONE:
        return f"The pad reports a fault ({tm.faults!r}). Check the pad."
    return rail_refusal(tm, parts.interlock.rail.enabled)


def rail_refusal(tm: Telemetry | None, rail_enabled: bool) -> str | None:
    """A refusal while the pad reports its LED power off though the host enables it.

    That is the hold circuit after a stall of this host longer than its hold time
    (docs/hardware.md): the rail comes back with the next heartbeat, and light
    commanded before the pad sees it would be refused by the board (a fault).
    """
    if tm is not None and not tm.rail_enabled and rail_enabled:
        return "The pad's LED power is coming back after a pause of the controller; try again."
    return None


def next_start_allowed_at(rx: Profile, parts: GuardParts, now: CoreState) -> datetime | None:
    """When the schedule next allows ``rx`` to start (UTC): None when it allows one now,
    and None while a guard before it refuses (``_before_schedule_refusal``), since waiting
    until then would not start a session. The patient's readiness, after the schedule
    (contact, skin, the board's flags, the rail), is of the moment: it hides no time."""
    ledger = parts.ledgers.ledger
    if ledger is None:
        return None
    try:  # the schedule first: the guards before it are read only when it blocks
        allowed = ledger.next_start_allowed_at(
            *_schedule_rule(rx, parts.limits), now_s=parts.trusted.now_s()
        )
    except LedgerError as exc:
        log.error("schedule unreadable: %s", exc)
        return None
    if allowed is None or _before_schedule_refusal(rx, parts, now) is not None:
        return None
    return allowed
