"""The one button through the controller, edge by edge, on a virtual clock.

A press counts in the state it began in: one held while the pad changed state under it
(a fault, the session's end, a caregiver's command) is not taken as a press in the new
state; the patient presses again. The fake safety core stands in for the real one.
"""

from __future__ import annotations

import logging

import pytest

from firmware_host.button import GpioEdge
from firmware_host.controller import Controller
from firmware_host.machine import State
from hil.rigs.clock import VirtualClock
from safety.core_events import ButtonEdge, FaultLatched, SessionFinished
from safety.faults import FaultCode, Outcome

from .conftest import ControllerFactory, FakeCore

S = State
TICK_S = 0.02


def run(controller: Controller, clock: VirtualClock, seconds: float) -> None:
    """Tick the controller for ``seconds`` of virtual time."""
    for _ in range(round(seconds / TICK_S)):
        clock.advance(TICK_S)
        controller.on_tick()


def edge(controller: Controller, clock: VirtualClock, down: bool) -> None:
    controller.handle_safety_events([ButtonEdge(down, clock())])


def press(controller: Controller, clock: VirtualClock, hold_s: float = 0.3) -> None:
    edge(controller, clock, True)
    run(controller, clock, hold_s)
    edge(controller, clock, False)
    run(controller, clock, 0.2)


def treating(make_controller: ControllerFactory, clock: VirtualClock) -> Controller:
    controller = make_controller()
    run(controller, clock, 0.5)
    press(controller, clock)
    assert controller.state is S.TREATING
    return controller


def test_a_press_held_across_a_fault_does_not_acknowledge_it(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    """Held down to pause, a fault latches, the cause clears at once: reaching 2 s is no
    acknowledgement of a fault the patient never saw. A fresh long press is."""
    controller = treating(make_controller, clock)
    edge(controller, clock, True)
    run(controller, clock, 0.5)
    core.latch(FaultCode.BOARD_FAULT)
    controller.handle_safety_events([FaultLatched(FaultCode.BOARD_FAULT, "board fault")])
    run(controller, clock, 2.0)
    assert controller.state is S.FAULT
    assert "acknowledge_fault" not in core.calls
    edge(controller, clock, False)
    run(controller, clock, 0.5)
    assert controller.state is S.FAULT
    assert controller.last_refusal is not None and "began before" in controller.last_refusal
    press(controller, clock, hold_s=2.2)
    assert controller.state is S.READY


def test_a_press_held_while_a_caregiver_pauses_does_not_resume(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    """The patient presses to pause; the caregiver's pause lands first. The release is
    not a resume: the light stays off until a fresh press."""
    controller = treating(make_controller, clock)
    edge(controller, clock, True)
    run(controller, clock, 0.1)
    assert controller.command("pause").ok
    run(controller, clock, 0.1)
    edge(controller, clock, False)
    run(controller, clock, 0.5)
    assert controller.state is S.PAUSED and not core.outputs_on
    press(controller, clock)
    assert controller.state is S.TREATING


def test_a_press_held_across_the_sessions_end_does_not_dismiss_the_outcome(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = treating(make_controller, clock)
    edge(controller, clock, True)
    run(controller, clock, 0.1)
    core.session_active = core.outputs_on = False
    controller.handle_safety_events([SessionFinished(Outcome.COMPLETED)])
    edge(controller, clock, False)
    run(controller, clock, 0.5)
    assert controller.state is S.COMPLETE
    assert controller.status()["state_reason"] == "session completed"


def test_an_ignored_press_is_logged_with_why(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    controller = treating(make_controller, clock)
    edge(controller, clock, True)
    run(controller, clock, 0.1)
    controller.command("pause")
    caplog.set_level(logging.INFO)
    edge(controller, clock, False)
    run(controller, clock, 0.5)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        "button: short press ignored: it began before the pad went to paused; press again"
    ]


def test_a_long_press_that_stops_counts_once_and_its_release_is_nothing(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    """The press's own transition is not a state change under it: 2 s stops, and the
    release, in complete, neither dismisses the outcome nor counts as refused."""
    controller = treating(make_controller, clock)
    controller.last_refusal = None
    press(controller, clock, hold_s=3.0)
    assert controller.state is S.COMPLETE
    assert core.ended == [Outcome.STOPPED]
    assert controller.last_refusal is None


def test_a_glitch_while_held_across_a_fault_does_not_make_it_a_fresh_press(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = treating(make_controller, clock)
    edge(controller, clock, True)
    run(controller, clock, 0.5)
    core.latch(FaultCode.BOARD_FAULT)
    controller.handle_safety_events([FaultLatched(FaultCode.BOARD_FAULT, "board fault")])
    clock.advance(0.005)
    edge(controller, clock, False)  # a 5 ms contact glitch, shorter than the debounce
    clock.advance(0.005)
    edge(controller, clock, True)
    run(controller, clock, 2.0)
    assert controller.state is S.FAULT
    assert "acknowledge_fault" not in core.calls


def test_a_press_made_while_the_pad_was_starting_up_does_not_start_a_session_later(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    """The GPIO button is open before boot; its edges wait in the loop's queue, stamped
    when they happened. A press during the boot is refused ("still starting up"), not
    acted on seconds later, when nobody expects the light."""
    controller = make_controller(boot=False)
    down_s = clock()
    clock.advance(0.3)
    up_s = clock()
    clock.advance(1.0)
    controller.boot()
    controller.handle_input(GpioEdge(True, down_s))
    controller.handle_input(GpioEdge(False, up_s))
    run(controller, clock, 0.5)
    assert controller.state is S.READY and "begin_session" not in core.calls
    assert controller.last_refusal is not None and "began before" in controller.last_refusal
    press(controller, clock)
    assert controller.state is S.TREATING


def test_a_press_held_through_the_boot_does_not_start_at_its_release(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller(boot=False)
    down_s = clock()
    clock.advance(1.0)
    controller.boot()
    controller.handle_input(GpioEdge(True, down_s))
    run(controller, clock, 0.5)
    controller.handle_input(GpioEdge(False, clock()))
    run(controller, clock, 0.5)
    assert controller.state is S.READY and "begin_session" not in core.calls
