"""The session state machine: states, triggers and the transition table.

Owns: the ``State`` and ``Trigger`` vocabularies (stable strings: they appear in the
status JSON, the logs and docs/state-diagram.md), the transition table ``TRANSITIONS``
(the single source for the machine and for the generated diagram), and
``SessionMachine``, a thin wrapper over a plain ``transitions.Machine``.

Does not own what a guard or an action *does*: those are the ``MachineHooks`` the
controller supplies (they talk to the safety core). Does not own timers: the pause
timeout is a deadline the controller checks every tick (DESIGN §5, §11).

How ``transitions`` is used (DESIGN §11):

* ``auto_transitions=False`` (no ``to_treating()`` that skips the guards),
  ``queued=True`` (a trigger fired from a callback runs after the current one),
  invalid triggers are errors, never silently ignored.
* The model is a separate private object whose methods are not named like triggers.
* ``on_exception``: an invalid trigger (``MachineError``) or a ``StartRefusedError``
  raised by an action *before* the state changed is a refusal; anything else turns the
  outputs off at once and queues ``fault`` (an exception in ``on_enter_*``/``after``
  leaves the machine in the new state, so it must not be left there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from transitions import EventData, Machine, MachineError

from safety.errors import StartRefusedError
from safety.faults import FaultCode

__all__ = [
    "PAUSE_OR_RESUME_STATES",
    "TRANSITIONS",
    "FireResult",
    "MachineHooks",
    "SessionMachine",
    "State",
    "TransitionSpec",
    "Trigger",
]

log = logging.getLogger(__name__)
# transitions logs every callback at INFO; our own log lines say what happened.
logging.getLogger("transitions").setLevel(logging.WARNING)


class State(StrEnum):
    BOOTING = "booting"
    SELF_TEST = "self_test"
    IDLE = "idle"  # no valid prescription (none, unreadable, expired or not yet valid)
    READY = "ready"
    TREATING = "treating"
    PAUSED = "paused"
    COMPLETE = "complete"  # a session ended (completed or stopped); outcome in state_reason
    FAULT = "fault"


PAUSE_OR_RESUME_STATES: Final = frozenset({State.TREATING, State.PAUSED})
"""A session runs: a short press pauses or resumes it, and a move between the two is
a pause or a resume (logged by the safety core, with its session and why)."""


_STATE_BY_VALUE: dict[str, State] = {state.value: state for state in State}
"""``State(value)`` without the enum's call, for the state read on every tick."""


class Trigger(StrEnum):
    BEGIN_SELF_TEST = "begin_self_test"
    SELF_TEST_PASSED = "self_test_passed"
    CHECK_PRESCRIPTION = "check_prescription"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    ACKNOWLEDGE = "acknowledge"
    PRESS_SHORT = "press_short"
    PRESS_LONG = "press_long"
    FINISH = "finish"
    PAUSE_TIMEOUT = "pause_timeout"
    FAULT = "fault"


@dataclass(frozen=True)
class TransitionSpec:
    """One row of the table. ``dest`` None is an internal transition (no exit/enter).

    ``guard`` and ``action`` name a ``MachineHooks`` method; rows for the same trigger
    and source are tried in order and the first whose guard passes wins.
    """

    trigger: Trigger
    source: State
    dest: State | None
    guard: str | None = None
    action: str | None = None


_row, T, S = TransitionSpec, Trigger, State
_RX_OK = "prescription_valid"
_TO_READY_OR_IDLE = ((S.READY, _RX_OK), (S.IDLE, None))

TRANSITIONS: tuple[TransitionSpec, ...] = (
    _row(T.BEGIN_SELF_TEST, S.BOOTING, S.SELF_TEST),
    *(_row(T.SELF_TEST_PASSED, S.SELF_TEST, d, g) for d, g in _TO_READY_OR_IDLE),
    _row(T.CHECK_PRESCRIPTION, S.IDLE, S.READY, _RX_OK),
    _row(T.CHECK_PRESCRIPTION, S.IDLE, None),
    _row(T.CHECK_PRESCRIPTION, S.READY, None, _RX_OK),
    _row(T.CHECK_PRESCRIPTION, S.READY, S.IDLE),
    _row(T.CHECK_PRESCRIPTION, S.COMPLETE, None),
    *(
        _row(t, S.READY, S.TREATING, "start_allowed", "begin_session")
        for t in (T.START, T.PRESS_SHORT)
    ),
    *(_row(t, S.TREATING, S.PAUSED, None, "pause_session") for t in (T.PAUSE, T.PRESS_SHORT)),
    *(
        _row(t, S.PAUSED, S.TREATING, "resume_allowed", "resume_session")
        for t in (T.RESUME, T.PRESS_SHORT)
    ),
    *(
        _row(t, s, S.COMPLETE, None, "end_stopped")
        for t in (T.STOP, T.PRESS_LONG)
        for s in (S.TREATING, S.PAUSED)
    ),
    _row(T.PAUSE_TIMEOUT, S.PAUSED, S.COMPLETE, None, "end_stopped"),
    *(_row(T.FINISH, s, S.COMPLETE) for s in (S.TREATING, S.PAUSED)),
    *(
        _row(t, S.COMPLETE, d, g)
        for t in (T.ACKNOWLEDGE, T.PRESS_SHORT, T.PRESS_LONG)
        for d, g in _TO_READY_OR_IDLE
    ),
    *(_row(t, S.FAULT, S.SELF_TEST, "fault_cleared") for t in (T.ACKNOWLEDGE, T.PRESS_LONG)),
    *(_row(T.FAULT, s, S.FAULT) for s in State if s is not S.FAULT),
    _row(T.FAULT, S.FAULT, None, None, "record_fault"),
)
"""Every allowed (trigger, source). Any pair not listed here is refused."""


class MachineHooks(Protocol):
    """What the machine asks of its owner. Guards return a refusal reason or None."""

    def prescription_valid(self) -> str | None: ...
    def start_allowed(self) -> str | None: ...
    def resume_allowed(self) -> str | None: ...
    def fault_cleared(self) -> str | None: ...
    def begin_session(self) -> None: ...
    def pause_session(self, reason: str | None, source: str | None) -> None: ...
    def resume_session(self, source: str | None) -> None: ...
    def end_stopped(self, reason: str | None, source: str | None) -> None: ...
    def record_fault(self, code: FaultCode, message: str) -> None: ...
    def run_self_test(self) -> str | None: ...
    def outputs_off(self) -> None: ...
    def entered(
        self, state: State, source: State, trigger: Trigger, kwargs: dict[str, Any]
    ) -> None: ...


@dataclass(frozen=True)
class FireResult:
    """What happened to one trigger: accepted, or refused with a readable reason."""

    accepted: bool
    state: State
    reason: str | None = None
    invalid: bool = False  # refused because the trigger is not allowed in that state


class _Model:
    """The object ``transitions`` binds triggers onto. Only forwards to the hooks."""

    state: str

    def __init__(self, hooks: MachineHooks) -> None:
        self.hooks = hooks


class SessionMachine:
    """The state machine. Call ``fire`` from the loop thread only (not re-entrantly)."""

    def __init__(self, hooks: MachineHooks, *, initial: State = State.BOOTING) -> None:
        self._hooks = hooks
        self._model = _Model(hooks)
        self._results: list[FireResult] = []
        self._guard_reason: str | None = None
        self._machine = Machine(
            model=self._model,
            states=[s.value for s in State],
            initial=initial.value,
            transitions=[self._to_dict(spec) for spec in TRANSITIONS],
            auto_transitions=False,
            queued=True,
            ignore_invalid_triggers=False,
            send_event=True,
            on_exception=[self._on_exception],
            finalize_event=[self._on_finalize],
        )
        for state in State:
            self._machine.get_state(state.value).add_callback("enter", self._on_enter)

    @property
    def state(self) -> State:
        return _STATE_BY_VALUE[self._model.state]

    def fire(self, trigger: Trigger, **kwargs: Any) -> FireResult:
        """Run ``trigger`` (and anything its callbacks queue); report the outcome."""
        self._results = []
        self._guard_reason = None
        self._machine.events[trigger.value].trigger(self._model, **kwargs)
        if not self._results:  # pragma: no cover - transitions always finalizes
            return FireResult(False, self.state, "the trigger was not processed")
        first = self._results[0]
        return FireResult(first.accepted, self.state, first.reason, first.invalid)

    def queue(self, trigger: Trigger, **kwargs: Any) -> None:
        """Fire from inside a callback: runs after the current transition completes."""
        self._machine.events[trigger.value].trigger(self._model, **kwargs)

    def _to_dict(self, spec: TransitionSpec) -> dict[str, Any]:
        row: dict[str, Any] = {
            "trigger": spec.trigger.value,
            "source": spec.source.value,
            "dest": None if spec.dest is None else spec.dest.value,
        }
        if spec.guard is not None:
            row["conditions"] = [self._guard(spec.guard)]
        if spec.action is not None:
            row["before"] = [self._action(spec.action)]
        return row

    def _guard(self, name: str) -> Any:
        def check(event: EventData) -> bool:
            reason: str | None = getattr(self._hooks, name)()
            if reason is not None:
                self._guard_reason = reason
            return reason is None

        return check

    def _action(self, name: str) -> Any:
        def act(event: EventData) -> None:
            kwargs = event.kwargs
            if name == "pause_session":
                self._hooks.pause_session(_text(kwargs, "reason"), _text(kwargs, "source"))
            elif name == "resume_session":
                self._hooks.resume_session(_text(kwargs, "source"))
            elif name == "end_stopped":
                self._hooks.end_stopped(_text(kwargs, "reason"), _text(kwargs, "source"))
            elif name == "record_fault":
                self._hooks.record_fault(*_fault_args(kwargs))
            else:
                getattr(self._hooks, name)()

        return act

    def _on_enter(self, event: EventData) -> None:
        state = State(event.state.name)
        source = State(event.transition.source) if event.transition else state
        trigger = Trigger(event.event.name)
        if state is State.FAULT:
            self._hooks.outputs_off()
            self._hooks.record_fault(*_fault_args(event.kwargs))
        self._hooks.entered(state, source, trigger, dict(event.kwargs))
        if state is State.SELF_TEST:
            reason = self._hooks.run_self_test()
            if reason is None:
                self.queue(Trigger.SELF_TEST_PASSED)
            else:
                self.queue(Trigger.FAULT, code=FaultCode.SELF_TEST_FAILED, message=reason)

    def _on_finalize(self, event: EventData) -> None:
        if event.error is not None:
            return  # _on_exception already recorded the outcome
        accepted = bool(event.result)
        reason = None if accepted else (self._guard_reason or "not allowed now")
        self._results.append(FireResult(accepted, self.state, reason))

    def _on_exception(self, event: EventData) -> None:
        err = event.error
        source = State(event.state.name) if event.state is not None else self.state
        if isinstance(err, MachineError):
            self._results.append(FireResult(False, self.state, str(err), invalid=True))
            return
        if isinstance(err, StartRefusedError) and self.state is source:
            self._results.append(FireResult(False, self.state, err.reason))
            return
        log.error(
            "exception in %s from %s: %r; outputs off, fault",
            event.event.name,
            source,
            err,
            exc_info=err,
        )
        self._hooks.outputs_off()
        message = f"internal error during {event.event.name}: {type(err).__name__}: {err}"
        self._results.append(FireResult(False, self.state, message))
        if event.event.name == Trigger.FAULT and self.state is State.FAULT:
            return  # already latched; do not loop on a failing fault handler
        if event.event.name == Trigger.FAULT:
            self._machine.set_state(State.FAULT.value, self._model)
            return
        self.queue(Trigger.FAULT, code=FaultCode.CONTROLLER_ERROR, message=message)


def _text(kwargs: dict[str, Any], key: str) -> str | None:
    """A trigger's ``reason`` (why, for the status) or ``source`` (the button, a command:
    for the log), as text; None when the trigger was fired without it."""
    value = kwargs.get(key)
    return None if value is None else str(value)


def _fault_args(kwargs: dict[str, Any]) -> tuple[FaultCode, str]:
    code = FaultCode(kwargs.get("code", FaultCode.CONTROLLER_ERROR))
    return code, str(kwargs.get("message", code.value))
