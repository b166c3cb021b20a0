"""The controller: the one object that ties the state machine to the safety core.

Owns: boot sequencing (self-test, then ``idle``/``ready``/``fault``) and a new self-test
when the core stops counting it between sessions (the pad reset), the commands of the
control socket and the button (``command``), the reaction to the safety core's events,
the per-tick work (button long press and stuck detection, the 10-minute pause deadline,
prescription expiry, ``core.tick()``), the current prescription, and the status document.

Does not own the light: every output change goes through ``SafetyCore`` (which holds the
interlock, the supervisor, the dose and the ledger). Does not own time or threads: the
``EventLoop`` calls it on its one thread with an injected clock.

Choices (DESIGN §5 leaves them open):

* A stopped session (long press, ``stop``, 10 min paused) ends in ``complete`` like a
  completed one; ``state_reason`` says which. ``complete`` goes to ``ready`` (or ``idle``
  when the prescription is no longer valid) on ``ack``, a short press or a long press.
* ``ContactLost`` pauses; ``ContactRegained`` leaves the session paused: the patient
  resumes with a press, so the light never comes back by itself. While paused, the
  contact is read on each tick (the core reports a loss only while treating), so the
  reason and the ``contact_lost`` warning follow the pad coming off and back on.
* A press counts only in the state it began in: one made or held while the state
  changed under it (the boot, a fault, the session's end, a command over the socket)
  counts as none, and is logged as ignored. Held across a fault it would acknowledge a
  fault the patient has not seen; held across a caregiver's pause it would resume.
* Any exception inside the controller turns the outputs off and latches ``fault``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from firmware_host.arg_types import STATED_TIME_HELP, stated_time
from firmware_host.button import ButtonInterpreter, GpioEdge, Press
from firmware_host.machine import (
    PAUSE_OR_RESUME_STATES,
    FireResult,
    SessionMachine,
    State,
    Trigger,
)
from firmware_host.plain_text import plain
from firmware_host.session import (
    CONTACT_LOST_REASON,
    ControllerCore,
    LoadedPrescription,
    SessionHooks,
    refusal_text,
)
from firmware_host.status import StatusInputs, build_status
from safety.core_events import (
    ButtonEdge,
    ContactLost,
    ContactRegained,
    FaultLatched,
    SafetyEvent,
    SafetyWarning,
    SessionFinished,
)
from safety.faults import FaultCode, Outcome, WarningCode
from safety.log_limit import RepeatLimiter

__all__ = ["Command", "CommandReply", "Controller", "ControllerCore", "LoadedPrescription"]

log = logging.getLogger(__name__)

EXIT_ACCEPTED: Final = 0
EXIT_REFUSED: Final = 3
RX_CHECK_EVERY_S: Final = 1.0


class Command(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    ACK = "ack"
    PRESS_SHORT = "press_short"
    PRESS_LONG = "press_long"
    RELOAD_PRESCRIPTION = "reload_prescription"
    CLOCK_CONFIRM = "clock_confirm"
    LEDGER_RESET = "ledger_reset"


_COMMAND_TRIGGERS: Final = {
    Command.START: Trigger.START,
    Command.PAUSE: Trigger.PAUSE,
    Command.RESUME: Trigger.RESUME,
    Command.STOP: Trigger.STOP,
    Command.ACK: Trigger.ACKNOWLEDGE,
    Command.PRESS_SHORT: Trigger.PRESS_SHORT,
    Command.PRESS_LONG: Trigger.PRESS_LONG,
}
_PRESS_TRIGGERS: Final = {Press.SHORT: Trigger.PRESS_SHORT, Press.LONG: Trigger.PRESS_LONG}


@dataclass(frozen=True)
class CommandReply:
    """``exit_code`` 0 accepted, 3 refused (``message`` says why, for a person)."""

    ok: bool
    exit_code: int
    message: str
    data: dict[str, Any] | None = None


class Controller:
    """Runs on the loop thread. The control socket reaches it via ``call_soon_threadsafe``."""

    def __init__(
        self,
        core: ControllerCore,
        *,
        state_dir: Path,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        prescription_loader: Callable[[], LoadedPrescription | None],
        tick_s: float = 0.02,
    ) -> None:
        self.core = core
        self.state_dir = state_dir
        self.tick_s = tick_s
        self._clock = clock
        self._button = ButtonInterpreter(clock)
        self._warning_log = RepeatLimiter(log, clock)  # a warning can recur every frame
        self._refusal_log = RepeatLimiter(log, clock)  # a script can repeat a command
        self._hooks = SessionHooks(core, clock, wall_clock, prescription_loader)
        self._machine = SessionMachine(self._hooks)
        self._press_began_in = 0  # ``SessionHooks.entries`` when the last press began
        self._next_rx_check_s = clock()
        self.last_refusal: str | None = None

    @property
    def state(self) -> State:
        return self._machine.state

    def boot(self) -> State:
        """Load the prescription and self-test; ends in ``idle``, ``ready`` or ``fault``.

        The core has already reconciled the ledger in ``SafetyCore.connect``.
        """
        self._guarded(self._hooks.load_prescription)
        self._fire(Trigger.BEGIN_SELF_TEST)
        reason = self._hooks.state_reason
        log.info("boot finished in %s%s", self.state, f" ({reason})" if reason else "")
        return self.state

    def command(self, name: str, args: dict[str, Any] | None = None) -> CommandReply:
        """Run one command from the control socket or the CLI; never raises."""
        try:
            cmd = Command(name)
        except ValueError:
            known = ", ".join(c.value for c in Command)
            return self._reply(False, f"unknown command {name!r}; known: {known}")
        reply = self._guarded(lambda: self._command(cmd, args or {}))
        return reply or self._reply(False, "internal error; the light is off (fault)")

    def handle_safety_events(self, events: list[SafetyEvent]) -> None:
        for event in events:
            self._guarded(functools.partial(self._on_safety_event, event))

    def handle_input(self, event: object) -> None:
        """An event posted into the loop from another thread (the GPIO button)."""
        if isinstance(event, GpioEdge):
            self._guarded(functools.partial(self._edge, event.down, event.t_s))
        else:
            log.error("unknown input %r refused", event)

    def on_tick(self) -> None:
        self._guarded(self._tick)

    def status(self) -> dict[str, Any]:
        return build_status(self._status_inputs(), self.core.snapshot())

    # -- internals ------------------------------------------------------------------

    def _command(self, cmd: Command, args: dict[str, Any]) -> CommandReply:
        if cmd is Command.RELOAD_PRESCRIPTION:
            return self._reload()
        if cmd in (Command.CLOCK_CONFIRM, Command.LEDGER_RESET):
            return self._record_repair(cmd, args)
        kwargs = {"reason": str(args["reason"])} if "reason" in args else {}
        return self._reply_to(self._fire(_COMMAND_TRIGGERS[cmd], source=f"{cmd} command", **kwargs))

    def _record_repair(self, cmd: Command, args: dict[str, Any]) -> CommandReply:
        """A caregiver's confirmation of the clock (``args["now"]``: the date and time they
        read on a trusted clock, ISO), or reset of a lost record. Neither shortens an
        interval: the next start waits a full one (``safety``)."""
        who = "a caregiver (control socket)"
        if cmd is Command.CLOCK_CONFIRM:
            stated = stated_time(args.get("now"))
            if stated is None:
                return self._reply(False, STATED_TIME_HELP)
            problem, done = self.core.confirm_clock(who, stated), "clock confirmed"
        else:
            problem, done = self.core.reset_ledger(who), "treatment record reset"
        if problem is not None:
            return self._reply(False, problem)
        if self.state in (State.IDLE, State.READY, State.COMPLETE):
            self._check_prescription()
        return self._reply(True, f"{done}; the next session waits one full interval from now")

    def _reload(self) -> CommandReply:
        self._hooks.load_prescription()
        if self.state in (State.IDLE, State.READY, State.COMPLETE):
            self._check_prescription()
        problem = self._hooks.prescription_valid()
        message = "prescription loaded" if problem is None else f"not usable: {problem}"
        if self.state in (State.TREATING, State.PAUSED):
            message += "; the running session keeps its prescription"
        return self._reply(True, message, {"problem": problem})

    def _fire(self, trigger: Trigger, **kwargs: Any) -> FireResult:
        result = self._machine.fire(trigger, **kwargs)
        if not result.accepted:
            reason = result.reason
            if result.invalid:
                reason = self._invalid_reason(result.state, trigger)
            result = FireResult(False, result.state, reason, result.invalid)
            self.last_refusal = reason
            self._refusal_log.log(
                f"{trigger} in {result.state}", logging.INFO,
                f"refused {trigger} in {result.state}: {reason}",
            )  # fmt: skip
        return result

    def _reply_to(self, result: FireResult) -> CommandReply:
        if result.accepted:
            return self._reply(True, f"ok: {result.state}")
        return self._reply(False, result.reason or "refused")

    def _reply(self, ok: bool, message: str, data: dict[str, Any] | None = None) -> CommandReply:
        body = {"state": str(self.state), **(data or {})}
        shown = plain(message) or message  # the log keeps the technical detail
        return CommandReply(ok, EXIT_ACCEPTED if ok else EXIT_REFUSED, shown, body)

    def _on_safety_event(self, event: SafetyEvent) -> None:
        if isinstance(event, FaultLatched):
            self._fire(Trigger.FAULT, code=event.code, message=event.message)
        elif isinstance(event, ContactLost):
            self._hooks.contact_lost()
            if self.state is State.TREATING:
                self._fire(Trigger.PAUSE, reason=CONTACT_LOST_REASON)
        elif isinstance(event, ContactRegained):
            self._hooks.contact_regained(self.state)
        elif isinstance(event, SessionFinished):
            self._session_finished(event.outcome)
        elif isinstance(event, ButtonEdge):
            self._edge(event.down, event.t_s)
        elif isinstance(event, SafetyWarning):
            self._warning_log.log(
                str(event.code), logging.WARNING, f"warning {event.code}: {event.message}"
            )
        else:
            log.error("unknown safety event %r", event)

    def _session_finished(self, outcome: Outcome) -> None:
        if self.state in (State.TREATING, State.PAUSED):
            self._fire(Trigger.FINISH, outcome=outcome)
        else:
            log.info("session finished (%s) while %s: recorded by the core", outcome, self.state)

    def _edge(self, down: bool, t_s: float | None) -> None:
        """One raw edge of the button (GPIO or board). A new press notes the state it
        began in, after the presses this edge completes have acted (a glitch within a
        held press is no new press). An edge stamped before the current state was entered
        waited in a queue (the boot runs before the loop): its press began in none."""
        was_up = not self._button.raw_down
        self._presses(self._button.feed(down, t_s))
        if down and was_up and not self._button.held:
            queued = t_s is not None and t_s < self._hooks.entered_at_s
            self._press_began_in = -1 if queued else self._hooks.entries

    def _presses(self, presses: list[Press]) -> None:
        for press in presses:
            if self._press_began_in != self._hooks.entries:
                self._press_too_old(press)
                continue
            # a pause or a resume names the press in its one line (the core's or a refusal)
            pause_or_resume = press is Press.SHORT and self.state in PAUSE_OR_RESUME_STATES
            level = logging.DEBUG if pause_or_resume else logging.INFO
            log.log(level, "button: %s press in %s", press, self.state)
            self._fire(_PRESS_TRIGGERS[press], source=f"{press} press of the button")

    def _press_too_old(self, press: Press) -> None:
        """A press held while the pad changed state under it (a fault, the session's end,
        a command) was meant for the state before: it counts in none (the patient's
        intent may be the opposite now, or a fault they have not seen)."""
        again = "press again" if press is Press.SHORT else "hold it 2 s again"
        reason = f"{press} press ignored: it began before the pad went to {self.state}; {again}"
        self.last_refusal = reason
        log.info("button: %s", reason)

    def _tick(self) -> None:
        self.handle_safety_events(self.core.tick())
        presses = self._button.tick()
        if presses:
            self._presses(presses)
        self._hooks.set_warning(WarningCode.BUTTON_STUCK, self._button.stuck, "button stuck")
        if self.state is State.PAUSED or self._hooks.contact_warning_shown:
            self._hooks.follow_contact(self.state, self.core.snapshot().contact)
        now_s = self._clock()
        deadline_s = self._hooks.pause_deadline_s
        if deadline_s is not None and now_s >= deadline_s and self.state is State.PAUSED:
            self._fire(Trigger.PAUSE_TIMEOUT, reason="paused for more than 10 minutes")
        if now_s >= self._next_rx_check_s:
            self._next_rx_check_s = now_s + RX_CHECK_EVERY_S
            if self.state in (State.IDLE, State.READY):
                self._self_test_again_if_needed()
            if self.state in (State.IDLE, State.READY):
                self._check_prescription()

    def _self_test_again_if_needed(self) -> None:
        """The pad reset between sessions (a brown-out) or its power was cut: the core no
        longer counts its self-test, and every start would be refused until a restart.
        Run a new one, as at boot (no light); a failure latches its fault."""
        if self.core.fault is not None or self.core.snapshot().self_test_passed:
            return
        self._refusal_log.log(  # a pad in a reset loop voids it every second
            "self-test again", logging.INFO,
            "the pad's self-test no longer counts (reset or power cut); running it again",
        )  # fmt: skip
        problem = self._hooks.run_self_test()
        if problem is not None:
            self._fire(Trigger.FAULT, code=FaultCode.SELF_TEST_FAILED, message=problem)

    def _check_prescription(self) -> None:
        self._fire(Trigger.CHECK_PRESCRIPTION)
        if self.state is State.IDLE:  # staying idle is internal: refresh the reason
            self._hooks.state_reason = self._hooks.prescription_valid()

    def _guarded(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; on any exception: outputs off at once, then latch ``fault``."""
        try:
            return fn()
        except Exception as err:
            log.exception("controller error; outputs off")
            self._hooks.outputs_off()
            message = f"internal error: {type(err).__name__}: {err}"
            self._machine.fire(Trigger.FAULT, code=FaultCode.CONTROLLER_ERROR, message=message)
            return None

    def _status_inputs(self) -> StatusInputs:
        hooks = self._hooks
        rx = hooks.session_profile or hooks.profile
        return StatusInputs(
            state=str(self.state),
            state_reason=hooks.state_reason,
            profile_id=None if rx is None else rx.id,
            planned_fluence_j_cm2=None if rx is None else rx.planned_fluence_total_j_cm2,
            fault=hooks.fault if self.state is State.FAULT else None,
            fault_clear_refusal=(
                hooks.fault_clear_refusal() if self.state is State.FAULT else None
            ),
            start_refusal=self._start_refusal(),
            next_start_allowed_at=hooks.next_start_allowed_at(),
            warnings=tuple(hooks.warnings.items()),
        )

    def _start_refusal(self) -> str | None:
        if self.state is State.READY:
            return self._hooks.start_allowed()
        return self._invalid_reason(self.state, Trigger.START)

    def _invalid_reason(self, state: State, trigger: Trigger) -> str:
        restart = self._hooks.needs_restart
        detail = self._hooks.state_reason
        if state is State.IDLE and detail:  # "no valid prescription: …" says it all
            return refusal_text(state, trigger, because=detail)
        reason = refusal_text(state, trigger, needs_restart=restart)
        if state is State.FAULT and detail:
            reason = f"{reason} ({detail})"
        return reason
