"""Dose accounting for one session: fluence per channel and treating time.

Owns: integrating the delivered fluence (J/cm²) per channel from the *measured*
drive current of each telemetry frame, converted through the calibration, times the
PWM duty fraction, the frame interval and the board's time scale; the elapsed
treating time; the end rule (planned fluence or planned duration, whichever comes
first); the cap that keeps the next period of output inside the plan; and the ramp.
Does not own: sending output (``interlock``), persisting checkpoints (``ledger``),
judging the measured values (``supervisor``) or what the plan is (``profiles``).

Counting rules, chosen to over-count rather than under-count:

- Fluence counts whatever the board *measures*, whether or not output was commanded:
  a stuck-on output still counts as delivered. An output that is off reads 0 mA and
  adds nothing. A current above the calibration table is bounded from above
  (``Calibration.irradiance_upper_bound_mw_cm2``).
  A channel the calibration table does not have (a frame reporting more channels than
  INFO declared) has no wavelength to count under and adds nothing; the supervisor
  holds its current as light above every limit.
- Each frame's values are held over the interval since the previous frame
  (``dt_s``, measured on the host's clock), the rectangle rule a 50 Hz stream supports,
  at the higher of that frame's and the previous frame's level per channel: the light of
  a switch-off (on in one frame, off in the next) is counted, never lost.
- Time without telemetry (a gap: lost frames, a link that went quiet before a fault)
  is counted by ``add_dark`` at levels the caller bounds from above (the session's gap
  rule, ``safety.core_session``).
- Each frame's fluence is multiplied by ``1 + uncertainty_fraction`` (the core passes
  ``limits.CALIBRATION_UNCERTAINTY_FRACTION``): an error of the board's calibration is
  invisible to the host, so the count is an upper bound of the true dose and the
  session ends on it, never past the plan.
- Elapsed treating time advances only while the board reports output on and the
  session is not paused. Pauses add neither time nor (with the output off) fluence.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from drivers.protocol.messages import ChannelTelemetry, Telemetry
from safety.calibration import Calibration, CalibrationError

__all__ = ["DoseIntegrator", "duty_fraction", "ramp_setpoint"]

log = logging.getLogger(__name__)

_MW_S_PER_J = 1000.0
_DONE_EPS = 1e-9
"""Relative slack for float sums that land a hair under the plan."""


def duty_fraction(channel: ChannelTelemetry) -> float:
    """Fraction of time the PWM is on: 1 for continuous wave (``pulse_hz == 0``)."""
    if channel.pulse_hz == 0:
        return 1.0
    return min(max(channel.duty_pct, 0), 100) / 100.0


def ramp_setpoint(target_mw_cm2: float, elapsed_s: float, ramp_s: float) -> float:
    """Linear ramp from 0 to ``target_mw_cm2`` over ``ramp_s`` of treating time."""
    if ramp_s <= 0 or elapsed_s >= ramp_s:
        return target_mw_cm2
    if elapsed_s <= 0:
        return 0.0
    return target_mw_cm2 * elapsed_s / ramp_s


class DoseIntegrator:
    """Delivered fluence and treating time of one session, fed every telemetry frame."""

    def __init__(
        self,
        calibration: Calibration,
        planned_fluence_j_cm2: Mapping[int, float],
        planned_duration_s: float,
        *,
        uncertainty_fraction: float = 0.0,
    ) -> None:
        if not 0.0 <= uncertainty_fraction < 0.1:
            raise ValueError(f"calibration uncertainty must be in [0, 0.1): {uncertainty_fraction}")
        if planned_duration_s <= 0 or not math.isfinite(planned_duration_s):
            raise ValueError(f"planned duration must be positive, got {planned_duration_s}")
        if any(not math.isfinite(v) or v < 0 for v in planned_fluence_j_cm2.values()):
            raise ValueError(f"planned fluence must be finite and ≥ 0: {planned_fluence_j_cm2}")
        self._calibration = calibration
        self._count_factor = 1.0 + uncertainty_fraction
        self.planned_fluence_j_cm2: dict[int, float] = dict(planned_fluence_j_cm2)
        self.planned_total_j_cm2 = sum(self.planned_fluence_j_cm2.values())
        self.planned_duration_s = planned_duration_s
        self.delivered_j_cm2: dict[int, float] = dict.fromkeys(self.planned_fluence_j_cm2, 0.0)
        self.elapsed_s = 0.0
        self._last_channels: tuple[ChannelTelemetry, ...] | None = None  # see _levels_of
        self._last_levels: Mapping[int, float] = {}

    def frame_levels(self, telemetry: Telemetry) -> dict[int, float]:
        """Average irradiance (mW/cm²: peak bounded from above × duty) of each channel
        that ``telemetry`` shows driven; channels at 0 mA are left out."""
        return dict(self._levels_of(telemetry.channels))

    def _levels_of(self, channels: tuple[ChannelTelemetry, ...]) -> Mapping[int, float]:
        """``frame_levels`` of these channel records, read-only: the last answer while the
        decoder hands out the same (frozen) records, frame after frame of a steady output."""
        if channels is not self._last_channels:
            self._last_levels = self._levels(channels)
            self._last_channels = channels
        return self._last_levels

    def _levels(self, channels: tuple[ChannelTelemetry, ...]) -> dict[int, float]:
        levels: dict[int, float] = {}
        for index, channel in enumerate(channels):
            if channel.current_ma > 0:
                try:
                    peak = self._calibration.irradiance_upper_bound_mw_cm2(
                        index, channel.current_ma
                    )
                except CalibrationError:  # a channel INFO never declared: no wavelength to
                    continue  # count it under; the supervisor trips on it (over limit)
                levels[index] = peak * duty_fraction(channel)
        return levels

    def add_frame(
        self,
        telemetry: Telemetry,
        dt_s: float,
        time_scale: float = 1.0,
        *,
        paused: bool = False,
        held_from: Telemetry | None = None,
    ) -> None:
        """Count ``dt_s`` seconds (host clock) of the output that ``telemetry`` reports.

        With ``held_from`` (the frame before), each channel counts at the higher of the
        two readings: a switch-off between the frames is counted, never lost."""
        if dt_s <= 0:
            return
        board_dt_s = dt_s * time_scale
        levels = self._levels_of(telemetry.channels)
        if held_from is not None and held_from.channels is not telemetry.channels:
            levels = dict(levels)  # the frame before drove otherwise: the higher of the two
            for index, level in self.frame_levels(held_from).items():
                levels[index] = max(level, levels.get(index, 0.0))
        self._add_fluence(levels, board_dt_s)
        if telemetry.output_on and not paused:
            self.elapsed_s += board_dt_s

    def add_dark(
        self,
        levels_mw_cm2: Mapping[int, float],
        dt_s: float,
        time_scale: float = 1.0,
        *,
        paused: bool = False,
    ) -> None:
        """Count ``dt_s`` seconds (host clock) without telemetry at ``levels_mw_cm2``
        (average mW/cm² per channel), an upper bound of what the board may have emitted."""
        if dt_s <= 0:
            return
        board_dt_s = dt_s * time_scale
        self._add_fluence(levels_mw_cm2, board_dt_s)
        if not paused and any(level > 0 for level in levels_mw_cm2.values()):
            self.elapsed_s += board_dt_s

    def _add_fluence(self, levels_mw_cm2: Mapping[int, float], board_dt_s: float) -> None:
        self._add_into(self.delivered_j_cm2, levels_mw_cm2, board_dt_s)

    def _add_into(
        self, fluence_j_cm2: dict[int, float], levels_mw_cm2: Mapping[int, float], board_dt_s: float
    ) -> None:
        """``levels_mw_cm2`` for ``board_dt_s`` (board seconds) into ``fluence_j_cm2``, high
        by the calibration's uncertainty."""
        for index, level in levels_mw_cm2.items():
            fluence = level * board_dt_s * self._count_factor / _MW_S_PER_J
            fluence_j_cm2[index] = fluence_j_cm2.get(index, 0.0) + fluence

    def projected_j_cm2(
        self, levels_mw_cm2: Mapping[int, float], dt_s: float, time_scale: float = 1.0
    ) -> dict[int, float]:
        """The delivered fluence per channel had ``levels_mw_cm2`` (average mW/cm²) gone on
        for ``dt_s`` more seconds (host clock); nothing is counted."""
        projected = dict(self.delivered_j_cm2)
        self._add_into(projected, levels_mw_cm2, max(0.0, dt_s) * time_scale)
        return projected

    @property
    def delivered_total_j_cm2(self) -> float:
        return sum(self.delivered_j_cm2.values())

    @property
    def remaining_s(self) -> float:
        """Treating time left; 0 once the planned duration is reached (see ``done``)."""
        if self._time_done():
            return 0.0
        return self.planned_duration_s - self.elapsed_s

    def _time_done(self) -> bool:
        return self.elapsed_s >= self.planned_duration_s * (1 - _DONE_EPS)

    @property
    def remaining_fraction(self) -> float:
        """1 at the start, 0 when done: whichever of time or fluence is further along."""
        time_done = self.elapsed_s / self.planned_duration_s
        fluence_done = (
            self.delivered_total_j_cm2 / self.planned_total_j_cm2
            if self.planned_total_j_cm2 > 0
            else 0.0
        )
        return min(1.0, max(0.0, 1.0 - max(time_done, fluence_done)))

    def done(self) -> bool:
        """True once the planned total fluence or the planned duration is reached."""
        if self._time_done():
            return True
        total = self.delivered_total_j_cm2
        return self.planned_total_j_cm2 > 0 and total >= self.planned_total_j_cm2 * (1 - _DONE_EPS)

    def remaining_j_cm2(self, channel: int) -> float:
        """Fluence still allowed on ``channel``; 0 for a channel outside the plan."""
        planned = self.planned_fluence_j_cm2.get(channel, 0.0)
        return max(0.0, planned - self.delivered_j_cm2.get(channel, 0.0))

    def clamp_next(self, dt_s: float, time_scale: float = 1.0) -> dict[int, float]:
        """Highest *average* irradiance (mW/cm², peak × duty) per planned channel that
        keeps the next ``dt_s`` seconds of output inside the plan.

        The interlock commands ``min(wanted_average, cap) / duty`` as peak. Once the
        total plan is met every cap is 0. ``dt_s`` should be one telemetry period: the
        output is re-judged at every frame, so a period is the most it can overshoot.
        """
        if dt_s <= 0 or time_scale <= 0:
            raise ValueError(f"dt_s and time_scale must be positive, got {dt_s}, {time_scale}")
        total_left = max(0.0, self.planned_total_j_cm2 - self.delivered_total_j_cm2)
        caps: dict[int, float] = {}
        for channel in self.planned_fluence_j_cm2:
            left = min(self.remaining_j_cm2(channel), total_left)
            caps[channel] = left * _MW_S_PER_J / (dt_s * time_scale)
        return caps
