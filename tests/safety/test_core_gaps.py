"""The gap rule of safety.core_session: time without telemetry is counted, high not low.

A frame counts its own period at its own reading; the rest of its interval is a gap,
counted at the highest of the frames on either side and of the setpoints commanded
since the frame before, for at most ``max_dark_s``. A session cut short counts the time
since the last frame up to the lease end (or the close) plus the link allowance.
On the simulator: light emitted while the link was down is in the ledger.
"""

from __future__ import annotations

import dataclasses

import pytest

from drivers.protocol import Message, Telemetry
from safety.core_events import FaultLatched, SafetyEvent, SessionFinished
from safety.core_session import (
    LINK_ALLOWANCE_S,
    TELEMETRY_PERIOD_S,
    ActiveSession,
    longest_dark_s,
)
from safety.dose import DoseIntegrator
from safety.faults import FaultCode, Outcome
from safety.limits import HARD

from .conftest import LINEAR_CAL as CAL
from .conftest import PLAN_40 as PLAN
from .conftest import BoardFramePort, Rig, make_profile
from .conftest import one_channel_frame as frame


def session() -> ActiveSession:
    dose = DoseIntegrator(CAL, {0: 100.0}, 600.0)
    return ActiveSession(1, PLAN, dose, 1.0, started_s=0.0, last_checkpoint_s=0.0)


def counted_mj(s: ActiveSession) -> float:
    return s.dose.delivered_j_cm2[0] * 1000.0


def test_a_frame_counts_its_own_period() -> None:
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0)  # the first frame: one period
    s.count_frame(frame(1020, 400.0), 10.02)
    assert counted_mj(s) == pytest.approx(40.0 * 2 * TELEMETRY_PERIOD_S)
    assert s.dose.elapsed_s == pytest.approx(2 * TELEMETRY_PERIOD_S)


def test_a_gap_counts_at_the_higher_frame_on_either_side() -> None:
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0)  # 40 mW/cm²
    s.count_frame(frame(1120, 0.0), 10.12)  # 100 ms lost; the lease then ran out
    # the 100 ms gap counts at the 40 of the frame before, and so does this frame's own
    # period (the light may have gone off just before it): a switch-off is never lost
    assert counted_mj(s) == pytest.approx(40.0 * (TELEMETRY_PERIOD_S + 0.100 + TELEMETRY_PERIOD_S))
    assert s.dose.elapsed_s == pytest.approx(TELEMETRY_PERIOD_S + 0.100)


def test_a_gap_counts_at_least_the_setpoint_in_force() -> None:
    s = session()
    s.treating_s = 100.0  # past the (zero) ramp: the setpoint is the plan's 40
    assert s.setpoint_mw_cm2() == {0: 40.0}
    s.count_frame(frame(1000, 100.0), 10.0)  # the board still shows 10 mW/cm²
    s.count_frame(frame(1060, 100.0), 10.06)
    assert counted_mj(s) == pytest.approx(10.0 * 2 * TELEMETRY_PERIOD_S + 40.0 * 0.040)


def test_a_gap_while_paused_counts_only_what_the_frames_show() -> None:
    s = session()
    s.treating_s = 100.0
    s.setpoint_mw_cm2()
    s.count_frame(frame(1000, 0.0), 10.0, paused=True)
    s.count_frame(frame(1100, 0.0), 10.1, paused=True)
    assert s.dose.delivered_total_j_cm2 == 0.0
    assert s.dose.elapsed_s == 0.0


def test_a_gap_is_bounded_by_the_longest_the_board_can_stay_dark() -> None:
    s = session()
    s.count_frame(frame(5000, 400.0), 10.0)
    s.count_frame(frame(3, 0.0), 10.05)  # a reset: the uptime wrapped round
    assert s.max_dark_s == longest_dark_s(HARD)
    assert counted_mj(s) == pytest.approx(40.0 * (2 * TELEMETRY_PERIOD_S + s.max_dark_s))


def test_closing_with_fresh_telemetry_counts_until_the_off_lands() -> None:
    s = session()
    s.count_open_gap(10.0, 10.2)  # no frame yet: nothing to hold
    assert s.dose.delivered_total_j_cm2 == 0.0
    s.count_frame(frame(1000, 400.0), 10.0)
    s.count_open_gap(10.005, 10.2)
    gap_s = 0.005 + LINK_ALLOWANCE_S
    assert counted_mj(s) == pytest.approx(40.0 * (TELEMETRY_PERIOD_S + gap_s))


def test_closing_counts_the_setpoint_commanded_after_the_last_frame() -> None:
    s = session()
    s.count_frame(frame(1000, 100.0), 10.0)  # 10 mW/cm² measured
    s.treating_s = 100.0
    s.setpoint_mw_cm2()  # 40 commanded since: the board may be there now
    s.count_open_gap(10.01, 10.2)
    gap_s = 0.01 + LINK_ALLOWANCE_S
    assert counted_mj(s) == pytest.approx(10.0 * TELEMETRY_PERIOD_S + 40.0 * gap_s)


def test_closing_with_an_overdue_frame_counts_until_the_close() -> None:
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0)
    s.count_open_gap(10.12, 10.2)  # stale: the close (rail cut, OFF) ends the light
    gap_s = 0.12 + LINK_ALLOWANCE_S
    assert counted_mj(s) == pytest.approx(40.0 * (TELEMETRY_PERIOD_S + gap_s))


def test_closing_after_a_hang_counts_until_the_lease_ran_out() -> None:
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0)
    s.count_open_gap(13.0, 10.19)  # the host hung 3 s; its last renewal's lease ended first
    gap_s = 0.19 + LINK_ALLOWANCE_S
    assert counted_mj(s) == pytest.approx(40.0 * (TELEMETRY_PERIOD_S + gap_s))
    t = session()
    t.count_frame(frame(1000, 400.0), 10.0)
    t.count_open_gap(13.0, 9.0)  # no lease running since before the frame: the allowance
    assert counted_mj(t) == pytest.approx(40.0 * (TELEMETRY_PERIOD_S + LINK_ALLOWANCE_S))


def test_dark_time_of_zero_or_while_paused() -> None:
    dose = DoseIntegrator(CAL, {0: 1.0}, 60.0)
    dose.add_dark({0: 40.0}, 0.0)
    assert dose.delivered_total_j_cm2 == 0.0
    dose.add_dark({0: 40.0}, 1.0, paused=True)  # light counts, treating time does not
    assert dose.delivered_j_cm2[0] == pytest.approx(0.040)
    assert dose.elapsed_s == 0.0


def _latched(events: list[SafetyEvent]) -> bool:
    return any(isinstance(e, FaultLatched) for e in events)


def test_light_while_the_link_was_down_is_in_the_ledger(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    rig.board.inject("link_drop", duration_ms=400.0)
    rig.run(1.0, until=_latched)
    rig.run(0.3)
    assert core.snapshot().fault is not None
    assert core.snapshot().fault.code is FaultCode.TELEMETRY_STALE  # type: ignore[union-attr]
    truth = sum(rig.board.state()["delivered_fluence_j_cm2"])  # type: ignore[arg-type]
    with rig.ledger() as ledger:
        (record,) = ledger.sessions()
    assert record.outcome is Outcome.FAULT
    assert truth <= record.delivered_fluence_total_j_cm2 <= truth + 50.0 * 0.03 / 1000.0


def test_a_switch_off_between_two_frames_is_counted() -> None:
    """Finding 2 (docs/reliability.md): the light between the last frame showing it on
    and the first showing it off is counted at the level before, not lost."""
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0)  # 40 mW/cm²
    s.count_frame(frame(1020, 0.0), 10.02)  # off by the next frame, no gap
    s.count_frame(frame(1040, 0.0), 10.04)  # off before and after: nothing more
    assert counted_mj(s) == pytest.approx(40.0 * 2 * TELEMETRY_PERIOD_S)


# ------------------------------------------------------------ a stall of the host itself


def _treating(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)


def _stall_with_the_board(rig: Rig, stall_s: float, board_silent_s: float) -> list[SafetyEvent]:
    """Nothing runs for ``stall_s`` (a machine pause: a simulated board on the same machine
    stops too, so it sends nothing for ``board_silent_s``), then the host's first look."""
    rig.board.inject("link_drop", duration_ms=board_silent_s * 1000.0)
    rig.clock.advance(stall_s)
    return rig.c.poll() + rig.c.tick()


def test_after_a_host_stall_a_stale_verdict_waits_one_tick_and_nothing_acts_on_it(
    rig: Rig,
) -> None:
    _treating(rig)
    renewals = rig.c.snapshot().link.lease_renewals  # each SET_OUTPUT carries a fresh lease
    events = _stall_with_the_board(rig, 0.14, 0.14)
    assert not _latched(events) and rig.c.snapshot().fault is None
    assert rig.c.snapshot().link.lease_renewals == renewals  # none on 140 ms old data
    rig.run(1.0)  # the board speaks again at the next look
    snap = rig.c.snapshot()
    assert snap.fault is None and snap.session_active
    assert max(snap.irradiance_mw_cm2.values()) > 0  # treating on, renewed again
    assert snap.link.lease_renewals > renewals


def test_after_a_host_stall_a_board_still_silent_at_the_next_look_latches(rig: Rig) -> None:
    _treating(rig)
    assert not _latched(_stall_with_the_board(rig, 0.14, 0.40))
    events = rig.run(0.1, until=_latched)
    fault = rig.c.snapshot().fault
    assert _latched(events) and fault is not None
    assert fault.code is FaultCode.TELEMETRY_STALE
    assert fault.message.endswith("(no telemetry for 160 ms)")  # one tick after the first look


def test_a_stale_verdict_is_never_deferred_twice_in_a_row(rig: Rig) -> None:
    _treating(rig)
    assert not _latched(_stall_with_the_board(rig, 0.14, 1.0))
    rig.clock.advance(0.1)  # the host stalls again before its next look
    assert _latched(rig.c.poll() + rig.c.tick())
    assert rig.c.snapshot().fault.code is FaultCode.TELEMETRY_STALE  # type: ignore[union-attr]


def test_a_board_that_falls_silent_while_the_host_ticks_latches_as_before(rig: Rig) -> None:
    """Steady ticks: the verdict comes at the first tick past 100 ms, as without the rule."""
    _treating(rig)
    rig.board.inject("link_drop", duration_ms=400.0)
    rig.run(1.0, until=_latched)
    fault = rig.c.snapshot().fault
    assert fault is not None and fault.code is FaultCode.TELEMETRY_STALE
    assert fault.message.endswith("(no telemetry for 120 ms)")  # the first tick past 100 ms


# ------------------------------------------------------------ the board's clock is not the host's


def test_a_board_clock_that_runs_slow_never_shortens_the_count() -> None:
    """The board's uptime is its word: frames 20 ms apart on the host that claim 10 ms
    (or no time at all) still count the host's 20 ms each."""
    for step_ms in (10, 0):
        s = session()
        for i in range(51):
            s.count_frame(frame(1000 + step_ms * i, 400.0), 10.0 + 0.02 * i, host_clock=True)
        assert counted_mj(s) >= 40.0 * 51 * TELEMETRY_PERIOD_S * (1 - 1e-9)
        assert s.dose.elapsed_s >= 51 * TELEMETRY_PERIOD_S * (1 - 1e-9)


def test_frames_that_arrive_in_a_burst_after_a_stall_are_not_counted_twice() -> None:
    """A host stall of 100 ms, then the five frames the board sent meanwhile at once:
    the host's clock covers the stall at the first of them, the rest add nothing more."""
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0, host_clock=True)
    s.count_frame(frame(1020, 400.0), 10.02, host_clock=True)
    for i in range(1, 6):  # sent at 1040 … 1120, all read at 10.12
        s.count_frame(frame(1020 + 20 * i, 400.0), 10.12, host_clock=True)
    s.count_frame(frame(1140, 400.0), 10.14, host_clock=True)
    assert counted_mj(s) == pytest.approx(40.0 * 8 * TELEMETRY_PERIOD_S)


def test_a_board_clock_that_runs_fast_still_counts_by_its_own_clock() -> None:
    s = session()
    s.count_frame(frame(1000, 400.0), 10.0, host_clock=True)
    s.count_frame(frame(1060, 400.0), 10.02, host_clock=True)  # 60 ms by the board
    assert counted_mj(s) == pytest.approx(40.0 * 0.080)


def test_a_board_clock_that_runs_fast_or_stamps_out_of_order_counts_the_host_time() -> None:
    """A board that claims 40 ms (or a step back, read as a gap) per 20 ms of the host:
    never more than the host's time plus ``max_dark_s``, however long it goes on."""
    for stamps in ((1000 + 40 * i for i in range(500)), (1000 - 50 * (i % 2) for i in range(500))):
        s = session()
        for i, uptime_ms in enumerate(stamps):
            s.count_frame(frame(uptime_ms, 400.0), 10.0 + 0.02 * i, host_clock=True)
        host_s = 500 * TELEMETRY_PERIOD_S
        assert host_s * 40.0 <= counted_mj(s) <= (host_s + s.max_dark_s) * 40.0 * (1 + 1e-9)


def test_a_fast_board_clock_does_not_end_the_session_early(rig: Rig) -> None:
    """On the simulator, every frame's uptime doubled on the wire: the session still
    gives its plan, and the record holds what the board emitted."""
    port = BoardFramePort(rig.port)
    core = rig.ready(port)

    def fast(message: Message) -> Message:
        if isinstance(message, Telemetry):
            return dataclasses.replace(message, uptime_ms=message.uptime_ms * 2)
        return message

    port.alter = fast
    rx = make_profile()
    core.begin_session(rx, "ab" * 32)
    rig.run(100.0, until=lambda events: any(isinstance(e, SessionFinished) for e in events))
    rig.run(0.2)
    truth = rig.board.state()["delivered_fluence_j_cm2"]
    with rig.ledger() as ledger:
        (record,) = ledger.sessions()
    assert record.outcome is Outcome.COMPLETED
    assert truth[0] >= rx.planned_fluence_j_cm2[810] * 0.98  # type: ignore[index]
    assert record.delivered_fluence_j_cm2[810] >= truth[0]  # type: ignore[index]


def test_a_slow_board_clock_loses_no_dose_in_the_ledger(rig: Rig) -> None:
    """On the simulator, every frame's uptime halved on the wire: the record holds at
    least what the board emitted."""
    port = BoardFramePort(rig.port)
    core = rig.ready(port)

    def slow(message: Message) -> Message:
        if isinstance(message, Telemetry):
            return dataclasses.replace(message, uptime_ms=message.uptime_ms // 2)
        return message

    port.alter = slow
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(20.0)
    core.end_session(Outcome.STOPPED)
    rig.run(0.2)
    truth = rig.board.state()["delivered_fluence_j_cm2"]
    with rig.ledger() as ledger:
        (record,) = ledger.sessions()
    assert truth[0] > 0.5  # type: ignore[index]
    assert record.delivered_fluence_j_cm2[810] >= truth[0]  # type: ignore[index]


def test_a_frame_that_leaves_out_a_commanded_channel_counts_it_at_the_setpoint() -> None:
    s = session()
    s.treating_s = 100.0
    s.setpoint_mw_cm2()  # 40 commanded on channel 0
    s.count_frame(frame(1000, 400.0), 10.0)  # 40 measured
    s.count_frame(dataclasses.replace(frame(1020, 0.0), channels=()), 10.02)  # no channel
    s.count_frame(dataclasses.replace(frame(1040, 0.0), channels=()), 10.04)
    assert counted_mj(s) == pytest.approx(40.0 * 3 * TELEMETRY_PERIOD_S)
    p = session()  # paused, or nothing commanded: nothing to add
    p.count_frame(dataclasses.replace(frame(1000, 0.0), channels=()), 10.0, paused=True)
    p.count_frame(dataclasses.replace(frame(1020, 0.0), channels=()), 10.02)
    assert p.dose.delivered_total_j_cm2 == 0.0


def test_light_of_a_channel_left_out_of_the_frames_is_in_the_ledger(rig: Rig) -> None:
    """The board's frames drop the 810 nm channel while it emits: the mismatch trips
    after 100 ms, and the record holds at least the light emitted meanwhile."""
    port = BoardFramePort(rig.port)
    core = rig.ready(port)
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)

    def no_channels(message: Message) -> Message:
        if isinstance(message, Telemetry):
            return dataclasses.replace(message, channels=())
        return message

    port.alter = no_channels
    rig.run(1.0, until=_latched)
    port.alter = lambda message: message
    rig.run(0.3)
    truth = rig.board.state()["delivered_fluence_j_cm2"]
    with rig.ledger() as ledger:
        (record,) = ledger.sessions()
    assert record.fault_code == FaultCode.IRRADIANCE_MISMATCH
    assert record.delivered_fluence_j_cm2[810] >= truth[0]  # type: ignore[index]
