"""Light after a session's close (``safety.after_close``): counted into the closed row,
high not low, with few writes.

Unit tests on frames written by hand, then the same on the simulator: a stop with a
stuck driver, frames piled up behind a host stall, a link drop at the close, an OFF
that lands after a frame already on the wire, and a board that reads a dark current.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from drivers.protocol.messages import (
    CalibrationPoint,
    ChannelCalibration,
    Message,
    Telemetry,
    TelemetryFlag,
)
from hil.sim.board import RAIL_HOLD_S
from hil.sim.inprocess import RailWire, SimPort, make_sim
from safety.after_close import IN_FLIGHT_S, LATE_FRAME_S, RESERVE_S, AfterClose
from safety.calibration import Calibration
from safety.core import SafetyCore
from safety.core_session import (
    LINK_ALLOWANCE_S,
    TELEMETRY_PERIOD_S,
    ActiveSession,
    reopen_closed_session,
)
from safety.dose import DoseIntegrator
from safety.errors import LedgerError
from safety.faults import FaultCode, Outcome
from safety.ledger import LEDGER_FILENAME, Ledger
from safety.ledger_schema import SessionRecord
from safety.limits import HARD
from safety.rail import make_rail
from safety.supervisor import Supervisor

from .conftest import LINEAR_CAL as CAL
from .conftest import PLAN_40 as PLAN
from .conftest import START_WALL, BoardFramePort, Rig, WallClock, make_profile
from .conftest import one_channel_frame as frame

T_CLOSE_S = 10.0
CAL2 = Calibration(
    tuple(
        ChannelCalibration(nm, 550.0, tuple(CalibrationPoint(c, c / 10) for c in (0.0, 500.0)))
        for nm in (810, 850)
    )
)


def closed() -> AfterClose:
    """A session lit at 40 mW/cm² until its last frame at ``T_CLOSE_S`` (uptime 1000 ms)."""
    dose = DoseIntegrator(CAL, {0: 100.0}, 600.0)
    session = ActiveSession(1, PLAN, dose, 1.0, started_s=0.0, last_checkpoint_s=0.0)
    session.wavelength_by_channel = {0: 810}
    session.treating_s = 100.0
    session.setpoint_mw_cm2()  # 40 mW/cm² commanded
    session.count_frame(frame(1000, 400.0), T_CLOSE_S)
    session.count_open_gap(T_CLOSE_S, T_CLOSE_S + 0.2)
    return AfterClose.at_close(session, T_CLOSE_S, rail_on=True)


def mj(after: AfterClose) -> float:
    return after.session.dose.delivered_j_cm2[0] * 1000.0


def at_close_mj() -> float:
    return 40.0 * (TELEMETRY_PERIOD_S + LINK_ALLOWANCE_S)


def feed(after: AfterClose, uptime_ms: int, current_ma: float) -> dict[int, float] | None:
    now_s = T_CLOSE_S + (uptime_ms - 1000) / 1000.0
    return after.count(frame(uptime_ms, current_ma), now_s, lit=current_ma > 5.0, rail_on=True)


def test_the_close_forgets_what_was_commanded() -> None:
    after = closed()
    assert after.session.commanded_mw_cm2 == {} and after.session.in_force_mw_cm2 == {}
    assert after.recorded_j_cm2 == after.session.dose.delivered_j_cm2
    assert mj(after) == pytest.approx(at_close_mj())


def test_dark_on_time_after_the_close_adds_nothing_and_ends_the_count() -> None:
    after = closed()
    assert feed(after, 1020, 0.0) is None
    assert after.done and not after.lit and not after.counting
    assert mj(after) == pytest.approx(at_close_mj())


def test_a_frame_in_flight_counts_in_memory_and_the_dark_frame_raises_the_row_once() -> None:
    after = closed()
    assert feed(after, 1020, 400.0) is None  # sampled before the OFF landed: no write yet
    assert after.counting
    assert mj(after) == pytest.approx(at_close_mj() + 40.0 * TELEMETRY_PERIOD_S)
    raised = feed(after, 1040, 0.0)  # dark: its period counts at the frame before's level
    assert after.done and not after.counting
    expected_mj = at_close_mj() + 40.0 * 2 * TELEMETRY_PERIOD_S
    assert raised is not None and raised[810] * 1000.0 == pytest.approx(expected_mj)
    assert feed(after, 1060, 0.0) is None  # dark, and the count has ended: no write
    assert mj(after) == pytest.approx(expected_mj)


def test_a_driver_lit_past_the_grace_raises_the_row_with_a_reserve_for_a_dying_host() -> None:
    after = closed()
    uptime_ms = 1000
    while (raised := feed(after, uptime_ms := uptime_ms + 20, 400.0)) is None:
        assert uptime_ms < 1000 + 1000 * IN_FLIGHT_S + 20
    assert (uptime_ms - 1000) / 1000.0 > IN_FLIGHT_S  # not before the grace
    first_mj = raised[810] * 1000.0  # the reserve, and room for as much again
    assert first_mj == pytest.approx(mj(after) + 2 * 40.0 * RESERVE_S)
    for _ in range(5):  # the rail is cut: the reserve holds the rest, no write
        uptime_ms += 20
        assert feed(after, uptime_ms, 400.0) is None
    assert feed(after, uptime_ms + 20, 0.0) is None  # dark: still inside the reserve
    assert mj(after) < first_mj


def test_a_board_lit_for_ever_costs_a_write_each_time_its_light_doubles() -> None:
    after = closed()
    writes = 0
    for step in range(1, 500):  # ten seconds of light
        raised = feed(after, 1000 + 20 * step, 400.0)
        if raised is not None:
            writes += 1
            assert raised[810] * 1000.0 >= mj(after)
    assert after.counting
    assert 3 <= writes <= 8


def test_the_reserve_is_at_the_highest_level_since_the_close_and_never_lowers_the_row() -> None:
    after = closed()
    for uptime_ms in range(1020, 1120, 20):  # full light through the grace
        feed(after, uptime_ms, 400.0)
    first = feed(after, 1120, 40.0)  # past it, at a tenth: the reserve is at the peak
    assert first is not None
    reserve_mj = 40.0 * RESERVE_S
    assert first[810] * 1000.0 == pytest.approx(mj(after) + 2 * reserve_mj)
    for uptime_ms in range(1140, 11000, 20):  # still a tenth: the count creeps on
        raised = feed(after, uptime_ms, 40.0)
        if raised is not None:  # the count and the reserve outgrew the row
            assert raised[810] >= first[810]
            assert mj(after) + reserve_mj > first[810] * 1000.0
            since_mj = mj(after) - at_close_mj()  # room: the light since the close, once more
            assert since_mj > reserve_mj
            assert raised[810] * 1000.0 == pytest.approx(mj(after) + reserve_mj + since_mj)
            break
    else:
        pytest.fail("the count never outgrew the first reserve")


def test_the_reserve_counts_the_time_scale_and_the_calibration_uncertainty() -> None:
    dose = DoseIntegrator(CAL, {0: 100.0}, 600.0, uncertainty_fraction=0.05)
    session = ActiveSession(1, PLAN, dose, 2.0, started_s=0.0, last_checkpoint_s=0.0)
    session.wavelength_by_channel = {0: 810}
    session.count_frame(frame(1000, 400.0), T_CLOSE_S)
    after = AfterClose.at_close(session, T_CLOSE_S, rail_on=True)
    late_s = IN_FLIGHT_S + 0.02  # past the grace, the next frame after a 100 ms gap
    raised = after.count(frame(1120, 400.0), T_CLOSE_S + late_s, lit=True, rail_on=True)
    assert raised is not None
    lit_s = 3 * TELEMETRY_PERIOD_S + (0.1 - TELEMETRY_PERIOD_S)  # 2 frames and the gap
    expected_mj = 40.0 * 1.05 * 2.0 * (lit_s + 2 * RESERVE_S)  # the reserve, and room
    assert raised[810] * 1000.0 == pytest.approx(expected_mj)


def test_light_after_the_count_ended_is_counted_and_written_at_once() -> None:
    after = closed()
    for uptime_ms in (1020, 1040, 1060, 1080):  # dark: the count ends, and stays ended
        assert feed(after, uptime_ms, 0.0) is None
    assert after.done and not after.counting
    assert after.session.last_frame_s == pytest.approx(T_CLOSE_S + 0.08)
    raised = feed(after, 1100, 400.0)  # lit, nothing commanded: no frame in flight
    lit_mj = at_close_mj() + 40.0 * TELEMETRY_PERIOD_S  # from the last dark frame
    assert mj(after) == pytest.approx(lit_mj)
    expected_mj = lit_mj + 2 * 40.0 * RESERVE_S  # the reserve, and room for as much again
    assert raised is not None and raised[810] * 1000.0 == pytest.approx(expected_mj)
    assert not after.counting  # a fault found now did not end the session
    assert feed(after, 1120, 0.0) is None  # dark again: inside the reserve
    assert after.done


def test_light_long_after_the_count_ended_reserves_from_itself() -> None:
    after = closed()
    assert feed(after, 1020, 0.0) is None
    for uptime_ms in range(1040, 1040 + 20 * 500, 20):  # ten quiet seconds, kept
        assert feed(after, uptime_ms, 0.0) is None
    raised = feed(after, 1040 + 20 * 500, 400.0)
    assert raised is not None  # the reserve and room for as much again, not ten seconds
    assert raised[810] * 1000.0 == pytest.approx(mj(after) + 2 * 40.0 * RESERVE_S)


def test_a_flash_after_a_count_ended_is_held_by_its_reserve_through_the_cut() -> None:
    after = closed()
    after.rail_on_at_close = False  # a critical fault cut the rail at the close
    assert feed(after, 1020, 0.0) is None
    assert after.done
    raised = feed(after, 1040, 400.0)  # a self-test's rail check re-powers it
    assert raised is not None
    assert raised[810] * 1000.0 == pytest.approx(at_close_mj() + 40.0 * (0.02 + 2 * RESERVE_S))
    assert after.settle(T_CLOSE_S + 0.05) is None  # stuck_on cuts: the reserve holds it
    assert mj(after) == pytest.approx(at_close_mj() + 40.0 * (0.02 + 0.01))


def test_a_flash_after_a_settled_count_is_settled_again_by_its_own_cut() -> None:
    after = closed()
    assert feed(after, 1020, 400.0) is None  # stuck after the close
    assert after.settle(T_CLOSE_S + 0.03) is not None  # the cut: settled once
    feed(after, 1040, 0.0)  # a frame piled up behind it: dark, the count ends
    for uptime_ms in range(1060, 3060, 20):  # two dark seconds
        assert feed(after, uptime_ms, 0.0) is None
    assert after.done
    before_mj = mj(after)
    assert feed(after, 3060, 400.0) is not None  # a self-test's rail check re-powers it
    after.settle(T_CLOSE_S + 2.07)  # stuck_on: cut 10 ms after that frame
    assert mj(after) == pytest.approx(before_mj + 40.0 * (0.02 + 0.01))


def test_a_flickering_claim_after_the_count_ended_costs_few_writes() -> None:
    after = closed()
    assert feed(after, 1020, 0.0) is None  # the count ends
    writes, uptime_ms = 0, 1040
    for _ in range(500):  # 20 s: a current around the dark threshold, every other frame
        for current_ma in (6.0, 0.0):
            writes += feed(after, uptime_ms, current_ma) is not None
            uptime_ms += 20
    assert 1 <= writes <= 8  # a write each time the light since the close doubles, not one a blip


@pytest.mark.parametrize("count_ended", [False, True])
def test_light_after_an_hour_of_silence_reserves_no_more_than_light_at_once(
    count_ended: bool,
) -> None:
    """A lit frame after a long silence (a board that claims light long after, on a link
    that was down): its gap counts at most the longest dark, and its reserve is the
    usual or that light once more (the next write waits for it to double), never the hour."""
    after = closed()
    if count_ended:
        assert feed(after, 1020, 0.0) is None
    hour_ms = 3_600_000
    figures = [feed(after, 1040 + hour_ms + 20 * step, 400.0) for step in range(10)]
    raised = [figure for figure in figures if figure is not None][-1]
    lit_s = after.session.max_dark_s + 0.2  # the capped gap, then ten frames
    bound_mj = at_close_mj() + 40.0 * (2 * lit_s + RESERVE_S)
    assert raised[810] * 1000.0 <= bound_mj


def test_settle_counts_the_unseen_light_once_and_the_count_goes_on() -> None:
    after = closed()
    assert feed(after, 1020, 400.0) is None  # in flight, or stuck: in memory
    lit_mj = mj(after)
    raised = after.settle(T_CLOSE_S + 0.02 + 0.9)  # the board is lost: no frame will come
    assert mj(after) == pytest.approx(lit_mj + 40.0 * after.session.max_dark_s)
    assert raised is not None and raised[810] * 1000.0 == pytest.approx(mj(after))
    assert after.settle(T_CLOSE_S + 5.0) is None  # once: the light ended at the cut
    assert mj(after) == pytest.approx(lit_mj + 40.0 * after.session.max_dark_s)
    assert after.counting  # frames piled up behind it still count
    assert feed(after, 1040, 0.0) is None or after.done
    assert after.done
    assert after.settle(T_CLOSE_S + 2.0) is None


def test_settle_without_light_after_the_close_counts_from_the_close() -> None:
    after = closed()
    raised = after.settle(T_CLOSE_S + 0.1)  # a stuck driver may have lit, unseen, until now
    assert raised is not None
    assert mj(after) == pytest.approx(at_close_mj() + 40.0 * 0.1)


def test_settle_adds_nothing_when_the_rail_was_cut_at_the_close() -> None:
    after = closed()
    after.rail_on_at_close = False
    assert after.settle(T_CLOSE_S + 0.1) is None
    assert mj(after) == pytest.approx(at_close_mj())


@pytest.mark.parametrize(
    ("rail_at_close", "rail_now", "counted"),
    [
        (True, False, True),  # cut since the close: a stuck driver may have lit until then
        (True, True, False),  # still on, and dark: the driver obeys the OFF
        (False, False, False),  # cut at the close (a critical fault): dark from the close
    ],
)
def test_a_late_dark_first_frame_counts_the_unseen_light_only_after_a_cut(
    rail_at_close: bool, rail_now: bool, counted: bool
) -> None:
    after = closed()
    after.rail_on_at_close = rail_at_close
    now_s = T_CLOSE_S + 0.3  # a link drop after the close: frames went missing
    assert now_s - after.session.last_frame_s > LATE_FRAME_S
    assert after.session.max_dark_s > 0.3
    raised = after.count(frame(1300, 0.0), now_s, lit=False, rail_on=rail_now)
    assert after.done and not after.lit
    if not counted:
        assert raised is None
        assert mj(after) == pytest.approx(at_close_mj())
        return
    unseen_s = min(0.3, after.session.max_dark_s)
    assert raised is not None
    assert raised[810] * 1000.0 == pytest.approx(at_close_mj() + 40.0 * unseen_s)


def test_a_session_closed_before_its_first_frame_has_no_level_to_hold() -> None:
    dose = DoseIntegrator(CAL, {0: 100.0}, 600.0)
    session = ActiveSession(1, PLAN, dose, 1.0, started_s=0.0, last_checkpoint_s=0.0)
    after = AfterClose.at_close(session, T_CLOSE_S, rail_on=True)
    raised = after.count(frame(1300, 0.0), T_CLOSE_S + 0.3, lit=False, rail_on=False)
    assert raised is None and after.done
    assert dose.delivered_total_j_cm2 == 0.0


def test_a_late_dark_first_frame_counts_at_most_the_longest_dark() -> None:
    after = closed()
    raised = after.count(frame(3000, 0.0), T_CLOSE_S + 2.0, lit=False, rail_on=False)
    assert raised is not None
    assert mj(after) == pytest.approx(at_close_mj() + 40.0 * after.session.max_dark_s)


def test_an_on_time_dark_first_frame_adds_nothing_even_after_a_cut() -> None:
    after = closed()
    raised = after.count(frame(1020, 0.0), T_CLOSE_S + 0.02, lit=False, rail_on=False)
    assert raised is None and after.done
    assert mj(after) == pytest.approx(at_close_mj())


def test_the_row_is_raised_only_when_the_count_outgrows_it() -> None:
    after = closed()
    after.recorded_j_cm2[0] = 1.0  # the row already holds more
    assert feed(after, 1020, 400.0) is None
    assert feed(after, 1040, 0.0) is None


def test_light_is_the_flag_or_a_current_above_the_dark_current() -> None:
    supervisor = Supervisor(HARD, lambda: 0.0, CAL)
    assert supervisor.reports_light(frame(1000, 0.0, output_on=True))
    assert supervisor.reports_light(frame(1000, 300.0, output_on=False))
    assert not supervisor.reports_light(frame(1000, 0.3, output_on=False))
    assert not supervisor.reports_light(frame(1000, 0.0))


# ------------------------------------------------------------ on the simulator


def _truth(rig: Rig) -> float:
    truth: list[float] = rig.board.state()["delivered_fluence_j_cm2"]  # type: ignore[assignment]
    return float(sum(f / k for f, k in zip(truth, rig.board.optics.unit_factor, strict=True)))


def _row_j_cm2(rig: Rig) -> float:
    with rig.ledger() as ledger:
        (row,) = ledger.sessions()
    return row.delivered_fluence_total_j_cm2


def _treat_stuck(rig: Rig, port: BoardFramePort | None = None) -> SafetyCore:
    """Treating, then the driver sticks on (the session is still open)."""
    core = rig.ready(port)
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    rig.board.inject("stuck_on")
    rig.run(0.05)
    return core


def test_frames_piled_up_behind_a_host_stall_at_a_stuck_close_all_count(rig: Rig) -> None:
    _treat_stuck(rig)
    rig.c.end_session(Outcome.STOPPED)
    rig.clock.advance(0.15)  # the host stalls; the stuck board's frames wait in the UART
    rig.board.advance_to(rig.clock())
    rig.run(1.0)
    fault = rig.c.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    assert rig.board.state()["outputs_on"] is False
    assert _row_j_cm2(rig) >= _truth(rig) > 0.1
    with rig.ledger() as ledger:
        (record,) = ledger.faults()
    assert record.code == FaultCode.STUCK_ON and record.session_id == 1


def test_a_link_drop_at_a_stuck_close_still_counts_the_light(rig: Rig) -> None:
    _treat_stuck(rig)
    rig.board.inject("link_drop", duration_ms=300.0)
    rig.c.end_session(Outcome.STOPPED)
    rig.run(1.5)
    assert rig.c.fault is not None
    assert rig.board.state()["outputs_on"] is False
    assert _row_j_cm2(rig) >= _truth(rig) > 0.1


@pytest.mark.parametrize("loss", ["disconnect", "link_drop"])
def test_light_after_a_stuck_close_is_counted_when_no_frame_follows(rig: Rig, loss: str) -> None:
    """The cable comes out, or the link goes quiet until the rail is cut: no frame shows
    the rest, so the cut settles it (and a restart loses nothing)."""
    _treat_stuck(rig)
    rig.c.end_session(Outcome.STOPPED)
    rig.run(0.03)  # a lit frame after the close
    if loss == "disconnect":
        rig.board.inject("disconnect")
    else:
        rig.board.inject("link_drop", duration_ms=5000.0)
    rig.run(1.0)
    assert rig.c.fault is not None
    assert not rig.rail.enabled and rig.board.state()["outputs_on"] is False
    assert _row_j_cm2(rig) >= _truth(rig) > 0.1


def test_a_stuck_driver_lit_unseen_by_the_self_tests_rail_check_is_counted(rig: Rig) -> None:
    """A stop on a stuck driver; the cut settles it and the count ends dark. After the
    acknowledgement the self-test's rail check re-powers the driver, and the frames that
    show the rail on are lost: the step times out (0.5 s), the rail is cut, and the next
    frame is dark and late. The light in between was seen by no frame: it is counted
    from the rail's heartbeats, which beat only while it is powered. Four times over:
    once, the room the row holds after the stuck close would cover it by chance."""
    port = BoardFramePort(rig.port)
    core = _treat_stuck(rig, port)
    core.end_session(Outcome.STOPPED)
    rig.run(1.0)
    fault = core.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    assert _row_j_cm2(rig) >= _truth(rig)
    for _ in range(4):
        assert core.acknowledge_fault() is None
        port.lose = lambda message: isinstance(message, Telemetry) and message.rail_enabled
        assert core.self_test() is not None  # the rail check times out: the rail is cut
        port.lose = lambda message: False
        rig.run(1.0)
        assert rig.board.state()["outputs_on"] is False
    assert _row_j_cm2(rig) >= _truth(rig), (_row_j_cm2(rig), _truth(rig))


def test_current_without_the_output_flag_after_a_close_is_light(rig: Rig) -> None:
    """The board's flag says off, its current says on: the current counts."""
    port = BoardFramePort(rig.port)
    core = _treat_stuck(rig, port)
    port.alter = _without_output_flag
    core.end_session(Outcome.STOPPED)
    rig.run(1.0)
    fault = core.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    assert _row_j_cm2(rig) >= _truth(rig) > 0.1


def _without_output_flag(message: Message) -> Message:
    if not isinstance(message, Telemetry):
        return message
    return replace(message, flags=message.flags & ~TelemetryFlag.OUTPUT_ON)


def test_a_stop_with_a_dark_current_writes_nothing_after_the_close(rig: Rig) -> None:
    """0.3 mA with the output off is no light (the supervisor's dark current): the count
    after the close ends at the first frame, and the row is never written again."""
    port = BoardFramePort(rig.port)
    core = rig.ready(port)
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    core.end_session(Outcome.STOPPED)
    closed_j_cm2 = _row_j_cm2(rig)
    port.alter = _with_dark_current
    rig.run(2.0)
    assert core.fault is None
    assert core.snapshot().delivered_total_j_cm2 == pytest.approx(closed_j_cm2)
    assert _row_j_cm2(rig) == closed_j_cm2


def test_a_noisy_dark_current_between_sessions_costs_few_writes(
    rig: Rig, mocker: MockerFixture
) -> None:
    """6 mA (the dark current is 5 mA) on one idle frame in five: light, the interlock
    cuts, and each blip is counted; the row is written as that light doubles, not a blip."""
    port = BoardFramePort(rig.port)
    core = rig.ready(port)
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    core.end_session(Outcome.STOPPED)
    rig.run(0.5)  # the count after the close ends, dark
    writes = mocker.spy(Ledger, "add_after_close")
    frames = 0

    def blip(message: Message) -> Message:
        nonlocal frames
        if not isinstance(message, Telemetry) or message.output_on:
            return message
        frames += 1
        if frames % 5:
            return message
        noisy = tuple(replace(channel, current_ma=6.0) for channel in message.channels)
        return replace(message, channels=noisy)

    port.alter = blip
    rig.run(20.0)
    fault = core.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    assert 1 <= writes.call_count <= 8


def _with_dark_current(message: Message) -> Message:
    if not isinstance(message, Telemetry) or message.output_on:
        return message
    dark = tuple(replace(channel, current_ma=0.3) for channel in message.channels)
    return replace(message, channels=dark)


# ------------------------------------------------------------ a host started since the close


def _lit(message: Message) -> Message:
    """A board that claims light: the output flag and 400 mA on channel 0."""
    if not isinstance(message, Telemetry):
        return message
    lit = (replace(message.channels[0], current_ma=400.0), *message.channels[1:])
    return replace(message, flags=message.flags | TelemetryFlag.OUTPUT_ON, channels=lit)


def _closed_row(rig: Rig) -> float:
    """A stopped session of the 810 nm prescription; the figure its row holds."""
    core = rig.ready()
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    core.end_session(Outcome.STOPPED)
    rig.run(0.5)
    return _row_j_cm2(rig)


def _restarted_lit(rig: Rig) -> SafetyCore:
    """A new host on the same ledger and board, whose frames then show light."""
    if rig.core is not None:
        rig.core.close()
    port = BoardFramePort(SimPort(rig.board, rig.clock))
    core = rig.connect(port)
    rig.run(0.2)
    port.alter = _lit
    rig.run(1.0)
    fault = core.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    return core


def test_light_before_a_new_hosts_first_session_is_counted_in_the_newest_row(rig: Rig) -> None:
    closed_j_cm2 = _closed_row(rig)
    core = _restarted_lit(rig)
    assert _row_j_cm2(rig) > closed_j_cm2
    assert core.snapshot().delivered_fluence_j_cm2 == {}  # a rebuilt row is not shown
    with rig.ledger() as ledger:
        (record,) = ledger.faults()
    assert record.code == FaultCode.STUCK_ON and record.session_id is None  # not its end


def test_light_on_a_pad_never_used_is_in_the_fault_record_only(rig: Rig) -> None:
    _restarted_lit(rig)
    with rig.ledger() as ledger:
        assert ledger.sessions() == []
        (record,) = ledger.faults()
    assert record.code == FaultCode.STUCK_ON and record.session_id is None


def test_the_newest_row_is_read_at_boot_not_on_the_frame_path(
    rig: Rig, mocker: MockerFixture
) -> None:
    core = rig.ready()
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    core.end_session(Outcome.STOPPED)
    core.close()
    last_session = mocker.spy(Ledger, "last_session")
    port = BoardFramePort(SimPort(rig.board, rig.clock))
    rig.connect(port)
    assert last_session.call_count == 1
    port.alter = _lit
    rig.run(1.0)  # light: the row read at boot is rebuilt, the ledger not read again
    assert last_session.call_count == 1
    assert _row_j_cm2(rig) > 0.0


def test_light_before_the_first_session_with_an_unreadable_ledger_is_logged(
    rig: Rig, mocker: MockerFixture, caplog: pytest.LogCaptureFixture
) -> None:
    mocker.patch.object(Ledger, "last_session", side_effect=LedgerError("disk gone", path=""))
    _restarted_lit(rig)
    assert "light before the first session will not be recorded: disk gone" in caplog.text


def test_light_before_the_first_session_with_a_damaged_newest_row_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    _closed_row(rig)
    rig.c.close()
    rig.core = None
    with sqlite3.connect(rig.state_dir / LEDGER_FILENAME) as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json'")
    _restarted_lit(rig)
    assert "light before the first session will not be recorded: its row is damaged" in (
        caplog.text
    )


def test_light_after_a_row_of_another_board_is_logged_and_the_row_kept(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with rig.ledger() as ledger:  # a row of a board with a 905 nm channel
        sid = ledger.begin_session("other", "cd" * 32, {905: 5.0}, planned_duration_s=60.0)
        ledger.end_session(sid, Outcome.COMPLETED, {905: 5.0})
    _restarted_lit(rig)
    assert f"session {sid} was on another board" in caplog.text
    with rig.ledger() as ledger:
        (row,) = ledger.sessions()
    assert row.delivered_fluence_j_cm2 == {905: 5.0}


def test_a_rebuilt_row_starts_at_its_figures_on_every_channel_of_the_board() -> None:
    record = SessionRecord(
        id=7, profile_id="p", profile_sha256="ab" * 32, started_at=START_WALL,
        ended_at=START_WALL, planned_duration_s=None, planned_fluence_j_cm2={810: 2.0},
        planned_fluence_total_j_cm2=2.0, delivered_fluence_j_cm2={810: 1.5},
        delivered_fluence_total_j_cm2=1.5, outcome=Outcome.STOPPED, fault_code=None,
    )  # fmt: skip
    session = reopen_closed_session(record, 1.0, calibration=CAL2, limits=HARD, now_s=5.0)
    assert session is not None and session.session_id == 7
    assert session.by_wavelength(session.dose.delivered_j_cm2) == {810: 1.5, 850: 0.0}
    assert session.plan.duration_s == TELEMETRY_PERIOD_S
    other = replace(record, delivered_fluence_j_cm2={905: 1.0})
    assert reopen_closed_session(other, 1.0, calibration=CAL2, limits=HARD, now_s=5.0) is None


# ------------------------------------------------------------ the reserve's bound


def _reserve_bound_mj(after: AfterClose, peak_mw_cm2: float = 40.0) -> float:
    """What the row may hold: the count, the reserve at the highest level since the
    close, and room before the next write (the reserve again, or the light since the
    close once more: a write each time that light doubles)."""
    reserve_mj = peak_mw_cm2 * RESERVE_S
    since_mj = mj(after) - at_close_mj()
    return mj(after) + reserve_mj + max(reserve_mj, since_mj) + 1e-9


def test_a_faint_reading_after_a_stuck_close_reserves_no_hours_at_the_stuck_level() -> None:
    """Full light through the grace, then a faint current for two minutes: the row holds
    about what was counted, not two minutes at the stuck level."""
    after = closed()
    for uptime_ms in range(1020, 1140, 20):
        feed(after, uptime_ms, 400.0)
    for uptime_ms in range(1140, 1140 + 120_000, 20):
        raised = feed(after, uptime_ms, 6.0)
        if raised is not None:
            assert raised[810] * 1000.0 <= _reserve_bound_mj(after), uptime_ms


def test_a_lit_frame_every_0_4_s_reserves_no_more_than_its_light() -> None:
    """After the count ended, one lit frame in twenty (closer than the reserve's time):
    the reserve is bounded by the light counted, not by the time since the first."""
    after = closed()
    assert feed(after, 1020, 0.0) is None
    for step in range(1, 3000):  # a minute
        current_ma = 400.0 if step % 20 == 0 else 0.0
        raised = feed(after, 1020 + 20 * step, current_ma)
        if raised is not None:
            assert raised[810] * 1000.0 <= _reserve_bound_mj(after), step


def test_a_lit_frame_every_0_46_s_costs_few_writes() -> None:
    """One lit frame in 23 (just past the reserve's time) for two minutes: a write each
    time the light since the close doubles, not one a flash."""
    after = closed()
    assert feed(after, 1020, 0.0) is None
    writes = 0
    for step in range(1, 6000):
        current_ma = 400.0 if step % 23 == 0 else 0.0
        writes += feed(after, 1020 + 20 * step, current_ma) is not None
    assert 1 <= writes <= 8


def test_light_an_hour_after_lit_frames_reserves_from_itself() -> None:
    """Five lit seconds after the close, an hour dark, then a lit frame: its reserve is
    the usual, not the hour."""
    after = closed()
    for uptime_ms in range(1020, 6020, 20):
        feed(after, uptime_ms, 400.0)
    assert feed(after, 6020, 0.0) is not None or after.done
    hour_ms = 3_600_000
    for uptime_ms in (6040 + hour_ms, 6060 + hour_ms):
        feed(after, uptime_ms - 20, 0.0)
        raised = feed(after, uptime_ms, 400.0)
        if raised is not None:
            assert raised[810] * 1000.0 <= _reserve_bound_mj(after)


# ------------------------------------------------------------ rows and channels at a restart


def _lit_level_mw_cm2(rig: Rig) -> float:
    """The irradiance the board's calibration gives ``_lit``'s 400 mA (no allowance)."""
    dose = DoseIntegrator(Calibration(rig.board.optics.calibration), {0: 1.0}, 60.0)
    return dose.frame_levels(frame(0, 400.0))[0]


def test_a_new_hosts_first_lit_frame_after_lost_frames_counts_the_gap(rig: Rig) -> None:
    """A new host sees dark frames, then frames go missing, then one shows light: the
    light may have begun just after the last dark frame, so that gap is the newest row's
    (with the reserve for a host that dies now)."""
    closed_j_cm2 = _closed_row(rig)
    rig.c.close()
    port = BoardFramePort(SimPort(rig.board, rig.clock))
    rig.connect(port)
    rig.run(0.2)
    port.lose = lambda message: isinstance(message, Telemetry)
    rig.run(0.3)
    port.lose = lambda message: False
    flashes = [True]  # the first frame after the gap claims light, the rest are dark

    def one_flash(message: Message) -> Message:
        if isinstance(message, Telemetry) and flashes:
            flashes.pop()
            return _lit(message)
        return message

    port.alter = one_flash
    rig.run(1.0)
    gained_mj = (_row_j_cm2(rig) - closed_j_cm2) * 1000.0
    assert not flashes
    assert gained_mj >= _lit_level_mw_cm2(rig) * (0.3 + RESERVE_S)


def _lit_850(message: Message) -> Message:
    """A board that claims light on channel 1 (850 nm), which the prescription leaves dark."""
    if not isinstance(message, Telemetry):
        return message
    lit = (message.channels[0], replace(message.channels[1], current_ma=400.0))
    return replace(message, flags=message.flags | TelemetryFlag.OUTPUT_ON, channels=lit)


def test_light_on_a_channel_the_session_did_not_plan_is_recorded_under_its_wavelength(
    rig: Rig,
) -> None:
    port = BoardFramePort(rig.port)
    core = rig.ready(port)
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    core.end_session(Outcome.STOPPED)
    rig.run(0.5)
    port.alter = _lit_850
    rig.run(1.0)
    with rig.ledger() as ledger:
        (row,) = ledger.sessions()
    assert set(row.delivered_fluence_j_cm2) == {810, 850}
    assert row.delivered_fluence_j_cm2[850] > 0.0


def test_the_row_rebuilt_at_boot_is_the_last_session_even_after_the_clock_went_back(
    rig: Rig,
) -> None:
    with rig.ledger() as ledger:
        first = ledger.begin_session("p", "ab" * 32, {810: 5.0}, planned_duration_s=60.0)
        ledger.end_session(first, Outcome.COMPLETED, {810: 5.0})
    rig.wall.offset = -dt.timedelta(days=1)  # the wall clock went back a day
    with rig.ledger() as ledger:
        last = ledger.begin_session("p", "ab" * 32, {810: 5.0}, planned_duration_s=60.0)
        ledger.end_session(last, Outcome.STOPPED, {810: 2.0})
    _restarted_lit(rig)
    with rig.ledger() as ledger:
        rows = {row.id: row.delivered_fluence_j_cm2 for row in ledger.sessions()}
    assert rows[first] == {810: 5.0}
    assert rows[last][810] > 2.0


# ------------------------------------------------------------ between writes, and growing light


def _two_channels_closed() -> AfterClose:
    """Like ``closed()``, on a board of two channels (810 and 850 nm), 810 lit at the close."""
    dose = DoseIntegrator(CAL2, {0: 100.0}, 600.0)
    session = ActiveSession(1, PLAN, dose, 1.0, started_s=0.0, last_checkpoint_s=0.0)
    session.wavelength_by_channel = {0: 810, 1: 850}
    session.count_frame(_frame2(1000, 400.0, 0.0), T_CLOSE_S)
    return AfterClose.at_close(session, T_CLOSE_S, rail_on=True)


def _frame2(uptime_ms: int, ma_810: float, ma_850: float) -> Telemetry:
    one = frame(uptime_ms, max(ma_810, ma_850))
    channel = one.channels[0]
    both = (replace(channel, current_ma=ma_810), replace(channel, current_ma=ma_850))
    return replace(one, channels=both)


def test_a_host_that_dies_between_writes_leaves_the_reserve_in_the_row() -> None:
    """A host may die after any frame, not only one that wrote: past the grace, the row
    holds the count and ``RESERVE_S`` at the level lit, at every lit frame."""
    after = closed()
    row_mj = at_close_mj()
    for uptime_ms in range(1020, 1000 + 600_000, 20):  # ten minutes at 40 mW/cm²
        raised = feed(after, uptime_ms, 400.0)
        if raised is not None:
            row_mj = raised[810] * 1000.0
        if (uptime_ms - 1000) / 1000.0 > IN_FLIGHT_S:
            needed_mj = mj(after) + 40.0 * RESERVE_S
            assert row_mj >= needed_mj - 1e-9, (uptime_ms, row_mj, needed_mj)


@pytest.mark.parametrize("case", ["ramp", "second_channel_later"])
def test_light_that_grows_costs_a_write_per_doubling_not_per_frame(case: str) -> None:
    """Ten minutes (30 000 frames) of a board lit for ever: a current creeping up from
    0.1 mA to 400 mA after the count ended, or a second driver (850 nm) stuck five
    minutes after the first. Light that grows needs more doublings than steady light
    (about 7 writes), but still a few dozen at most."""
    after = _two_channels_closed()
    assert after.count(_frame2(1020, 0.0, 0.0), T_CLOSE_S + 0.02, lit=False, rail_on=True) is None
    writes, steps = 0, 30_000
    for step in range(1, steps + 1):
        uptime_ms = 1020 + 20 * step
        if case == "ramp":
            currents = (round(max(0.1, 400.0 * step / steps), 1), 0.0)
        else:
            currents = (400.0, 400.0 if step >= steps // 2 else 0.0)
        now_s = T_CLOSE_S + (uptime_ms - 1000) / 1000.0
        raised = after.count(_frame2(uptime_ms, *currents), now_s, lit=True, rail_on=True)
        writes += raised is not None
    assert writes <= 30


def test_a_board_reset_between_the_dark_frame_and_the_light_counts_the_host_gap() -> None:
    """A new host's last dark frame came 20 ms after the board booted; the board resets
    (its uptime starts again) and the next frame, 0.6 s later, is lit at uptime 200 ms:
    the board's uptime says 180 ms passed, the host's clock 600 ms."""
    record = SessionRecord(
        id=7, profile_id="p", profile_sha256="ab" * 32, started_at=START_WALL,
        ended_at=START_WALL, planned_duration_s=None, planned_fluence_j_cm2={810: 2.0},
        planned_fluence_total_j_cm2=2.0, delivered_fluence_j_cm2={810: 1.5},
        delivered_fluence_total_j_cm2=1.5, outcome=Outcome.STOPPED, fault_code=None,
    )  # fmt: skip
    session = reopen_closed_session(record, 1.0, calibration=CAL2, limits=HARD, now_s=100.0)
    assert session is not None
    session.keep_dark(_frame2(20, 0.0, 0.0), 100.0)  # what the core does with its boot frame
    after = AfterClose.rebuilt(session, 100.6, rail_on=True)
    raised = after.count(_frame2(200, 400.0, 0.0), 100.6, lit=True, rail_on=True)
    assert raised is not None
    gained_mj = (raised[810] - 1.5) * 1000.0
    assert gained_mj >= 40.0 * (0.6 + RESERVE_S), gained_mj  # lit since the dark frame


# ------------------------------------------------------------ light no frame showed


@pytest.mark.parametrize(
    ("lit_after_close", "gap_s", "rail_was_on", "rail_on", "counted"),
    [
        (True, 0.5, True, False, True),  # powered and cut between, frames lost: counted
        (False, 0.5, True, False, False),  # no driver was seen lit after the close
        (True, 0.02, True, False, False),  # on time: the frames showed it dark
        (True, 0.5, False, False, False),  # the rail stayed cut: nothing could light
        (True, 0.5, True, True, False),  # still powered, and dark: the driver obeys
    ],
)
def test_a_late_dark_frame_after_the_rail_was_powered_counts_the_gap_at_the_peak(
    lit_after_close: bool, gap_s: float, rail_was_on: bool, rail_on: bool, counted: bool
) -> None:
    after = closed()
    if lit_after_close:
        assert feed(after, 1020, 400.0) is None  # stuck after the close, in the grace
        assert after.settle(T_CLOSE_S + 0.03) is not None  # the cut
    after.count(frame(1040, 0.0), T_CLOSE_S + 0.04, lit=False, rail_on=False)  # the count ends
    assert after.done
    before_mj, now_s = mj(after), T_CLOSE_S + 0.04 + gap_s
    raised = after.count(
        frame(1040 + round(gap_s * 1000), 0.0), now_s,
        lit=False, rail_on=rail_on, rail_was_on=rail_was_on,
    )  # fmt: skip
    assert after.done
    assert after.session.last_frame_s == now_s
    if not counted:
        assert raised is None and mj(after) == pytest.approx(before_mj)
        return
    assert mj(after) == pytest.approx(before_mj + 40.0 * gap_s)  # at the stuck level
    assert raised is not None and raised[810] * 1000.0 == pytest.approx(mj(after))


def _stuck_close_acknowledged(rig: Rig, port: BoardFramePort) -> SafetyCore:
    core = _treat_stuck(rig, port)
    core.end_session(Outcome.STOPPED)
    rig.run(1.0)
    fault = core.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    return core


def _rail_on_frame(message: Message) -> bool:
    return isinstance(message, Telemetry) and message.rail_enabled


@pytest.mark.parametrize("end", ["disconnect", "close"])
def test_an_unseen_flash_is_counted_when_no_frame_follows_the_rail_checks_cut(
    rig: Rig, end: str
) -> None:
    """As the four self-tests above, but after the last one no frame comes: the cable is
    pulled, or nirpad is stopped (a new host then sees only dark frames). The host's own
    cut counts it."""
    port = BoardFramePort(rig.port)
    core = _stuck_close_acknowledged(rig, port)
    for i in range(4):
        assert core.acknowledge_fault() is None
        port.lose = _rail_on_frame
        assert core.self_test() is not None  # the rail check times out: the rail is cut
        port.lose = lambda message: False
        if i < 3:
            rig.run(1.0)
    if end == "disconnect":
        rig.board.inject("disconnect")
        rig.run(1.0)
    else:
        core.close()
        rig.core = None
        rig.connect(BoardFramePort(SimPort(rig.board, rig.clock)))
        rig.run(1.0)  # dark frames only: the new host rebuilds no row
    assert _row_j_cm2(rig) >= _truth(rig), (_row_j_cm2(rig), _truth(rig))


def test_an_unseen_flash_stretched_by_a_host_stall_is_counted(tmp_path: Path) -> None:
    """The rail check's last wait meets a host stall of 0.28 s, inside the hold circuit's
    0.3 s: the rail stays powered about 0.76 s, beyond the 0.64 s cap of a gap."""
    clock, board, sim_port = make_sim(rail_hold_s=RAIL_HOLD_S)
    rail = make_rail(None, None)
    RailWire(board, clock).connect(rail)
    rig = Rig(clock, board, sim_port, rail, tmp_path / "state", WallClock(clock))
    try:
        port = BoardFramePort(sim_port)
        core = _stuck_close_acknowledged(rig, port)
        for _ in range(4):
            assert core.acknowledge_fault() is None
            first_ms: list[int] = []

            def lose_with_a_stall(message: Message, first_ms: list[int] = first_ms) -> bool:
                if not _rail_on_frame(message):
                    return False
                assert isinstance(message, Telemetry)
                if not first_ms:
                    first_ms.append(message.uptime_ms)
                elif len(first_ms) == 1 and message.uptime_ms - first_ms[0] >= 440:
                    first_ms.append(message.uptime_ms)  # once, near the step's end
                    clock.advance(0.28)
                    board.advance_to(clock())
                return True

            port.lose = lose_with_a_stall
            assert core.self_test() is not None
            port.lose = _rail_on_frame  # the frames the stall queued are lost too
            rig.run(1.0)
            port.lose = lambda message: False
        assert _row_j_cm2(rig) >= _truth(rig), (_row_j_cm2(rig), _truth(rig))
    finally:
        if rig.core is not None:
            rig.core.close()
        rail.close()


def test_link_drops_between_sessions_after_a_frame_in_flight_write_nothing(
    rig: Rig, mocker: MockerFixture
) -> None:
    """A healthy driver: one frame in flight shows light after a stop (a slow link), the
    rest are dark with the rail on. Three link drops between sessions (stale: the rail is
    cut; acknowledged, self-tested) add nothing: no driver ignored the OFF."""
    core = rig.ready()
    core.begin_session(make_profile(ramp_s=0.0), "ab" * 32)
    rig.run(3.0)
    rig.board.inject("link_delay", delay_ms=30.0)
    rig.run(0.2)
    core.end_session(Outcome.STOPPED)
    rig.run(0.5)
    rig.board.clear_injections()
    rig.run(0.5)
    assert core.fault is None and rig.rail.enabled
    closed_j_cm2 = _row_j_cm2(rig)
    spy = mocker.spy(Ledger, "add_after_close")
    for _ in range(3):
        rig.board.inject("link_drop", duration_ms=200.0)
        rig.run(0.5)
        rig.board.clear_injections()
        rig.run(0.2)
        fault = core.fault
        assert fault is not None and fault.code is FaultCode.TELEMETRY_STALE
        assert core.acknowledge_fault() is None
        assert core.self_test() is None
        rig.run(1.0)
    assert spy.call_count == 0
    assert _row_j_cm2(rig) == closed_j_cm2


def test_an_unseen_flash_counted_at_the_cut_is_not_counted_again_by_the_late_frame(
    rig: Rig,
) -> None:
    """The host's cut counts the flash; the late dark frame after it finds the rail's
    heartbeats counted up to that cut, and adds nothing (the count the status shows)."""
    port = BoardFramePort(rig.port)
    core = _stuck_close_acknowledged(rig, port)
    before_j_cm2 = core.snapshot().delivered_total_j_cm2
    assert core.acknowledge_fault() is None
    port.lose = _rail_on_frame
    assert core.self_test() is not None  # the rail check times out: the cut counts it
    port.lose = lambda message: False
    at_cut_j_cm2 = core.snapshot().delivered_total_j_cm2
    assert at_cut_j_cm2 > before_j_cm2
    rig.run(1.0)  # the next frame is dark and late
    assert core.snapshot().delivered_total_j_cm2 == pytest.approx(at_cut_j_cm2)
