"""The start guards as functions over the safety core's parts, given states the core
itself does not reach through the board (tests/safety/test_core_start.py covers the
rest through ``SafetyCore.start_refusal``); and when the schedule's next start time is
shown: only while no guard before the schedule refuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from drivers.client import BoardClient
from drivers.protocol import BoardFault, Telemetry, TelemetryFlag
from profiles.schema import Profile
from safety.calibration import Calibration
from safety.core_events import FaultStatus
from safety.errors import LedgerError
from safety.fault_latch import FaultLatch
from safety.faults import FaultCode, Outcome
from safety.interlock import Interlock
from safety.ledger import Ledger
from safety.ledger_events import EventKind
from safety.ledger_handle import LedgerHandle
from safety.limits import HARD_LIMITS
from safety.start_guards import CoreState, GuardParts, next_start_allowed_at, start_refusal
from safety.supervisor import Supervisor
from safety.trusted_clock import TrustedClock

from .conftest import Rig, make_profile


@pytest.fixture
def parts(rig: Rig) -> Iterator[tuple[GuardParts, BoardClient]]:
    """The parts the core gives the guards, built as the core builds them, on the rig."""
    client = BoardClient(rig.port, port_name="sim", clock=rig.clock)
    calibration = Calibration.from_info(client.handshake())
    ledgers = LedgerHandle(rig.state_dir, rig.wall, rig.clock)
    faults = FaultLatch(rig.rail, ledgers.ledger_or_raise, rig.wall, outputs_off=lambda: None)
    interlock = Interlock(client, HARD_LIMITS, calibration, rig.rail, rig.clock, faults)
    supervisor = Supervisor(HARD_LIMITS, rig.clock, calibration)
    trusted = TrustedClock(rig.wall, rig.clock)
    try:
        yield GuardParts(HARD_LIMITS, interlock, supervisor, ledgers, trusted, rig.wall), client
    finally:
        client.close()
        ledgers.close()


def _frame(client: BoardClient) -> Telemetry:
    while True:
        client.wait_readable(0.05)
        for item in client.poll():
            if isinstance(item, Telemetry):
                return item


def test_the_board_fault_flags_guard(parts: tuple[GuardParts, BoardClient]) -> None:
    """A frame with a board flag latches ``board_fault`` in the core before any start
    (the state guard then answers first); the patient guard still refuses on its own."""
    guards, client = parts
    tm = _frame(client)
    ready = CoreState(fault=None, session_open=False, self_test_passed=True, telemetry=tm)
    assert start_refusal(make_profile(), guards, ready) is None  # the same frame, clean
    flagged = replace(ready, telemetry=replace(tm, faults=BoardFault.SUPPLY_LOW))
    assert "reports a fault" in (start_refusal(make_profile(), guards, flagged) or "")


def _session(ledger: Ledger) -> None:
    """A completed session, recorded at the ledger's now."""
    sid = ledger.begin_session("test-810", "ab" * 32, {810: 2.7}, planned_duration_s=60)
    ledger.end_session(sid, Outcome.COMPLETED, {810: 2.7})


@pytest.fixture
def waiting(
    rig: Rig, parts: tuple[GuardParts, BoardClient]
) -> tuple[GuardParts, CoreState, dt.datetime]:
    """A pad ready but for the interval: the last session ended just now. Returns the
    parts, the core's state and when the schedule allows the next start."""
    guards, client = parts
    ledger = guards.ledgers.ledger_or_raise()
    _session(ledger)
    ready = CoreState(fault=None, session_open=False, self_test_passed=True, telemetry=None)
    ready = replace(ready, telemetry=_frame(client))
    allowed = ledger.next_start_allowed_at(20.0, 3)
    assert allowed is not None
    assert "20 h after the last one" in (start_refusal(make_profile(), guards, ready) or "")
    return guards, ready, allowed


def test_the_schedule_alone_shows_when_a_start_is_allowed(
    waiting: tuple[GuardParts, CoreState, dt.datetime],
) -> None:
    guards, ready, allowed = waiting
    assert next_start_allowed_at(make_profile(), guards, ready) == allowed


_Setup = Callable[
    [GuardParts, CoreState, Rig, pytest.MonkeyPatch], tuple[GuardParts, CoreState, Profile]
]


def _fault(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    latched = FaultStatus(FaultCode.SKIN_OVERTEMP, "The skin got too warm.")
    return guards, replace(now, fault=latched), make_profile()


def _running(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    return guards, replace(now, session_open=True), make_profile()


def _untested(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    return guards, replace(now, self_test_passed=False), make_profile()


def _clock_unset(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    unset = replace(guards, wall_clock=lambda: dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC))
    return unset, now, make_profile()


def _expired(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    return guards, now, make_profile(issued=dt.date(2026, 1, 1), expires=rig.wall().date())


def _outside_limits(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    strong = make_profile(channels=({"wavelength_nm": 810, "irradiance_mw_cm2": 80.0},))
    return guards, now, strong


def _lost(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    guards.ledgers.ledger_or_raise().record_event(EventKind.LEDGER_LOST, "found empty")
    return guards, now, make_profile()


def _jumped(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    guards.ledgers.ledger_or_raise().record_event(EventKind.CLOCK_JUMP, "ahead by 2 days")
    return guards, now, make_profile()


def _clock_behind(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    rig.wall.offset = dt.timedelta(hours=-1)  # set back: the schedule blocks all the more
    return guards, now, make_profile()


def _not_writable(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    def full(self: Ledger) -> str:
        return "The treatment record cannot be saved: the disk is full (x)."

    mp.setattr(Ledger, "writable_refusal", full)
    return guards, now, make_profile()


def _course_over(
    guards: GuardParts, now: CoreState, rig: Rig, mp: pytest.MonkeyPatch
) -> tuple[GuardParts, CoreState, Profile]:
    """The first session of a one-week course 8 days ago; the last one just now."""
    rig.wall.offset = dt.timedelta(days=-8)
    _session(guards.ledgers.ledger_or_raise())
    rig.wall.offset = dt.timedelta(0)
    return guards, now, make_profile(course_weeks=1, issued=dt.date(2026, 10, 1))


@pytest.mark.parametrize(
    ("setup", "refusal"),
    [
        (_fault, "The skin got too warm. Acknowledge the fault first."),
        (_running, "A session is already running."),
        (_untested, "The pad has not passed its self-test yet."),
        (_clock_unset, "The pad's clock is not set"),
        (_expired, "This prescription expired on"),
        (_outside_limits, "outside the pad's limits"),
        (_lost, "The treatment record was lost"),
        (_jumped, "The clock moved ahead while nirpad was running"),
        (_clock_behind, "which is before the last record"),
        (_not_writable, "the disk is full"),
        (_course_over, "The prescribed course of 1 week"),
    ],
)
def test_a_refusal_before_the_schedule_shows_no_start_time(
    waiting: tuple[GuardParts, CoreState, dt.datetime],
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
    setup: _Setup,
    refusal: str,
) -> None:
    """The course ended, the clock is unset, a fault is latched…: the start is refused
    first for that, and no start time is shown: none would come by waiting."""
    guards, now, rx = setup(waiting[0], waiting[1], rig, monkeypatch)
    assert refusal in (start_refusal(rx, guards, now) or "")
    assert guards.ledgers.ledger_or_raise().next_start_allowed_at(20.0, 3) is not None
    assert next_start_allowed_at(rx, guards, now) is None


def test_the_patients_readiness_hides_no_start_time(
    waiting: tuple[GuardParts, CoreState, dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No contact, warm skin, a board flag, the rail coming back: each refuses a start
    (seen with the schedule passed), and each is of the moment: the time stays shown."""
    guards, ready, allowed = waiting
    tm = ready.telemetry
    assert tm is not None
    guards.interlock.rail.enable()
    frames = {
        "no skin contact": None,
        "there is no skin contact": replace(tm, flags=tm.flags & ~TelemetryFlag.CONTACT),
        "too warm": replace(tm, skin_a_c=45.0),
        "reports a fault": replace(tm, faults=BoardFault.SUPPLY_LOW),
        "LED power is coming back": replace(tm, flags=tm.flags & ~TelemetryFlag.RAIL_ENABLED),
    }
    for refusal, frame in frames.items():
        now = replace(ready, telemetry=frame)
        with monkeypatch.context() as passed:
            passed.setattr(Ledger, "schedule_refusal", lambda *a, **k: None)
            assert refusal in (start_refusal(make_profile(), guards, now) or "")
        assert next_start_allowed_at(make_profile(), guards, now) == allowed


def test_an_unreadable_schedule_shows_no_start_time(
    waiting: tuple[GuardParts, CoreState, dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    def damaged(self: Ledger, *args: object, **kwargs: object) -> None:
        raise LedgerError("The treatment record is damaged: a session's dose", path="x")

    guards, ready, _ = waiting
    monkeypatch.setattr(Ledger, "next_start_allowed_at", damaged)
    monkeypatch.setattr(Ledger, "schedule_refusal", damaged)
    assert next_start_allowed_at(make_profile(), guards, ready) is None
    assert "is damaged" in (start_refusal(make_profile(), guards, ready) or "")
