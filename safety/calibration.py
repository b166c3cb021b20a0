"""The board's calibration table: drive current against irradiance at the pad surface.

Owns: the conversion, per channel, between drive current (mA) and irradiance
(mW/cm²) by piecewise-linear interpolation of INFO's table, the wavelength → channel
index lookup, and the boot self-test of the table's shape (``sanity_problem``).
Does not own: reading INFO or checking its CRC (``drivers``), deciding what may be
emitted (``interlock``), or judging measured values (``supervisor``).

Two directions, two policies:

- *Commands* (``current_ma``, ``irradiance_mw_cm2``) never extrapolate: a value
  outside the table raises ``CalibrationError``. The light is only ever driven inside
  what the board's maker measured.
- *Measurements* (``irradiance_upper_bound_mw_cm2``) must not crash the loop when a
  faulty LED string draws more than the table covers. Above the table they return a
  conservative over-estimate (proportional from the origin through the last point,
  an upper bound for an LED's concave current→light curve), so dose is over-counted
  and a mismatch is seen, never hidden.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise
from typing import Final

from drivers.protocol.messages import ChannelCalibration, Info
from safety.errors import SafetyError

__all__ = ["REQUIRED_WAVELENGTHS_NM", "Calibration", "CalibrationError"]

log = logging.getLogger(__name__)

_UPPER_BOUNDS_KEPT: Final = 4096
"""Upper bounds remembered at most (all the 0.1 mA steps of a few hundred mA)."""
REQUIRED_WAVELENGTHS_NM = (810, 850)
"""The pad's two channels; a table without both fails the self-test."""


class CalibrationError(SafetyError, ValueError):
    """A conversion the table cannot answer. ``channel`` and ``value`` give the context."""

    def __init__(self, message: str, *, channel: int, value: float) -> None:
        super().__init__(message)
        self.channel = channel
        self.value = value


def _interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Piecewise-linear y(x) for ``xs[0] <= x <= xs[-1]``; ``xs`` must be increasing."""
    i = min(bisect_right(xs, x), len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    if x1 == x0:  # degenerate table (fails sanity_problem); stay finite
        return y1
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class Calibration:
    """INFO's calibration table, channel index = position in the tuple."""

    def __init__(self, channels: tuple[ChannelCalibration, ...]) -> None:
        self.channels = channels
        currents = [tuple(p.current_ma for p in ch.points) for ch in channels]
        irradiances = [tuple(p.irradiance_mw_cm2 for p in ch.points) for ch in channels]
        # per channel (currents, irradiances), or None for a table of fewer than two points
        self._tables = [
            (cur, irr) if len(cur) >= 2 else None
            for cur, irr in zip(currents, irradiances, strict=True)
        ]
        # measured current → upper bound, per (channel, mA): the wire carries 0.1 mA steps,
        # so a few hundred readings repeat frame after frame (the table never changes)
        self._upper_bounds: dict[tuple[int, float], float] = {}

    @classmethod
    def from_info(cls, info: Info) -> Calibration:
        return cls(info.calibration)

    def _table(self, channel: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        table = self._tables[channel] if 0 <= channel < len(self._tables) else None
        if table is None:
            raise CalibrationError(
                f"no calibration for channel {channel}", channel=channel, value=math.nan
            )
        return table

    def irradiance_mw_cm2(self, channel: int, current_ma: float) -> float:
        """Irradiance at ``current_ma``; raises CalibrationError outside the table."""
        return self._irradiance(channel, *self._table(channel), current_ma)

    def _irradiance(
        self, channel: int, currents: Sequence[float], irradiances: Sequence[float], ma: float
    ) -> float:
        if not currents[0] <= ma <= currents[-1]:
            raise CalibrationError(
                f"channel {channel}: {ma} mA is outside the calibrated "
                f"{currents[0]}–{currents[-1]} mA",
                channel=channel,
                value=ma,
            )
        return _interpolate(currents, irradiances, ma)

    def current_ma(self, channel: int, irradiance_mw_cm2: float) -> float:
        """Drive current for ``irradiance_mw_cm2``; raises CalibrationError outside the table."""
        currents, irradiances = self._table(channel)
        if not irradiances[0] <= irradiance_mw_cm2 <= irradiances[-1]:
            raise CalibrationError(
                f"channel {channel}: {irradiance_mw_cm2} mW/cm² is outside the calibrated "
                f"{irradiances[0]}–{irradiances[-1]} mW/cm²",
                channel=channel,
                value=irradiance_mw_cm2,
            )
        return _interpolate(irradiances, currents, irradiance_mw_cm2)

    def irradiance_upper_bound_mw_cm2(self, channel: int, current_ma: float) -> float:
        """Measured current → irradiance that never under-estimates; see the module notes.

        A reading below the table's first current (noise around 0 mA) counts as the
        first point. Raises CalibrationError only for an unknown channel or a table
        that ends at or below 0 mA (which fails ``sanity_problem``).
        """
        key = (channel, current_ma)
        known = self._upper_bounds.get(key)
        if known is not None:
            return known
        bound = self._upper_bound(channel, current_ma)
        if len(self._upper_bounds) >= _UPPER_BOUNDS_KEPT:
            self._upper_bounds.clear()
        self._upper_bounds[key] = bound
        return bound

    def _upper_bound(self, channel: int, current_ma: float) -> float:
        currents, irradiances = self._table(channel)
        if current_ma <= currents[-1]:
            return self._irradiance(channel, currents, irradiances, max(current_ma, currents[0]))
        if currents[-1] <= 0:
            raise CalibrationError(
                f"channel {channel}: table ends at {currents[-1]} mA", channel=channel, value=0
            )
        log.debug("channel %d: %.1f mA is above the table, bounding", channel, current_ma)
        return irradiances[-1] * current_ma / currents[-1]

    def channel_for_wavelength(self, wavelength_nm: int) -> int:
        for index, ch in enumerate(self.channels):
            if ch.wavelength_nm == wavelength_nm:
                return index
        raise CalibrationError(
            f"the board has no {wavelength_nm} nm channel", channel=-1, value=wavelength_nm
        )

    def max_irradiance_mw_cm2(self, channel: int) -> float:
        """The highest irradiance the table covers at or below the channel's max current."""
        currents, _ = self._table(channel)
        top_ma = min(self.channels[channel].max_current_ma, currents[-1])
        return self.irradiance_mw_cm2(channel, top_ma)

    def sanity_problem(self, required_mw_cm2: float = 50.0) -> str | None:
        """None when the table is fit for use, else what is wrong, for the self-test."""
        wavelengths = [ch.wavelength_nm for ch in self.channels]
        for nm in REQUIRED_WAVELENGTHS_NM:
            if wavelengths.count(nm) != 1:
                return f"the calibration must list the {nm} nm channel exactly once"
        for nm in wavelengths:  # the dose is kept per wavelength: two channels would merge
            if wavelengths.count(nm) != 1:
                return f"the calibration lists the {nm} nm channel more than once"
        for index, cal in enumerate(self.channels):
            problem = _channel_problem(cal, required_mw_cm2)
            if problem is not None:
                return f"channel {index} ({cal.wavelength_nm} nm): {problem}"
        return None


def _channel_problem(cal: ChannelCalibration, required_mw_cm2: float) -> str | None:
    currents = [p.current_ma for p in cal.points]
    irradiances = [p.irradiance_mw_cm2 for p in cal.points]
    values = [*currents, *irradiances, cal.max_current_ma]
    if len(cal.points) < 2:
        return "the table needs at least two points"
    if not all(math.isfinite(v) for v in values):
        return "the table holds a value that is not a finite number"
    if currents[0] != 0 or irradiances[0] != 0:
        return "the table must start at 0 mA, 0 mW/cm²"
    if any(b <= a for a, b in pairwise(currents)):
        return "the currents are not strictly increasing"
    if any(b <= a for a, b in pairwise(irradiances)):
        return "the irradiances are not strictly increasing"
    if irradiances[-1] < required_mw_cm2:
        return f"the table stops at {irradiances[-1]} mW/cm², below {required_mw_cm2}"
    needed_ma = _interpolate(irradiances, currents, required_mw_cm2)
    if needed_ma > cal.max_current_ma:
        return (
            f"{required_mw_cm2} mW/cm² needs {needed_ma:.1f} mA, "
            f"above the board's maximum {cal.max_current_ma} mA"
        )
    return None
