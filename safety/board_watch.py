"""What the safety core knows of the board between frames: the watch over the link.

Owns: the last telemetry frame and when it came, the frame count, stale telemetry
(with the one-tick grace after a stall of this host), the pad's LED power reported off
while the host enables it (``RAIL_LOST``), a board fault event held until the next frame
names its cause, whether the board is lost, whether contact was lost while treating
(so that ``ContactRegained`` follows a ``ContactLost`` once), and the board's uptime (a
clock that went back is a reset whose EVENT was lost). Pure bookkeeping on
times the core passes in; it latches nothing: each check returns what the core must
latch, as a detail for the fault's message, or None.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Final

from drivers.protocol import Telemetry
from safety.core_session import TELEMETRY_PERIOD_S

__all__ = [
    "BOARD_FAULT_NAMING_S",
    "HOST_STALL_S",
    "RAIL_LOST_S",
    "UPTIME_JITTER_MS",
    "BoardWatch",
    "Staleness",
]

log = logging.getLogger(__name__)

BOARD_FAULT_NAMING_S: Final = 0.04
"""After a BOARD_FAULT event the next frame may name the cause before BOARD_FAULT latches."""
HOST_STALL_S: Final = 2 * TELEMETRY_PERIOD_S
"""A tick this long after the previous one follows a stall of this host: a stale
verdict then waits one tick (``BoardWatch.staleness``)."""
RAIL_LOST_S: Final = 1.0
"""The pad reports its LED power off this long while the host enables it and sends the
heartbeat: the hold circuit or its lines failed (a stall's drop is back in one tick)."""

UPTIME_JITTER_MS: Final = 100
"""A telemetry frame's uptime may step back this much (a board that stamps its frames a
little out of order); more is a reset."""
UPTIME_WRAP_MS: Final = 1 << 32
"""The uptime is a u32 of milliseconds: it wraps after 49.7 days."""
UPTIME_WRAP_SLACK_MS: Final = 60_000
"""A step back this close to the whole range is the counter wrapping, not a reset."""


class Staleness(StrEnum):
    """The outcome of ``BoardWatch.staleness``: fresh, hold this tick, or stale."""

    FRESH = "fresh"
    HOLD = "hold"
    STALE = "stale"


class BoardWatch:
    """The board's last word and the timers that judge its silence; see the module notes."""

    def __init__(self, now_s: float, stale_s: float) -> None:
        self._stale_s = stale_s
        self.last_telemetry: Telemetry | None = None
        self.frames_seen = 0
        self.last_frame_s = now_s
        """Host time of the last frame (of the connection before the first)."""
        self.last_tick_s = now_s
        self.lost = False
        self.contact_lost = False
        """Contact was lost while treating and ``ContactRegained`` is still owed."""
        self._stale_deferred = False
        self._rail_off_since_s: float | None = None
        self._board_fault: tuple[float, str] | None = None
        self._uptime_ms: int | None = None

    def note_reset(self) -> None:
        """A BOARD_RESET event: the uptime starts again, the next frame is no regression."""
        self._uptime_ms = None

    def uptime_went_back(self, uptime_ms: int) -> str | None:
        """Note a telemetry frame's uptime; the detail of a reset if it went back."""
        before_ms, self._uptime_ms = self._uptime_ms, uptime_ms
        if before_ms is None:
            return None
        back_ms = before_ms - uptime_ms
        if back_ms <= UPTIME_JITTER_MS or back_ms >= UPTIME_WRAP_MS - UPTIME_WRAP_SLACK_MS:
            return None
        return f"the board's uptime went back from {before_ms} to {uptime_ms} ms"

    def on_frame(self, telemetry: Telemetry, now_s: float) -> None:
        self.last_telemetry = telemetry
        self.last_frame_s = now_s
        self.frames_seen += 1

    def age_s(self, now_s: float) -> float:
        return now_s - self.last_frame_s

    def current_telemetry(self, now_s: float) -> Telemetry | None:
        """The last frame while it still says how the pad is: None once the board is
        lost or silent past the stale limit, so a display never shows an old light
        level, temperature or contact as if it were now."""
        if self.lost or self.age_s(now_s) > self._stale_s:
            return None
        return self.last_telemetry

    def is_stale(self, now_s: float) -> bool:
        """No frame for longer than the stale limit (never once the board is lost)."""
        return not self.lost and self.age_s(now_s) > self._stale_s

    def staleness(self, now_s: float, may_defer: bool) -> Staleness:
        """Judge the newest frame's age at a tick: ``Staleness.FRESH``, ``HOLD`` or ``STALE``.

        Right after a stall of this host (its previous tick more than ``HOST_STALL_S``
        ago) the verdict waits one tick, never two in a row: a host that was not running
        cannot tell a silent board from frames it has not been sent yet (a simulated
        board on the same machine stops with it). Meanwhile nothing acts on the old
        frame: the core holds the tick (no renewal, no new setpoint). ``may_defer`` is
        False once a fault is latched: then stale is stale.
        """
        age_s = self.age_s(now_s)
        if age_s <= self._stale_s:
            self._stale_deferred = False
            return Staleness.FRESH
        stalled_s = now_s - self.last_tick_s
        if stalled_s > HOST_STALL_S and not self._stale_deferred and may_defer:
            self._stale_deferred = True
            log.warning(
                "no telemetry for %.0f ms after this host stood still for %.0f ms: "
                "holding one tick before judging",
                age_s * 1000,
                stalled_s * 1000,
            )
            return Staleness.HOLD
        return Staleness.STALE

    def rail_lost(self, reported_on: bool, enabled: bool, now_s: float) -> bool:
        """True once the rail has been reported off for ``RAIL_LOST_S`` while enabled."""
        if reported_on or not enabled:
            self._rail_off_since_s = None
            return False
        if self._rail_off_since_s is None:
            self._rail_off_since_s = now_s
        elif now_s - self._rail_off_since_s > RAIL_LOST_S:
            self._rail_off_since_s = None
            return True
        return False

    def hold_board_fault(self, now_s: float, detail: str) -> None:
        """A BOARD_FAULT event: the first is held for the next frame to name its cause."""
        if self._board_fault is None:
            self._board_fault = (now_s, detail)

    @property
    def board_fault_held(self) -> bool:
        return self._board_fault is not None

    def unnamed_board_fault(self, now_s: float) -> str | None:
        """The held board fault's detail once no frame named it in time, else None."""
        held = self._board_fault
        if held is not None and now_s - held[0] > BOARD_FAULT_NAMING_S:
            return held[1]
        return None

    def clear_board_fault(self) -> None:
        self._board_fault = None
