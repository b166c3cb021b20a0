"""The safety core: the one object the controller holds to reach the light.

Owns: connecting (ledger first, with crash reconciliation, then the board and its
handshake), routing every board input on arrival (telemetry to the supervisor and the
dose integrator, events, command outcomes; a board lease that ran out while treating
is a fault: LEASE_EXPIRED, or BOARD_NOT_ANSWERING if the board did not hear the
renewals), the per-tick work (staleness, lease renewal with the ramped setpoint,
session end, checkpoints, retrying records the ledger could not take), the session
lifecycle (begin, pause, resume, end), latching faults (outputs off, rail cut if
critical, ledger row, session closed as FAULT, ``FaultLatched`` event) and the snapshot.
The boot self-test and the start guards live in ``safety.core_checks``.

Does not own: the decisions inside each part (``interlock``, ``supervisor``, ``dose``,
``ledger``), the user's state machine or its timers (``firmware_host``), or the event
and snapshot types (``safety.core_events``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from drivers.client import CommandRejected, CommandTimedOut, PortLike
from drivers.errors import DriverError
from drivers.protocol import Event, EventKind, Info, NakCode, OutputOff, SetOutput, Telemetry
from profiles.schema import Profile
from safety.board_kind import BoardKind
from safety.calibration import Calibration
from safety.core_checks import CoreChecks
from safety.core_connect import BoardConnectError, handshake, open_client, open_ledger_again
from safety.core_events import (
    ButtonEdge,
    ContactLost,
    ContactRegained,
    SafetyEvent,
    SessionFinished,
)
from safety.core_session import TELEMETRY_PERIOD_S
from safety.errors import InterlockRefusedError, LedgerError, StartRefusedError
from safety.faults import FaultCode, Outcome
from safety.interlock import Interlock, InterlockMode
from safety.ledger import Ledger
from safety.ledger_guard import reset_ledger
from safety.limits import Limits
from safety.rail import PowerRail
from safety.supervisor import Supervisor
from safety.trusted_clock import TrustedClock

__all__ = [
    "BOARD_FAULT_NAMING_S",
    "CONFIRM_TOLERANCE_S",
    "HOST_STALL_S",
    "LEASE_UNHEARD_S",
    "RAIL_LOST_S",
    "BoardConnectError",
    "SafetyCore",
]

log = logging.getLogger(__name__)

BOARD_FAULT_NAMING_S = 0.04
"""After a BOARD_FAULT event the next frame may name the cause before BOARD_FAULT latches."""
HOST_STALL_S = 2 * TELEMETRY_PERIOD_S
"""A tick this long after the previous one follows a stall of this host: a stale
verdict then waits one tick (``SafetyCore._check_stale``)."""
CONFIRM_TOLERANCE_S = 120.0
"""A caregiver's stated time may differ this much from the clock (typing takes a while)."""
RAIL_LOST_S = 1.0
"""The pad reports its LED power off this long while the host enables it and sends the
heartbeat: the hold circuit or its lines failed (a stall's drop is back in one tick)."""
LEASE_UNHEARD_S = 0.06
"""Output commands unanswered longer than this (an ACK takes a few ms; the client's
ACK timeout) when the board's lease runs out: the board did not hear the renewals."""


class SafetyCore(CoreChecks):
    """Facade over interlock, supervisor, dose and ledger; see docs/architecture.md."""

    @classmethod
    def connect(
        cls,
        port_url: str | None = None,
        *,
        transport: PortLike | None = None,
        state_dir: Path,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        limits: Limits,
        rail: PowerRail,
        board: BoardKind,
        baudrate: int = 115200,
        ledger_backup_dir: Path | None = None,
        uptime_clock: Callable[[], float] | None = None,
    ) -> SafetyCore:
        """Ledger (reconciled), board, handshake; only an unopenable port raises.

        ``board`` is what this host was started for: a real board (``REAL_BOARD``) or a
        simulator at the host's own time scale. A board whose INFO says otherwise is
        refused (``board_mismatch``, latched, rail cut): its claim never sets the scale.
        ``uptime_clock`` is the monotonic time the schedule trusts (default ``clock``; a
        test rig that skips idle days without simulating them gives its own).
        """
        ledger, ledger_problem, again = open_ledger_again(state_dir, wall_clock, ledger_backup_dir)
        try:
            client = open_client(port_url, transport, clock, baudrate)
        except BoardConnectError:
            if ledger is not None:
                ledger.close()
            raise
        rail.cut()
        info, fault = handshake(client, board)
        calibration = Calibration(info.calibration if info is not None and fault is None else ())
        interlock = Interlock(client, limits, calibration, rail, clock)
        core = cls(interlock, ledger, ledger_problem, limits, clock, wall_clock, info, board)
        core._state_dir, core._backup_dir = state_dir, ledger_backup_dir
        if not again:
            core._next_reopen_s = math.inf  # damaged: only a caregiver's reset helps
        if uptime_clock is not None:
            core._trusted = TrustedClock(wall_clock, uptime_clock)
        if fault is not None:
            if fault[0] is FaultCode.BOARD_DISCONNECTED:
                core._board_lost = True
                core._supervisor.watch_from(None)
            core._latch(*fault)
        return core

    def __init__(
        self,
        interlock: Interlock,
        ledger: Ledger | None,
        ledger_problem: str | None,
        limits: Limits,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        info: Info | None,
        board: BoardKind,
    ) -> None:
        supervisor = Supervisor(limits, clock, interlock.calibration)
        super().__init__(interlock, supervisor, ledger, ledger_problem, limits, clock, wall_clock)
        self.info = info
        self._time_scale = board.time_scale  # the host's own setting, never the board's claim
        self._rail_off_since_s: float | None = None
        supervisor.watch_from(clock())

    def fileno(self) -> int | None:
        """The board's fd for the loop's selector; None without one or once it is lost."""
        return None if self._board_lost else self._interlock.client.fileno()

    def wait_readable(self, timeout_s: float) -> bool:
        """Block (or, in-process, advance virtual time) until the board has sent bytes.

        Once the board is lost this lets the timeout pass (``BoardClient.idle``: virtual
        time in-process, a sleep of at most one tick on a real port) and returns False,
        so the loop neither spins nor stalls; the latched fault is pending for ``poll``.
        """
        if self._board_lost:
            self._interlock.client.idle(timeout_s)
            return False
        try:
            return self._interlock.client.wait_readable(timeout_s)
        except DriverError as exc:
            self._lost_board(exc)
            return False

    def poll(self) -> list[SafetyEvent]:
        """Handle everything the board sent, on arrival; return what the controller must see."""
        self._poll_inputs()
        return self._drain()

    def tick(self) -> list[SafetyEvent]:
        """Every 20 ms: staleness, answering, session end, lease renewal, checkpoint, and
        the rail's heartbeat (docs/hardware.md): in every state, from the loop's own
        tick, so a host that stops ticking lets the hold circuit drop the rail."""
        now_s = self._clock()
        hold = False
        if not self._board_lost:
            hold = self._check_stale(now_s)
            if self._interlock.not_answering():
                self._latch(FaultCode.BOARD_NOT_ANSWERING, "output commands are not acknowledged")
        self._tick_session(now_s, hold)
        self._last_tick_s = now_s
        self._retry_unwritten(now_s)
        self._sample_link(now_s)
        self._check_clock(now_s)
        self._interlock.heartbeat()  # last: a fault latched this tick has cut the rail
        return self._drain()

    def _check_stale(self, now_s: float) -> bool:
        """Latch TELEMETRY_STALE when the newest frame is too old. True: hold this tick.

        Right after a stall of this host (its previous tick more than ``HOST_STALL_S``
        ago) the verdict waits one tick, never two in a row: a host that was not
        running cannot tell a silent board from frames it has not been sent yet (a
        simulated board on the same machine stops with it). Meanwhile nothing acts on
        the old frame: the tick is held (no renewal, no new setpoint)."""
        age_s = now_s - self._last_frame_s
        if age_s <= self._limits.telemetry_stale_s:
            self._stale_deferred = False
            return False
        stalled_s = now_s - self._last_tick_s
        if stalled_s > HOST_STALL_S and not self._stale_deferred and self._fault is None:
            self._stale_deferred = True
            log.warning(
                "no telemetry for %.0f ms after this host stood still for %.0f ms: "
                "holding one tick before judging",
                age_s * 1000,
                stalled_s * 1000,
            )
            return True
        self._latch(FaultCode.TELEMETRY_STALE, f"no telemetry for {age_s * 1000:.0f} ms")
        return False  # also after an earlier fault: cut

    # ------------------------------------------------------------ session lifecycle

    def begin_session(self, rx: Profile, profile_sha256: str) -> None:
        """Check every guard, open the ledger row, arm the interlock; StartRefusedError if not."""
        reason = self.start_refusal(rx)
        if reason is not None:
            raise StartRefusedError(reason)
        session = self._open_session(rx, profile_sha256, self._time_scale)
        self._supervisor.set_skin_stop_c(rx.skin_temp_stop_c)
        self._session = session
        try:
            self._interlock.arm(session.plan)
        except InterlockRefusedError as exc:
            self._latch(exc.code, str(exc))
            raise StartRefusedError(f"The pad refused this prescription: {exc}") from exc
        log.info("session %d started (%s)", session.session_id, rx.id)

    def pause(self, reason: str) -> None:
        """Outputs off, treating time and dose stop; the session stays open."""
        session = self._session
        if session is not None and self._interlock.mode is InterlockMode.TREATING:
            log.info("session %d paused: %s", session.session_id, reason)
            self._interlock.pause()
            session.paused = True

    def resume(self) -> None:
        """Back to treating; StartRefusedError (nothing latched) when it may not."""
        session = self._session
        if session is None or self._interlock.mode is not InterlockMode.PAUSED:
            raise StartRefusedError("There is no paused session to resume.")
        if not self._interlock.contact:
            raise StartRefusedError("Place the pad on the skin to resume: there is no contact.")
        refusal = self.rail_refusal()
        if refusal is not None:
            raise StartRefusedError(refusal)
        self._interlock.resume()
        session.paused = False
        self._contact_lost = False

    def end_session(self, outcome: Outcome) -> None:
        """Outputs off and the session closed in the ledger with ``outcome``."""
        if self._session is not None:
            self._finish(outcome, None)

    def all_off(self) -> None:
        """Best-effort OFF, rail cut, any open session closed. Never raises."""
        for action in (self._interlock.off, self._interlock.cut_rail, self._close_session_now):
            try:
                action()
            except Exception:
                log.exception("all_off: %s failed; continuing", action)
        self._self_test_passed = False

    def confirm_clock(self, who: str, stated: datetime) -> str | None:
        """A caregiver states the date and time (``stated``, aware) and confirms the clock
        shows it; None, or why not. Never shortens an interval: the next start waits one
        full interval from now (``Ledger.confirm_clock``)."""
        if self._session is not None:
            return "The clock can be confirmed only when no session is running."
        ledger = self._ledger
        if ledger is None:
            return self._ledger_problem
        now = self._wall_clock()
        if abs((now - stated).total_seconds()) > CONFIRM_TOLERANCE_S:
            return (
                f"The clock reads {now.astimezone().strftime('%Y-%m-%d %H:%M')}, not "
                f"{stated.astimezone().strftime('%Y-%m-%d %H:%M')}. Set the clock to the "
                "right date and time first, then confirm it."
            )
        try:
            stamp = now.isoformat(timespec="seconds")
            ledger.confirm_clock(f"{who} confirmed the clock reads {stamp}")
        except LedgerError as exc:
            return str(exc)
        self._trusted.confirm()
        self._check_clock_now()
        return None

    def reset_ledger(self, who: str) -> str | None:
        """A caregiver resets a record that was lost or damaged with no usable backup;
        None, or why not. The first session then waits one full interval."""
        if self._session is not None:
            return "The record can be reset only when no session is running."
        ledger = self._ledger
        try:
            if ledger is not None and ledger.lost_refusal() is None:
                return "The treatment record is not lost; there is nothing to reset."
            if ledger is not None:
                ledger.close()
            self._ledger = reset_ledger(self._state_dir, self._wall_clock, who, self._backup_dir)
        except (LedgerError, OSError) as exc:
            self._ledger = None
            self._ledger_problem = f"The treatment record cannot be reset: {exc}"
            return self._ledger_problem
        self._ledger_problem = None
        return None

    def close(self) -> None:
        self.all_off()
        problem = self._write_unwritten()
        if problem is not None:
            log.error("closing with %d record(s) unwritten: %s", len(self._unwritten), problem)
        self._interlock.client.close()
        if self._ledger is not None:
            self._ledger.close()

    # ------------------------------------------------------------ inputs

    def _poll_inputs(self) -> None:
        if self._board_lost:
            return
        try:
            inputs = self._interlock.client.poll()
        except DriverError as exc:
            self._lost_board(exc)
            return
        self._interlock.note_inputs(inputs)
        for item in inputs:
            if isinstance(item, Telemetry):
                self._on_telemetry(item)
            elif isinstance(item, Event):
                self._on_event(item)
            elif isinstance(item, CommandTimedOut):
                detail = f"no answer to {type(item.message).__name__} after all retries"
                self._latch(FaultCode.BOARD_NOT_ANSWERING, detail)
            elif isinstance(item, CommandRejected):
                self._on_rejected(item)

    def _on_telemetry(self, telemetry: Telemetry) -> None:
        self._last_telemetry = telemetry
        self._last_frame_s = self._clock()
        self._frames_seen += 1
        session = self._session
        if session is not None:  # count first: a fault in this frame ends the session
            session.count_frame(telemetry, self._last_frame_s)
        if self._interlock.observe(telemetry):
            self._latch(FaultCode.STUCK_ON, "the board reports output while commanded off")
        self._watch_rail(telemetry.rail_enabled)
        self._track_contact(telemetry.contact)
        verdict = self._supervisor.check(telemetry, self._interlock.commanded_output())
        if verdict.fault is not None:
            self._latch(verdict.fault, verdict.message)
        self._update_warnings(verdict.warnings)

    def _track_contact(self, contact: bool) -> None:
        session = self._session
        if not contact and session is not None and self._interlock.mode is InterlockMode.TREATING:
            self.pause("skin contact lost")
            self._contact_lost = True
            self._pending.append(ContactLost())
        elif contact and self._contact_lost:
            self._contact_lost = False
            self._pending.append(ContactRegained())

    def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind in (EventKind.BUTTON_DOWN, EventKind.BUTTON_UP):
            self._pending.append(ButtonEdge(kind is EventKind.BUTTON_DOWN, self._clock()))
        elif kind is EventKind.BOARD_RESET:
            self._self_test_passed = False
            if self._session is not None:
                self._latch(FaultCode.BOARD_RESET, f"board reset (reason {event.detail})")
            else:
                log.warning("board reset while idle (reason %d); self-test needed", event.detail)
        elif kind in (EventKind.BOARD_FAULT, EventKind.MAX_ON_TIME):
            self._on_board_fault(f"board event {kind.name} ({event.detail:#06x})")
        elif kind is EventKind.LEASE_EXPIRED and self._treating():
            self._on_lease_expired()
        else:  # a lease that ran out after a pause or stop is not a fault
            log.info("board event %s (%d)", kind.name, event.detail)

    def _watch_rail(self, reported_on: bool) -> None:
        """``RAIL_LOST`` when the rail stays off for ``RAIL_LOST_S`` though it is enabled."""
        if reported_on or not self._interlock.rail.enabled:
            self._rail_off_since_s = None
            return
        now_s = self._clock()
        if self._rail_off_since_s is None:
            self._rail_off_since_s = now_s
        elif now_s - self._rail_off_since_s > RAIL_LOST_S:
            self._rail_off_since_s = None
            self._latch(
                FaultCode.RAIL_LOST,
                f"the pad reports its LED power off for more than {RAIL_LOST_S:g} s while "
                f"enabled ({self._interlock.heartbeat_failures} failed heartbeats)",
            )

    def _treating(self) -> bool:
        return self._session is not None and self._interlock.mode is InterlockMode.TREATING

    def _on_lease_expired(self) -> None:
        """The board turned off by itself while treating: renewals did not reach it in time.

        Never carried on as if nothing happened. Unanswered renewals mean the board did
        not hear them (BOARD_NOT_ANSWERING); answered ones, that the host did not send
        them in time: it hung or stalled (LEASE_EXPIRED).
        """
        unanswered_s = self._interlock.unanswered_s()
        if unanswered_s > LEASE_UNHEARD_S:
            detail = f"the board's lease ran out; commands unanswered for {unanswered_s:.2f} s"
            self._latch(FaultCode.BOARD_NOT_ANSWERING, detail)
        else:
            self._latch(FaultCode.LEASE_EXPIRED, "output commands were not renewed in time")

    def _on_board_fault(self, detail: str) -> None:
        """Outputs off now; the next frame's flags and readings name the cause."""
        self._interlock.off()
        if self._board_fault is None:
            self._board_fault = (self._clock(), detail)

    def _on_rejected(self, item: CommandRejected) -> None:
        if isinstance(item.message, SetOutput) and item.code is NakCode.NO_CONTACT:
            self._track_contact(False)
            return
        if isinstance(item.message, SetOutput | OutputOff):
            name = type(item.message).__name__
            self._latch(FaultCode.BOARD_FAULT, f"board refused {name}: {item.code.name}")
        else:
            log.warning("board refused %r: %s", item.message, item.code.name)

    # ------------------------------------------------------------ ticking the session

    def _tick_session(self, now_s: float, hold: bool) -> None:
        held = self._board_fault
        if held is not None and self._fault is None and now_s - held[0] > BOARD_FAULT_NAMING_S:
            self._latch(FaultCode.BOARD_FAULT, held[1])  # no frame named it: latch as is
        session = self._session
        if session is None or held is not None:
            self._interlock.renew(False)
            return
        if self._interlock.output_commanded and now_s > self._interlock.lease_until_s:
            self._on_lease_expired()  # we stalled past the lease: dark, whether or not
            return  # the board's EVENT got through (an overrun can lose it)
        session.paused = self._interlock.mode is not InterlockMode.TREATING
        session.advance(now_s)
        if session.dose.done() or session.time_is_up():
            self._finish(Outcome.COMPLETED, None)
            self._pending.append(SessionFinished(Outcome.COMPLETED))
            return
        if hold:  # telemetry too old to act on; the lease runs on (see _check_stale)
            return
        if not session.paused:
            try:
                self._interlock.command(session.setpoint_mw_cm2())
            except InterlockRefusedError as exc:
                self._latch(exc.code, str(exc))
                return
        self._interlock.renew(self._supervisor.latched is None)
        if session.checkpoint_due(now_s):
            self._checkpoint(session, now_s)
