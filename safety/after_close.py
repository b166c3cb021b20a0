"""Light after a session's close, counted into that session's record.

Owns what the closed session still counts, from its close to the first frame that
shows the light off, and the figure its ledger row holds meanwhile. Does not own the
frame's dose rules (``core_session``), writing the row (``core``, through the fault
latch, with ``Ledger.add_after_close``) or cutting the rail (``interlock``).

Why: the OFF goes out and the row closes at once, but light can outlive the close. A
frame already on the wire was sampled before the OFF landed; an OFF lost on the wire
leaves the board lit until the interlock sees it; a stuck driver emits until the rail
is cut, ``STUCK_ON_GRACE_S`` after the OFF and a frame or two later. The rules (the
ledger may over-count, never under-count):

* Every frame after the close that the board reports lit (output flag, or a channel
  above the dark current: the board's word may only add) counts as in the session.
  The first frame that shows it dark counts once more, at the higher of it and the
  frame before, and ends the count.
* A first frame that is dark but late (frames went missing after the close: a link
  drop) counts the time since the close at the last frame's level, at most
  ``max_dark_s``, when the rail was on at the close and has been cut since: a driver
  that ignored the OFF may have emitted, unseen, until the cut. With the rail still on,
  a dark frame shows the driver obeys; with the rail cut at the close (a critical
  fault), nothing was lit after it.
* Within ``STUCK_ON_GRACE_S`` of the close the count stays in memory: it may be a
  frame in flight, and the row is raised once, at the end. Past it the driver ignores
  the OFF: the row is raised at once to the count plus a reserve for the light a host
  that dies now would not see (until its heartbeat stops and the hold circuit drops the
  rail, ``RAIL_HOLD_S``), and raised again only when the count outgrows that. The
  reserve grows with the time since the close, so a board that claims light for ever
  costs a write each time the time doubles, not one a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from drivers.protocol import Telemetry
from safety.core_session import LINK_ALLOWANCE_S, TELEMETRY_PERIOD_S, ActiveSession
from safety.interlock import STUCK_ON_GRACE_S
from safety.rail import RAIL_HOLD_S

__all__ = ["IN_FLIGHT_S", "LATE_FRAME_S", "RESERVE_S", "AfterClose"]

IN_FLIGHT_S: Final = STUCK_ON_GRACE_S
"""Light reported this long after the close may be a frame in flight; after it, not."""
LATE_FRAME_S: Final = 2 * TELEMETRY_PERIOD_S + LINK_ALLOWANCE_S
"""A first frame after the close arriving later than this after the frame before it
means frames went missing around the close."""
RESERVE_S: Final = STUCK_ON_GRACE_S + RAIL_HOLD_S + 2 * TELEMETRY_PERIOD_S
"""Light a host that dies now would not see: until its last heartbeat's hold runs out."""


@dataclass(slots=True)
class AfterClose:
    """A closed session, still counting the light its board reports after the close."""

    session: ActiveSession
    closed_s: float
    recorded_j_cm2: dict[int, float]
    """What the session's ledger row holds, per channel."""
    rail_on_at_close: bool
    """The host's rail was on at the close (a critical fault cuts it before)."""
    lit: bool = False
    """A frame after the close showed light."""
    done: bool = False

    @classmethod
    def at_close(cls, session: ActiveSession, now_s: float, *, rail_on: bool) -> AfterClose:
        """Once the close's own gap is counted and the row holds ``session``'s dose."""
        session.forget_commanded()
        return cls(session, now_s, dict(session.dose.delivered_j_cm2), rail_on)

    @property
    def counting(self) -> bool:
        """Light after the close is being counted: a fault now belongs to this session."""
        return self.lit and not self.done

    def count(
        self, telemetry: Telemetry, now_s: float, *, lit: bool, rail_on: bool
    ) -> dict[int, float] | None:
        """A frame after the close; the row's new figure by wavelength, or None."""
        if self.done:
            return None
        if not lit and not self.lit:
            return self._first_dark(now_s, rail_on)
        self.lit = True
        self.done = not lit
        self.session.count_frame(telemetry, now_s)
        if lit and now_s - self.closed_s <= IN_FLIGHT_S:
            return None  # perhaps a frame in flight: the end raises the row, if needed
        return self._raised(self.session.dose.frame_levels(telemetry), now_s)

    def _first_dark(self, now_s: float, rail_on: bool) -> dict[int, float] | None:
        """Dark at the first frame: on time, or the rail as it was, nothing after the close."""
        self.done = True
        late = now_s - self.session.last_frame_s > LATE_FRAME_S
        if not (late and self.rail_on_at_close and not rail_on):
            return None
        self.session.count_unseen(now_s - self.closed_s)
        return self._raised({}, now_s)

    def _raised(self, levels: Mapping[int, float], now_s: float) -> dict[int, float] | None:
        """The row's new figure when the count outgrew it: the count, plus (while lit) a
        reserve at ``levels`` for the light a host that dies now would not see."""
        dose = self.session.dose
        recorded = self.recorded_j_cm2
        if all(v <= recorded.get(ch, 0.0) for ch, v in dose.delivered_j_cm2.items()):
            return None  # the row already holds as much
        reserve_s = 0.0 if self.done else max(RESERVE_S, now_s - self.closed_s)
        projected = dose.projected_j_cm2(levels, reserve_s, self.session.time_scale)
        for channel, value in projected.items():
            recorded[channel] = max(value, recorded.get(channel, 0.0))
        return self.session.by_wavelength(recorded)
