"""Unit tests of safety.dose: counting rules, the end rule, the cap and the ramp."""

from __future__ import annotations

import math

import pytest

from drivers.protocol.messages import (
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelTelemetry,
    Telemetry,
    TelemetryFlag,
)
from safety.calibration import Calibration
from safety.dose import DoseIntegrator, duty_fraction, ramp_setpoint

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
"""Linear: 10 mA per mW/cm²."""


def frame(*channels: ChannelTelemetry, output_on: bool = True) -> Telemetry:
    flags = TelemetryFlag.CONTACT | (TelemetryFlag.OUTPUT_ON if output_on else TelemetryFlag.NONE)
    return Telemetry(0, flags, BoardFault.NONE, 33.0, 33.0, 30.0, 12000, 300, channels)


def cw(current_ma: float) -> ChannelTelemetry:
    return ChannelTelemetry(current_ma, 0, 100)


def integrator(plan: dict[int, float] | None = None, duration_s: float = 100.0) -> DoseIntegrator:
    return DoseIntegrator(CAL, {0: 1.0, 1: 1.0} if plan is None else plan, duration_s)


def test_cw_fluence_and_elapsed() -> None:
    dose = integrator()
    for _ in range(50):
        dose.add_frame(frame(cw(300.0), cw(100.0)), 0.02)  # 30 and 10 mW/cm² for 1 s
    assert dose.delivered_j_cm2 == {0: pytest.approx(0.030), 1: pytest.approx(0.010)}
    assert dose.delivered_total_j_cm2 == pytest.approx(0.040)
    assert dose.elapsed_s == pytest.approx(1.0)
    assert dose.remaining_s == pytest.approx(99.0)


def test_pulsed_counts_the_average() -> None:
    dose = integrator()
    dose.add_frame(frame(ChannelTelemetry(400.0, 10, 25)), 1.0)
    assert dose.delivered_j_cm2[0] == pytest.approx(0.010)


def test_time_scale_scales_fluence_and_time() -> None:
    dose = integrator()
    dose.add_frame(frame(cw(200.0)), 0.5, time_scale=4.0)
    assert dose.delivered_j_cm2[0] == pytest.approx(0.040)
    assert dose.elapsed_s == pytest.approx(2.0)


def test_output_off_adds_nothing() -> None:
    dose = integrator()
    dose.add_frame(frame(cw(0.0), cw(0.0), output_on=False), 5.0)
    assert dose.delivered_total_j_cm2 == 0.0
    assert dose.elapsed_s == 0.0


def test_pause_adds_no_time_but_emitted_light_still_counts() -> None:
    dose = integrator()
    dose.add_frame(frame(cw(300.0)), 0.02, paused=True)  # the frame before OFF took effect
    assert dose.elapsed_s == 0.0
    assert dose.delivered_j_cm2[0] == pytest.approx(0.0006)


def test_stuck_on_without_flag_and_unplanned_channel_count() -> None:
    dose = integrator({0: 1.0})
    dose.add_frame(frame(cw(0.0), cw(100.0), output_on=False), 1.0)
    assert dose.delivered_j_cm2 == {0: 0.0, 1: pytest.approx(0.010)}
    assert dose.elapsed_s == 0.0


def test_current_above_the_table_is_over_counted() -> None:
    dose = integrator()
    dose.add_frame(frame(cw(1000.0)), 1.0)
    assert dose.delivered_j_cm2[0] == pytest.approx(0.100)


def test_non_positive_dt_is_ignored() -> None:
    dose = integrator()
    dose.add_frame(frame(cw(300.0)), 0.0)
    dose.add_frame(frame(cw(300.0)), -1.0)
    assert dose.delivered_total_j_cm2 == 0.0


def test_done_by_duration() -> None:
    dose = integrator({0: 100.0}, duration_s=10.0)
    for _ in range(499):
        dose.add_frame(frame(cw(100.0)), 0.02)
    assert not dose.done()
    dose.add_frame(frame(cw(100.0)), 0.02)
    assert dose.done()
    assert dose.remaining_s == 0.0
    assert dose.remaining_fraction == pytest.approx(0.0, abs=1e-9)


def test_done_by_fluence_first() -> None:
    dose = integrator({0: 0.3, 1: 0.2}, duration_s=1000.0)
    dose.add_frame(frame(cw(250.0), cw(250.0)), 9.99)
    assert not dose.done()
    assert dose.remaining_fraction == pytest.approx(0.001)
    dose.add_frame(frame(cw(250.0), cw(250.0)), 0.01)
    assert dose.done()
    assert dose.remaining_fraction == 0.0


def test_remaining_fraction_follows_the_further_of_time_and_fluence() -> None:
    dose = integrator({0: 10.0}, duration_s=100.0)
    assert dose.remaining_fraction == 1.0
    dose.add_frame(frame(cw(100.0)), 25.0)  # 25 % of the time, 2.5 % of the dose
    assert dose.remaining_fraction == pytest.approx(0.75)


def test_zero_plan_ends_only_by_time() -> None:
    dose = integrator({0: 0.0}, duration_s=2.0)
    dose.add_frame(frame(cw(100.0)), 1.0)
    assert not dose.done()
    assert dose.remaining_fraction == pytest.approx(0.5)
    assert dose.clamp_next(0.02) == {0: 0.0}


def test_clamp_next_caps_the_last_period() -> None:
    dose = integrator({0: 0.5, 1: 0.5}, duration_s=1000.0)
    assert dose.clamp_next(0.02) == {0: pytest.approx(25000.0), 1: pytest.approx(25000.0)}
    dose.add_frame(frame(cw(500.0), cw(0.0)), 9.99)  # channel 0 has 0.0005 J/cm² left
    caps = dose.clamp_next(0.02, time_scale=2.0)
    assert caps[0] == pytest.approx(0.0005 * 1000 / 0.04)
    assert caps[1] == pytest.approx(0.5 * 1000 / 0.04)
    dose.add_frame(frame(cw(500.0), cw(500.0)), 10.0)
    assert dose.clamp_next(0.02) == {0: 0.0, 1: 0.0}


def test_clamp_next_uses_the_total_when_it_is_smaller() -> None:
    dose = integrator({0: 1.0, 1: 1.0}, duration_s=1000.0)
    dose.add_frame(frame(cw(0.0), cw(1000.0)), 19.0)  # 1.9 J/cm² on channel 1 (stuck high)
    assert dose.clamp_next(1.0) == {0: pytest.approx(100.0), 1: 0.0}


@pytest.mark.parametrize(("dt_s", "scale"), [(0.0, 1.0), (0.02, 0.0), (-1.0, 1.0)])
def test_clamp_next_rejects_bad_arguments(dt_s: float, scale: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        integrator().clamp_next(dt_s, scale)


@pytest.mark.parametrize(
    ("plan", "duration_s"),
    [({0: 1.0}, 0.0), ({0: 1.0}, float("inf")), ({0: -1.0}, 10.0), ({0: float("nan")}, 10.0)],
)
def test_constructor_validates_the_plan(plan: dict[int, float], duration_s: float) -> None:
    with pytest.raises(ValueError, match="planned"):
        DoseIntegrator(CAL, plan, duration_s)


def test_remaining_j_cm2() -> None:
    dose = integrator({0: 1.0})
    dose.add_frame(frame(cw(250.0)), 10.0)
    assert dose.remaining_j_cm2(0) == pytest.approx(0.75)
    assert dose.remaining_j_cm2(1) == 0.0


@pytest.mark.parametrize(
    ("hz", "duty", "expected"),
    [(0, 100, 1.0), (0, 30, 1.0), (10, 30, 0.3), (300, 100, 1.0), (5, 0, 0.0), (5, 150, 1.0)],
)
def test_duty_fraction(hz: int, duty: int, expected: float) -> None:
    assert duty_fraction(ChannelTelemetry(100.0, hz, duty)) == expected


@pytest.mark.parametrize(
    ("elapsed_s", "ramp_s", "expected"),
    [(-1.0, 60.0, 0.0), (0.0, 60.0, 0.0), (15.0, 60.0, 10.0), (60.0, 60.0, 40.0)],
)
def test_ramp_setpoint(elapsed_s: float, ramp_s: float, expected: float) -> None:
    assert ramp_setpoint(40.0, elapsed_s, ramp_s) == pytest.approx(expected)


def test_no_ramp_is_the_target_at_once() -> None:
    assert ramp_setpoint(40.0, 0.0, 0.0) == 40.0
    assert ramp_setpoint(40.0, 100.0, 60.0) == 40.0


def test_calibration_uncertainty_is_counted_as_extra_dose() -> None:
    """The count is an upper bound: the calibrated fluence times (1 + uncertainty)."""
    dose = DoseIntegrator(CAL, {0: 1.0}, 100.0, uncertainty_fraction=0.0025)
    for _ in range(50):
        dose.add_frame(frame(cw(300.0)), 0.02)  # 30 mW/cm² for 1 s
    assert dose.delivered_j_cm2[0] == pytest.approx(0.030 * 1.0025, rel=1e-9)
    assert dose.elapsed_s == pytest.approx(1.0)  # time is not inflated


@pytest.mark.parametrize("fraction", [-0.001, 0.1, math.nan])
def test_the_uncertainty_must_be_small_and_not_negative(fraction: float) -> None:
    with pytest.raises(ValueError, match="uncertainty"):
        DoseIntegrator(CAL, {0: 1.0}, 100.0, uncertainty_fraction=fraction)


def test_a_channel_the_calibration_does_not_know_is_not_a_crash() -> None:
    """A frame may report more channels than INFO declared: light on one has no
    wavelength to be recorded under (the supervisor trips on it); the others count."""
    dose = integrator()
    dose.add_frame(frame(cw(300.0), cw(0.0), cw(100.0), cw(0.0)), 1.0)
    assert dose.delivered_j_cm2 == {0: pytest.approx(0.030), 1: 0.0}
    assert dose.frame_levels(frame(cw(0.0), cw(0.0), cw(100.0))) == {}
