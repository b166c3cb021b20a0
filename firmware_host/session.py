"""The session side of the controller: guards, actions and what the controller remembers.

Owns: ``SessionHooks``, the ``MachineHooks`` implementation that the state machine calls
(every guard of ``start``/``resume``/acknowledge, every action that asks the safety core
to begin, pause, resume or end a session), the current prescription and its validity,
the reason for the current state, the pause deadline and the controller's own
warnings (the latched fault is the safety core's latch, read through ``fault``); and
``refusal_text``, the sentence for a trigger that is not possible in a state. Also the
two ``Protocol``s naming what the controller needs from the safety core and the
prescription loader (docs/architecture.md).

Does not own the light (``safety``), the transition table (``machine``) or when things
happen (``controller`` and ``loop``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from firmware_host.machine import PAUSE_OR_RESUME_STATES, State, Trigger
from profiles.schema import Profile
from safety.core_events import FaultStatus, SafetyEvent, SafetySnapshot
from safety.faults import FaultCode, Outcome, WarningCode

__all__ = [
    "CONTACT_LOST_REASON",
    "PAUSE_LIMIT_S",
    "ControllerCore",
    "LoadedPrescription",
    "SessionHooks",
    "refusal_text",
]

log = logging.getLogger(__name__)

CONTACT_LOST_REASON: Final = "skin contact lost"
"""Why a session paused by itself (the controller pauses on the core's ``ContactLost``)."""
PAUSE_LIMIT_S: Final = 600.0
"""A session paused this long ends as stopped (DESIGN §5)."""
_BY_THE_PATIENT: Final = "by the patient"
_COMMAND_SOURCE_SUFFIX: Final = " command"

_NO_SESSION = "no session is running"
_STATE_REFUSALS: dict[State, str] = {
    State.BOOTING: "the pad is still starting up; try again in a moment",
    State.SELF_TEST: "the pad is running its self-test; try again in a moment",
    State.IDLE: "there is no valid prescription",
    State.READY: _NO_SESSION,
    State.TREATING: "a session is running",
    State.PAUSED: "the session is paused: press to resume, or hold 2 s to stop",
    State.COMPLETE: "the last session has ended: press the button or acknowledge first",
    State.FAULT: "the pad is in fault; check the pad, then hold the button 2 s to acknowledge",
}
_PAIR_REFUSALS: dict[tuple[State, Trigger], str] = {
    (State.TREATING, Trigger.START): "a session is already running",
    (State.TREATING, Trigger.RESUME): "the session is not paused",
    (State.PAUSED, Trigger.PAUSE): "the session is already paused",
    (State.READY, Trigger.ACKNOWLEDGE): "there is nothing to acknowledge",
    (State.IDLE, Trigger.ACKNOWLEDGE): "there is nothing to acknowledge",
    (State.TREATING, Trigger.ACKNOWLEDGE): "there is nothing to acknowledge",
    (State.PAUSED, Trigger.ACKNOWLEDGE): "there is nothing to acknowledge",
    (State.COMPLETE, Trigger.PAUSE): _NO_SESSION,
    (State.COMPLETE, Trigger.RESUME): _NO_SESSION,
    (State.COMPLETE, Trigger.STOP): _NO_SESSION,
}


RESTART_FAULTS: Final = frozenset(
    {"protocol_version", "calibration_crc", "board_disconnected", "board_mismatch"}
)
"""Fault codes that acknowledging cannot clear (the safety core refuses: restart)."""
_RESTART_REFUSAL: Final = (
    "the pad is in fault and acknowledging cannot clear it; "
    "check the pad and its cable, then restart nirpad"
)


def _why(reason: str | None, source: str | None) -> str | None:
    """``phone call (pause command)``, ``short press of the button``, or None."""
    if reason is None or source is None:
        return reason or source
    return f"{reason} ({source})"


def _by_whom(source: str | None) -> str:
    """Who asked, for the status: the button is the patient's; a command came over the
    control socket (``nirpad`` or the web page) from whoever sent it, maybe a caregiver."""
    if source is not None and source.endswith(_COMMAND_SOURCE_SUFFIX):
        return f"by a {source}"
    return _BY_THE_PATIENT


def refusal_text(
    state: State, trigger: Trigger, *, needs_restart: bool = False, because: str | None = None
) -> str:
    """A sentence for a person: why ``trigger`` is not possible in ``state`` (``because``,
    when the caller knows it better). In a fault that ``needs_restart``, never the hint
    to acknowledge: that would be refused too."""
    text = because or _PAIR_REFUSALS.get((state, trigger), _STATE_REFUSALS[state])
    if state is State.FAULT and needs_restart:
        text = _RESTART_REFUSAL
    return f"cannot {trigger.value.replace('_', ' ')}: {text}"


class LoadedPrescription(Protocol):
    """What the prescription loader returns (``profiles.loader.LoadResult`` fits)."""

    @property
    def profile(self) -> Profile | None: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def problems(self) -> Sequence[object]: ...


class ControllerCore(Protocol):
    """The part of ``safety.core.SafetyCore`` the controller uses (docs/architecture.md)."""

    def self_test(self) -> str | None: ...
    def start_refusal(self, rx: Profile) -> str | None: ...
    def next_start_allowed_at(self, rx: Profile) -> datetime | None: ...
    def begin_session(self, rx: Profile, profile_sha256: str) -> None: ...
    def pause(self, reason: str) -> None: ...
    def resume(self, reason: str | None = None) -> None: ...
    def end_session(self, outcome: Outcome) -> None: ...
    def poll(self) -> list[SafetyEvent]: ...
    def tick(self) -> list[SafetyEvent]: ...
    def acknowledge_fault(self) -> str | None: ...
    def fault_clear_refusal(self) -> str | None: ...
    def confirm_clock(self, who: str, stated: datetime) -> str | None: ...
    def reset_ledger(self, who: str) -> str | None: ...
    def latch_fault(self, code: FaultCode, detail: str) -> None: ...
    def snapshot(self) -> SafetySnapshot: ...
    def all_off(self) -> None: ...
    @property
    def fault(self) -> FaultStatus | None: ...
    @property
    def needs_restart(self) -> bool: ...


class SessionHooks:
    """The ``MachineHooks``: guards and actions, and what the controller remembers."""

    def __init__(
        self,
        core: ControllerCore,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        loader: Callable[[], LoadedPrescription | None],
    ) -> None:
        self._core, self._clock, self._wall_clock, self._loader = core, clock, wall_clock, loader
        self.profile: Profile | None = None
        self.sha256: str | None = None
        self._load_problem: str | None = "no prescription is installed"
        self.session_profile: Profile | None = None
        self.state_reason: str | None = None
        self.pause_deadline_s: float | None = None
        self._paused_for = _BY_THE_PATIENT  # why the session is paused, for the status
        self.entries = 0  # states entered so far: a change under a held button shows
        self.entered_at_s = clock()  # when the current state was entered
        self.warnings: dict[str, str] = {}

    @property
    def fault(self) -> tuple[str, str] | None:
        """The latched fault (code, message), read from the safety core's one latch."""
        status = self._core.fault
        return None if status is None else (str(status.code), status.message)

    def fault_clear_refusal(self) -> str | None:
        """Why acknowledging the latched fault would be refused now (read only), or None."""
        return self._core.fault_clear_refusal()

    @property
    def needs_restart(self) -> bool:
        """The latched fault is one no acknowledgement clears in this process (a
        ``RESTART_FAULTS`` code, or the board's INFO never read): restart nirpad."""
        fault = self.fault
        return fault is not None and (fault[0] in RESTART_FAULTS or self._core.needs_restart)

    def load_prescription(self) -> None:
        loaded = self._loader()
        self.profile = None if loaded is None else loaded.profile
        self.sha256 = None if loaded is None else loaded.sha256
        if loaded is None:
            self._load_problem = "no prescription is installed"
        elif loaded.profile is None:
            self._load_problem = "; ".join(str(p) for p in loaded.problems) or "unreadable"
        log.info("prescription: %s", self.profile.id if self.profile else self._load_problem)

    def next_start_allowed_at(self) -> datetime | None:
        return None if self.profile is None else self._core.next_start_allowed_at(self.profile)

    def set_warning(self, code: WarningCode, active: bool, message: str) -> None:
        if active:
            self.warnings[str(code)] = message
        else:
            self.warnings.pop(str(code), None)

    def contact_lost(self) -> None:
        self.set_warning(WarningCode.CONTACT_LOST, True, "no skin contact")

    @property
    def contact_warning_shown(self) -> bool:
        return str(WarningCode.CONTACT_LOST) in self.warnings

    def follow_contact(self, state: State, contact: bool | None) -> None:
        """While paused, or while the warning shows: the pad's contact read on a tick. The
        core reports a loss only while treating, so the pad coming off and back on during
        a pause is seen here. None (telemetry not current) changes nothing."""
        shown = self.contact_warning_shown
        if contact is False and not shown and state is State.PAUSED:
            self.contact_lost()
            why = self._paused_for
            self.state_reason = (
                f"paused: {why}"
                if why == CONTACT_LOST_REASON
                else f"paused: {why}; no skin contact: put the pad on the leg to resume"
            )
        elif contact is True and shown:
            self.contact_regained(state)

    def contact_regained(self, state: State) -> None:
        self.set_warning(WarningCode.CONTACT_LOST, False, "")
        if state is State.PAUSED:
            self.state_reason = "skin contact is back: press the button to resume"

    # -- guards: a reason to refuse, or None -----------------------------------------

    def prescription_valid(self) -> str | None:
        if self.profile is None:
            return f"no valid prescription: {self._load_problem}"
        problem = self.profile.validity_problem(self._wall_clock().date())
        return None if problem is None else f"prescription {self.profile.id}: {problem}"

    def start_allowed(self) -> str | None:
        problem = self.prescription_valid()
        if problem is not None or self.profile is None:
            return problem
        return self._core.start_refusal(self.profile)

    def resume_allowed(self) -> str | None:
        if not self._core.snapshot().contact:
            return "no skin contact: put the pad on the leg, then resume"
        return None

    def fault_cleared(self) -> str | None:
        reason = self._core.acknowledge_fault()
        return None if reason is None else f"the fault is not cleared yet: {reason}"

    # -- actions ---------------------------------------------------------------------

    def begin_session(self) -> None:
        assert self.profile is not None  # the start guard checked it
        self._core.begin_session(self.profile, self.sha256 or "")
        self.session_profile = self.profile

    def pause_session(self, reason: str | None, source: str | None) -> None:
        """``reason``: why, for the status ("skin contact lost"; by default who asked);
        ``source``: who asked (the button, a command), for the core's one log line, which
        names both."""
        self._core.pause(_why(reason, source) or _BY_THE_PATIENT)
        self.pause_deadline_s = self._clock() + PAUSE_LIMIT_S
        self._paused_for = reason or _by_whom(source)
        self.state_reason = f"paused: {self._paused_for}"

    def resume_session(self, source: str | None) -> None:
        self._core.resume(source)
        self.pause_deadline_s = None

    def end_stopped(self, reason: str | None, source: str | None) -> None:
        """``reason``: why the session ended early (a pause too long); by default who
        stopped it (``source``: the button or a command)."""
        self._core.end_session(Outcome.STOPPED)
        self.state_reason = f"session stopped: {reason or _by_whom(source)}"

    def record_fault(self, code: FaultCode, message: str) -> None:
        """Latch the fault in the core (which records it in the ledger).

        Faults the core found are already latched there (a second latch only counts);
        the controller's own faults (``CONTROLLER_ERROR``) reach the latch this way.
        """
        log.error("fault %s: %s", code, message)
        try:
            self._core.latch_fault(code, message)
        except Exception:
            log.exception("latching %s in the safety core failed; all_off follows", code)
            self._core.all_off()

    def run_self_test(self) -> str | None:
        return self._core.self_test()

    def outputs_off(self) -> None:
        """Light off now; an open session is closed as FAULT (``all_off`` alone: STOPPED)."""
        try:
            if self._core.snapshot().session_active:
                self._core.end_session(Outcome.FAULT)
        except Exception:
            log.exception("closing the session as FAULT failed; all_off follows")
        finally:
            self._core.all_off()

    def entered(
        self, state: State, source: State, trigger: Trigger, kwargs: dict[str, Any]
    ) -> None:
        # a pause or a resume has its one line from the core, with its session and why
        level = logging.DEBUG if {source, state} == PAUSE_OR_RESUME_STATES else logging.INFO
        log.log(level, "%s -> %s on %s", source, state, trigger)
        self.entries += 1
        self.entered_at_s = self._clock()
        if state is not State.PAUSED:
            self.pause_deadline_s = None
        if state is State.FAULT:
            self.state_reason = self.fault[1] if self.fault else "fault"
        elif state is State.COMPLETE and trigger is Trigger.FINISH:
            self.state_reason = f"session {kwargs.get('outcome', Outcome.COMPLETED)}"
        elif state is State.IDLE:
            self.state_reason = self.prescription_valid()
        elif state in (State.READY, State.TREATING, State.SELF_TEST):
            self.state_reason = None
        if state in (State.READY, State.IDLE, State.SELF_TEST):
            self.session_profile = None
