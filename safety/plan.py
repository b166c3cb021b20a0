"""The plan of one session: what the interlock may let the board emit.

Owns: the ``SessionPlan`` (channels by index with their wavelength and peak
irradiance, the pulsing shared by all channels, ramp and duration) and its
derivation from a prescription, mapping wavelength → channel through the board's
calibration. Does not own checking a plan against the limits (``interlock`` does,
on arming) or the prescription's own rules (``profiles``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiles.schema import Profile
from safety.calibration import Calibration, CalibrationError
from safety.errors import StartRefusedError

__all__ = ["PlannedChannel", "SessionPlan", "plan_from_profile"]


@dataclass(frozen=True, slots=True)
class PlannedChannel:
    """One channel of the active plan: its index, wavelength and peak irradiance."""

    channel: int
    wavelength_nm: int
    irradiance_mw_cm2: float


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What the active session may emit, derived from the profile by ``core``.

    ``pulse_hz == 0`` is continuous wave (``duty_pct`` 100); pulsing is the same on
    every channel, as in a profile's ``mode``.
    """

    channels: tuple[PlannedChannel, ...]
    pulse_hz: int
    duty_pct: int
    ramp_s: float
    duration_s: float

    def channel(self, index: int) -> PlannedChannel | None:
        return next((c for c in self.channels if c.channel == index), None)

    @property
    def target_mw_cm2(self) -> dict[int, float]:
        return {c.channel: c.irradiance_mw_cm2 for c in self.channels}


def _whole(value: float, name: str) -> int:
    if not math.isclose(value, round(value)):
        raise StartRefusedError(f"The board cannot pulse at {name} = {value}; use whole numbers.")
    return round(value)


def plan_from_profile(rx: Profile, calibration: Calibration) -> SessionPlan:
    """The interlock's plan for ``rx``; StartRefusedError when the board cannot do it."""
    channels = []
    for spec in rx.channels:
        try:
            index = calibration.channel_for_wavelength(spec.wavelength_nm)
        except CalibrationError as exc:
            raise StartRefusedError(f"The pad cannot do this prescription: {exc}.") from exc
        channels.append(PlannedChannel(index, spec.wavelength_nm, spec.irradiance_mw_cm2))
    pulse_hz = 0 if rx.mode.pulse_hz is None else _whole(rx.mode.pulse_hz, "pulse_hz")
    duty_pct = 100 if rx.mode.duty_pct is None else _whole(rx.mode.duty_pct, "duty_pct")
    return SessionPlan(tuple(channels), pulse_hz, duty_pct, rx.ramp_s, rx.duration_s)
