"""A short human summary of a profile, for ``nirpad profile check`` and ``show``.

Owns: the wording of the summary lines (channels, irradiance, mode, duration, planned
fluence, schedule). Does not print (the CLI does) or judge validity (``loader``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from profiles.locator import printable
from profiles.schema import Profile


def _g(value: float) -> str:
    return f"{value:g}"


def describe(profile: Profile, *, signature_checked: bool = True) -> list[str]:
    """Lines a caregiver can read to confirm the prescription is the intended one.

    ``signature_checked`` is False on a device that trusts no clinic keys: a signature
    is then shown as present but not checked. Free text is shown with ``printable``
    (the schema refuses control characters; this holds for any other source too).
    """
    lines = [
        f"{printable(profile.name)} ({profile.id}), prescribed by {printable(profile.prescriber)}",
        f"valid from {profile.issued.isoformat()} until the day before "
        f"{profile.expires.isoformat()}",
    ]
    for channel in profile.channels:
        fluence = profile.planned_fluence_j_cm2[channel.wavelength_nm]
        lines.append(
            f"channel {channel.wavelength_nm} nm: {_g(channel.irradiance_mw_cm2)} mW/cm², "
            f"planned {fluence:.1f} J/cm² per session"
        )
    lines.append(f"mode: {_mode(profile)}")
    lines.append(
        f"session: {profile.duration_min} min with a {_g(profile.ramp_s)} s ramp, "
        f"planned {profile.planned_fluence_total_j_cm2:.1f} J/cm² in total"
    )
    lines.append(
        f"schedule: {profile.sessions_per_week} sessions a week, at least "
        f"{_g(profile.min_interval_h)} h apart, for {profile.course_weeks} weeks"
    )
    if profile.window is not None:
        lines.append(f"preferred time: {profile.window.start}–{profile.window.end} (local)")
    if profile.skin_temp_stop_c is not None:
        lines.append(f"skin-temperature stop: {_g(profile.skin_temp_stop_c)} °C")
    lines.append(f"signature: {_signature(profile, signature_checked)}")
    return lines


def _signature(profile: Profile, checked: bool) -> str:
    if profile.signature is None:
        return "unsigned"
    signed = f"signed ({printable(profile.signature.key_id)})"
    return f"{signed}, checked" if checked else f"{signed}, not checked: {NOT_CHECKED}"


NOT_CHECKED = "this device trusts no clinic keys, so it takes the file as unsigned"
"""The words for a signed file on a device without trusted keys (docs/profiles.md)."""


def _mode(profile: Profile) -> str:
    mode = profile.mode
    if mode.kind == "cw":
        return "continuous (CW)"
    return f"pulsed, {_g(mode.pulse_hz or 0)} Hz at {_g(mode.duty_pct or 0)} % duty"


def describe_json(profile: Profile, sha256: str, today: dt.date) -> dict[str, Any]:
    """The profile and its computed figures as JSON-ready data (``profile show --json``)."""
    return {
        "installed": True,
        "sha256": sha256,
        "profile": profile.model_dump(mode="json"),
        "planned_fluence_j_cm2": {str(k): v for k, v in profile.planned_fluence_j_cm2.items()},
        "planned_fluence_total_j_cm2": profile.planned_fluence_total_j_cm2,
        "expires": profile.expires.isoformat(),
        "valid_today": profile.is_valid_on(today),
        "validity_problem": profile.validity_problem(today),
    }
