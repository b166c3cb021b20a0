"""The safety core: the one object the controller holds to reach the light. Wiring only.

Owns the wiring of its parts and nothing they own: ``poll`` routes each board input on
arrival (a frame to the board watch, the session's dose, the interlock and the
supervisor; events; command outcomes), ``tick`` does the per-tick work (stale
telemetry, lease renewal with the ramped setpoint, session end, checkpoints, records
kept to retry, the link and the clock), and begin/pause/resume/end, acknowledgement and
``snapshot`` call into the parts. Every fault goes through ``_latch`` into the one
``FaultLatch``; a newly latched fault is then recorded and closes the session.

The parts: ``fault_latch`` (the latch, rail cut, unwritten records), ``interlock`` (the
board client, the only way to the light; its mode is derived), ``supervisor`` (the pure
per-frame check), ``board_watch`` (the board's last word and its timers),
``core_session`` (the open session's dose and clock), ``after_close`` (the light a
closed session's board still reports), ``ledger_handle``,
``active_warnings``, ``trusted_clock``, ``link_health``; the functions ``self_test``,
``start_guards`` and ``snapshot``. docs/architecture.md follows a frame through them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from drivers.client import BoardClient, CommandRejected, CommandTimedOut, PortLike
from drivers.errors import BoardDisconnectedError, DriverError
from drivers.protocol import (
    ClearFaults,
    Event,
    EventKind,
    Info,
    NakCode,
    OutputOff,
    SetOutput,
    Telemetry,
)
from profiles.schema import Profile
from safety.active_warnings import ActiveWarnings
from safety.after_close import AfterClose
from safety.board_kind import BoardKind
from safety.board_watch import (
    BOARD_FAULT_NAMING_S,
    HOST_STALL_S,
    RAIL_LOST_S,
    BoardWatch,
    Staleness,
)
from safety.calibration import Calibration
from safety.core_connect import BoardConnectError, handshake, open_client
from safety.core_events import (
    ButtonEdge,
    ContactLost,
    ContactRegained,
    FaultLatched,
    FaultStatus,
    SafetyEvent,
    SafetySnapshot,
    SessionFinished,
)
from safety.core_session import ActiveSession, open_session, reopen_closed_session
from safety.errors import InterlockRefusedError, LedgerError, StartRefusedError
from safety.fault_latch import FaultLatch
from safety.faults import FAULT_MESSAGES, FaultCode, Outcome, WarningCode
from safety.interlock import Interlock, InterlockMode
from safety.ledger import LedgerConnection
from safety.ledger_events import EventKind as LedgerEventKind
from safety.ledger_handle import LedgerHandle
from safety.ledger_schema import SessionRecord
from safety.limits import Limits
from safety.link_health import LinkMonitor, link_health
from safety.log_limit import RepeatLimiter
from safety.rail import PowerRail
from safety.self_test import SELF_TEST_STEP_TIMEOUT_S, self_test_problem
from safety.snapshot import build_snapshot
from safety.start_guards import (
    CoreState,
    GuardParts,
    next_start_allowed_at,
    rail_refusal,
    start_refusal,
)
from safety.supervisor import Supervisor
from safety.trusted_clock import TrustedClock

__all__ = [
    "BOARD_FAULT_NAMING_S",
    "CLEAR_FAULTS_TIMEOUT_S",
    "CONFIRM_TOLERANCE_S",
    "HOST_STALL_S",
    "LEASE_UNHEARD_S",
    "NEEDS_RESTART",
    "RAIL_LOST_S",
    "BoardConnectError",
    "SafetyCore",
]

log = logging.getLogger(__name__)

CONFIRM_TOLERANCE_S: Final = 120.0
"""A caregiver's stated time may differ this much from the clock (typing takes a while)."""
LEASE_UNHEARD_S: Final = 0.06
"""Output commands unanswered longer than this (an ACK takes a few ms; the client's
ACK timeout) when the board's lease runs out: the board did not hear the renewals."""
CLEAR_FAULTS_TIMEOUT_S: Final = 0.5
_WAIT_SLICE_S: Final = 0.02
NEEDS_RESTART: Final = frozenset(
    {
        FaultCode.PROTOCOL_VERSION,
        FaultCode.CALIBRATION_CRC,
        FaultCode.BOARD_DISCONNECTED,
        FaultCode.BOARD_MISMATCH,
    }
)
"""Faults an acknowledgement cannot clear: the board must be checked and nirpad restarted."""


class SafetyCore:
    """Wires interlock, supervisor, fault latch, dose and ledger; see the module notes."""

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
        ledger_connection: type[sqlite3.Connection] = LedgerConnection,
    ) -> SafetyCore:
        """Ledger (reconciled), board, handshake; only an unopenable port raises.

        ``board`` is what this host was started for: a real board (``REAL_BOARD``) or a
        simulator at the host's own time scale. A board whose INFO says otherwise is
        refused (``board_mismatch``, latched, rail cut): its claim never sets the scale.
        ``uptime_clock`` is the monotonic time the schedule trusts (default ``clock``; a
        test rig that skips idle days without simulating them gives its own).
        ``ledger_connection`` is the class every ledger connection of this core is made
        with (``safety.ledger.LedgerConnection``; a test rig's injects storage faults).
        """
        ledgers = LedgerHandle(state_dir, wall_clock, clock, ledger_backup_dir, ledger_connection)
        try:
            client = open_client(port_url, transport, clock, baudrate)
        except BoardConnectError:
            ledgers.close()
            raise
        rail.cut()
        info, fault = handshake(client, board)
        calibration = Calibration(info.calibration if info is not None and fault is None else ())
        core = cls(
            client,
            calibration,
            ledgers,
            rail,
            limits=limits,
            clock=clock,
            wall_clock=wall_clock,
            info=info,
            board=board,
            uptime_clock=uptime_clock,
        )
        if fault is not None:
            if fault[0] is FaultCode.BOARD_DISCONNECTED:
                core._watch.lost = True
            core._latch(*fault)
        return core

    def __init__(
        self,
        client: BoardClient,
        calibration: Calibration,
        ledgers: LedgerHandle,
        rail: PowerRail,
        *,
        limits: Limits,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        info: Info | None,
        board: BoardKind,
        uptime_clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock, self._wall_clock, self._limits = clock, wall_clock, limits
        self._ledgers = ledgers
        self._faults = FaultLatch(
            rail, ledgers.ledger_or_raise, wall_clock, outputs_off=lambda: self._interlock.off()
        )
        self._interlock = Interlock(client, limits, calibration, rail, clock, self._faults)
        self._supervisor = Supervisor(limits, clock, calibration)
        self._watch = BoardWatch(clock(), limits.telemetry_stale_s)
        self._warnings = ActiveWarnings()
        self._link = LinkMonitor()
        self._trusted = TrustedClock(wall_clock, uptime_clock or clock)  # the schedule's "now"
        self._guards = GuardParts(
            limits, self._interlock, self._supervisor, ledgers, self._trusted, wall_clock
        )
        self.info = info
        self._time_scale = board.time_scale  # the host's own setting, never the board's claim
        self._session: ActiveSession | None = None
        self._after_close: AfterClose | None = None  # the last session, closed
        self._row_at_boot = _newest_row(ledgers)  # counts light before the first session
        self._dark_at_boot: Telemetry | None = None  # the last dark frame before that light
        self._dark_at_boot_s = 0.0
        self._beats_at_frame = 0  # the rail's heartbeats at the last frame between sessions
        self._pending: list[SafetyEvent] = []
        self._button_down = False  # the level last passed on as a ``ButtonEdge``
        self._self_test_passed = False
        self._event_log = RepeatLimiter(log, clock)  # a board can repeat an EVENT every frame

    # ------------------------------------------------------------ the loop's calls

    def fileno(self) -> int | None:
        """The board's fd for the loop's selector; None without one or once it is lost."""
        return None if self._watch.lost else self._interlock.client.fileno()

    def wait_readable(self, timeout_s: float) -> bool:
        """Block (or, in-process, advance virtual time) until the board has sent bytes.

        Once the board is lost this lets the timeout pass (``BoardClient.idle``: virtual
        time in-process, a sleep of at most one tick on a real port) and returns False,
        so the loop neither spins nor stalls; the latched fault is pending for ``poll``.
        """
        if self._watch.lost:
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
        if not self._watch.lost:
            hold = self._check_stale(now_s)
            if self._interlock.not_answering():
                self._latch(FaultCode.BOARD_NOT_ANSWERING, "output commands are not acknowledged")
        self._tick_session(now_s, hold)
        self._watch.last_tick_s = now_s
        self._faults.retry_unwritten(now_s)
        self._sample_link(now_s)
        self._check_clock(now_s)
        self._interlock.heartbeat()  # last: a fault latched this tick has cut the rail
        return self._drain()

    @property
    def fault(self) -> FaultStatus | None:
        """The latched fault, or None (the latch's own; nobody keeps a copy)."""
        return self._faults.status

    @property
    def needs_restart(self) -> bool:
        """A fault is latched that no acknowledgement can clear in this process: one of
        ``NEEDS_RESTART``, a board that is lost, or any fault after a handshake that got
        no INFO (the board's calibration was never read: even a board that answers later
        fails every self-test)."""
        status = self._faults.status
        if status is None:
            return False
        return status.code in NEEDS_RESTART or self._watch.lost or self.info is None

    def snapshot(self) -> SafetySnapshot:
        """Figures for status displays; the last session's stay until the next begins.
        The pad's readings are shown only while its telemetry is current."""
        return build_snapshot(
            self._watch.current_telemetry(self._clock()),
            calibration=self._interlock.calibration,
            faults=self._faults,
            warnings=self._warnings,
            link=link_health(self._interlock.client, self._link),
            rail_enabled=self._interlock.rail.enabled,
            self_test_passed=self._self_test_passed,
            session=self._session,
            last_session=self._shown_last_session(),
        )

    # ------------------------------------------------------------ session lifecycle

    def begin_session(self, rx: Profile, profile_sha256: str) -> None:
        """Check every guard, open the ledger row, arm the interlock; StartRefusedError if not."""
        reason = self.start_refusal(rx)
        if reason is not None:
            raise StartRefusedError(reason)
        try:
            session = open_session(
                rx,
                profile_sha256,
                self._time_scale,
                calibration=self._interlock.calibration,
                limits=self._limits,
                ledger=self._ledgers.ledger_or_raise(),
                now_s=self._clock(),
            )
        except LedgerError as exc:
            raise StartRefusedError(str(exc)) from exc
        self._supervisor.set_skin_stop_c(rx.skin_temp_stop_c)
        self._settle_after_close()  # any light from here on is this session's
        self._after_close = self._row_at_boot = self._dark_at_boot = None
        self._session = session
        try:
            self._interlock.arm(session.plan)
        except InterlockRefusedError as exc:
            self._latch(exc.code, str(exc))
            raise StartRefusedError(f"The pad refused this prescription: {exc}") from exc
        log.info("session %d started (%s)", session.session_id, rx.id)

    def pause(self, reason: str) -> None:
        """Outputs off, treating time and dose stop; the session stays open. Logs the one
        line of a pause, ``reason`` saying why and who asked."""
        session, mode = self._session, self._interlock.mode
        if session is None or mode is not InterlockMode.TREATING:
            log.info(
                "pause (%s) with nothing treating (interlock %s): the light is off", reason, mode
            )
            return
        log.info("session %d paused: %s", session.session_id, reason)
        self._interlock.pause()

    def resume(self, reason: str | None = None) -> None:
        """Back to treating; StartRefusedError (nothing latched) when it may not. Logs the
        one line of a resume, ``reason`` saying who asked."""
        if self._session is None or self._interlock.mode is not InterlockMode.PAUSED:
            raise StartRefusedError("There is no paused session to resume.")
        if not self._interlock.contact:
            raise StartRefusedError("Place the pad on the skin to resume: there is no contact.")
        refusal = self.rail_refusal()
        if refusal is not None:
            raise StartRefusedError(refusal)
        self._interlock.resume()
        self._watch.contact_lost = False
        shown = "" if reason is None else f": {reason}"
        log.info("session %d resumed%s", self._session.session_id, shown)

    def end_session(self, outcome: Outcome) -> None:
        """Outputs off and the session closed in the ledger with ``outcome``."""
        if self._session is not None:
            self._finish(outcome, None)

    def all_off(self) -> None:
        """Best-effort OFF, rail cut, any open session closed. Never raises."""
        actions = (
            self._interlock.off,
            self._interlock.cut_rail,
            self._close_session_now,
            self._settle_after_close,
        )
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("all_off: %s failed; continuing", action)
        self._self_test_passed = False

    def close(self) -> None:
        self.all_off()
        problem = self._faults.write_unwritten()
        if problem is not None:
            log.error("closing with %d record(s) unwritten: %s", self._faults.unwritten, problem)
        self._interlock.client.close()
        self._ledgers.close()

    # ------------------------------------------------------------ gates

    def self_test(self) -> str | None:
        """Run the boot self-test; None when passed, else the reason (and a latched fault)."""
        self._self_test_passed = False
        self._faults.write_unwritten()  # a chance for records kept while the ledger was full
        problem = self._self_test_gate() or self_test_problem(
            self._interlock, self._faults, self._await_frame, self._lost_board
        )
        if problem is None:
            self._self_test_passed = True
            log.info("self-test passed")
            return None
        log.error("self-test failed: %s", problem)
        if self._faults.status is None:
            self._latch(FaultCode.SELF_TEST_FAILED, problem)
        return problem

    def _self_test_gate(self) -> str | None:
        if self._faults.status is not None:
            then = "Restart nirpad." if self.needs_restart else "Acknowledge the fault first."
            return f"{self._faults.status.message} {then}"
        if self._session is not None:
            return "A session is running; the self-test runs only between sessions."
        return None

    def _await_frame(self, wanted: Callable[[Telemetry], bool]) -> Telemetry | None:
        """A new telemetry frame satisfying ``wanted`` within the step timeout, or None."""
        deadline_s = self._clock() + SELF_TEST_STEP_TIMEOUT_S
        seen = self._watch.frames_seen
        while True:
            self._interlock.heartbeat()  # the loop does not tick yet: keep the rail held
            self._poll_inputs()
            tm = self._watch.last_telemetry
            if self._watch.frames_seen > seen and tm is not None and wanted(tm):
                return tm
            remaining_s = deadline_s - self._clock()
            if remaining_s <= 0 or self._watch.lost:
                return None
            self.wait_readable(min(remaining_s, _WAIT_SLICE_S))

    def start_refusal(self, rx: Profile) -> str | None:
        """The first reason ``start`` is not allowed now, in words; None if it is."""
        return start_refusal(rx, self._guards, self._core_state())

    def rail_refusal(self) -> str | None:
        """A refusal while the pad reports its LED power off though the host enables it."""
        return rail_refusal(self._watch.last_telemetry, self._interlock.rail.enabled)

    def next_start_allowed_at(self, rx: Profile) -> datetime | None:
        """When the schedule next allows ``rx`` to start (UTC); None if it does now, or
        while a guard before the schedule refuses (``start_guards``)."""
        return next_start_allowed_at(rx, self._guards, self._core_state())

    def _core_state(self) -> CoreState:
        return CoreState(
            self._faults.status,
            self._session is not None,
            self._self_test_passed,
            self._watch.last_telemetry,
        )

    # ------------------------------------------------------------ a caregiver's actions

    def acknowledge_fault(self) -> str | None:
        """Clear the latch once its cause is gone (then a new self-test is needed)."""
        status = self._faults.status
        if status is None:
            return None
        refusal = self._clear_refusal(status, write=True)
        if refusal is not None:
            return refusal
        try:
            self._interlock.client.request(ClearFaults(), CLEAR_FAULTS_TIMEOUT_S)
        except BoardDisconnectedError as exc:
            self._lost_board(exc)
            return f"{FAULT_MESSAGES[FaultCode.BOARD_DISCONNECTED]} ({exc})"
        except DriverError as exc:
            return f"The pad did not accept the reset: {exc}"
        self._faults.clear()
        self._supervisor.reset()
        self._watch.clear_board_fault()
        self._self_test_passed = False
        log.info("a fresh self-test is required after %s", status.code)
        return None

    def fault_clear_refusal(self) -> str | None:
        """Why an acknowledgement would be refused now, in ``acknowledge_fault``'s words;
        None with no fault latched, or when it would be tried. Reads only: the records
        kept to retry are not written here."""
        status = self._faults.status
        return None if status is None else self._clear_refusal(status, write=False)

    def _clear_refusal(self, status: FaultStatus, *, write: bool) -> str | None:
        if self.needs_restart:
            return f"{status.message} Check the pad and its cable, then restart nirpad."
        if write:
            problem = self._faults.write_unwritten()
        else:
            unwritten = self._faults.unwritten
            problem = f"{unwritten} record(s) are not written yet." if unwritten else None
        if problem is not None:
            return (
                "The fault cannot be cleared until the treatment record has saved it: "
                f"{problem} Free some space or check the storage, then try again."
            )
        if self._watch.is_stale(self._clock()):
            return "the pad is not reporting its state; check the cable"
        return self._supervisor.cause_present(status.code)

    def latch_fault(self, code: FaultCode, detail: str) -> None:
        """Latch a fault found outside the safety layer (the controller's own errors).

        Same path as every other fault: outputs off, rail cut if critical, a ledger
        row, the open session closed as FAULT, and a ``FaultLatched`` event.
        """
        self._latch(code, detail)

    def confirm_clock(self, who: str, stated: datetime) -> str | None:
        """A caregiver states the date and time (``stated``, aware) and confirms the clock
        shows it; None, or why not. Never shortens an interval: the next start waits one
        full interval from now (``Ledger.confirm_clock``)."""
        if self._session is not None:
            return "The clock can be confirmed only when no session is running."
        ledger = self._ledgers.ledger
        if ledger is None:
            return self._ledgers.problem
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
        self._trusted.check_now()
        self._check_clock(self._clock())
        return None

    def reset_ledger(self, who: str) -> str | None:
        """A caregiver resets a record that was lost or damaged with no usable backup;
        None, or why not. The first session then waits one full interval."""
        if self._session is not None:
            return "The record can be reset only when no session is running."
        return self._ledgers.reset(who)

    # ------------------------------------------------------------ faults

    def _latch(self, code: FaultCode, detail: str) -> None:
        """Into the one latch; a newly latched fault is recorded and closes the session."""
        self._faults.latch(code, detail)
        if not self._interlock.rail.enabled:  # no light from here: count what was unseen
            self._settle_after_close()
        news = self._faults.take_unannounced()
        if news is None:
            return
        code, detail = news
        status = self._faults.status
        assert status is not None
        self._pending.append(FaultLatched(code, status.message))
        session = self._session
        self._faults.record_fault(code, detail, self._session_of_fault())
        if session is not None:
            self._finish(Outcome.FAULT, code)

    def _session_of_fault(self) -> int | None:
        """The open session, or the closed one whose light after the close is counting."""
        if self._session is not None:
            return self._session.session_id
        after = self._after_close
        return after.session.session_id if after is not None and after.counting else None

    def _lost_board(self, exc: DriverError) -> None:
        self._watch.lost = True
        self._latch(FaultCode.BOARD_DISCONNECTED, str(exc))

    # ------------------------------------------------------------ inputs

    def _poll_inputs(self) -> None:
        if self._watch.lost:
            return
        try:
            inputs = self._interlock.client.poll()
        except DriverError as exc:
            self._lost_board(exc)
            return
        self._interlock.note_inputs(inputs)
        for item in inputs:
            if isinstance(item, Telemetry):
                self._check_uptime(item.uptime_ms)
                self._on_telemetry(item)
            elif isinstance(item, Event):
                self._on_event(item)
            elif isinstance(item, CommandTimedOut):
                detail = f"no answer to {type(item.message).__name__} after all retries"
                self._latch(FaultCode.BOARD_NOT_ANSWERING, detail)
            elif isinstance(item, CommandRejected):
                self._on_rejected(item)

    def _check_uptime(self, uptime_ms: int) -> None:
        """A board whose telemetry's uptime went back has reset, even if its BOARD_RESET
        was lost (a noisy link drops that one frame)."""
        went_back = self._watch.uptime_went_back(uptime_ms)
        if went_back is not None:
            self._on_board_reset(f"{went_back}; its reset event was lost")

    def _on_telemetry(self, telemetry: Telemetry) -> None:
        """A frame: board watch, dose, interlock, then the supervisor's verdict."""
        now_s = self._clock()
        self._watch.on_frame(telemetry, now_s)
        interlock = self._interlock
        session = self._session
        raised = None
        if session is not None:  # count first: a fault in this frame ends the session
            session.count_frame(telemetry, now_s, paused=interlock.light_held, host_clock=True)
        else:  # light between sessions is the last one's, even a session before a restart
            lit = self._supervisor.reports_light(telemetry)
            after = self._after_close or self._newest_row_lit(telemetry, now_s, lit=lit)
            beats, self._beats_at_frame = self._beats_at_frame, interlock.rail.heartbeats
            if after is not None:  # the rail beats only while powered
                raised = after.count(
                    telemetry, now_s, lit=lit, rail_on=interlock.rail.enabled,
                    rail_was_on=beats != self._beats_at_frame,
                )  # fmt: skip
        if interlock.observe(telemetry):
            self._latch(FaultCode.STUCK_ON, "the board reports output while commanded off")
        reported_on = telemetry.rail_enabled  # the line is read only when the pad says off
        if self._watch.rail_lost(reported_on, reported_on or interlock.rail.enabled, now_s):
            self._latch(
                FaultCode.RAIL_LOST,
                f"the pad reports its LED power off for more than {RAIL_LOST_S:g} s while "
                f"enabled ({interlock.heartbeat_failures} failed heartbeats)",
            )
        self._track_contact(telemetry.contact)
        if telemetry.button != self._button_down:  # its EVENT was lost (never re-sent)
            self._button_edge(telemetry.button)
        verdict = self._supervisor.check(telemetry, interlock.commanded_output(), self._faults.code)
        if verdict.fault is not None:
            self._latch(verdict.fault, verdict.message)
        self._pending += self._warnings.from_frame(verdict.warnings)
        if raised is not None:  # last: the rail is cut before a slow write
            self._raise_closed_row(raised)

    def _track_contact(self, contact: bool) -> None:
        """Contact lost while treating: dark at once (until a resume), and ``ContactLost``
        once; the state machine decides to pause. ``ContactRegained`` follows when it is
        back; the light never comes back by itself."""
        watch = self._watch
        if not contact and not watch.contact_lost and self._treating():
            self._interlock.hold_dark()
            watch.contact_lost = True
            self._pending.append(ContactLost())
        elif contact and watch.contact_lost:
            watch.contact_lost = False
            self._pending.append(ContactRegained())

    def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind in (EventKind.BUTTON_DOWN, EventKind.BUTTON_UP):
            self._button_edge(kind is EventKind.BUTTON_DOWN)
        elif kind is EventKind.BOARD_RESET:
            self._watch.note_reset()
            self._on_board_reset(f"reason {event.detail}")
        elif kind in (EventKind.BOARD_FAULT, EventKind.MAX_ON_TIME):
            self._on_board_fault(f"board event {kind.name} ({event.detail:#06x})")
        elif kind is EventKind.LEASE_EXPIRED and self._treating():
            self._on_lease_expired()
        else:  # a lease that ran out after a pause or stop is not a fault
            message = f"board event {kind.name} ({event.detail})"
            self._event_log.log(kind.name, logging.INFO, message)

    def _button_edge(self, down: bool) -> None:
        """The button's EVENT, or a frame whose button flag differs from the last edge
        passed on: events are sent once, the flag in every frame (docs/protocol.md §4)."""
        self._button_down = down
        self._pending.append(ButtonEdge(down, self._clock()))

    def _on_board_reset(self, why: str) -> None:
        """A fault during a session; while idle, a new self-test (logged once a minute at
        most: a board in a reset loop sends one every frame)."""
        self._self_test_passed = False
        if self._session is not None:
            self._latch(FaultCode.BOARD_RESET, f"board reset ({why})")
            return
        message = f"board reset while idle ({why}); self-test needed"
        self._event_log.log("board_reset", logging.WARNING, message)

    def _treating(self) -> bool:
        """A session is open and lit, or may be: treating, not paused, not held dark."""
        interlock = self._interlock
        return (
            self._session is not None
            and interlock.mode is InterlockMode.TREATING
            and not interlock.held_dark
        )

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
        self._watch.hold_board_fault(self._clock(), detail)

    def _on_rejected(self, item: CommandRejected) -> None:
        if isinstance(item.message, SetOutput) and item.code is NakCode.NO_CONTACT:
            self._track_contact(False)
            return
        if isinstance(item.message, SetOutput | OutputOff):
            name = type(item.message).__name__
            self._latch(FaultCode.BOARD_FAULT, f"board refused {name}: {item.code.name}")
        else:
            log.warning("board refused %r: %s", item.message, item.code.name)

    # ------------------------------------------------------------ ticking

    def _check_stale(self, now_s: float) -> bool:
        """Latch TELEMETRY_STALE when the newest frame is too old. True: hold this tick."""
        staleness = self._watch.staleness(now_s, may_defer=self._faults.status is None)
        if staleness is Staleness.HOLD:
            return True
        if staleness is Staleness.STALE:  # also after an earlier fault: cut
            age_ms = self._watch.age_s(now_s) * 1000
            self._latch(FaultCode.TELEMETRY_STALE, f"no telemetry for {age_ms:.0f} ms")
        return False

    def _tick_session(self, now_s: float, hold: bool) -> None:
        unnamed = self._watch.unnamed_board_fault(now_s)
        if unnamed is not None and self._faults.status is None:
            self._latch(FaultCode.BOARD_FAULT, unnamed)  # no frame named it: latch as is
        session = self._session
        interlock = self._interlock
        if session is None or self._watch.board_fault_held:
            interlock.renew(False)
            return
        if interlock.output_commanded and now_s > interlock.lease_until_s:
            self._on_lease_expired()  # we stalled past the lease: dark, whether or not
            return  # the board's EVENT got through (an overrun can lose it)
        session.advance(now_s, paused=interlock.light_held)
        if session.dose.done() or session.time_is_up():
            self._finish(Outcome.COMPLETED, None)
            self._pending.append(SessionFinished(Outcome.COMPLETED))
            return
        if hold:  # telemetry too old to act on; the lease runs on (see _check_stale)
            return
        if not interlock.light_held:
            try:
                interlock.command(session.setpoint_mw_cm2())
            except InterlockRefusedError as exc:
                self._latch(exc.code, str(exc))
                return
        interlock.renew(self._faults.status is None)
        if session.checkpoint_due(now_s):
            self._checkpoint(session, now_s)

    def _finish(self, outcome: Outcome, code: FaultCode | None) -> None:
        """Outputs off, then the session's row closed (or kept to retry, and a fault)."""
        session = self._session
        assert session is not None
        self._session = None
        paused = self._interlock.light_held
        try:
            self._interlock.disarm()
        finally:  # the record is closed even if turning off failed (all_off carries on)
            # the light stays on until the OFF lands, a completed session's too
            now_s = self._clock()
            session.count_open_gap(now_s, self._interlock.lease_until_s, paused=paused)
            rail_on = self._interlock.rail.enabled
            self._after_close = AfterClose.at_close(session, now_s, rail_on=rail_on)
            sid, delivered = session.session_id, session.by_wavelength(session.dose.delivered_j_cm2)
            ended_at = self._wall_clock()  # the ledger's clock: an end written late keeps it
            problem = self._faults.write(
                lambda ledger: ledger.end_session(sid, outcome, delivered, code, ended_at=ended_at)
            )
            if problem is not None:
                self._latch(FaultCode.LEDGER_WRITE_FAILED, problem)

    def _shown_last_session(self) -> ActiveSession | None:
        after = self._after_close
        return after.session if after is not None and after.shown else None

    def _newest_row_lit(
        self, telemetry: Telemetry, now_s: float, *, lit: bool
    ) -> AfterClose | None:
        """Light before this process's first session (a stuck driver after a restart):
        the newest row at boot counts it (``safety.after_close``), rebuilt once, from the
        last dark frame (frames lost since may have been lit)."""
        record = self._row_at_boot
        if record is None:
            return None
        if not lit:
            self._dark_at_boot, self._dark_at_boot_s = telemetry, now_s
            return None
        self._row_at_boot = None
        session = reopen_closed_session(
            record,
            self._time_scale,
            calibration=self._interlock.calibration,
            limits=self._limits,
            now_s=now_s,
        )
        if session is None:
            log.error("session %d was on another board: light now is not recorded", record.id)
            return None
        if self._dark_at_boot is not None:
            session.keep_dark(self._dark_at_boot, self._dark_at_boot_s)
        self._after_close = AfterClose.rebuilt(session, now_s, rail_on=self._interlock.rail.enabled)
        return self._after_close

    def _settle_after_close(self) -> None:
        """No frame may show the rest of the light after the last close: count it now."""
        after = self._after_close
        if after is not None:
            rail = self._interlock.rail
            rail_was_on = rail.heartbeats != self._beats_at_frame
            raised = after.settle(self._clock(), rail_on=rail.enabled, rail_was_on=rail_was_on)
            if after.done and not rail.enabled:
                self._beats_at_frame = rail.heartbeats  # counted up to this cut
            if raised is not None:
                self._raise_closed_row(raised)

    def _raise_closed_row(self, delivered: dict[int, float]) -> None:
        """The light after the close (``safety.after_close``) into the closed row."""
        assert self._after_close is not None
        sid = self._after_close.session.session_id
        log.info("session %d: light after its close; the record now holds %s", sid, delivered)
        problem = self._faults.write(lambda ledger: ledger.add_after_close(sid, delivered))
        if problem is not None:
            self._latch(FaultCode.LEDGER_WRITE_FAILED, problem)

    def _checkpoint(self, session: ActiveSession, now_s: float) -> None:
        session.last_checkpoint_s = now_s
        try:
            self._ledgers.ledger_or_raise().checkpoint(
                session.session_id,
                session.by_wavelength(session.dose.delivered_j_cm2),
                session.dose.elapsed_s,
            )
        except LedgerError as exc:
            self._latch(FaultCode.LEDGER_WRITE_FAILED, str(exc))

    def _close_session_now(self) -> None:
        if self._session is not None:
            self._finish(Outcome.STOPPED if self._faults.status is None else Outcome.FAULT, None)

    def _sample_link(self, now_s: float) -> None:
        """On a tick: the link's one-minute rate; its warning joins the frame's warnings."""
        if self._link.sample(now_s, self._interlock.client.stats):
            self._pending += self._warnings.from_link(self._link.warnings)

    def _check_clock(self, now_s: float) -> None:
        """Every ``CLOCK_CHECK_S``: a wall clock that jumped ahead of the controller's own
        is recorded once and shown until it is confirmed or set back."""
        trusted = self._trusted
        if not trusted.check_due(now_s):
            return
        trusted.now_s()
        if trusted.newly_jumped():
            detail = (
                f"the wall clock is {trusted.ahead_s / 3600.0:.2f} h ahead of the "
                "controller's own clock; the schedule rules count on the controller's clock"
            )
            log.warning("clock jump: %s", detail)
            self._faults.write(
                lambda ledger: ledger.record_event(LedgerEventKind.CLOCK_JUMP, detail, backup=False)
            )
        codes = (WarningCode.CLOCK_JUMP,) if trusted.jumped else ()
        self._pending += self._warnings.from_clock(codes)

    def _drain(self) -> list[SafetyEvent]:
        events, self._pending = self._pending, []
        return events


def _newest_row(ledgers: LedgerHandle) -> SessionRecord | None:
    """The last session's row, read at boot (off the frame path); None when there is none
    or the ledger cannot be read (logged: light before the first session is then in the
    fault record only)."""
    try:
        ledger = ledgers.ledger_or_raise()
        damaged_before = ledger.damaged_rows
        record = ledger.last_session()
    except LedgerError as exc:
        log.error("light before the first session will not be recorded: %s", exc)
        return None
    if record is None and ledger.damaged_rows > damaged_before:
        log.error("light before the first session will not be recorded: its row is damaged")
    return record
