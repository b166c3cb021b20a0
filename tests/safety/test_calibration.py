"""Tests of safety.calibration: interpolation both ways, no extrapolation, self-test."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocol.messages import CalibrationPoint, ChannelCalibration, Info
from safety.calibration import Calibration, CalibrationError
from safety.errors import SafetyError

CH810 = ChannelCalibration(
    810,
    550.0,
    tuple(
        CalibrationPoint(c, i)
        for c, i in [(0, 0), (100, 12), (200, 23), (300, 33), (400, 42), (500, 50)]
    ),
)
CH850 = ChannelCalibration(
    850,
    600.0,
    tuple(CalibrationPoint(c, i) for c, i in [(0, 0), (100, 11), (250, 26), (450, 44), (600, 52)]),
)


def cal(*channels: ChannelCalibration) -> Calibration:
    return Calibration(channels or (CH810, CH850))


def points(*pairs: tuple[float, float]) -> tuple[CalibrationPoint, ...]:
    return tuple(CalibrationPoint(c, i) for c, i in pairs)


def test_interpolates_at_and_between_points() -> None:
    c = cal()
    assert c.irradiance_mw_cm2(0, 0.0) == 0.0
    assert c.irradiance_mw_cm2(0, 100.0) == pytest.approx(12.0)
    assert c.irradiance_mw_cm2(0, 150.0) == pytest.approx(17.5)
    assert c.irradiance_mw_cm2(0, 500.0) == pytest.approx(50.0)
    assert c.irradiance_mw_cm2(1, 350.0) == pytest.approx(35.0)
    assert c.current_ma(0, 17.5) == pytest.approx(150.0)
    assert c.current_ma(1, 52.0) == pytest.approx(600.0)
    assert c.current_ma(1, 0.0) == 0.0


@settings(max_examples=150, deadline=None)
@given(channel=st.sampled_from([0, 1]), fraction=st.floats(0.0, 1.0))
def test_round_trip_is_identity(channel: int, fraction: float) -> None:
    c = cal()
    top = c.channels[channel].points[-1].current_ma
    current = fraction * top
    assert c.current_ma(channel, c.irradiance_mw_cm2(channel, current)) == pytest.approx(
        current, abs=1e-9
    )


@settings(max_examples=100, deadline=None)
@given(a=st.floats(0.0, 500.0), b=st.floats(0.0, 500.0))
def test_monotonic(a: float, b: float) -> None:
    c = cal()
    lo, hi = sorted((a, b))
    assert c.irradiance_mw_cm2(0, lo) <= c.irradiance_mw_cm2(0, hi)


@pytest.mark.parametrize(
    ("call", "value"),
    [("irradiance_mw_cm2", 500.1), ("irradiance_mw_cm2", -0.1), ("current_ma", 50.01)],
)
def test_refuses_extrapolation(call: str, value: float) -> None:
    with pytest.raises(CalibrationError) as info:
        getattr(cal(), call)(0, value)
    assert isinstance(info.value, SafetyError)
    assert info.value.channel == 0
    assert info.value.value == value
    assert "outside the calibrated" in str(info.value)


def test_current_refuses_negative_irradiance() -> None:
    with pytest.raises(CalibrationError):
        cal().current_ma(1, -1.0)


@pytest.mark.parametrize("channel", [-1, 2])
def test_unknown_channel_raises(channel: int) -> None:
    with pytest.raises(CalibrationError, match=f"channel {channel}"):
        cal().irradiance_mw_cm2(channel, 10.0)


def test_single_point_table_cannot_convert() -> None:
    c = cal(replace(CH810, points=points((0, 0))), CH850)
    with pytest.raises(CalibrationError):
        c.current_ma(0, 0.0)


def test_upper_bound_inside_table_is_the_interpolation() -> None:
    c = cal()
    assert c.irradiance_upper_bound_mw_cm2(0, 250.0) == c.irradiance_mw_cm2(0, 250.0)
    assert c.irradiance_upper_bound_mw_cm2(0, -0.5) == 0.0


def test_upper_bound_above_table_over_estimates_proportionally() -> None:
    c = cal()
    assert c.irradiance_upper_bound_mw_cm2(0, 600.0) == pytest.approx(50.0 * 600 / 500)
    assert c.irradiance_upper_bound_mw_cm2(0, 600.0) > 50.0


def test_upper_bound_refuses_a_table_ending_at_zero() -> None:
    c = cal(replace(CH810, points=points((-1, 0), (0, 5))), CH850)
    with pytest.raises(CalibrationError, match="ends at"):
        c.irradiance_upper_bound_mw_cm2(0, 1.0)


def test_channel_for_wavelength() -> None:
    c = cal()
    assert c.channel_for_wavelength(810) == 0
    assert c.channel_for_wavelength(850) == 1
    assert cal(CH850, CH810).channel_for_wavelength(810) == 1
    with pytest.raises(CalibrationError, match="no 905 nm"):
        c.channel_for_wavelength(905)


def test_max_irradiance_is_capped_by_max_current() -> None:
    c = cal()
    assert c.max_irradiance_mw_cm2(0) == pytest.approx(50.0)  # table ends below 550 mA
    capped = cal(replace(CH810, max_current_ma=450.0), CH850)
    assert capped.max_irradiance_mw_cm2(0) == pytest.approx(46.0)


def test_from_info() -> None:
    info = Info(1, 1, (1, 0, 0), True, 1.0, "SIM", (CH810, CH850), 0)
    assert Calibration.from_info(info).channels == (CH810, CH850)


def test_sane_table_passes() -> None:
    assert cal().sanity_problem() is None


@pytest.mark.parametrize(
    ("channels", "needle"),
    [
        ((CH810,), "850 nm channel exactly once"),
        ((CH810, CH850, CH850), "850 nm channel exactly once"),
        ((CH850,), "810 nm channel exactly once"),
        (
            (CH810, CH850, replace(CH810, wavelength_nm=905), replace(CH850, wavelength_nm=905)),
            "905 nm channel more than once",
        ),
        ((replace(CH810, points=points((0, 0))), CH850), "at least two points"),
        ((replace(CH810, points=points((0, 0), (math.nan, 50))), CH850), "finite"),
        ((replace(CH810, max_current_ma=math.inf), CH850), "finite"),
        ((replace(CH810, points=points((10, 0), (500, 50))), CH850), "start at 0 mA"),
        ((replace(CH810, points=points((0, 1), (500, 50))), CH850), "start at 0 mA"),
        ((replace(CH810, points=points((0, 0), (0, 5), (500, 50))), CH850), "currents"),
        ((replace(CH810, points=points((0, 0), (9, 5), (8, 50))), CH850), "currents"),
        ((replace(CH810, points=points((0, 0), (9, 5), (500, 5))), CH850), "irradiances"),
        ((replace(CH810, points=points((0, 0), (500, 49.9))), CH850), "stops at 49.9"),
        ((replace(CH810, max_current_ma=499.0), CH850), "above the board's maximum"),
    ],
)
def test_sanity_problems(channels: tuple[ChannelCalibration, ...], needle: str) -> None:
    problem = cal(*channels).sanity_problem()
    assert problem is not None
    assert needle in problem


def test_sanity_problem_names_the_channel() -> None:
    problem = cal(CH850, replace(CH810, max_current_ma=10.0)).sanity_problem()
    assert problem is not None
    assert problem.startswith("channel 1 (810 nm)")


def test_sanity_threshold_is_a_parameter() -> None:
    assert cal().sanity_problem(required_mw_cm2=52.0) is not None
    assert cal().sanity_problem(required_mw_cm2=40.0) is None


def test_degenerate_table_interpolation_stays_finite() -> None:
    c = cal(replace(CH810, points=points((0, 0), (500, 40), (500, 50))), CH850)
    assert c.irradiance_mw_cm2(0, 500.0) == 50.0
    assert c.irradiance_mw_cm2(0, 250.0) == 20.0
