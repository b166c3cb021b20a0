"""The safety core's state and the fault latch every part of it shares.

Owns: the core's fields (interlock, supervisor, ledger, open session, last telemetry,
warnings, pending events), latching a fault (outputs off and the rail cut through the
interlock, the ledger row, the open session closed as FAULT, one ``FaultLatched``
event), opening and closing sessions in the ledger, the records the ledger could not
take yet, the acknowledgement, and the ``SafetySnapshot``. Does not own routing board
inputs or ticks (``safety.core``) or the self-test and start guards
(``safety.core_checks``).

Unwritten records: a fault row or a session's end that the ledger refuses (a full
disk) is kept in memory, in order, and written again on later ticks (at most every
``LEDGER_RETRY_S``), at the acknowledgement, the self-test and the close, as soon as
the ledger takes it. The session's end keeps the dose counted at the close, so a
late record never counts less. While anything is unwritten, ``acknowledge_fault``
refuses: no new session starts over a fault the record does not show.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Final

from drivers.errors import BoardDisconnectedError, DriverError
from drivers.protocol import ClearFaults, Telemetry
from profiles.schema import Profile
from safety.calibration import CalibrationError
from safety.core_connect import open_ledger_again
from safety.core_events import (
    FaultLatched,
    FaultStatus,
    SafetyEvent,
    SafetySnapshot,
    Warning,
)
from safety.core_session import ActiveSession, longest_dark_s
from safety.dose import DoseIntegrator
from safety.errors import LedgerError, StartRefusedError
from safety.faults import FAULT_MESSAGES, FaultCode, Outcome, WarningCode
from safety.interlock import Interlock, is_critical
from safety.ledger import Ledger
from safety.ledger_events import EventKind
from safety.limits import CALIBRATION_UNCERTAINTY_FRACTION, Limits
from safety.link_health import LinkMonitor, link_health
from safety.plan import plan_from_profile
from safety.supervisor import Supervisor
from safety.trusted_clock import TrustedClock

__all__ = ["CLEAR_FAULTS_TIMEOUT_S", "LEDGER_RETRY_S", "CoreState"]

log = logging.getLogger(__name__)

CLEAR_FAULTS_TIMEOUT_S = 0.5
CLOCK_CHECK_S: Final = 10.0
"""How often a tick compares the wall clock with the controller's own."""
LEDGER_REOPEN_S: Final = 10.0
"""A ledger that could not be opened is tried again this often (a damaged one never:
only a caregiver's reset helps, and each try would read the whole file)."""
LEDGER_RETRY_S: Final = 1.0
"""Unwritten records are tried again on a tick at most this often (each try logs)."""
_WARNING_TEXT = {
    WarningCode.SKIN_TEMP_WARN: "The skin is getting warm.",
    WarningCode.CONTACT_LOST: "The pad has lost contact with the skin.",
    WarningCode.BUTTON_STUCK: "The pad's button seems stuck.",
    WarningCode.CLOCK_JUMP: (
        "The clock moved ahead while nirpad was running. Sessions are timed by nirpad's "
        "own clock until a caregiver confirms the date and time (nirpad clock confirm)."
    ),
    WarningCode.LINK_ERRORS: (
        "The link to the pad is losing data (over 1 % of frames in the last minute). "
        "Check the pad's cable and its connectors."
    ),
}
_NEEDS_RESTART = frozenset(
    {
        FaultCode.PROTOCOL_VERSION,
        FaultCode.CALIBRATION_CRC,
        FaultCode.BOARD_DISCONNECTED,
        FaultCode.BOARD_MISMATCH,
    }
)


def fault_message(code: FaultCode, detail: str) -> str:
    return f"{FAULT_MESSAGES[code]} ({detail})" if detail else FAULT_MESSAGES[code]


class CoreState:
    """Fields and the fault latch of ``SafetyCore``; see the module notes."""

    def __init__(
        self,
        interlock: Interlock,
        supervisor: Supervisor,
        ledger: Ledger | None,
        ledger_problem: str | None,
        limits: Limits,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self._interlock = interlock
        self._supervisor = supervisor
        self._ledger = ledger
        self._ledger_problem = ledger_problem
        self._limits = limits
        self._clock = clock
        self._wall_clock = wall_clock
        self._session: ActiveSession | None = None
        self._last_session: ActiveSession | None = None
        self._fault: FaultStatus | None = None
        self._pending: list[SafetyEvent] = []
        self._warnings: tuple[WarningCode, ...] = ()
        self._frame_warnings: tuple[WarningCode, ...] = ()  # the supervisor's, last frame
        self._link = LinkMonitor()
        self._trusted = TrustedClock(wall_clock, clock)  # the schedule's "now"
        self._clock_warnings: tuple[WarningCode, ...] = ()
        self._next_clock_check_s = -math.inf
        self._state_dir = Path(".")  # set by ``SafetyCore.connect``, with the next
        self._backup_dir: Path | None = None
        self._next_reopen_s = clock() + LEDGER_REOPEN_S  # connect has just tried
        self._last_telemetry: Telemetry | None = None
        self._frames_seen = 0
        self._self_test_passed = False
        self._contact_lost = False
        self._board_lost = False
        self._board_fault: tuple[float, str] | None = None
        self._last_frame_s = clock()
        self._last_tick_s = clock()
        self._stale_deferred = False
        self._unwritten: list[Callable[[Ledger], None]] = []
        self._next_ledger_retry_s = -math.inf

    # ------------------------------------------------------------ faults

    def _latch(self, code: FaultCode, detail: str) -> None:
        """Outputs off (rail too if critical); the first fault is recorded and reported."""
        self._supervisor.latch(code, detail)
        if self._fault is not None:
            if is_critical(code) and self._interlock.rail.enabled:
                self._interlock.cut_rail()  # a later, worse finding still cuts the rail
            return
        self._interlock.latch(code, detail)
        message = fault_message(code, detail)
        self._fault = FaultStatus(code, message)
        self._pending.append(FaultLatched(code, message))
        session = self._session
        self._record_fault(code, detail, None if session is None else session.session_id)
        if session is not None:
            self._finish(Outcome.FAULT, code)

    def _record_fault(self, code: FaultCode, detail: str, session_id: int | None) -> None:
        problem = self._write(lambda ledger: ledger.record_fault(code, detail, session_id))
        if problem is not None:
            log.error("fault %s not recorded yet (kept to retry): %s", code, problem)
            latched_at = self._wall_clock().isoformat(timespec="seconds")
            late = f"{detail} [latched at {latched_at}; recorded late]"
            self._unwritten[-1] = lambda ledger: ledger.record_fault(code, late, session_id)

    # ------------------------------------------------------------ unwritten records

    def _write(self, write: Callable[[Ledger], None]) -> str | None:
        """Write to the ledger after anything still unwritten; None, or why it is kept."""
        self._unwritten.append(write)
        return self._write_unwritten()

    def _write_unwritten(self) -> str | None:
        """Write the kept records in order; None once all are in, else the ledger's error."""
        while self._unwritten:
            try:
                self._unwritten[0](self._ledger_or_raise())
            except LedgerError as exc:
                return str(exc)
            self._unwritten.pop(0)
        return None

    def _retry_unwritten(self, now_s: float) -> None:
        """On a tick: try the kept records again, at most every ``LEDGER_RETRY_S``."""
        if self._unwritten and now_s >= self._next_ledger_retry_s:
            self._next_ledger_retry_s = now_s + LEDGER_RETRY_S
            if self._write_unwritten() is None:
                log.info("the records kept while the ledger could not be written are in")

    def latch_fault(self, code: FaultCode, detail: str) -> None:
        """Latch a fault found outside the safety layer (the controller's own errors).

        Same path as every other fault: outputs off, rail cut if critical, a ledger
        row, the open session closed as FAULT, and a ``FaultLatched`` event.
        """
        self._latch(code, detail)

    def _lost_board(self, exc: DriverError) -> None:
        self._board_lost = True
        self._supervisor.watch_from(None)
        self._latch(FaultCode.BOARD_DISCONNECTED, str(exc))

    def acknowledge_fault(self) -> str | None:
        """Clear the latch once its cause is gone (then a new self-test is needed)."""
        fault = self._fault
        if fault is None:
            return None
        if fault.code in _NEEDS_RESTART or self._board_lost:
            return f"{fault.message} Check the pad and its cable, then restart nirpad."
        problem = self._write_unwritten()
        if problem is not None:
            return (
                "The fault cannot be cleared until the treatment record has saved it: "
                f"{problem} Free some space or check the storage, then try again."
            )
        reason = self._supervisor.acknowledge()
        if reason is not None:
            return reason
        try:
            self._interlock.client.request(ClearFaults(), CLEAR_FAULTS_TIMEOUT_S)
        except BoardDisconnectedError as exc:
            self._lost_board(exc)
            return f"{FAULT_MESSAGES[FaultCode.BOARD_DISCONNECTED]} ({exc})"
        except DriverError as exc:
            self._supervisor.latch(fault.code, fault.message)
            return f"The pad did not accept the reset: {exc}"
        self._interlock.clear_fault()
        self._fault = None
        self._board_fault = None
        self._self_test_passed = False
        log.info("fault %s acknowledged; a fresh self-test is required", fault.code)
        return None

    def _sample_link(self, now_s: float) -> None:
        """On a tick: the link's one-minute rate; its warning joins the frame's warnings."""
        if self._link.sample(now_s, self._interlock.client.stats):
            self._update_warnings(self._frame_warnings)

    def _check_clock_now(self) -> None:
        self._next_clock_check_s = -math.inf
        self._check_clock(self._clock())

    def _check_clock(self, now_s: float) -> None:
        """Every ``CLOCK_CHECK_S``: a wall clock that jumped ahead of the controller's own
        is recorded once and shown until it is confirmed or set back."""
        if now_s < self._next_clock_check_s:
            return
        self._next_clock_check_s = now_s + CLOCK_CHECK_S
        self._trusted.now_s()
        if self._trusted.newly_jumped():
            detail = (
                f"the wall clock is {self._trusted.ahead_s / 3600.0:.2f} h ahead of the "
                "controller's own clock; the schedule rules count on the controller's clock"
            )
            log.warning("clock jump: %s", detail)
            self._write(
                lambda ledger: ledger.record_event(EventKind.CLOCK_JUMP, detail, backup=False)
            )
        warnings = (WarningCode.CLOCK_JUMP,) if self._trusted.jumped else ()
        if warnings != self._clock_warnings:
            self._clock_warnings = warnings
            self._update_warnings(self._frame_warnings)

    def _drain(self) -> list[SafetyEvent]:
        events, self._pending = self._pending, []
        return events

    def _update_warnings(self, codes: tuple[WarningCode, ...]) -> None:
        """The supervisor's warnings of this frame, plus the link's (no copy when none)."""
        self._frame_warnings = codes
        codes += self._link.warnings + self._clock_warnings
        for code in codes:
            if code not in self._warnings:
                self._pending.append(Warning(code, _WARNING_TEXT[code]))
        self._warnings = codes

    # ------------------------------------------------------------ sessions

    def _reopened_ledger(self) -> Ledger | None:
        """The ledger; one that could not be opened is tried again (at most every
        ``LEDGER_REOPEN_S``), so storage that works again is noticed without a restart.
        Never while a session runs (none can begin without a ledger)."""
        if self._ledger is None and self._clock() >= self._next_reopen_s:
            self._next_reopen_s = self._clock() + LEDGER_REOPEN_S
            ledger, problem, again = open_ledger_again(
                self._state_dir, self._wall_clock, self._backup_dir
            )
            if ledger is None:
                self._ledger_problem = problem
                if not again:
                    self._next_reopen_s = math.inf
            else:
                log.info("the treatment record can be used again")
                self._ledger, self._ledger_problem = ledger, None
        return self._ledger

    def _ledger_or_raise(self) -> Ledger:
        ledger = self._reopened_ledger()
        if ledger is None:
            raise LedgerError(self._ledger_problem or "no ledger", path="")
        return ledger

    def _open_session(self, rx: Profile, sha256: str, time_scale: float) -> ActiveSession:
        calibration = self._interlock.calibration
        plan = plan_from_profile(rx, calibration)
        by_wavelength = rx.planned_fluence_j_cm2
        planned = {c.channel: by_wavelength[c.wavelength_nm] for c in plan.channels}
        try:
            session_id = self._ledger_or_raise().begin_session(
                # host seconds: crash recovery estimates dose per host second, and a
                # time-scaled simulator delivers ``time_scale`` board seconds in each
                rx.id,
                sha256,
                by_wavelength,
                planned_duration_s=rx.duration_s / time_scale,
            )
        except LedgerError as exc:
            raise StartRefusedError(str(exc)) from exc
        now_s = self._clock()
        return ActiveSession(
            session_id,
            plan,
            DoseIntegrator(
                calibration,
                planned,
                rx.duration_s,
                uncertainty_fraction=CALIBRATION_UNCERTAINTY_FRACTION,
            ),
            time_scale,
            started_s=now_s,
            last_checkpoint_s=now_s,
            wavelength_by_channel={c.channel: c.wavelength_nm for c in plan.channels},
            max_dark_s=longest_dark_s(self._limits),
        )

    def _finish(self, outcome: Outcome, code: FaultCode | None) -> None:
        """Outputs off, then the session's row closed (or kept to retry, and a fault)."""
        session = self._session
        assert session is not None
        self._session = None
        self._last_session = session
        try:
            self._interlock.disarm()
        finally:  # the record is closed even if turning off failed (all_off carries on)
            # the light stays on until the OFF lands, a completed session's too
            session.count_open_gap(self._clock(), self._interlock.lease_until_s)
            sid, delivered = session.session_id, session.by_wavelength(session.dose.delivered_j_cm2)
            problem = self._write(lambda ledger: ledger.end_session(sid, outcome, delivered, code))
            if problem is not None:
                self._latch(FaultCode.LEDGER_WRITE_FAILED, problem)

    def _checkpoint(self, session: ActiveSession, now_s: float) -> None:
        session.last_checkpoint_s = now_s
        try:
            self._ledger_or_raise().checkpoint(
                session.session_id,
                session.by_wavelength(session.dose.delivered_j_cm2),
                session.dose.elapsed_s,
            )
        except LedgerError as exc:
            self._latch(FaultCode.LEDGER_WRITE_FAILED, str(exc))

    def _close_session_now(self) -> None:
        if self._session is not None:
            self._finish(Outcome.STOPPED if self._fault is None else Outcome.FAULT, None)

    # ------------------------------------------------------------ status

    def snapshot(self) -> SafetySnapshot:
        """Figures for status displays; the last session's stay until the next begins."""
        tm = self._last_telemetry
        base = SafetySnapshot(
            session_active=self._session is not None,
            irradiance_mw_cm2=self._measured_by_wavelength(tm),
            skin_temp_c=None if tm is None else max(tm.skin_a_c, tm.skin_b_c),
            board_temp_c=None if tm is None else tm.board_c,
            contact=tm is not None and tm.contact,
            rail_enabled=self._interlock.rail.enabled,
            self_test_passed=self._self_test_passed,
            fault=self._fault,
            warnings=tuple(Warning(c, _WARNING_TEXT[c]) for c in self._warnings),
            fault_also_seen=dict(self._supervisor.also_seen),
            link=link_health(self._interlock.client, self._link),
        )
        session = self._session or self._last_session
        if session is None:
            return base
        dose = session.dose
        return replace(
            base,
            delivered_fluence_j_cm2=session.by_wavelength(dose.delivered_j_cm2),
            planned_fluence_j_cm2=session.by_wavelength(dose.planned_fluence_j_cm2),
            delivered_total_j_cm2=dose.delivered_total_j_cm2,
            planned_total_j_cm2=dose.planned_total_j_cm2,
            elapsed_s=dose.elapsed_s,
            remaining_s=dose.remaining_s if self._session is not None else 0.0,
        )

    def _measured_by_wavelength(self, tm: Telemetry | None) -> dict[int, float]:
        """Measured peak irradiance per wavelength (over-estimated above the table)."""
        if tm is None:
            return {}
        calibration = self._interlock.calibration
        measured: dict[int, float] = {}
        pairs = zip(calibration.channels, tm.channels, strict=False)
        for index, (cal, channel) in enumerate(pairs):
            try:
                value = calibration.irradiance_upper_bound_mw_cm2(index, channel.current_ma)
            except CalibrationError:
                value = math.inf  # an unusable table: show "unknown, maybe high"
            measured[cal.wavelength_nm] = value
        return measured
