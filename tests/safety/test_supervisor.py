"""Tests of safety.supervisor: every fault code it produces, hysteresis, causes present.

The supervisor is a pure check: it latches nothing (the latch: tests/safety/test_fault_latch.py;
stale telemetry: tests/safety/test_board_watch.py).

Synthetic telemetry frames on a virtual clock; no simulator, no I/O.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from drivers.protocol.messages import (
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelTelemetry,
    Telemetry,
    TelemetryFlag,
)
from hil.rigs.clock import VirtualClock
from safety.calibration import Calibration
from safety.faults import FaultCode, WarningCode
from safety.limits import HARD, Limits
from safety.supervisor import CommandedOutput, Supervisor, SupervisorSettings, Verdict
from safety.supervisor_checks import RiseTracker

CAL = Calibration(
    (
        ChannelCalibration(
            810, 550.0, tuple(CalibrationPoint(c, c / 10) for c in (0.0, 250.0, 500.0))
        ),
        ChannelCalibration(
            850, 550.0, tuple(CalibrationPoint(c, c / 10) for c in (0.0, 250.0, 500.0))
        ),
    )
)
"""A linear table: 10 mA per mW/cm², so the currents in these tests read easily."""

OFF = CommandedOutput(on=False)
FRAME_S = 0.02


def frame(
    *,
    skin_c: tuple[float, float] = (33.0, 33.0),
    board_c: float = 30.0,
    currents_ma: tuple[float, ...] = (0.0, 0.0),
    output_on: bool | None = None,
    contact: bool = True,
    faults: BoardFault = BoardFault.NONE,
) -> Telemetry:
    lit = any(c > 0 for c in currents_ma) if output_on is None else output_on
    flags = TelemetryFlag.RAIL_ENABLED
    flags |= TelemetryFlag.OUTPUT_ON if lit else TelemetryFlag.NONE
    flags |= TelemetryFlag.CONTACT if contact else TelemetryFlag.NONE
    channels = tuple(ChannelTelemetry(c, 0, 100) for c in currents_ma)
    return Telemetry(0, flags, faults, *skin_c, board_c, 12000, 300, channels)


def make(limits: Limits = HARD, **settings: float) -> tuple[Supervisor, VirtualClock]:
    clock = VirtualClock(start_s=1000.0)
    return Supervisor(limits, clock, CAL, SupervisorSettings(**settings)), clock


def on(clock: VirtualClock, *mw_cm2: float, ago_s: float = 10.0) -> CommandedOutput:
    return CommandedOutput(True, dict(enumerate(mw_cm2)), clock() - ago_s)


def feed(
    sup: Supervisor,
    clock: VirtualClock,
    t: Telemetry,
    cmd: CommandedOutput,
    n: int,
    latched: FaultCode | None = None,
) -> Verdict:
    verdict = Verdict()
    for _ in range(n):
        clock.advance(FRAME_S)
        verdict = sup.check(t, cmd, latched)
    return verdict


# ------------------------------------------------------------ quiet frames


def test_quiet_frame_is_ok() -> None:
    sup, clock = make()
    verdict = feed(sup, clock, frame(), OFF, 5)
    assert verdict == Verdict(None, "", (), True)
    assert verdict.ok


def test_treating_within_tolerance_is_ok() -> None:
    sup, clock = make()
    cmd = on(clock, 30.0, 20.0)
    verdict = feed(sup, clock, frame(currents_ma=(320.0, 181.0)), cmd, 200)
    assert verdict.ok


# ------------------------------------------------------------ temperatures


def test_skin_warn_at_40() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(skin_c=(39.9, 39.0)), OFF, 1).warnings == ()
    verdict = feed(sup, clock, frame(skin_c=(39.0, 40.0)), OFF, 1)
    assert verdict.ok
    assert verdict.warnings == (WarningCode.SKIN_TEMP_WARN,)


def test_skin_overtemp_uses_the_hotter_sensor_and_latches() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(skin_c=(40.9, 40.0)), OFF, 1).ok
    verdict = feed(sup, clock, frame(skin_c=(40.0, 41.0)), OFF, 1)
    assert verdict.fault is FaultCode.SKIN_OVERTEMP
    assert "41.0 °C" in verdict.message
    cooled = feed(sup, clock, frame(skin_c=(35.0, 35.0)), OFF, 1, FaultCode.SKIN_OVERTEMP)
    assert cooled.fault is None  # the latch holds the fault, not the supervisor
    assert sup.cause_present(FaultCode.SKIN_OVERTEMP) is None


def test_skin_overtemp_clears_only_below_the_warn_level() -> None:
    sup, clock = make()
    latched = feed(sup, clock, frame(skin_c=(41.5, 41.0)), OFF, 1).fault
    assert latched is FaultCode.SKIN_OVERTEMP
    assert feed(sup, clock, frame(skin_c=(40.5, 40.2)), OFF, 1).ok  # not latched: no hysteresis
    feed(sup, clock, frame(skin_c=(40.5, 40.2)), OFF, 1, latched)
    assert sup.cause_present(latched) == "the cause is still present: skin_overtemp"
    feed(sup, clock, frame(skin_c=(39.5, 39.2)), OFF, 1, latched)
    assert sup.cause_present(latched) is None
    assert feed(sup, clock, frame(), OFF, 1).ok


def test_profile_skin_stop_is_lower_never_higher() -> None:
    sup, clock = make()
    sup.set_skin_stop_c(39.0)
    assert (sup.skin_stop_c, sup.skin_warn_c) == (39.0, 38.0)
    assert feed(sup, clock, frame(skin_c=(38.0, 37.5)), OFF, 1).warnings == (
        WarningCode.SKIN_TEMP_WARN,
    )
    assert feed(sup, clock, frame(skin_c=(39.0, 38.5)), OFF, 1).fault is FaultCode.SKIN_OVERTEMP
    sup.set_skin_stop_c(45.0)
    assert sup.skin_stop_c == 41.0
    sup.set_skin_stop_c(None)
    assert (sup.skin_stop_c, sup.skin_warn_c) == (41.0, 40.0)
    with pytest.raises(ValueError, match="finite"):
        sup.set_skin_stop_c(float("nan"))


def test_board_overtemp_with_hysteresis() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(board_c=59.9), OFF, 1).ok
    verdict = feed(sup, clock, frame(board_c=60.0), OFF, 1)
    assert verdict.fault is FaultCode.BOARD_OVERTEMP
    feed(sup, clock, frame(board_c=57.0), OFF, 1, verdict.fault)
    assert sup.cause_present(verdict.fault) is not None
    feed(sup, clock, frame(board_c=54.9), OFF, 1, verdict.fault)
    assert sup.cause_present(verdict.fault) is None


def test_board_stop_follows_a_tighter_site_limit() -> None:
    sup, clock = make(replace(HARD, board_temp_stop_c=50.0))
    assert feed(sup, clock, frame(board_c=50.0), OFF, 1).fault is FaultCode.BOARD_OVERTEMP


@pytest.mark.parametrize(
    ("kwargs", "code", "needle"),
    [
        ({"skin_c": (-40.0, 33.0)}, FaultCode.SENSOR_OPEN, "skin A sensor open"),
        ({"board_c": -20.0}, FaultCode.SENSOR_OPEN, "board sensor open"),
        ({"skin_c": (33.0, 120.0)}, FaultCode.SENSOR_SHORT, "skin B sensor shorted"),
        ({"board_c": 100.0}, FaultCode.SENSOR_SHORT, "board sensor shorted"),
        ({"skin_c": (-5.0, -5.0)}, FaultCode.SENSOR_RANGE, "skin A reads -5.0"),
        ({"board_c": -1.0}, FaultCode.SENSOR_RANGE, "board reads -1.0"),
        ({"skin_c": (33.0, 35.1)}, FaultCode.SENSOR_DISAGREE, "33.0 / 35.1"),
    ],
)
def test_sensor_faults(kwargs: dict[str, object], code: FaultCode, needle: str) -> None:
    sup, clock = make()
    verdict = feed(sup, clock, frame(**kwargs), OFF, 1)  # type: ignore[arg-type]
    assert verdict.fault is code
    assert needle in verdict.message


def test_sensors_at_the_edges_of_their_range_are_fine() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(skin_c=(0.0, 1.9), board_c=0.0), OFF, 1).ok
    assert feed(sup, clock, frame(skin_c=(35.0, 33.0)), OFF, 1).ok


def test_sensor_range_upper_bound_from_site_limits() -> None:
    sup, clock = make(replace(HARD, sensor_valid_max_c=38.0))
    verdict = feed(sup, clock, frame(skin_c=(38.5, 38.0)), OFF, 1)
    assert verdict.fault is FaultCode.SENSOR_RANGE


def test_a_shorted_skin_sensor_is_reported_as_short_not_overtemp() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(skin_c=(33.0, 150.0)), OFF, 1).fault is FaultCode.SENSOR_SHORT


# ------------------------------------------------------------ rise rate


def rising(sup: Supervisor, clock: VirtualClock, c_per_min: float, seconds: float) -> Verdict:
    rng = random.Random(7)
    cmd = on(clock, 30.0)
    verdict = Verdict()
    start = clock()
    for _ in range(round(seconds / FRAME_S)):
        clock.advance(FRAME_S)
        skin = 33.0 + c_per_min * (clock() - start) / 60 + rng.uniform(-0.2, 0.2)
        verdict = sup.check(frame(skin_c=(skin, skin - 0.3), currents_ma=(300.0,)), cmd)
        if not verdict.ok:
            break
    return verdict


def test_rise_faster_than_1_c_per_min_trips() -> None:
    sup, clock = make()
    verdict = rising(sup, clock, 1.5, 60.0)
    assert verdict.fault is FaultCode.TEMP_RISE_RATE
    assert "°C/min" in verdict.message
    assert clock() - 1000.0 == pytest.approx(31.0, abs=1.0)  # once the 30 s window is full


@pytest.mark.slow
def test_slow_noisy_rise_does_not_trip() -> None:
    sup, clock = make()
    assert rising(sup, clock, 0.7, 180.0).ok


def test_rise_is_not_judged_while_off_and_the_window_restarts() -> None:
    sup, clock = make()
    for i in range(3000):  # 60 s of a fast rise while off: e.g. the pad put on the leg
        clock.advance(FRAME_S)
        assert sup.check(frame(skin_c=(22.0 + i * 0.005,) * 2), OFF).ok
    assert rising(sup, clock, 0.5, 40.0).ok


def test_rise_tracker_validates_its_window() -> None:
    with pytest.raises(ValueError, match="window_s"):
        RiseTracker(window_s=1.0, bucket_s=1.0)
    with pytest.raises(ValueError, match="window_s"):
        RiseTracker(window_s=10.0, bucket_s=0.0)


def test_rise_tracker_slope() -> None:
    tracker = RiseTracker(window_s=4.0, bucket_s=1.0)
    rates = [tracker.add(t / 10, 30.0 + t / 10 / 60 * 2.0) for t in range(60)]
    assert rates[:40] == [None] * 40
    assert rates[-1] == pytest.approx(2.0)


# ------------------------------------------------------------ output against command


def test_stuck_on_flag_while_commanded_off_trips_at_once() -> None:
    sup, clock = make()
    verdict = feed(sup, clock, frame(output_on=True), OFF, 1)
    assert verdict.fault is FaultCode.STUCK_ON


def test_stuck_on_current_without_flag_trips() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(currents_ma=(4.9, 0.0), output_on=False), OFF, 1).ok
    verdict = feed(sup, clock, frame(currents_ma=(0.0, 6.0), output_on=False), OFF, 1)
    assert verdict.fault is FaultCode.STUCK_ON
    assert "[1]" in verdict.message


def test_output_may_linger_one_transition_after_turning_off() -> None:
    sup, clock = make()
    feed(sup, clock, frame(currents_ma=(300.0,)), on(clock, 30.0), 10)
    off = CommandedOutput(False, {}, clock())
    assert feed(sup, clock, frame(currents_ma=(300.0,)), off, 5).ok  # 100 ms grace
    assert feed(sup, clock, frame(currents_ma=(300.0,)), off, 1).fault is FaultCode.STUCK_ON


def test_no_grace_when_output_was_never_on() -> None:
    sup, clock = make()
    off = CommandedOutput(False, {}, clock())
    assert feed(sup, clock, frame(output_on=True), off, 1).fault is FaultCode.STUCK_ON


def test_a_single_bad_frame_does_not_trip_mismatch() -> None:
    sup, clock = make()
    cmd = on(clock, 30.0)
    good, bad = frame(currents_ma=(300.0,)), frame(currents_ma=(340.0,))
    for _ in range(100):
        assert feed(sup, clock, bad, cmd, 5).ok
        assert feed(sup, clock, good, cmd, 1).ok


def test_mismatch_trips_after_more_than_100_ms() -> None:
    clock = VirtualClock(start_s=0.0)
    sup = Supervisor(HARD, clock, CAL)
    cmd = CommandedOutput(True, {0: 30.0}, -10.0)
    high = frame(currents_ma=(331.0,))
    step_s = 1 / 32  # exact in binary: the boundary is tested exactly
    for _ in range(4):  # 0.09375 s after the first bad frame
        clock.advance(step_s)
        assert sup.check(high, cmd).ok
    clock.advance(step_s / 5)  # exactly 0.1 s: not yet *more* than 100 ms
    assert sup.check(high, cmd).ok
    clock.advance(step_s)
    verdict = sup.check(high, cmd)
    assert verdict.fault is FaultCode.IRRADIANCE_MISMATCH
    assert "channel 0: measured 33.10" in verdict.message


@pytest.mark.parametrize(
    ("mw_cm2", "currents_ma"),
    [
        ((30.0,), (269.0,)),  # 10.3 % low
        ((30.0,), (0.0,)),  # LED string open
        ((30.0, 10.0), (300.0,)),  # a commanded channel missing from telemetry
        ((30.0,), (300.0, 20.0)),  # an uncommanded channel lit
        ((45.0,), (504.0,)),  # above the table (50.4, under the hard maximum): bounded
    ],
)
def test_mismatch_cases(mw_cm2: tuple[float, ...], currents_ma: tuple[float, ...]) -> None:
    sup, clock = make()
    verdict = feed(sup, clock, frame(currents_ma=currents_ma), on(clock, *mw_cm2), 7)
    assert verdict.fault is FaultCode.IRRADIANCE_MISMATCH


def test_a_lit_channel_the_calibration_does_not_know_trips() -> None:
    # its light has no bound: above any maximum (the over-limit check, listed first)
    sup, clock = make()
    lit = frame(currents_ma=(300.0, 0.0, 50.0))
    verdict = feed(sup, clock, lit, on(clock, 30.0), 7)
    assert verdict.fault is FaultCode.IRRADIANCE_OVER_LIMIT
    assert verdict.message == "channel 2: measured inf mW/cm², above the maximum 50 mW/cm²"


def test_unknown_dark_channel_is_fine() -> None:
    sup, clock = make()
    assert feed(sup, clock, frame(currents_ma=(300.0, 0.0, 1.0)), on(clock, 30.0), 10).ok


def test_step_change_transient_shorter_than_100_ms_is_tolerated() -> None:
    sup, clock = make()
    feed(sup, clock, frame(currents_ma=(200.0,)), on(clock, 20.0), 5)
    step = on(clock, 40.0, ago_s=0.0)
    assert feed(sup, clock, frame(currents_ma=(300.0,)), step, 5).ok  # between old and new
    assert feed(sup, clock, frame(currents_ma=(400.0,)), step, 20).ok


def test_a_setpoint_that_is_never_reached_trips_after_100_ms() -> None:
    sup, clock = make()
    feed(sup, clock, frame(currents_ma=(200.0,)), on(clock, 20.0), 5)
    step = on(clock, 40.0, ago_s=0.0)
    assert feed(sup, clock, frame(currents_ma=(200.0,)), step, 5).ok
    verdict = feed(sup, clock, frame(currents_ma=(200.0,)), step, 2)
    assert verdict.fault is FaultCode.IRRADIANCE_MISMATCH


def test_ramp_with_one_frame_lag_never_trips() -> None:
    sup, clock = make()
    previous = 0.0
    start = clock()
    for _ in range(3000):  # 60 s ramp to 50 mW/cm², setpoint renewed every frame
        clock.advance(FRAME_S)
        wanted = min(50.0, 50.0 * (clock() - start) / 30.0)
        cmd = CommandedOutput(True, {0: wanted}, clock())
        assert sup.check(frame(currents_ma=(previous * 10,)), cmd).ok
        previous = wanted


def test_turn_on_transient_is_tolerated() -> None:
    sup, clock = make()
    feed(sup, clock, frame(), OFF, 3)
    assert feed(sup, clock, frame(), on(clock, 30.0, ago_s=0.0), 4).ok


def test_lost_contact_pauses_without_fault() -> None:
    sup, clock = make()
    dark = frame(contact=False)
    verdict = feed(sup, clock, dark, on(clock, 30.0), 50)
    assert verdict.ok
    assert verdict.contact is False
    assert verdict.warnings == (WarningCode.CONTACT_LOST,)
    paused = feed(sup, clock, dark, OFF, 1)
    assert (paused.ok, paused.contact, paused.warnings) == (True, False, ())


# ------------------------------------------------------------ measured over the hard maximum


def pulsed(currents_ma: tuple[float, ...], pulse_hz: int, duty_pct: int) -> Telemetry:
    """A treating frame whose channels report this PWM (``pulse_hz`` 0 is CW)."""
    channels = tuple(ChannelTelemetry(c, pulse_hz, duty_pct) for c in currents_ma)
    return replace(frame(currents_ma=currents_ma), channels=channels)


@pytest.mark.parametrize(
    ("mw_cm2", "duty_pct", "t", "trips"),
    [
        # the table is linear (10 mA per mW/cm²); the hard maximum 50 + 1 % trips above 50.5
        ((50.0,), 100, pulsed((504.9,), 0, 100), False),  # one channel CW, just under
        ((50.0,), 100, pulsed((505.1,), 0, 100), True),  # one channel CW, just over
        ((25.0, 25.0), 100, pulsed((252.4, 252.4), 0, 100), False),  # together CW: 50.48
        ((25.0, 25.0), 100, pulsed((252.6, 252.6), 0, 100), True),  # together CW: 50.52
        ((50.0, 50.0), 50, pulsed((504.9, 504.9), 10, 50), False),  # pulsed: 50.49 at 50 %
        ((50.0, 50.0), 50, pulsed((505.1, 495.0), 10, 50), True),  # pulsed: one peak over
        ((50.0, 50.0), 50, pulsed((505.1, 505.1), 10, 50), True),  # pulsed: 50.51 at 50 %
        ((50.0, 50.0), 50, pulsed((500.0, 500.0), 10, 51), True),  # the board pulses longer
        ((50.0, 50.0), 51, pulsed((500.0, 500.0), 10, 50), True),  # ... or reports less
        ((50.0, 50.0), 50, pulsed((500.0, 500.0), 0, 50), True),  # reports CW: full duty
    ],
)
def test_measured_irradiance_over_the_hard_maximum_trips_beyond_the_allowance(
    mw_cm2: tuple[float, ...], duty_pct: int, t: Telemetry, trips: bool
) -> None:
    sup, clock = make()
    cmd = CommandedOutput(True, dict(enumerate(mw_cm2)), clock() - 10.0, duty_pct)
    verdict = feed(sup, clock, t, cmd, 7)  # 140 ms: more than the 100 ms persistence
    assert verdict.fault is (FaultCode.IRRADIANCE_OVER_LIMIT if trips else None)


def test_the_over_limit_message_names_the_channel_or_the_sum() -> None:
    sup, clock = make()
    verdict = feed(sup, clock, pulsed((505.1,), 0, 100), on(clock, 50.0), 7)
    assert verdict.message == "channel 0: measured 50.51 mW/cm², above the maximum 50 mW/cm²"
    sup, clock = make()
    verdict = feed(sup, clock, pulsed((252.6, 252.6), 0, 100), on(clock, 25.0, 25.0), 7)
    assert verdict.message == (
        "channels together: measured 50.52 mW/cm² at their duty, above the maximum 50 mW/cm²"
    )


def test_over_limit_trips_after_more_than_100_ms() -> None:
    clock = VirtualClock(start_s=0.0)
    sup = Supervisor(HARD, clock, CAL)
    cmd = CommandedOutput(True, {0: 50.0}, -10.0)
    high = frame(currents_ma=(505.1,))  # 50.51: within ±10 % of 50, over 50 + 1 %
    step_s = 1 / 32  # exact in binary: the boundary is tested exactly
    for _ in range(4):
        clock.advance(step_s)
        assert sup.check(high, cmd).ok
    clock.advance(step_s / 5)  # exactly 0.1 s: not yet *more* than 100 ms
    assert sup.check(high, cmd).ok
    clock.advance(step_s)
    assert sup.check(high, cmd).fault is FaultCode.IRRADIANCE_OVER_LIMIT


def test_over_limit_for_less_than_100_ms_at_a_time_never_trips() -> None:
    sup, clock = make()
    cmd = on(clock, 50.0)
    over, under = frame(currents_ma=(505.1,)), frame(currents_ma=(504.9,))
    for _ in range(100):
        assert feed(sup, clock, over, cmd, 5).ok  # 80 ms from the first over frame
        assert feed(sup, clock, under, cmd, 1).ok


def test_over_limit_holds_without_contact_and_stuck_on_comes_first() -> None:
    # the mismatch is not judged without contact; the hard maximum always is
    sup, clock = make()
    verdict = feed(sup, clock, frame(currents_ma=(505.1,), contact=False), on(clock, 50.0), 7)
    assert verdict.fault is FaultCode.IRRADIANCE_OVER_LIMIT
    sup, clock = make()  # commanded off, dark, the last command's duty is not counted
    assert feed(sup, clock, frame(contact=False), OFF, 7).ok
    sup, clock = make()  # commanded off and lit: stuck_on is found first (at once)
    assert feed(sup, clock, frame(currents_ma=(600.0,)), OFF, 7).fault is FaultCode.STUCK_ON


def test_acknowledge_resets_the_over_limit_timer() -> None:
    sup, clock = make()
    cmd = on(clock, 50.0)
    feed(sup, clock, frame(currents_ma=(505.1,)), cmd, 4)
    sup.reset()  # an acknowledgement
    assert feed(sup, clock, frame(currents_ma=(505.1,)), cmd, 5).ok


# ------------------------------------------------------------ board, stale, latch


def test_board_fault_flags_are_named() -> None:
    sup, clock = make()
    verdict = feed(sup, clock, frame(faults=BoardFault.LED_OPEN | BoardFault.SUPPLY_LOW), OFF, 1)
    assert verdict.fault is FaultCode.BOARD_FAULT
    assert verdict.message == "board reports: LED_OPEN, SUPPLY_LOW"


def test_a_flag_only_the_acknowledgement_clears_does_not_block_it() -> None:
    """MAX_ON_TIME stays set on the board until CLEAR_FAULTS, which the host sends only
    when the acknowledgement succeeds: it must not count as a cause still present."""
    sup, clock = make()
    verdict = feed(sup, clock, frame(faults=BoardFault.MAX_ON_TIME), OFF, 3)
    assert verdict.fault is FaultCode.BOARD_FAULT
    assert sup.cause_present(FaultCode.BOARD_FAULT) is None


def test_a_flag_with_a_cause_still_blocks_the_acknowledgement() -> None:
    sup, clock = make()
    feed(sup, clock, frame(faults=BoardFault.MAX_ON_TIME | BoardFault.LED_OPEN), OFF, 3)
    assert sup.cause_present(FaultCode.BOARD_FAULT) == "the cause is still present: board_fault"


def test_stuck_on_wins_over_other_findings() -> None:
    sup, clock = make()
    verdict = feed(sup, clock, frame(output_on=True, skin_c=(42.0, 42.0)), OFF, 1)
    assert verdict.fault is FaultCode.STUCK_ON


def test_acknowledge_refused_while_cause_present_then_checks_resume() -> None:
    sup, clock = make()
    feed(sup, clock, frame(skin_c=(33.0, 36.0)), OFF, 1)
    disagree = FaultCode.SENSOR_DISAGREE
    assert sup.cause_present(disagree) == "the cause is still present: sensor_disagree"
    feed(sup, clock, frame(), OFF, 1)
    assert sup.cause_present(disagree) is None
    assert feed(sup, clock, frame(output_on=True), OFF, 1).fault is FaultCode.STUCK_ON


def test_acknowledge_resets_the_mismatch_timer() -> None:
    sup, clock = make()
    cmd = on(clock, 30.0)
    feed(sup, clock, frame(currents_ma=(400.0,)), cmd, 4)
    sup.reset()  # an acknowledgement
    assert feed(sup, clock, frame(currents_ma=(400.0,)), cmd, 5).ok


def test_commanded_output_wanted() -> None:
    assert CommandedOutput(False, {0: 30.0}).wanted_mw_cm2(0) == 0.0
    assert CommandedOutput(True, {0: 30.0}).wanted_mw_cm2(0) == 30.0
    assert CommandedOutput(True, {0: 30.0}).wanted_mw_cm2(1) == 0.0
