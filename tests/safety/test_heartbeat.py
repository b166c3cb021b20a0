"""The core's side of the dead-man rail: a heartbeat every tick and in the self-test's
waits, failures logged once, and a rail dropped by the hold circuit after a stall of
the host (refused start and resume, never a fault; a stall while treating is the
lease's fault with the rail kept cut)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.sim.board import RAIL_HOLD_S
from hil.sim.inprocess import RailWire, make_sim
from safety.core_events import FaultLatched
from safety.errors import StartRefusedError
from safety.faults import FaultCode
from safety.rail import make_rail

from .conftest import Rig, WallClock, make_profile


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Rig]:
    """The safety rig over a board behind the HAT's hold circuit."""
    clock, board, port = make_sim(rail_hold_s=RAIL_HOLD_S)
    rail = make_rail(None, None)
    RailWire(board, clock).connect(rail)
    rig = Rig(clock, board, port, rail, tmp_path / "state", WallClock(clock))
    try:
        yield rig
    finally:
        if rig.core is not None:
            rig.core.close()
        rail.close()


def _stall(rig: Rig, seconds: float) -> None:
    """This host stands still (no tick, no read) while the board runs on."""
    rig.clock.advance(seconds)
    rig.board.advance_to(rig.clock())


def _rail_events(rig: Rig) -> list[dict[str, object]]:
    return [e for e in rig.board.pop_events() if e["event"] == "rail"]


def test_every_tick_sends_one_heartbeat(held: Rig) -> None:
    core = held.ready()
    before = held.rail.heartbeats
    for _ in range(50):
        held.clock.advance(0.02)
        core.poll()
        core.tick()
    assert held.rail.heartbeats - before == 50
    assert held.board.rail_enabled


def test_the_self_test_heartbeats_while_it_waits(held: Rig) -> None:
    held.ready()
    assert held.rail.heartbeats > 1  # not only enable's own heartbeat
    assert held.board.rail_enabled


def test_a_cut_rail_sends_no_heartbeat(held: Rig) -> None:
    core = held.ready()
    core.all_off()
    before = held.rail.heartbeats
    held.run(0.5)
    assert held.rail.heartbeats == before and not held.board.rail_enabled


def test_a_failing_heartbeat_is_logged_once_and_its_recovery_once(
    held: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    core = held.ready()
    failing = {"now": True}

    def mirror(count: int) -> None:
        if failing["now"]:
            raise OSError("disk full")

    held.rail.add_heartbeat_listener(mirror)
    caplog.set_level(logging.INFO, logger="safety.interlock")
    for _ in range(10):
        core.tick()
    assert len(_heartbeat_messages(caplog)) == 1  # ten failures, one record
    failing["now"] = False
    core.tick()
    core.tick()
    messages = _heartbeat_messages(caplog)
    assert len(messages) == 2
    assert "rail heartbeat failing" in messages[0] and "disk full" in messages[0]
    assert messages[1] == "rail heartbeat works again after 10 failures"  # counted to 10
    failing["now"] = True
    core.tick()  # the count went back to 0: a new run of failures is logged anew
    (again,) = _heartbeat_messages(caplog)[2:]
    assert "rail heartbeat failing" in again


def _heartbeat_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "safety.interlock" and "heartbeat" in r.getMessage()
    ]


def test_a_stall_while_ready_drops_the_rail_and_refuses_start_until_it_is_back(
    held: Rig,
) -> None:
    core = held.ready()
    _rail_events(held)
    _stall(held, RAIL_HOLD_S + 0.1)
    assert not held.board.rail_enabled  # the hold circuit dropped it
    core.poll()  # the frames sent meanwhile say so
    refusal = core.start_refusal(make_profile())
    assert refusal is not None and "LED power" in refusal
    with pytest.raises(StartRefusedError, match="LED power"):
        core.begin_session(make_profile(), "ab" * 32)
    held.run(0.1)  # toggling resumes: the rail comes back by itself
    assert held.board.rail_enabled and core.snapshot().fault is None
    assert core.start_refusal(make_profile()) is None
    assert [e["enabled"] for e in _rail_events(held)] == [False, True]


def test_a_stall_while_paused_refuses_resume_until_the_rail_is_back(held: Rig) -> None:
    core = held.ready()
    core.begin_session(make_profile(), "ab" * 32)
    held.run(6.0)
    core.pause("test")
    held.run(0.1)
    _stall(held, RAIL_HOLD_S + 0.1)
    core.poll()
    with pytest.raises(StartRefusedError, match="LED power"):
        core.resume()
    held.run(0.1)
    core.resume()
    held.run(1.0)
    assert held.board.state()["outputs_on"] and core.snapshot().fault is None


def test_a_stall_while_treating_is_the_leases_fault_and_the_rail_stays_cut(held: Rig) -> None:
    core = held.ready()
    core.begin_session(make_profile(), "ab" * 32)
    held.run(6.0)
    assert held.board.state()["outputs_on"]
    _rail_events(held)
    _stall(held, RAIL_HOLD_S + 0.1)
    held.run(0.1)
    fault = core.snapshot().fault
    assert fault is not None and fault.code is FaultCode.LEASE_EXPIRED
    assert not held.rail.enabled and not held.board.rail_enabled
    # the board's LEASE_EXPIRED is read before any tick: cut first, the rail never rose
    assert [e["enabled"] for e in _rail_events(held)] == [False]


def test_a_hold_circuit_that_no_longer_holds_latches_rail_lost(held: Rig) -> None:
    """A dead HAT (heartbeats sent, the rail never back) is a fault a person sees and the
    record keeps, not a start refused for ever with "try again"."""
    held.ready()
    held.board.rail_hold_s = 1e-6  # the circuit no longer holds: every heartbeat is too late
    got = held.run(1.5)
    codes = [e.code for e in got if isinstance(e, FaultLatched)]
    assert codes == [FaultCode.RAIL_LOST]
    assert not held.rail.enabled  # critical: the enable line is cut too
    with held.ledger() as ledger:
        assert [f.code for f in ledger.faults()] == [FaultCode.RAIL_LOST]


def test_a_stall_longer_than_the_hold_is_not_rail_lost(held: Rig) -> None:
    core = held.ready()
    _stall(held, RAIL_HOLD_S + 0.1)
    got = held.run(2.0)  # the next heartbeats bring it back
    assert not [e for e in got if isinstance(e, FaultLatched)]
    assert held.board.rail_enabled and core.snapshot().fault is None
