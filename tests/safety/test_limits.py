"""Hard limits: the compiled-in values, and the checks of profiles and setpoints."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from safety import limits as lim
from safety.limits import HARD, HARD_LIMITS, Limits, LimitViolation, check_profile, check_setpoint


def test_hard_values_are_the_design_table() -> None:
    # DESIGN.md §6, one line per row of the table.
    assert (lim.IRRADIANCE_MIN_MW_CM2, lim.IRRADIANCE_MAX_MW_CM2) == (10.0, 50.0)
    assert lim.COMBINED_IRRADIANCE_MAX_MW_CM2 == 50.0
    assert (lim.IRRADIANCE_TOLERANCE_FRACTION, lim.IRRADIANCE_MISMATCH_TRIP_S) == (0.10, 0.100)
    assert lim.SESSION_MAX_MIN == 30.0
    assert lim.FLUENCE_PER_SESSION_MAX_J_CM2 == 90.0
    assert (lim.MIN_INTERVAL_H, lim.SESSIONS_PER_WEEK_MAX) == (20.0, 7)
    assert (lim.SKIN_TEMP_WARN_C, lim.SKIN_TEMP_STOP_C, lim.BOARD_SKIN_CUTOFF_C) == (40, 41, 43)
    assert lim.BOARD_TEMP_STOP_C == 70.0
    assert (lim.SENSOR_VALID_MIN_C, lim.SENSOR_VALID_MAX_C) == (0.0, 60.0)
    assert lim.SKIN_SENSOR_DISAGREE_MAX_C == 2.0
    assert lim.TEMP_RISE_MAX_C_PER_MIN == 1.0
    assert lim.TELEMETRY_STALE_S == 0.100
    assert lim.LEASE_MAX_MS == 500
    assert (lim.PULSE_HZ_MIN, lim.PULSE_HZ_MAX, lim.DUTY_PCT_MIN, lim.DUTY_PCT_MAX) == (
        1,
        300,
        10,
        100,
    )
    assert lim.CHANNEL_WAVELENGTHS_NM == (810, 850)


def test_hard_limits_record_holds_the_constants_and_is_frozen() -> None:
    assert HARD is HARD_LIMITS
    assert HARD.irradiance_max_mw_cm2 == lim.IRRADIANCE_MAX_MW_CM2
    assert HARD.sessions_per_week_max == lim.SESSIONS_PER_WEEK_MAX
    assert HARD.session_max_s == 1800.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        HARD.irradiance_max_mw_cm2 = 60.0  # type: ignore[misc]
    # The basis makes 90 J/cm² exactly the maximum irradiance for the maximum time.
    assert HARD.irradiance_max_mw_cm2 / 1000 * HARD.session_max_s == pytest.approx(
        HARD.fluence_per_session_max_j_cm2
    )


@dataclass(frozen=True)
class Channel:
    wavelength_nm: int
    irradiance_mw_cm2: float


@dataclass(frozen=True)
class Mode:
    kind: str = "cw"
    pulse_hz: float | None = None
    duty_pct: float | None = None


@dataclass(frozen=True)
class Profile:
    channels: tuple[Channel, ...] = (Channel(810, 22.5), Channel(850, 22.5))
    mode: Mode = field(default_factory=Mode)
    duration_min: float = 30.0
    ramp_s: float = 60.0
    sessions_per_week: int = 3
    min_interval_h: float = 20.0
    skin_temp_stop_c: float | None = None
    planned_fluence_total_j_cm2: float = 88.5

    @property
    def duty_fraction(self) -> float:
        return 1.0 if self.mode.duty_pct is None else self.mode.duty_pct / 100.0


def fields_of(found: list[LimitViolation]) -> list[str]:
    return [v.field for v in found]


def test_a_profile_within_the_limits_has_no_violations() -> None:
    assert check_profile(Profile(), HARD) == []
    pulsed = Profile(mode=Mode("pulsed", 10.0, 50.0), channels=(Channel(810, 45.45),))
    assert check_profile(pulsed, HARD) == []
    assert check_profile(Profile(skin_temp_stop_c=39.0), HARD) == []


@pytest.mark.parametrize("irradiance", [9.9, 45.46, 50.0, -1.0, math.nan])
def test_channel_irradiance_outside_10_to_45_45_is_named_for_a_caregiver(
    irradiance: float,
) -> None:
    profile = Profile(channels=(Channel(810, irradiance),))
    found = check_profile(profile, HARD)
    assert found[0].field == "channels[0].irradiance_mw_cm2"
    assert found[0].rule == (
        "must be between 10 and 45.45 mW/cm² (50 mW/cm² less the ±10 % output tolerance)"
    )
    assert str(found[0]).startswith("channels[0].irradiance_mw_cm2 = ")


def test_the_prescribable_maximum_is_the_hard_maximum_less_the_tolerance() -> None:
    # a healthy board (within ±10 %) at the prescribable maximum measures at most 50
    assert HARD.prescribable_max_mw_cm2 == 45.45
    assert HARD.prescribable_combined_max_mw_cm2 == 45.45
    assert HARD.prescribable_max_mw_cm2 * (1 + HARD.irradiance_tolerance_fraction) <= 50.0
    assert check_profile(Profile(channels=(Channel(810, 45.45),)), HARD) == []
    together = Profile(channels=(Channel(810, 22.73), Channel(850, 22.73)))
    assert [v.value for v in check_profile(together, HARD)] == [45.46]
    site = Limits(irradiance_max_mw_cm2=30.0, irradiance_tolerance_fraction=0.05)
    assert site.prescribable_max_mw_cm2 == 27.27  # rounded down; a narrower tolerance
    assert site.prescribable_combined_max_mw_cm2 == 45.45  # never raises it


def test_wavelength_must_be_one_of_the_pads_and_not_repeated() -> None:
    profile = Profile(channels=(Channel(810, 20.0), Channel(810, 20.0), Channel(905, 5.0)))
    found = check_profile(profile, HARD)
    assert fields_of(found) == [
        "channels[1].wavelength_nm",
        "channels[2].wavelength_nm",
        "channels[2].irradiance_mw_cm2",
    ]


def test_no_channels_is_a_violation() -> None:
    assert fields_of(check_profile(Profile(channels=()), HARD)) == ["channels"]


def test_combined_irradiance_counts_the_duty_cycle() -> None:
    both_cw = Profile(channels=(Channel(810, 30.0), Channel(850, 30.0)))
    found = check_profile(both_cw, HARD)
    assert [(v.field, v.value) for v in found] == [("channels", 60.0)]
    assert "at most 45.45 mW/cm² (50 mW/cm² less the ±10 % output tolerance)" in found[0].rule
    half_duty = dataclasses.replace(both_cw, mode=Mode("pulsed", 10.0, 50.0))
    assert check_profile(half_duty, HARD) == []


@pytest.mark.parametrize(
    ("mode", "fields"),
    [
        (Mode("strobe"), ["mode.kind"]),
        (Mode("pulsed", 0.5, 50.0), ["mode.pulse_hz"]),
        (Mode("pulsed", 301.0, 50.0), ["mode.pulse_hz"]),
        (Mode("pulsed", None, None), ["mode.pulse_hz", "mode.duty_pct"]),
        (Mode("pulsed", 10.0, 9.0), ["mode.duty_pct"]),
        (Mode("pulsed", 300.0, 100.0), []),
    ],
)
def test_pulsing_must_be_1_to_300_hz_at_10_to_100_pct(mode: Mode, fields: list[str]) -> None:
    found = check_profile(Profile(mode=mode), HARD)
    assert fields_of(found) == fields


def test_pulse_rules_read_as_sentences() -> None:
    found = check_profile(Profile(mode=Mode("pulsed", 400.0, 5.0)), HARD)
    assert [v.rule for v in found] == [
        "must be between 1 and 300 Hz",
        "must be between 10 and 100 %",
    ]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"duration_min": 0.0, "ramp_s": 0.0}, ["duration_min"]),
        ({"duration_min": 30.5}, ["duration_min"]),
        ({"ramp_s": -1.0}, ["ramp_s"]),
        ({"duration_min": 1.0, "ramp_s": 61.0}, ["ramp_s"]),
        ({"planned_fluence_total_j_cm2": 90.01}, ["planned_fluence_total_j_cm2"]),
        ({"min_interval_h": 19.9}, ["min_interval_h"]),
        ({"sessions_per_week": 0}, ["sessions_per_week"]),
        ({"sessions_per_week": 8}, ["sessions_per_week"]),
        ({"skin_temp_stop_c": 41.5}, ["skin_temp_stop_c"]),
        ({"skin_temp_stop_c": math.nan}, ["skin_temp_stop_c"]),
    ],
)
def test_session_and_schedule_fields(changes: dict[str, Any], fields: list[str]) -> None:
    profile = dataclasses.replace(Profile(), **changes)
    assert fields_of(check_profile(profile, HARD)) == fields


def test_rules_name_the_limit_in_caregiver_words() -> None:
    profile = Profile(
        duration_min=45.0,
        planned_fluence_total_j_cm2=120.0,
        min_interval_h=12.0,
        sessions_per_week=9,
        skin_temp_stop_c=42.0,
    )
    rules = {v.field: v.rule for v in check_profile(profile, HARD)}
    assert rules == {
        "duration_min": "must be more than 0 and at most 30 min",
        "planned_fluence_total_j_cm2": "the planned dose per session must be at most 90 J/cm²",
        "min_interval_h": "must be at least 20 h",
        "sessions_per_week": "must be between 1 and 7 a week",
        "skin_temp_stop_c": "must be at most 41 °C (the device's own stop)",
    }


def test_a_tightened_site_limit_is_what_the_profile_is_checked_against() -> None:
    site = Limits(irradiance_max_mw_cm2=44.0, sessions_per_week_max=3, min_interval_h=24.0)
    profile = Profile(channels=(Channel(810, 45.0),), sessions_per_week=4)
    found = check_profile(profile, site)
    assert [(v.field, v.rule) for v in found] == [
        (
            "channels[0].irradiance_mw_cm2",
            "must be between 10 and 40 mW/cm² (44 mW/cm² less the ±10 % output tolerance)",
        ),
        ("min_interval_h", "must be at least 24 h"),
        ("sessions_per_week", "must be between 1 and 3 a week"),
    ]


# -- run-time setpoints -------------------------------------------------------------


@pytest.mark.parametrize(
    ("irradiance", "pulse_hz", "duty_pct"),
    [
        ({0: 45.45}, 0, 100),
        ({0: 22.5, 1: 22.5}, 0, 100),
        ({0: 3.0}, 0, 100),  # a ramp passes below the 10 mW/cm² minimum
        ({0: 0.0, 1: 0.0}, 0, 100),
        ({0: 37.5, 1: 37.5}, 300, 60),
        ({}, 1, 10),
    ],
)
def test_setpoints_within_the_limits_pass(
    irradiance: dict[int, float], pulse_hz: int, duty_pct: int
) -> None:
    assert check_setpoint(irradiance, pulse_hz, duty_pct, HARD) is None


@pytest.mark.parametrize(
    ("irradiance", "pulse_hz", "duty_pct", "words"),
    [
        ({2: 10.0}, 0, 100, "channel 2 does not exist"),
        ({-1: 10.0}, 0, 100, "channel -1 does not exist"),
        (
            {1: 45.46},
            0,
            100,
            "channel 1 (850 nm): 45.46 mW/cm² is outside 0–45.45 mW/cm² "
            "(50 mW/cm² less the ±10 % output tolerance)",
        ),
        ({0: -0.1}, 0, 100, "is outside 0–45.45"),
        ({0: math.nan}, 0, 100, "nan mW/cm² is outside"),
        ({0: math.inf}, 0, 100, "inf mW/cm² is outside"),
        ({0: 20.0}, 0, 50, "continuous output needs 100 % duty, not 50 %"),
        ({0: 20.0}, 301, 50, "pulse frequency 301 Hz is outside 1–300 Hz"),
        ({0: 20.0}, -5, 50, "pulse frequency -5 Hz"),
        ({0: 20.0}, 10, 9, "duty cycle 9 % is outside 10–100 %"),
        ({0: 20.0}, 10, 101, "duty cycle 101 %"),
        ({0: 30.0, 1: 30.0}, 0, 100, "combined average irradiance 60 mW/cm² is above 45.45"),
        ({0: 22.73, 1: 22.73}, 0, 100, "combined average irradiance 45.46 mW/cm² is above"),
        ({0: 45.0, 1: 45.0}, 100, 60, "combined average irradiance 54 mW/cm²"),
    ],
)
def test_setpoints_outside_the_limits_are_refused_with_a_reason(
    irradiance: dict[int, float], pulse_hz: int, duty_pct: int, words: str
) -> None:
    problem = check_setpoint(irradiance, pulse_hz, duty_pct, HARD)
    assert problem is not None
    assert words in problem


def test_setpoint_honours_site_tightening() -> None:
    site = Limits(irradiance_max_mw_cm2=33.0, combined_irradiance_max_mw_cm2=44.0)
    assert check_setpoint({0: 30.0}, 0, 100, site) is None
    assert "outside 0–30" in (check_setpoint({0: 31.0}, 0, 100, site) or "")
    assert "above 40" in (check_setpoint({0: 25.0, 1: 25.0}, 0, 100, site) or "")
