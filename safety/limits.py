"""Hard limits of the device, the site tightening file, and the checks against them.

Owns: every limit of DESIGN.md §6 as a compiled-in ``Final`` value (units in the name,
basis in the comment), the ``Limits`` record of effective values, reading a site's
``[limits]`` table (tighten only), and the pure checks of a prescription
(``check_profile``) and of a run-time setpoint (``check_setpoint``).

Does not own: acting on a violation (``interlock`` refuses and latches, ``supervisor``
watches telemetry, ``profiles`` shows the problems to a caregiver), other tables of the
site file (``[signing]`` and friends), or the profile schema itself: a profile is read
only through the attribute names of docs/architecture.md (``ProfileLike``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

__all__ = [
    "CHANNEL_WAVELENGTHS_NM",
    "HARD",
    "HARD_LIMITS",
    "LimitViolation",
    "Limits",
    "ProfileLike",
    "check_profile",
    "check_setpoint",
    "load_site_limits",
]

log = logging.getLogger(__name__)

# fmt: off
# Irradiance per active channel: the product range given for this device class.
IRRADIANCE_MIN_MW_CM2: Final[float] = 10.0
IRRADIANCE_MAX_MW_CM2: Final[float] = 50.0
# 810 + 850 combined (average): IEC 62471 sums IR-A; keeps the pad out of risk group 2.
COMBINED_IRRADIANCE_MAX_MW_CM2: Final[float] = 50.0
# Commanded vs measured irradiance: ±10 %, tripping after 100 ms (accuracy, LED open/short).
# A prescription (and every run-time command) stays at or below each maximum divided by
# 1 + this tolerance (45.45 of 50 mW/cm²), so a healthy board at the tolerance's edge
# measures at most the maximum, and measured light above it is a fault (docs/hazards.md).
IRRADIANCE_TOLERANCE_FRACTION: Final[float] = 0.10
IRRADIANCE_MISMATCH_TRIP_S: Final[float] = 0.100
# Session length with auto-off: RLS studies used 30 min; cleared home devices stop at 30.
SESSION_MAX_MIN: Final[float] = 30.0
# Fluence per session, from average irradiance: 50 mW/cm² × 1800 s.
FLUENCE_PER_SESSION_MAX_J_CM2: Final[float] = 90.0
# Sessions ≥ 20 h apart and ≤ 7 in any rolling week: studies used 3 a week, none more.
MIN_INTERVAL_H: Final[float] = 20.0
SESSIONS_PER_WEEK_MAX: Final[int] = 7
# Skin contact: IEC 60601-1 Table 24 (43 °C for ≥ 10 min contact); 41 °C disclosure level.
SKIN_TEMP_WARN_C: Final[float] = 40.0
SKIN_TEMP_STOP_C: Final[float] = 41.0
BOARD_SKIN_CUTOFF_C: Final[float] = 43.0   # the board's own cutoff; the host cannot move it
# Board electronics: the board's own thermal cutoff (DESIGN §4). The host stops earlier,
# at 60 °C (``SupervisorSettings.board_stop_c``); this is the ceiling a site cannot raise.
BOARD_TEMP_STOP_C: Final[float] = 70.0
# Temperature sensors: open/short (0–60 °C), detachment (2 °C apart), runaway (1 °C/min).
SENSOR_VALID_MIN_C: Final[float] = 0.0
SENSOR_VALID_MAX_C: Final[float] = 60.0
SKIN_SENSOR_DISAGREE_MAX_C: Final[float] = 2.0
TEMP_RISE_MAX_C_PER_MIN: Final[float] = 1.0
# Telemetry stale after 100 ms (5 frames at 50 Hz): the host must see what it drives.
TELEMETRY_STALE_S: Final[float] = 0.100
CALIBRATION_UNCERTAINTY_FRACTION: Final = 0.0025
"""Bound on the board's calibration error (irradiance per measured current), ±0.25 %.

The host cannot see an error of the calibration itself, so the dose it counts is the
calibrated fluence times (1 + this bound): the ledger may over-count, never under-count,
and the delivered dose stays within -0.5 % .. 0 % of the plan. A board whose
calibration certificate does not meet this bound must not be used with this host.
"""
# Lease ≤ 500 ms: a crashed host leaves the LEDs dark within half a second.
LEASE_MAX_MS: Final[int] = 500
# Pulsing: CW, or 1–300 Hz at 10–100 % duty (pulsed PBM practice; dose from the average).
PULSE_HZ_MIN: Final[int] = 1
PULSE_HZ_MAX: Final[int] = 300
DUTY_PCT_MIN: Final[int] = 10
DUTY_PCT_MAX: Final[int] = 100
# The pad's channels, by index (docs/architecture.md: 0 is 810 nm, 1 is 850 nm).
CHANNEL_WAVELENGTHS_NM: Final[tuple[int, ...]] = (810, 850)
# fmt: on


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective limits: the hard values, possibly tightened by the site."""

    irradiance_min_mw_cm2: float = IRRADIANCE_MIN_MW_CM2
    irradiance_max_mw_cm2: float = IRRADIANCE_MAX_MW_CM2
    combined_irradiance_max_mw_cm2: float = COMBINED_IRRADIANCE_MAX_MW_CM2
    irradiance_tolerance_fraction: float = IRRADIANCE_TOLERANCE_FRACTION
    irradiance_mismatch_trip_s: float = IRRADIANCE_MISMATCH_TRIP_S
    session_max_min: float = SESSION_MAX_MIN
    fluence_per_session_max_j_cm2: float = FLUENCE_PER_SESSION_MAX_J_CM2
    min_interval_h: float = MIN_INTERVAL_H
    sessions_per_week_max: int = SESSIONS_PER_WEEK_MAX
    skin_temp_warn_c: float = SKIN_TEMP_WARN_C
    skin_temp_stop_c: float = SKIN_TEMP_STOP_C
    board_temp_stop_c: float = BOARD_TEMP_STOP_C
    sensor_valid_min_c: float = SENSOR_VALID_MIN_C
    sensor_valid_max_c: float = SENSOR_VALID_MAX_C
    skin_sensor_disagree_max_c: float = SKIN_SENSOR_DISAGREE_MAX_C
    temp_rise_max_c_per_min: float = TEMP_RISE_MAX_C_PER_MIN
    telemetry_stale_s: float = TELEMETRY_STALE_S
    lease_max_ms: int = LEASE_MAX_MS
    pulse_hz_min: int = PULSE_HZ_MIN
    pulse_hz_max: int = PULSE_HZ_MAX
    duty_pct_min: int = DUTY_PCT_MIN
    duty_pct_max: int = DUTY_PCT_MAX

    @property
    def session_max_s(self) -> float:
        return self.session_max_min * 60.0

    @property
    def prescribable_max_mw_cm2(self) -> float:
        """The highest irradiance per channel a prescription or command may ask for.

        A site's lower maximum lowers it; a site's narrower tolerance does not raise it.
        """
        return _less_tolerance(self.irradiance_max_mw_cm2)

    @property
    def prescribable_combined_max_mw_cm2(self) -> float:
        """The highest combined average irradiance a prescription or command may ask for."""
        return _less_tolerance(self.combined_irradiance_max_mw_cm2)


def _less_tolerance(maximum: float) -> float:
    """``maximum / (1 + the hard tolerance)``, rounded down to 0.01 (the rule shows what
    is checked). A board within the tolerance then emits at most ``maximum``: 50 → 45.45.
    """
    return math.floor(maximum / (1.0 + IRRADIANCE_TOLERANCE_FRACTION) * 100.0 + 1e-9) / 100.0


HARD_LIMITS: Final[Limits] = Limits()
HARD: Final[Limits] = HARD_LIMITS  # the name docs/architecture.md uses


def _num(value: float) -> str:
    """A number as a person writes it: 10, 0.1, 41.5."""
    return f"{value:g}"


def load_site_limits(path: Path | None) -> Limits:
    """The hard limits tightened by the ``[limits]`` table of the site file at ``path``.

    ``None``, or a file without a ``[limits]`` table, gives ``HARD_LIMITS``. Anything
    unreadable, unknown, mistyped, non-finite or looser than the hard value raises
    ``SiteLimitsError`` (a ``LimitError``) whose message a person can act on. The file
    handling lives in ``safety.site_limits`` (imported here lazily: it builds on this
    module).
    """
    if path is None:
        return HARD_LIMITS
    from safety.site_limits import read_site_limits

    return read_site_limits(path)


@dataclass(frozen=True, slots=True)
class LimitViolation:
    """One way a profile breaks the limits: where, what it asks, and the rule in words."""

    field: str
    value: object
    rule: str

    def __str__(self) -> str:
        return f"{self.field} = {self.value}: {self.rule}"


class ChannelLike(Protocol):
    @property
    def wavelength_nm(self) -> int: ...
    @property
    def irradiance_mw_cm2(self) -> float: ...


class ModeLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def pulse_hz(self) -> float | None: ...
    @property
    def duty_pct(self) -> float | None: ...


class ProfileLike(Protocol):
    """What the limits read of a prescription (``profiles.schema.Profile`` fits)."""

    @property
    def channels(self) -> Sequence[ChannelLike]: ...
    @property
    def mode(self) -> ModeLike: ...
    @property
    def duration_min(self) -> float: ...
    @property
    def ramp_s(self) -> float: ...
    @property
    def sessions_per_week(self) -> int: ...
    @property
    def min_interval_h(self) -> float: ...
    @property
    def skin_temp_stop_c(self) -> float | None: ...
    @property
    def duty_fraction(self) -> float: ...
    @property
    def planned_fluence_total_j_cm2(self) -> float: ...


def _between(value: float | None, low: float, high: float) -> bool:
    """``low <= value <= high``; ``None`` and NaN are never in range."""
    return value is not None and low <= value <= high


def _range_rule(low: float, high: float, unit: str) -> str:
    return f"must be between {_num(low)} and {_num(high)}{unit}"


def _less_tolerance_words(maximum: float) -> str:
    """Why the top of a range is below the maximum, for a caregiver."""
    tolerance_pct = _num(IRRADIANCE_TOLERANCE_FRACTION * 100)
    return f"({_num(maximum)} mW/cm² less the ±{tolerance_pct} % output tolerance)"


def check_profile(profile: ProfileLike, limits: Limits) -> list[LimitViolation]:
    """Every way ``profile`` breaks ``limits``; an empty list means it may be installed.

    Field paths match the profile's TOML (``channels[0].irradiance_mw_cm2``,
    ``mode.pulse_hz``); each rule is a sentence for a caregiver.
    """
    found = _check_channels(profile, limits)
    found += _check_mode(profile.mode, limits)
    found += _check_session(profile, limits)
    found += _check_schedule(profile, limits)
    stop_c = profile.skin_temp_stop_c
    if stop_c is not None and not _between(
        stop_c, limits.sensor_valid_min_c, limits.skin_temp_stop_c
    ):
        rule = f"must be at most {_num(limits.skin_temp_stop_c)} °C (the device's own stop)"
        found.append(LimitViolation("skin_temp_stop_c", stop_c, rule))
    return found


def _check_channels(profile: ProfileLike, limits: Limits) -> list[LimitViolation]:
    found: list[LimitViolation] = []
    if not profile.channels:
        found.append(LimitViolation("channels", [], "must list at least one channel"))
    seen: set[int] = set()
    low, high = limits.irradiance_min_mw_cm2, limits.prescribable_max_mw_cm2
    why_high = _less_tolerance_words(limits.irradiance_max_mw_cm2)
    for i, channel in enumerate(profile.channels):
        wavelength_nm = channel.wavelength_nm
        if wavelength_nm not in CHANNEL_WAVELENGTHS_NM or wavelength_nm in seen:
            rule = "must be 810 or 850 nm, each at most once"
            found.append(LimitViolation(f"channels[{i}].wavelength_nm", wavelength_nm, rule))
        seen.add(wavelength_nm)
        if not _between(channel.irradiance_mw_cm2, low, high):
            rule = f"{_range_rule(low, high, ' mW/cm²')} {why_high}"
            found.append(
                LimitViolation(f"channels[{i}].irradiance_mw_cm2", channel.irradiance_mw_cm2, rule)
            )
    combined = sum(c.irradiance_mw_cm2 for c in profile.channels) * profile.duty_fraction
    if not _between(combined, 0.0, limits.prescribable_combined_max_mw_cm2):
        rule = (
            f"the channels together (sum × duty cycle) must be at most "
            f"{_num(limits.prescribable_combined_max_mw_cm2)} mW/cm² "
            f"{_less_tolerance_words(limits.combined_irradiance_max_mw_cm2)}"
        )
        found.append(LimitViolation("channels", round(combined, 3), rule))
    return found


def _check_mode(mode: ModeLike, limits: Limits) -> list[LimitViolation]:
    if mode.kind == "cw":
        return []
    if mode.kind != "pulsed":
        return [LimitViolation("mode.kind", mode.kind, "must be cw or pulsed")]
    found: list[LimitViolation] = []
    if not _between(mode.pulse_hz, limits.pulse_hz_min, limits.pulse_hz_max):
        rule = _range_rule(limits.pulse_hz_min, limits.pulse_hz_max, " Hz")
        found.append(LimitViolation("mode.pulse_hz", mode.pulse_hz, rule))
    if not _between(mode.duty_pct, limits.duty_pct_min, limits.duty_pct_max):
        rule = _range_rule(limits.duty_pct_min, limits.duty_pct_max, " %")
        found.append(LimitViolation("mode.duty_pct", mode.duty_pct, rule))
    return found


def _check_session(profile: ProfileLike, limits: Limits) -> list[LimitViolation]:
    found: list[LimitViolation] = []
    duration_min = profile.duration_min
    if not _between(duration_min, 0.0, limits.session_max_min) or duration_min == 0:
        rule = f"must be more than 0 and at most {_num(limits.session_max_min)} min"
        found.append(LimitViolation("duration_min", duration_min, rule))
    if not _between(profile.ramp_s, 0.0, duration_min * 60.0):
        rule = f"must be between 0 s and the session length ({_num(duration_min * 60.0)} s)"
        found.append(LimitViolation("ramp_s", profile.ramp_s, rule))
    planned = profile.planned_fluence_total_j_cm2
    if not _between(planned, 0.0, limits.fluence_per_session_max_j_cm2):
        rule = (
            f"the planned dose per session must be at most "
            f"{_num(limits.fluence_per_session_max_j_cm2)} J/cm²"
        )
        found.append(LimitViolation("planned_fluence_total_j_cm2", round(planned, 3), rule))
    return found


def _check_schedule(profile: ProfileLike, limits: Limits) -> list[LimitViolation]:
    found: list[LimitViolation] = []
    if not _between(profile.min_interval_h, limits.min_interval_h, float("inf")):
        rule = f"must be at least {_num(limits.min_interval_h)} h"
        found.append(LimitViolation("min_interval_h", profile.min_interval_h, rule))
    if not _between(profile.sessions_per_week, 1, limits.sessions_per_week_max):
        rule = _range_rule(1, limits.sessions_per_week_max, " a week")
        found.append(LimitViolation("sessions_per_week", profile.sessions_per_week, rule))
    return found


def check_setpoint(
    irradiance_by_channel_mw_cm2: Mapping[int, float],
    pulse_hz: int,
    duty_pct: int,
    limits: Limits,
) -> str | None:
    """Why a run-time output command breaks ``limits``, or None if it is within them.

    ``pulse_hz == 0`` means continuous wave (duty must then be 100 %). The maxima are
    the prescribable ones (the hard maxima less the output tolerance), as at install. The
    per-channel minimum is not enforced here: a ramp passes through lower values, and 0
    is off. The session's own plan is the interlock's business.
    """
    channel_max = limits.prescribable_max_mw_cm2
    for channel, irradiance_mw_cm2 in sorted(irradiance_by_channel_mw_cm2.items()):
        if channel not in range(len(CHANNEL_WAVELENGTHS_NM)):
            return f"channel {channel} does not exist (the pad has channels 0 and 1)"
        if not _between(irradiance_mw_cm2, 0.0, channel_max):
            return (
                f"channel {channel} ({CHANNEL_WAVELENGTHS_NM[channel]} nm): "
                f"{_num(irradiance_mw_cm2)} mW/cm² is outside 0–{_num(channel_max)} mW/cm² "
                f"{_less_tolerance_words(limits.irradiance_max_mw_cm2)}"
            )
    pulsing = _pulsing_problem(pulse_hz, duty_pct, limits)
    if pulsing is not None:
        return pulsing
    combined = sum(irradiance_by_channel_mw_cm2.values()) * duty_pct / 100.0
    if combined > limits.prescribable_combined_max_mw_cm2:
        return (
            f"combined average irradiance {_num(round(combined, 3))} mW/cm² is above "
            f"{_num(limits.prescribable_combined_max_mw_cm2)} mW/cm² "
            f"{_less_tolerance_words(limits.combined_irradiance_max_mw_cm2)}"
        )
    return None


def _pulsing_problem(pulse_hz: int, duty_pct: int, limits: Limits) -> str | None:
    if pulse_hz == 0:
        if duty_pct != 100:
            return f"continuous output needs 100 % duty, not {_num(duty_pct)} %"
        return None
    if not _between(pulse_hz, limits.pulse_hz_min, limits.pulse_hz_max):
        allowed_hz = f"{limits.pulse_hz_min}–{limits.pulse_hz_max} Hz"
        return f"pulse frequency {_num(pulse_hz)} Hz is outside {allowed_hz}"
    if not _between(duty_pct, limits.duty_pct_min, limits.duty_pct_max):
        allowed_pct = f"{limits.duty_pct_min}–{limits.duty_pct_max} %"
        return f"duty cycle {_num(duty_pct)} % is outside {allowed_pct}"
    return None
