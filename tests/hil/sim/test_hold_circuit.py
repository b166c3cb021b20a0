"""The simulated HAT's dead-man hold circuit: rail = enable line AND a heartbeat within the hold."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drivers.protocol import Ack, OutputOff
from hil.sim.board import RAIL_HOLD_S, SimBoard
from hil.sim.inprocess import RailWire
from safety.rail import RAIL_HOLD_S as HOST_RAIL_HOLD_S
from safety.rail import make_rail
from tests.hil.sim.conftest import WireHost


@pytest.fixture
def held(host_factory: Callable[..., WireHost]) -> WireHost:
    host = host_factory(rail_hold_s=RAIL_HOLD_S)
    host.run(0.005)
    return host


def _rail_events(board: SimBoard) -> list[dict[str, object]]:
    return [e for e in board.pop_events() if e["event"] == "rail"]


def test_the_simulator_and_the_host_agree_on_the_hold() -> None:
    assert RAIL_HOLD_S == HOST_RAIL_HOLD_S


def test_a_bare_board_needs_no_heartbeat(host: WireHost) -> None:
    assert host.board.rail_hold_s is None
    host.board.set_rail(False)
    host.board.set_rail(True)
    assert host.telemetry(host.run(0.5))[-1].rail_enabled  # no heartbeat, still up


def test_the_enable_line_alone_is_not_enough(held: WireHost) -> None:
    held.board.set_rail(True)
    assert not held.board.rail_enabled and held.board.rail_line
    assert not held.telemetry(held.run(0.05))[-1].rail_enabled
    held.board.heartbeat()
    assert held.telemetry(held.run(0.05))[-1].rail_enabled


def test_without_heartbeats_the_rail_drops_exactly_a_hold_after_the_last(held: WireHost) -> None:
    board = held.board
    board.set_rail(True)
    board.heartbeat()
    beat_s = board.state()["t"]
    _rail_events(board)
    frames = held.telemetry(held.run(0.5))
    assert frames[0].rail_enabled and not frames[-1].rail_enabled
    (down,) = _rail_events(board)
    assert down["enabled"] is False and down["cause"] == "heartbeat_lost"
    assert down["t"] == pytest.approx(beat_s + RAIL_HOLD_S)  # type: ignore[operator]
    board.heartbeat()  # toggling resumes: the rail comes back by itself
    assert board.rail_enabled
    assert _rail_events(board) == [{"t": board.state()["t"], "event": "rail", "enabled": True}]


def test_heartbeats_every_tick_keep_the_rail_up(held: WireHost) -> None:
    held.board.set_rail(True)
    frames = []
    for _ in range(100):  # 2 s of 20 ms ticks
        held.board.heartbeat(held.clock())
        frames += held.telemetry(held.run(0.02))
    assert len(frames) >= 99 and all(tm.rail_enabled for tm in frames)
    assert held.board.state()["heartbeats"] == 100


def test_a_cut_enable_line_wins_over_heartbeats(held: WireHost) -> None:
    held.board.set_rail(True)
    held.board.heartbeat()
    held.board.set_rail(False)
    held.board.heartbeat()
    assert not held.telemetry(held.run(0.05))[-1].rail_enabled


def test_a_stuck_driver_goes_dark_when_the_heartbeats_stop(held: WireHost) -> None:
    board = held.board
    board.set_rail(True)
    board.heartbeat()
    assert isinstance(held.set_output(300.0, lease_ms=500), Ack)
    board.inject("stuck_on")
    assert isinstance(held.request(OutputOff()), Ack)
    assert board.state()["outputs_on"]  # stuck: OFF does nothing, only the rail stops it
    held.run(RAIL_HOLD_S)
    truth = board.state()
    assert truth["outputs_on"] is False and truth["irradiance_mw_cm2"] == [0.0, 0.0]


def test_a_board_reset_does_not_reset_the_hats_hold(held: WireHost) -> None:
    held.board.set_rail(True)
    held.board.heartbeat()
    held.run(0.2)
    held.board.reset("watchdog")
    assert held.board.rail_enabled
    held.run(0.15)  # 0.35 s after the heartbeat: the hold is the HAT's, not the board's
    assert not held.board.rail_enabled


@pytest.mark.parametrize("hold_s", [0.0, -0.3])
def test_a_hold_must_be_positive(hold_s: float) -> None:
    with pytest.raises(ValueError, match="rail_hold_s"):
        SimBoard(rail_hold_s=hold_s)


def test_the_rail_wire_carries_both_lines_until_unplugged(held: WireHost) -> None:
    rail = make_rail(None, None)
    wire = RailWire(held.board, held.clock)
    wire.connect(rail)
    rail.enable()
    held.run(0.25)
    rail.heartbeat()
    assert held.board.state()["heartbeats"] == 2
    held.run(0.25)  # 0.5 s after the enable, 0.25 s after the last heartbeat
    assert held.board.rail_enabled
    wire.unplug()  # the host died: its lines reach the board no more
    rail.heartbeat()
    rail.close()
    assert held.board.rail_line  # the enable level it last saw
    held.run(0.1)
    assert not held.board.rail_enabled
