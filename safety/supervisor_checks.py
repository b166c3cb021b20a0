"""Pure checks of one telemetry frame, for the supervisor.

Owns: the settings the limits table leaves open (``SupervisorSettings``), the
temperature and sensor checks, the board fault flags, and the skin temperature's rate
of rise (``RiseTracker``). Each check returns its findings, ``(FaultCode, detail)``,
and keeps no latch. Does not own the latch, the command comparison or what a verdict
means (``supervisor``).

The rate of rise: readings are averaged into buckets (1 s by default) and the rate is
the least-squares slope through the buckets of the last window (30 s), so sensor noise
cannot fake it. No rate is given until the window is full.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from drivers.protocol.messages import BoardFault, Telemetry
from safety.faults import FaultCode
from safety.limits import Limits

__all__ = [
    "CLEARED_ONLY_BY_ACK",
    "Finding",
    "RiseTracker",
    "SupervisorSettings",
    "board_findings",
    "temperature_findings",
]

Finding = tuple[FaultCode, str]


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """Choices the limits table leaves open, with their reasons.

    - ``board_stop_c`` 60 °C: a software stop well below the board's own 70 °C cutoff
      (``Limits.board_temp_stop_c``; the lower of the two applies); a latched board
      over-temperature clears only ``board_clear_margin_c`` below it.
    - ``sensor_open_c`` / ``sensor_short_c``: an open NTC reads far below any room
      (the board sends its minimum code), a shorted one far above any skin.
    - ``rise_window_s`` / ``rise_bucket_s``: the rise rate is the least-squares slope of
      1 s averages over 30 s of treating, so sensor noise cannot trip it.
    - ``transition_grace_s``: for this long after output was commanded off, a frame may
      still show it on (the frame was already on the wire) before STUCK_ON trips. A
      changed setpoint needs no grace: a mismatch must last more than 100 ms to trip.
    - ``irradiance_floor_mw_cm2``: the ±10 % band is at least this wide, so the first
      steps of a ramp are not judged below the current sensor's resolution.
    - ``dark_current_ma``: more than this with output commanded off is emission.
    - ``irradiance_allowance_fraction`` 1 %: how far a measured irradiance may read above
      the light actually emitted, so the hard maximum (per channel, and the channels
      together at their duty) trips only above maximum × 1.01, after the mismatch's
      100 ms. The figure covers the calibration's ±0.25 % in irradiance per measured
      current (docs/protocol.md §4.2), the telemetry's 0.1 mA step (under 0.02 % of a
      current near 50 mW/cm²) and a current-sense reading's own gain and offset error
      over temperature, which that static figure does not include (about 0.5 % for a
      shunt amplifier and ADC of this class), with margin. It cannot hide a sick board:
      prescriptions stop at the maximum less the ±10 % tolerance, so a reading above the
      maximum on a known command is already a mismatch; this check is the backstop for
      light the mismatch cannot see (an uncommanded channel, a wrong duty, no contact).
    """

    board_stop_c: float = 60.0
    board_clear_margin_c: float = 5.0
    sensor_open_c: float = -20.0
    sensor_short_c: float = 100.0
    rise_window_s: float = 30.0
    rise_bucket_s: float = 1.0
    transition_grace_s: float = 0.1
    irradiance_floor_mw_cm2: float = 0.5
    dark_current_ma: float = 5.0
    irradiance_allowance_fraction: float = 0.01


def temperature_findings(
    t: Telemetry,
    limits: Limits,
    settings: SupervisorSettings,
    skin_stop_c: float,
    board_stop_c: float,
) -> list[Finding]:
    """Open, shorted and out-of-range sensors, over-temperatures, disagreeing skin sensors."""
    sensors = (("skin A", t.skin_a_c), ("skin B", t.skin_b_c), ("board", t.board_c))
    found: list[Finding] = []
    for name, c in sensors:
        if c <= settings.sensor_open_c:
            found.append((FaultCode.SENSOR_OPEN, f"{name} sensor open ({c} °C)"))
        if c >= settings.sensor_short_c:
            found.append((FaultCode.SENSOR_SHORT, f"{name} sensor shorted ({c} °C)"))
    skin_c = max(t.skin_a_c, t.skin_b_c)
    if skin_c >= skin_stop_c:
        found.append((FaultCode.SKIN_OVERTEMP, f"skin {skin_c} °C ≥ stop {skin_stop_c} °C"))
    if t.board_c >= board_stop_c:
        found.append((FaultCode.BOARD_OVERTEMP, f"board {t.board_c} °C ≥ stop {board_stop_c} °C"))
    for name, c in sensors:
        if not limits.sensor_valid_min_c <= c <= limits.sensor_valid_max_c:
            found.append((FaultCode.SENSOR_RANGE, f"{name} reads {c} °C"))
    if abs(t.skin_a_c - t.skin_b_c) > limits.skin_sensor_disagree_max_c:
        found.append((FaultCode.SENSOR_DISAGREE, f"skin sensors {t.skin_a_c} / {t.skin_b_c} °C"))
    if len(found) > 1:
        found.sort(key=lambda finding: _TEMPERATURE_ORDER.index(finding[0]))
    return found


_TEMPERATURE_ORDER = (
    FaultCode.SENSOR_OPEN,
    FaultCode.SENSOR_SHORT,
    FaultCode.SKIN_OVERTEMP,
    FaultCode.BOARD_OVERTEMP,
    FaultCode.SENSOR_RANGE,
    FaultCode.SENSOR_DISAGREE,
)


CLEARED_ONLY_BY_ACK: Final = BoardFault.MAX_ON_TIME
"""Board flags with no cause the telemetry can show: the board latched them, its output
is off, and only CLEAR_FAULTS (sent at the host's acknowledgement) clears them."""


def board_findings(t: Telemetry) -> list[Finding]:
    """The board's own fault flags, named."""
    if t.faults == BoardFault.NONE:
        return []
    names = ", ".join(f.name or hex(int(f)) for f in t.faults)
    return [(FaultCode.BOARD_FAULT, f"board reports: {names}")]


class RiseTracker:
    """Sliding least-squares slope of bucket-averaged readings."""

    def __init__(self, window_s: float, bucket_s: float) -> None:
        if bucket_s <= 0 or window_s < 2 * bucket_s:
            raise ValueError(f"need window_s ≥ 2 × bucket_s > 0, got {window_s}, {bucket_s}")
        self._bucket_s = bucket_s
        self._buckets: deque[tuple[float, float]] = deque(maxlen=round(window_s / bucket_s))
        self._start_s: float | None = None
        self._n = 0
        self._sum_t = 0.0
        self._sum_c = 0.0
        self._rate: float | None = None  # of the buckets as they are; None until full

    def reset(self) -> None:
        self._buckets.clear()
        self._start_s = None
        self._rate = None

    def add(self, now_s: float, temp_c: float) -> float | None:
        """Add one reading; return the rise in °C/min once the window is full."""
        if self._start_s is None or now_s - self._start_s >= self._bucket_s:
            if self._start_s is not None:
                self._close_bucket(self._start_s)
            self._start_s, self._n, self._sum_t, self._sum_c = now_s, 0, 0.0, 0.0
        self._n += 1
        self._sum_t += now_s - self._start_s
        self._sum_c += temp_c
        return self._rate

    def _close_bucket(self, start_s: float) -> None:
        """Append the finished bucket; the slope changes only here, so compute it here."""
        buckets = self._buckets
        buckets.append((start_s + self._sum_t / self._n, self._sum_c / self._n))
        if len(buckets) == buckets.maxlen:
            self._rate = _slope_per_s(buckets) * 60.0


def _slope_per_s(points: deque[tuple[float, float]]) -> float:
    t0 = points[0][0]
    n = len(points)
    mean_t = sum(t - t0 for t, _ in points) / n
    mean_c = sum(c for _, c in points) / n
    num = sum((t - t0 - mean_t) * (c - mean_c) for t, c in points)
    den = sum((t - t0 - mean_t) ** 2 for t, _ in points)
    return num / den  # bucket times are distinct, so den > 0
