"""The interlock: every refusal latches with the outputs off; renewals only while allowed."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from drivers.client import BoardClient, CommandAcked
from drivers.protocol import ChannelCalibration, OutputOff, Telemetry
from hil.rigs.clock import VirtualClock
from hil.sim.board import SimBoard
from hil.sim.inprocess import make_sim
from safety.calibration import Calibration
from safety.errors import InterlockRefusedError, LedgerError
from safety.fault_latch import FaultLatch, is_critical
from safety.faults import FaultCode
from safety.interlock import DEFAULT_LEASE_MS, NOT_ANSWERING_S, Interlock, InterlockMode
from safety.ledger import Ledger
from safety.limits import HARD_LIMITS
from safety.plan import PlannedChannel, SessionPlan
from safety.rail import PowerRail, RailError, make_rail

from .conftest import FailingMirror


@dataclass
class Bench:
    clock: VirtualClock
    board: SimBoard
    client: BoardClient
    rail: PowerRail
    faults: FaultLatch
    lock: Interlock

    def clear(self) -> None:
        """What the core does at an acknowledgement: the latch cleared, the plan dropped."""
        self.lock.disarm()
        self.faults.clear()

    def frame(self) -> Telemetry:
        """Advance to the next telemetry frame, let the interlock observe it, return it."""
        while True:
            self.client.wait_readable(0.05)
            for item in self.client.poll():
                if isinstance(item, Telemetry):
                    self.lock.observe(item)
                    return item


def _no_ledger() -> Ledger:
    raise LedgerError("no ledger on this bench", path="")


def _wall_clock() -> datetime:
    return datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


@pytest.fixture
def bench() -> Iterator[Bench]:
    clock, board, port = make_sim()
    client = BoardClient(port, port_name="sim", clock=clock)
    info = client.handshake()
    rail = make_rail(None, None)
    rail.add_listener(board.set_rail)
    rail.enable()
    faults = FaultLatch(rail, _no_ledger, _wall_clock, outputs_off=lambda: lock.off())
    lock = Interlock(client, HARD_LIMITS, Calibration.from_info(info), rail, clock, faults)
    b = Bench(clock, board, client, rail, faults, lock)
    b.frame()
    try:
        yield b
    finally:
        client.close()
        rail.close()


def _plan(*channels: tuple[int, float], pulse_hz: int = 0, duty_pct: int = 100) -> SessionPlan:
    planned = tuple(PlannedChannel(ch, 810 if ch == 0 else 850, irr) for ch, irr in channels)
    return SessionPlan(planned, pulse_hz, duty_pct, ramp_s=0.0, duration_s=600.0)


def _refused(bench: Bench, match: str, call: object, *args: object) -> None:
    with pytest.raises(InterlockRefusedError, match=match) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.code is FaultCode.INTERLOCK_REFUSED
    assert bench.lock.mode is InterlockMode.FAULT
    assert bench.faults.code is FaultCode.INTERLOCK_REFUSED
    assert not bench.lock.output_commanded
    assert bench.rail.enabled  # a refusal never reached the board: OFF suffices


def test_commands_within_the_plan_reach_the_board(bench: Bench) -> None:
    bench.lock.arm(_plan((0, 40.0)))
    bench.lock.command({0: 20.0, 1: 0.0})
    bench.lock.renew(True)
    for _ in range(3):
        tm = bench.frame()
    assert tm.output_on and bench.board.state()["irradiance_mw_cm2"][0] > 15  # type: ignore[index]
    assert bench.lock.setpoint_mw_cm2 == {0: 20.0}
    assert bench.lock.commanded_output().wanted_mw_cm2(0) == 20.0
    assert bench.board.state()["lease_remaining_ms"] <= DEFAULT_LEASE_MS  # type: ignore[operator]
    bench.lock.renew(False)  # the supervisor says no: OFF
    bench.frame()
    bench.frame()
    assert not bench.frame().output_on


def test_pause_resume_and_disarm(bench: Bench) -> None:
    lock = bench.lock
    lock.arm(_plan((0, 40.0)))
    lock.command({0: 40.0})
    lock.renew(True)
    lock.pause()
    assert lock.mode is InterlockMode.PAUSED and not lock.output_commanded
    lock.renew(True)  # paused: nothing is sent, nothing renewed
    assert not lock.output_commanded
    lock.resume()
    assert lock.mode is InterlockMode.TREATING and lock.setpoint_mw_cm2 == {}
    lock.renew(True)  # setpoint restarts at zero: still nothing on
    assert not lock.output_commanded
    lock.disarm()
    assert lock.mode is InterlockMode.IDLE and lock.plan is None
    lock.pause()  # idle: only an OFF
    assert lock.mode is InterlockMode.IDLE


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ({1: 10.0}, "channel 1 is not in the session's plan"),
        ({0: 41.0}, "above the plan's"),
        ({0: -1.0}, "not a valid irradiance"),
        ({0: math.nan}, "not a valid irradiance"),
    ],
)
def test_commands_outside_the_plan_are_refused(
    bench: Bench, command: dict[int, float], match: str
) -> None:
    bench.lock.arm(_plan((0, 40.0)))
    _refused(bench, match, bench.lock.command, command)


def test_commands_need_treating_and_contact(bench: Bench) -> None:
    _refused(bench, "output commanded in mode idle", bench.lock.command, {0: 10.0})
    bench.clear()
    bench.lock.arm(_plan((0, 40.0)))
    bench.board.set_contact(False)
    bench.frame()
    _refused(bench, "without skin contact", bench.lock.command, {0: 10.0})


def test_arming_checks_mode_limits_and_the_board(bench: Bench) -> None:
    lock = bench.lock
    lock.arm(_plan((0, 40.0)))
    _refused(bench, "cannot arm in mode treating", lock.arm, _plan((0, 40.0)))
    bench.clear()
    _refused(bench, "combined", lock.arm, _plan((0, 30.0), (1, 30.0)))
    bench.clear()
    _refused(bench, "duty", lock.arm, _plan((0, 30.0), pulse_hz=10, duty_pct=5))
    bench.clear()
    long_plan = SessionPlan(_plan((0, 30.0)).channels, 0, 100, 0.0, 3600.0)
    _refused(bench, "outside the session limit", lock.arm, long_plan)
    bench.clear()
    _refused(bench, "channel 3 does not exist", lock.arm, _plan((3, 30.0)))
    bench.clear()
    lock.calibration = Calibration(lock.calibration.channels[:1])
    _refused(bench, "no calibration for channel 1", lock.arm, _plan((1, 30.0)))


def test_a_channel_the_board_cannot_drive_that_hard(bench: Bench) -> None:
    weak = ChannelCalibration(810, 100.0, bench.lock.calibration.channels[0].points)
    bench.lock.calibration = Calibration((weak, bench.lock.calibration.channels[1]))
    _refused(bench, "above the board's 100.0 mA", bench.lock.arm, _plan((0, 40.0)))


def test_resume_is_refused_out_of_pause_or_without_contact(bench: Bench) -> None:
    _refused(bench, "cannot resume in mode idle", bench.lock.resume)
    bench.clear()
    bench.lock.arm(_plan((0, 40.0)))
    bench.lock.pause()
    bench.board.set_contact(False)
    bench.frame()
    _refused(bench, "without skin contact", bench.lock.resume)


def test_critical_faults_cut_the_rail_others_only_turn_off(bench: Bench) -> None:
    bench.faults.latch(FaultCode.SENSOR_OPEN, "skin A open")
    assert bench.rail.enabled and bench.lock.mode is InterlockMode.FAULT
    bench.faults.latch(FaultCode.STUCK_ON, "stuck")
    assert not bench.rail.enabled
    assert bench.faults.code is FaultCode.SENSOR_OPEN  # the first stays latched
    bench.lock.disarm()
    assert bench.lock.mode is InterlockMode.FAULT


def test_is_critical_classes() -> None:
    critical = {code for code in FaultCode if is_critical(code)}
    assert FaultCode.STUCK_ON in critical and FaultCode.TELEMETRY_STALE in critical
    assert FaultCode.BOARD_NOT_ANSWERING in critical and FaultCode.BOARD_DISCONNECTED in critical
    assert FaultCode.SKIN_OVERTEMP in critical
    assert not critical & {
        FaultCode.INTERLOCK_REFUSED,
        FaultCode.LEDGER_WRITE_FAILED,
        FaultCode.SELF_TEST_FAILED,
        FaultCode.SENSOR_OPEN,
    }


def test_output_while_commanded_off_cuts_the_rail(bench: Bench) -> None:
    bench.lock.arm(_plan((0, 40.0)))
    bench.lock.command({0: 40.0})
    bench.lock.renew(True)
    bench.frame()
    bench.board.inject("stuck_on")
    bench.lock.pause()
    found = [bench.lock.observe(bench.frame()) for _ in range(8)]
    assert found[0] is False  # within the grace of the OFF
    assert True in found and not bench.rail.enabled
    assert bench.board.state()["outputs_on"] is False  # the rail stopped the stuck driver
    assert bench.lock.observe(bench.frame()) is False


def test_not_answering_and_answers(bench: Bench) -> None:
    lock = bench.lock
    assert not lock.not_answering()
    lock.off()
    bench.clock.advance(NOT_ANSWERING_S)
    assert lock.not_answering()
    lock.note_inputs([CommandAcked(0, OutputOff())])
    assert not lock.not_answering()
    lock.off()
    bench.clock.advance(NOT_ANSWERING_S)
    bench.lock.client.counters.unmatched_replies += 1  # a late ACK of a superseded command
    lock.note_inputs([])
    assert not lock.not_answering()


def test_send_failures_and_rail_mirror_failures_are_contained(bench: Bench) -> None:
    bench.board.inject("disconnect")
    bench.lock.off()  # the write fails; poll reports the disconnect, off() does not raise

    mirror = FailingMirror()
    bench.rail.add_listener(mirror)
    mirror.failing = True
    bench.lock.cut_rail()
    assert not bench.rail.enabled
    with pytest.raises(RailError):  # the rail itself still reports it
        bench.rail.cut()
    mirror.failing = False


def test_a_vanished_board_is_one_log_line_per_failed_send_without_a_traceback(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.board.inject("disconnect")
    with caplog.at_level(logging.ERROR, logger="safety.interlock"):
        bench.lock.off()
    (record,) = caplog.records
    assert record.exc_info is None
    assert record.getMessage().startswith("sending to the board failed: ")
    assert "code=disconnected" in record.getMessage()


def test_lease_is_bounded_by_the_limits(bench: Bench) -> None:
    with pytest.raises(ValueError, match="lease 600 ms"):
        Interlock(
            bench.client,
            HARD_LIMITS,
            bench.lock.calibration,
            bench.rail,
            bench.clock,
            bench.faults,
            lease_ms=600,
        )


def test_drive_current_is_rounded_down_to_what_the_wire_carries(bench: Bench) -> None:
    """0.1 mA steps, rounded down: the calibrated irradiance of what is sent never exceeds
    what was checked against the plan and the limits (a 22.5 + 22.5 plan stays ≤ 45)."""
    bench.lock.arm(_plan((0, 22.5), (1, 22.5)))
    bench.lock.command({0: 22.5, 1: 22.5})
    calibration = bench.lock.calibration
    bench.lock.renew(True)
    bench.frame()
    setpoints = bench.board.firmware.setpoints  # what the board took off the wire
    assert len(setpoints) == 2
    for sp in setpoints:
        assert round(sp.current_ma * 10) == pytest.approx(sp.current_ma * 10, abs=1e-6)
        assert calibration.irradiance_mw_cm2(sp.channel, sp.current_ma) <= 22.5 + 1e-9
