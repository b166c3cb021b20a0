"""Light after a session's close, counted into that session's record.

Owns the closed session (until the next begins): what it still counts after its close,
the highest light seen since, and the figure its ledger row holds. Does not own the
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
* Within ``STUCK_ON_GRACE_S`` of the close a lit frame may be one in flight (sampled
  before the OFF landed; a slow link delays it): it counts in memory, and the row is
  raised once, exactly, by the dark frame that follows. Past it the driver ignores the
  OFF: at every lit frame the row holds the count plus a reserve, at the highest level
  seen since the close, for the light a host that dies now would not see (until its
  heartbeat stops and the hold circuit drops the rail: ``RESERVE_S``); a frame that
  outgrows it raises the row, with room before the next raise: the reserve again, or
  the light counted since the close once more if that is more. So a board that claims
  light for ever, or flickers, costs a write each time the light since the close
  doubles (light that grows, a few more), not one a frame; and the row never holds more
  than the count, the reserve, and the larger of the reserve and the light since the
  close (a faint reading after a bright one, or a long silence, reserves no time at
  the peak).
* A first frame that is dark but late (frames went missing after the close: a link
  drop) counts the time since the close at the last frame's level, at most
  ``max_dark_s``, when the rail was on at the close and has been cut since: a driver
  that ignored the OFF may have emitted, unseen, until the cut. With the rail still on,
  a dark frame shows the driver obeys; with the rail cut at the close (a critical
  fault), nothing was lit after it.
* Once the count has ended, each dark frame is kept as the session's last frame. When
  the host's rail was powered since that frame (its heartbeat beats only then) and is
  cut now, with no frame between (a self-test's rail check that timed out, its frames
  lost), a driver that ignored the OFF may have lit unseen: the time since that frame
  counts at the highest level of light that outlived the grace or was cut while lit
  (none for a frame in flight, or a healthy driver). At the host's own cut, uncapped
  (the rail was powered at most since that frame); at a late dark frame, at most
  ``max_dark_s``. A lit frame starts the count again: nothing
  is commanded between sessions, so light then is a driver that ignores the OFF (a
  self-test's rail check re-powering a stuck driver), and it belongs to the last
  session until the next one begins. No frame is in flight then, so the row is raised
  at once, with the reserve; a fault found then is not recorded against the session
  (it did not end it).
* A host started since the close holds no closed session. When a frame shows light
  before its first session, the last session's row (by id: a wall clock set back does
  not reorder it) is rebuilt (``reopen_closed_session``) and counts it, as if it had
  closed at that frame, from the last dark frame this host saw (frames lost between
  may have been lit). In such a restarted count the gap before a lit frame is at least
  the host's time since the frame before (a board reset between restarts its uptime).
* When no frame may show the rest (the rail was cut by a critical fault, the board was
  lost, the core closes, a new session begins), ``settle`` counts the time since the
  last frame (since the close, if none was lit after it) at that frame's level, at most
  ``max_dark_s``, unless the rail was cut at the close and nothing was lit since. Once:
  the light ended at that cut. The count goes on: frames read later (piled up behind a
  stall) still add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
means frames went missing after the close."""
RESERVE_S: Final = STUCK_ON_GRACE_S + RAIL_HOLD_S + 2 * TELEMETRY_PERIOD_S
"""Light a host that dies now would not see: the interlock's grace before it cuts,
then the hold of its last heartbeat, and a frame either side."""


@dataclass(slots=True)
class AfterClose:
    """A closed session, still counting the light its board reports after the close."""

    session: ActiveSession
    closed_s: float
    rail_on_at_close: bool
    """The host's rail was on at the close (a critical fault cuts it before)."""
    recorded_j_cm2: dict[int, float]
    """What the session's ledger row holds, per channel (with any kept write)."""
    peak_mw_cm2: dict[int, float] = field(default_factory=dict)
    """The highest average irradiance per channel reported since the close."""
    ignored_off_mw_cm2: dict[int, float] = field(default_factory=dict)
    """The highest level of light that outlived the in-flight grace, or was cut while lit
    (a driver that ignored the OFF); a frame in flight at the close is not one."""
    settled: bool = False
    """``settle`` has counted the unseen light (once: the light ended at the cut)."""
    at_close_j_cm2: dict[int, float] = field(default_factory=dict)
    """The count at the close: the light since is the count less this."""
    lit: bool = False
    """A frame after the close showed light."""
    restarted: bool = False
    """Counting light after the count had ended, or in a row rebuilt at boot: nothing
    was commanded, so no frame is in flight, and a fault found now is not the session's."""
    done: bool = False
    shown: bool = True
    """Status displays show it as the last session (not one rebuilt from its row)."""

    @classmethod
    def at_close(cls, session: ActiveSession, now_s: float, *, rail_on: bool) -> AfterClose:
        """Once the close's own gap is counted and the row holds ``session``'s dose."""
        session.forget_commanded()
        delivered = session.dose.delivered_j_cm2
        return cls(session, now_s, rail_on, dict(delivered), at_close_j_cm2=dict(delivered))

    @classmethod
    def rebuilt(cls, session: ActiveSession, now_s: float, *, rail_on: bool) -> AfterClose:
        """The newest closed row, rebuilt by a host started since its close, when a frame
        shows light before that host's first session: counted as if it closed now."""
        after = cls.at_close(session, now_s, rail_on=rail_on)
        after.shown, after.restarted = False, True
        return after

    @property
    def counting(self) -> bool:
        """Light after the close is being counted: a fault now belongs to this session."""
        return self.lit and not self.done and not self.restarted

    def count(
        self,
        telemetry: Telemetry,
        now_s: float,
        *,
        lit: bool,
        rail_on: bool,
        rail_was_on: bool = False,
    ) -> dict[int, float] | None:
        """A frame after the close; the row's new figure by wavelength, or None.
        ``rail_was_on``: the host's rail was powered at some time since the frame before."""
        if self.done:
            if not lit:
                raised = self._unseen_while_powered(now_s, rail_on, rail_was_on)
                self.session.keep_dark(telemetry, now_s)
                return raised
            self.done = self.settled = False
            self.restarted = True
        if not lit and not self.lit:
            return self._first_dark(telemetry, now_s, rail_on)
        self.lit = self.lit or lit
        self.done = not lit
        session = self.session
        # nothing is in flight in a restarted count: the host's clock bounds the gap
        # from below (a board reset between restarts its uptime)
        host_gap_s = now_s - session.last_frame_s if lit and self.restarted else 0.0
        session.count_frame(telemetry, now_s, at_least_s=host_gap_s)
        levels = session.dose.frame_levels(telemetry)
        _raise_to(self.peak_mw_cm2, levels)
        if lit and (self.restarted or now_s - self.closed_s > IN_FLIGHT_S):
            _raise_to(self.ignored_off_mw_cm2, levels)
        if lit and not self.restarted and now_s - self.closed_s <= IN_FLIGHT_S:
            return None  # perhaps a frame in flight: the dark frame after it raises the row
        return self._raised(reserve=lit or self.restarted)

    def settle(
        self, now_s: float, *, rail_on: bool = False, rail_was_on: bool = False
    ) -> dict[int, float] | None:
        """No frame may show the rest (module docstring); the row's new figure, or None.
        Once the count has ended: the rail powered since the last frame and cut now, by
        the host itself, so uncapped (it was powered at most since that frame)."""
        if self.done:
            return self._unseen_while_powered(now_s, rail_on, rail_was_on, capped=False)
        if self.settled or not (self.lit or self.rail_on_at_close):
            return None
        self.settled = True
        if self.lit:  # cut while lit: no frame showed the driver obey the OFF
            _raise_to(self.ignored_off_mw_cm2, self.peak_mw_cm2)
        since_s = self.session.last_frame_s if self.lit else self.closed_s
        self.session.count_unseen(now_s - since_s)
        return self._raised(reserve=False)

    def _unseen_while_powered(
        self, now_s: float, rail_on: bool, rail_was_on: bool, *, capped: bool = True
    ) -> dict[int, float] | None:
        """The count had ended; no frame since the last one while the rail was powered,
        and it is cut now: a driver that ignored the OFF may have lit, unseen, meanwhile,
        at its highest level seen (``ignored_off_mw_cm2``: none for a healthy driver)."""
        session = self.session
        late = now_s - session.last_frame_s > LATE_FRAME_S
        if not (late and rail_was_on and not rail_on):
            return None
        unseen_s = now_s - session.last_frame_s
        session.count_unseen_at(self.ignored_off_mw_cm2, unseen_s, capped=capped)
        return self._raised(reserve=False)

    def _first_dark(
        self, telemetry: Telemetry, now_s: float, rail_on: bool
    ) -> dict[int, float] | None:
        """Dark at the first frame: on time, or the rail as it was, nothing after the close."""
        self.done = True
        session = self.session
        late = now_s - session.last_frame_s > LATE_FRAME_S
        unseen = late and self.rail_on_at_close and not rail_on
        if unseen:
            session.count_unseen(now_s - self.closed_s)
        session.keep_dark(telemetry, now_s)
        return self._raised(reserve=False) if unseen else None

    def _raised(self, *, reserve: bool) -> dict[int, float] | None:
        """The row's new figure when it no longer holds the count and (``reserve``) the
        peak level for the light a host that dies now would not see; or None. A new figure
        leaves room before the next write: the reserve again, or the light since the close
        once more if that is more (the next write waits for that light to double)."""
        dose = self.session.dose
        recorded = self.recorded_j_cm2
        reserve_s = RESERVE_S if reserve else 0.0
        needed = dose.projected_j_cm2(self.peak_mw_cm2, reserve_s, self.session.time_scale)
        if all(v <= recorded.get(ch, 0.0) for ch, v in needed.items()):
            return None  # the row already holds as much
        for channel, value in needed.items():
            if reserve:
                counted = dose.delivered_j_cm2.get(channel, 0.0)
                since_close = counted - self.at_close_j_cm2.get(channel, 0.0)
                value += max(value - counted, since_close)
            recorded[channel] = max(value, recorded.get(channel, 0.0))
        return self.session.by_wavelength(recorded)


def _raise_to(highest: dict[int, float], levels: dict[int, float]) -> None:
    """``highest`` per channel, raised to ``levels`` where they are higher."""
    for channel, level in levels.items():
        highest[channel] = max(level, highest.get(channel, 0.0))
