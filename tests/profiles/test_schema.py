"""Schema rules, field by field: each valid variant loads, each invalid one gives its line."""

# ruff: noqa: E501  (golden caregiver lines are kept whole, one per row)
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from profiles.loader import load_profile_bytes
from profiles.schema import MIN_INTERVAL_MAX_H, Mode, Profile, json_schema

PULSED = 'kind = "pulsed"\npulse_hz = 10\nduty_pct = 50'

VALID_VARIANTS = {
    "float irradiance": ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 40.5"),
    "850 nm": ("wavelength_nm = 810", "wavelength_nm = 850"),
    "pulsed": ('kind = "cw"', PULSED),
    "no ramp": ("ramp_s = 30", "ramp_s = 0"),
    "no window": ('[window]\nstart = "18:00"\nend = "23:00"\n', ""),
    "window over midnight": ('end = "23:00"', 'end = "01:00"'),
    "skin stop": ("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 39.5"),
    "fractional interval": ("min_interval_h = 20", "min_interval_h = 20.5"),
}

INVALID_VARIANTS = {
    "schema version": ("schema_version = 1", "schema_version = 2", "schema_version = 2: must be 1 (line 13)"),
    "id with spaces": ('id = "rls-810-standard"', 'id = "RLS 810"', 'id = "RLS 810": must be lowercase letters and digits with single dashes, like rls-810-standard (line 14)'),
    "empty name": ('name = "RLS standard, 810 nm"', 'name = ""', 'name = "": must not be empty (line 15)'),
    "prescriber number": ('prescriber = "nirpad built-in (demo default)"', "prescriber = 7", "prescriber = 7: must be text in double quotes (line 16)"),
    "issued as text": ("issued = 2026-01-01", 'issued = "2026-01-01"', 'issued = "2026-01-01": must be a date like 2026-11-01, without quotes (line 17)'),
    "issued with time": ("issued = 2026-01-01", "issued = 2026-01-01T08:00:00", "issued = 2026-01-01T08:00:00: must be a date like 2026-11-01, no time (line 17)"),
    "expires before issued": ("expires = 2028-01-01", "expires = 2025-01-01", "expires = 2025-01-01: must be after issued (line 18)"),
    "duration as text": ("duration_min = 30", 'duration_min = "30"', 'duration_min = "30": must be a whole number, without quotes (line 20)'),
    "duration fraction": ("duration_min = 30", "duration_min = 29.5", "duration_min = 29.5: must be a whole number, without a decimal point (line 20)"),
    "duration zero": ("duration_min = 30", "duration_min = 0", "duration_min = 0: must be more than 0 min (line 20)"),
    "negative ramp": ("ramp_s = 30", "ramp_s = -1", "ramp_s = -1: must be at least 0 s (line 21)"),
    "ramp too long": ("duration_min = 30\nramp_s = 30", "duration_min = 5\nramp_s = 300", "ramp_s = 300: must be shorter than the session (line 21)"),
    "ramp over ten minutes": ("ramp_s = 30", "ramp_s = 1800", "ramp_s = 1800: must be at most 600 s (line 21)"),
    "ramp inf": ("ramp_s = 30", "ramp_s = inf", "ramp_s = inf: must be a real number, not nan or inf (line 21)"),
    "sessions bool": ("sessions_per_week = 3", "sessions_per_week = true", "sessions_per_week = true: must be a whole number, not true or false (line 22)"),
    "sessions zero": ("sessions_per_week = 3", "sessions_per_week = 0", "sessions_per_week = 0: must be more than 0 (line 22)"),
    "interval negative": ("min_interval_h = 20", "min_interval_h = -20", "min_interval_h = -20: must be at least 0 h (line 23)"),
    "course zero": ("course_weeks = 4", "course_weeks = 0", "course_weeks = 0: must be more than 0 weeks (line 24)"),
    "940 nm": ("wavelength_nm = 810", "wavelength_nm = 940", "channels[0].wavelength_nm = 940: must be 810 or 850 nm (line 27)"),
    "zero irradiance": ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 0", "channels[0].irradiance_mw_cm2 = 0: must be more than 0 mW/cm² (line 28)"),
    "irradiance text": ("irradiance_mw_cm2 = 40", 'irradiance_mw_cm2 = "40"', 'channels[0].irradiance_mw_cm2 = "40": must be a number mW/cm², without quotes (line 28)'),
    "kind laser": ('kind = "cw"', 'kind = "laser"', 'mode.kind = "laser": must be "cw" or "pulsed" (line 31)'),
    "cw with pulse": ('kind = "cw"', 'kind = "cw"\npulse_hz = 10', 'mode.pulse_hz = 10: is only allowed when kind = "pulsed" (line 32)'),
    "pulsed without duty": ('kind = "cw"', 'kind = "pulsed"\npulse_hz = 10', 'mode.duty_pct: is required when kind = "pulsed" (line 30)'),
    "duty over 100": ('kind = "cw"', 'kind = "pulsed"\npulse_hz = 10\nduty_pct = 120', "mode.duty_pct = 120: must be at most 100 % (line 33)"),
    "window 6pm": ('start = "18:00"', 'start = "6pm"', 'window.start = "6pm": must be a 24-hour time in quotes, like "19:00" (line 34)'),
    "window 24:00": ('end = "23:00"', 'end = "24:00"', 'window.end = "24:00": must be a 24-hour time in quotes, like "19:00" (line 35)'),
    "empty window": ('end = "23:00"', 'end = "18:00"', 'window.end = "18:00": must differ from start (line 35)'),
    "skin stop zero": ("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 0", "skin_temp_stop_c = 0: must be at least 35 °C (line 25)"),
    "misspelt in table": ('kind = "cw"', 'knd = "cw"', 'mode.knd: unknown field — did you mean "kind"? (line 31)'),
    "unknown in table": ('kind = "cw"', 'kind = "cw"\ncolour = "red"', "mode.colour: unknown field; allowed here: duty_pct, kind, pulse_hz (line 32)"),
    "mode as text": ('[mode]\nkind = "cw"', 'mode = "cw"', "channels[0].mode: unknown field; allowed here: irradiance_mw_cm2, wavelength_nm (line 30)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(VALID_VARIANTS))
def test_valid_variant_loads(case: str, base_text: str) -> None:
    old, new = VALID_VARIANTS[case]
    assert old in base_text
    result = load_profile_bytes(base_text.replace(old, new).encode(), "rx.toml")
    assert result.problems == []
    assert result.profile is not None


@pytest.mark.parametrize("case", sorted(INVALID_VARIANTS))
def test_invalid_variant_gives_its_line(case: str, base_text: str) -> None:
    old, new, expected = INVALID_VARIANTS[case]
    assert old in base_text
    result = load_profile_bytes(base_text.replace(old, new).encode(), "rx.toml")
    assert result.profile is None
    assert expected in [str(p) for p in result.problems]


def test_two_channels_must_differ(base_text: str) -> None:
    text = base_text.replace(
        "[mode]", "[[channels]]\nwavelength_nm = 810\nirradiance_mw_cm2 = 10\n\n[mode]"
    )
    problems = [str(p) for p in load_profile_bytes(text.encode(), "x").problems]
    assert problems == ["channels[1].wavelength_nm = 810: is already used by channels[0] (line 31)"]


def test_three_channels_refused(base_text: str) -> None:
    extra = "[[channels]]\nwavelength_nm = 850\nirradiance_mw_cm2 = 10\n\n"
    text = base_text.replace("[mode]", extra * 2 + "[mode]")
    problems = [str(p) for p in load_profile_bytes(text.encode(), "x").problems]
    assert problems == ["channels: must have at most 2 entries (line 26)"]


def test_missing_fields_listed_each(base_text: str) -> None:
    text = base_text.replace("duration_min = 30\n", "").replace("course_weeks = 4\n", "")
    problems = [str(p) for p in load_profile_bytes(text.encode(), "x").problems]
    assert problems == [
        "duration_min: is missing (session length in minutes)",
        "course_weeks: is missing (length of the course in weeks)",
    ]


def test_computed_fluence(base_text: str) -> None:
    profile = load_profile_bytes(base_text.encode(), "x").profile
    assert profile is not None
    assert profile.duration_s == 1800.0
    assert profile.duty_fraction == 1.0
    assert profile.planned_fluence_j_cm2 == {810: pytest.approx(40 * (1800 - 15) / 1000)}
    assert profile.planned_fluence_total_j_cm2 == pytest.approx(71.4)


def test_pulsed_fluence_counts_duty(base_text: str) -> None:
    text = base_text.replace('kind = "cw"', PULSED).replace("ramp_s = 30", "ramp_s = 0")
    profile = load_profile_bytes(text.encode(), "x").profile
    assert profile is not None
    assert profile.duty_fraction == 0.5
    assert profile.planned_fluence_total_j_cm2 == pytest.approx(40 * 0.5 * 1800 / 1000)


def test_validity_dates(base_text: str) -> None:
    profile = load_profile_bytes(base_text.encode(), "x").profile
    assert profile is not None
    assert profile.is_valid_on(dt.date(2026, 1, 1))
    assert profile.is_valid_on(dt.date(2027, 12, 31))
    assert not profile.is_valid_on(dt.date(2028, 1, 1))
    assert not profile.is_valid_on(dt.date(2025, 12, 31))
    assert profile.validity_problem(dt.date(2027, 6, 1)) is None
    assert (
        profile.validity_problem(dt.date(2028, 1, 2)) == "This prescription expired on 2028-01-01."
    )
    assert (
        profile.validity_problem(dt.date(2025, 6, 1))
        == "This prescription is not valid before 2026-01-01."
    )


def test_not_yet_valid_refused_when_today_given(base_text: str) -> None:
    result = load_profile_bytes(base_text.encode(), "x", today=dt.date(2025, 6, 1))
    assert [str(p) for p in result.problems] == [
        "issued = 2026-01-01: this prescription is not valid before 2026-01-01 (line 17)"
    ]


def test_models_are_frozen_and_strict(base_text: str) -> None:
    profile = load_profile_bytes(base_text.encode(), "x").profile
    assert profile is not None
    with pytest.raises(ValidationError):
        profile.duration_min = 10  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Mode.model_validate({"kind": "pulsed", "pulse_hz": "10", "duty_pct": 50})
    for model in (Profile, Mode):
        config = model.model_config
        assert (
            config.get("strict") and config.get("frozen") and config.get("allow_inf_nan") is False
        )
        assert config.get("extra") == "forbid"


def test_json_schema_names_every_field() -> None:
    schema = json_schema()
    assert set(schema["required"]) >= {"schema_version", "channels", "mode", "duration_min"}
    assert "signature" in schema["properties"]


def test_the_interval_bound_is_the_named_constant(base_text: str) -> None:
    """``MIN_INTERVAL_MAX_H`` is the schema's bound; the site limits use it too."""
    assert json_schema()["properties"]["min_interval_h"]["maximum"] == MIN_INTERVAL_MAX_H == 168
    text = base_text.replace("min_interval_h = 20", "min_interval_h = 168.5")
    assert [str(p) for p in load_profile_bytes(text.encode(), "x").problems] == [
        "min_interval_h = 168.5: must be at most 168 h (line 23)"
    ]


@pytest.mark.usefixtures("new_york")
def test_the_course_ends_on_the_patients_local_date(base_text: str) -> None:
    """A one-week course from an evening session at 18:30 EDT on 13 October (22:30 UTC):
    its last evening is 19 October, also after 20:00 EDT, when the UTC date is the 20th."""
    text = base_text.replace("course_weeks = 4", "course_weeks = 1")
    profile = load_profile_bytes(text.encode(), "x").profile
    assert profile is not None
    first = dt.datetime(2026, 10, 13, 22, 30, tzinfo=dt.UTC)
    last_evening = dt.datetime(2026, 10, 20, 0, 30, tzinfo=dt.UTC)  # 20:30 EDT, 19 October
    assert profile.course_problem_at(first, last_evening) is None
    next_day = dt.datetime(2026, 10, 20, 4, 30, tzinfo=dt.UTC)  # 00:30 EDT, 20 October
    problem = profile.course_problem_at(first, next_day)
    assert problem is not None and "(2026-10-13) ended on 2026-10-20" in problem
