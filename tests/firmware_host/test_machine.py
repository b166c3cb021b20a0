"""The state machine on its own: every (state, trigger) pair, guards, exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from firmware_host.machine import TRANSITIONS, SessionMachine, State, Trigger
from safety.errors import StartRefusedError
from safety.faults import FaultCode

S, T = State, Trigger
REFUSED = "refused"

# Written out by hand, independently of TRANSITIONS, with every guard passing.
# A trigger that moves through self_test ends where the (passing) self-test leads: ready.
ALLOWED: dict[tuple[State, Trigger], State] = {
    (S.BOOTING, T.BEGIN_SELF_TEST): S.READY,
    (S.SELF_TEST, T.SELF_TEST_PASSED): S.READY,
    (S.IDLE, T.CHECK_PRESCRIPTION): S.READY,
    (S.READY, T.CHECK_PRESCRIPTION): S.READY,
    (S.READY, T.START): S.TREATING,
    (S.READY, T.PRESS_SHORT): S.TREATING,
    (S.TREATING, T.PAUSE): S.PAUSED,
    (S.TREATING, T.PRESS_SHORT): S.PAUSED,
    (S.TREATING, T.STOP): S.COMPLETE,
    (S.TREATING, T.PRESS_LONG): S.COMPLETE,
    (S.TREATING, T.FINISH): S.COMPLETE,
    (S.PAUSED, T.RESUME): S.TREATING,
    (S.PAUSED, T.PRESS_SHORT): S.TREATING,
    (S.PAUSED, T.STOP): S.COMPLETE,
    (S.PAUSED, T.PRESS_LONG): S.COMPLETE,
    (S.PAUSED, T.PAUSE_TIMEOUT): S.COMPLETE,
    (S.PAUSED, T.FINISH): S.COMPLETE,
    (S.COMPLETE, T.CHECK_PRESCRIPTION): S.COMPLETE,
    (S.COMPLETE, T.ACKNOWLEDGE): S.READY,
    (S.COMPLETE, T.PRESS_SHORT): S.READY,
    (S.COMPLETE, T.PRESS_LONG): S.READY,
    (S.FAULT, T.ACKNOWLEDGE): S.READY,
    (S.FAULT, T.PRESS_LONG): S.READY,
    **{(s, T.FAULT): S.FAULT for s in State},
}


@dataclass
class Hooks:
    """MachineHooks with settable guard answers; records every call."""

    guards: dict[str, str | None] = field(default_factory=dict)
    self_test_result: str | None = None
    raise_in: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    faults: list[tuple[FaultCode, str]] = field(default_factory=list)
    outputs_off_count: int = 0

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.raise_in:
            raise self.raise_in[name]

    def _guard(self, name: str) -> str | None:
        self._call(name)
        return self.guards.get(name)

    def prescription_valid(self) -> str | None:
        return self._guard("prescription_valid")

    def start_allowed(self) -> str | None:
        return self._guard("start_allowed")

    def resume_allowed(self) -> str | None:
        return self._guard("resume_allowed")

    def fault_cleared(self) -> str | None:
        return self._guard("fault_cleared")

    def begin_session(self) -> None:
        self._call("begin_session")

    def pause_session(self, reason: str | None, source: str | None) -> None:
        self._call("pause_session")

    def resume_session(self, source: str | None) -> None:
        self._call("resume_session")

    def end_stopped(self, reason: str | None, source: str | None) -> None:
        self._call("end_stopped")

    def record_fault(self, code: FaultCode, message: str) -> None:
        self.faults.append((code, message))

    def run_self_test(self) -> str | None:
        self._call("run_self_test")
        return self.self_test_result

    def outputs_off(self) -> None:
        self.outputs_off_count += 1

    def entered(
        self, state: State, source: State, trigger: Trigger, kwargs: dict[str, Any]
    ) -> None:
        self._call(f"entered_{state}")


@pytest.mark.parametrize("trigger", list(Trigger))
@pytest.mark.parametrize("state", list(State))
def test_every_state_and_trigger_moves_or_refuses_never_raises(
    state: State, trigger: Trigger
) -> None:
    hooks = Hooks()
    machine = SessionMachine(hooks, initial=state)
    result = machine.fire(trigger)
    expected = ALLOWED.get((state, trigger), REFUSED)
    if expected == REFUSED:
        assert not result.accepted
        assert result.invalid
        assert machine.state is state
        assert result.reason
    else:
        assert result.accepted, result.reason
        assert machine.state is expected
        assert result.state is expected


def test_the_table_and_the_hand_written_expectations_agree() -> None:
    pairs = {(row.source, row.trigger) for row in TRANSITIONS}
    assert pairs == set(ALLOWED)


def test_fault_is_latched_and_turns_the_outputs_off() -> None:
    hooks = Hooks()
    machine = SessionMachine(hooks, initial=State.TREATING)
    machine.fire(Trigger.FAULT, code=FaultCode.SKIN_OVERTEMP, message="hot")
    assert machine.state is State.FAULT
    assert hooks.outputs_off_count == 1
    assert hooks.faults == [(FaultCode.SKIN_OVERTEMP, "hot")]
    for trigger in (Trigger.START, Trigger.RESUME, Trigger.PRESS_SHORT, Trigger.CHECK_PRESCRIPTION):
        assert not machine.fire(trigger).accepted
        assert machine.state is State.FAULT


def test_a_second_fault_in_fault_is_recorded_not_ignored() -> None:
    hooks = Hooks()
    machine = SessionMachine(hooks, initial=State.FAULT)
    assert machine.fire(Trigger.FAULT, code=FaultCode.BOARD_RESET, message="reset").accepted
    assert hooks.faults == [(FaultCode.BOARD_RESET, "reset")]


@pytest.mark.parametrize(
    ("state", "trigger", "guard"),
    [
        (State.READY, Trigger.START, "start_allowed"),
        (State.READY, Trigger.PRESS_SHORT, "start_allowed"),
        (State.PAUSED, Trigger.RESUME, "resume_allowed"),
        (State.PAUSED, Trigger.PRESS_SHORT, "resume_allowed"),
        (State.FAULT, Trigger.ACKNOWLEDGE, "fault_cleared"),
        (State.FAULT, Trigger.PRESS_LONG, "fault_cleared"),
    ],
)
def test_a_failing_guard_refuses_with_its_reason(
    state: State, trigger: Trigger, guard: str
) -> None:
    hooks = Hooks(guards={guard: f"because {guard}"})
    machine = SessionMachine(hooks, initial=state)
    result = machine.fire(trigger)
    assert not result.accepted
    assert not result.invalid
    assert result.reason == f"because {guard}"
    assert machine.state is state
    assert not any(c.startswith(("begin", "resume_session", "entered")) for c in hooks.calls)


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (State.SELF_TEST, Trigger.SELF_TEST_PASSED, State.IDLE),
        (State.READY, Trigger.CHECK_PRESCRIPTION, State.IDLE),
        (State.IDLE, Trigger.CHECK_PRESCRIPTION, State.IDLE),
        (State.COMPLETE, Trigger.ACKNOWLEDGE, State.IDLE),
        (State.COMPLETE, Trigger.PRESS_SHORT, State.IDLE),
    ],
)
def test_no_valid_prescription_leads_to_idle(
    state: State, trigger: Trigger, expected: State
) -> None:
    machine = SessionMachine(Hooks(guards={"prescription_valid": "expired"}), initial=state)
    assert machine.fire(trigger).accepted
    assert machine.state is expected


def test_a_failed_self_test_latches_a_fault_with_the_reason() -> None:
    hooks = Hooks(self_test_result="rail line stuck")
    machine = SessionMachine(hooks)
    machine.fire(Trigger.BEGIN_SELF_TEST)
    assert machine.state is State.FAULT
    assert hooks.faults == [(FaultCode.SELF_TEST_FAILED, "rail line stuck")]


def test_leaving_fault_runs_a_fresh_self_test() -> None:
    hooks = Hooks()
    machine = SessionMachine(hooks, initial=State.FAULT)
    machine.fire(Trigger.ACKNOWLEDGE)
    assert hooks.calls.index("fault_cleared") < hooks.calls.index("run_self_test")
    assert machine.state is State.READY


def test_start_refused_by_the_action_is_a_refusal_not_a_fault() -> None:
    hooks = Hooks(raise_in={"begin_session": StartRefusedError("ledger says too soon")})
    machine = SessionMachine(hooks, initial=State.READY)
    result = machine.fire(Trigger.START)
    assert not result.accepted
    assert result.reason == "ledger says too soon"
    assert machine.state is State.READY
    assert hooks.outputs_off_count == 0


@pytest.mark.parametrize(
    ("state", "trigger", "where"),
    [
        (State.READY, Trigger.START, "begin_session"),  # before the state changes
        (State.TREATING, Trigger.PAUSE, "entered_paused"),  # after: already in the new state
        (State.FAULT, Trigger.ACKNOWLEDGE, "run_self_test"),  # on_enter of self_test
        (State.PAUSED, Trigger.RESUME, "resume_allowed"),  # in a guard
    ],
)
def test_an_exception_in_a_callback_ends_in_fault_with_outputs_off(
    state: State, trigger: Trigger, where: str
) -> None:
    hooks = Hooks(raise_in={where: RuntimeError("boom")})
    machine = SessionMachine(hooks, initial=state)
    result = machine.fire(trigger)
    assert not result.accepted
    assert "boom" in (result.reason or "")
    assert machine.state is State.FAULT
    assert hooks.outputs_off_count >= 1
    assert hooks.faults[-1][0] is FaultCode.CONTROLLER_ERROR


def test_a_failing_fault_handler_still_ends_in_fault_without_looping() -> None:
    hooks = Hooks(raise_in={"entered_fault": RuntimeError("display broken")})
    machine = SessionMachine(hooks, initial=State.TREATING)
    machine.fire(Trigger.FAULT, code=FaultCode.STUCK_ON, message="stuck")
    assert machine.state is State.FAULT
    assert hooks.outputs_off_count >= 1
    assert hooks.calls.count("entered_fault") == 1


def test_no_auto_transitions_exist() -> None:
    machine = SessionMachine(Hooks())
    model = machine._model
    assert not any(hasattr(model, f"to_{s}") for s in State)


def test_the_exception_handler_turns_outputs_off_before_fault_is_even_entered() -> None:
    # Two independent paths: at once in on_exception, and again on entering fault.
    hooks = Hooks(raise_in={"entered_paused": RuntimeError("boom")})
    machine = SessionMachine(hooks, initial=State.TREATING)
    machine.fire(Trigger.PAUSE)
    assert hooks.outputs_off_count == 2
    assert machine.state is State.FAULT
