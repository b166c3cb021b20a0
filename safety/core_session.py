"""One active treatment session as the safety core runs it.

Owns: the session's treating clock, the setpoint of each
tick (ramp, then capped so the next telemetry period stays inside the plan), the
frame interval fed to the dose integrator, and the checkpoint deadline. Does not own
sending anything (``interlock``), integrating fluence (``dose``) or writing the record
(``ledger``); ``core`` wires them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from drivers.protocol import Telemetry
from safety.dose import DoseIntegrator, ramp_setpoint
from safety.plan import SessionPlan

__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "TELEMETRY_PERIOD_S",
    "ActiveSession",
]

TELEMETRY_PERIOD_S: Final = 0.02
"""The board's 50 Hz telemetry period."""
MAX_FRAME_GAP_S: Final = 2 * TELEMETRY_PERIOD_S
"""A frame never counts for more than two periods (a gap is stale, and off, anyway)."""
CHECKPOINT_INTERVAL_S: Final = 5.0
"""Dose checkpoints into the ledger at least this often while a session is open."""


@dataclass(slots=True)
class ActiveSession:
    """The open session: its ledger id, plan, dose and clocks (host monotonic seconds)."""

    session_id: int
    plan: SessionPlan
    dose: DoseIntegrator
    time_scale: float
    started_s: float
    last_checkpoint_s: float
    treating_s: float = 0.0
    last_tick_s: float | None = None
    last_uptime_ms: int | None = None
    paused: bool = False
    wavelength_by_channel: dict[int, int] = field(default_factory=dict)

    def frame_dt_s(self, telemetry: Telemetry) -> float:
        """Seconds since the previous frame, from the board's uptime, capped."""
        previous, self.last_uptime_ms = self.last_uptime_ms, telemetry.uptime_ms
        if previous is None:
            return TELEMETRY_PERIOD_S
        delta_s = ((telemetry.uptime_ms - previous) & 0xFFFFFFFF) / 1000.0
        return min(delta_s, MAX_FRAME_GAP_S)

    def advance(self, now_s: float) -> None:
        """Count host time since the last tick as treating time, unless paused."""
        if self.last_tick_s is not None and not self.paused:
            self.treating_s += (now_s - self.last_tick_s) * self.time_scale
        self.last_tick_s = now_s

    def time_is_up(self) -> bool:
        """Planned duration of treating reached: the auto-off, independent of readings."""
        return self.treating_s >= self.plan.duration_s

    def setpoint_mw_cm2(self) -> dict[int, float]:
        """Peak irradiance per channel for this tick: the ramp, capped by the dose left."""
        caps = self.dose.clamp_next(TELEMETRY_PERIOD_S, self.time_scale)
        duty = self.plan.duty_pct / 100.0
        wanted: dict[int, float] = {}
        for planned in self.plan.channels:
            ramped = ramp_setpoint(planned.irradiance_mw_cm2, self.treating_s, self.plan.ramp_s)
            wanted[planned.channel] = min(ramped, caps.get(planned.channel, 0.0) / duty)
        return wanted

    def by_wavelength(self, values: dict[int, float]) -> dict[int, float]:
        return {self.wavelength_by_channel.get(ch, ch): v for ch, v in values.items()}

    def checkpoint_due(self, now_s: float) -> bool:
        return now_s - self.last_checkpoint_s >= CHECKPOINT_INTERVAL_S
