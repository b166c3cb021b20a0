"""A board that resets and whose BOARD_RESET event is lost (a noisy link drops that one
frame) is still seen to have reset: its uptime went back. Its own protections (latched
faults, the maximum on-time) were wiped by the reset, so the session must not go on as
if nothing happened."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from drivers.protocol import Event, EventKind, Message, Telemetry
from safety.core_events import FaultLatched, SafetyEvent
from safety.faults import FaultCode

from .conftest import BoardFramePort, Rig, make_profile

U32_MS = 1 << 32


def _latched(events: list[SafetyEvent]) -> bool:
    return any(isinstance(e, FaultLatched) for e in events)


def _reset_event(message: Message) -> bool:
    return isinstance(message, Event) and message.kind is EventKind.BOARD_RESET


def _losing_resets(rig: Rig) -> BoardFramePort:
    port = BoardFramePort(rig.port)
    port.lose = _reset_event
    return port


def test_a_reset_whose_event_is_lost_mid_session_latches_board_reset(rig: Rig) -> None:
    core = rig.ready(_losing_resets(rig))
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(3.0)
    assert rig.board.state()["outputs_on"]
    rig.board.reset("watchdog")
    rig.run(1.0, until=_latched)
    rig.run(0.3)
    snap = core.snapshot()
    assert snap.fault is not None and snap.fault.code is FaultCode.BOARD_RESET
    assert "uptime went back" in snap.fault.message
    assert not snap.session_active
    assert rig.board.state()["outputs_on"] is False
    with rig.ledger() as ledger:
        assert ledger.sessions()[0].fault_code == FaultCode.BOARD_RESET


def test_a_reset_whose_event_is_lost_while_idle_needs_a_new_self_test(rig: Rig) -> None:
    core = rig.ready(_losing_resets(rig))
    rig.run(1.0)
    assert core.start_refusal(make_profile()) is None
    rig.board.reset("watchdog")
    rig.run(0.5)
    assert core.snapshot().fault is None  # idle: no fault, only a new self-test
    refusal = core.start_refusal(make_profile())
    assert refusal is not None and "self-test" in refusal


def _uptime_near_the_wrap(message: Message) -> Message:
    """The board's u32 uptime 2 s before it wraps, so it wraps mid-session."""
    if isinstance(message, Telemetry | Event) and not _reset_event(message):
        shifted_ms = (message.uptime_ms + U32_MS - 4_000) % U32_MS
        return dataclasses.replace(message, uptime_ms=shifted_ms)
    return message


def _stamped_late(message: Message) -> Message:
    """Every other telemetry frame stamped 50 ms late: the next one steps back, no reset."""
    if isinstance(message, Telemetry) and message.uptime_ms // 20 % 2:
        return dataclasses.replace(message, uptime_ms=message.uptime_ms + 50)
    return message


@pytest.mark.parametrize("alter", [_uptime_near_the_wrap, _stamped_late])
def test_an_uptime_that_wraps_or_jitters_is_no_reset(
    rig: Rig, alter: Callable[[Message], Message]
) -> None:
    port = BoardFramePort(rig.port)
    port.alter = alter
    core = rig.ready(port)
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)
    snap = core.snapshot()
    assert snap.fault is None, snap.fault
    assert snap.session_active
