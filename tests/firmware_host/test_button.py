"""Button timing: short, long, stuck, bounce; from gpiozero (MockFactory) and the board."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from firmware_host.button import (
    ButtonError,
    ButtonInterpreter,
    GpioEdge,
    Press,
    gpio_button,
)
from firmware_host.loop import EventLoop
from firmware_host.machine import State
from hil.rigs.clock import VirtualClock
from safety.core_events import ButtonEdge
from safety.faults import Outcome

from .conftest import ControllerFactory, FakeCore

PIN = 17


def ticked(interp: ButtonInterpreter, clock: VirtualClock, duration_s: float) -> list[Press]:
    """Advance the clock in 20 ms ticks, collecting presses."""
    presses: list[Press] = []
    end_s = clock() + duration_s
    while clock() < end_s - 1e-9:
        clock.advance(0.02)
        presses += interp.tick()
    return presses


def test_short_press_fires_on_release(clock: VirtualClock) -> None:
    interp = ButtonInterpreter(clock)
    assert interp.feed(True) == []
    assert ticked(interp, clock, 0.5) == []
    assert interp.feed(False) == []
    assert ticked(interp, clock, 0.1) == [Press.SHORT]


def test_long_press_fires_at_two_seconds_while_held_and_not_again(clock: VirtualClock) -> None:
    interp = ButtonInterpreter(clock)
    interp.feed(True)
    assert ticked(interp, clock, 1.96) == []
    assert ticked(interp, clock, 0.08) == [Press.LONG]
    assert ticked(interp, clock, 3.0) == []
    interp.feed(False)
    assert ticked(interp, clock, 0.1) == []


def test_a_press_released_just_before_two_seconds_is_short(clock: VirtualClock) -> None:
    """The release is still being debounced when the 2 s mark passes: the press lasted
    1.99 s, edge to edge, so it is short (a pause, not a stop or an acknowledgement)."""
    interp = ButtonInterpreter(clock)
    t0 = clock()
    interp.feed(True, t0)
    presses = ticked(interp, clock, 1.98)
    interp.feed(False, t0 + 1.99)
    presses += ticked(interp, clock, 0.2)
    assert presses == [Press.SHORT]


def test_a_glitch_just_before_two_seconds_still_lets_the_long_press_fire(
    clock: VirtualClock,
) -> None:
    interp = ButtonInterpreter(clock)
    t0 = clock()
    interp.feed(True, t0)
    presses = ticked(interp, clock, 1.98)
    interp.feed(False, t0 + 1.99)  # 5 ms of contact lost, shorter than the debounce
    interp.feed(True, t0 + 1.995)
    presses += ticked(interp, clock, 0.2)
    assert presses == [Press.LONG]


def test_a_long_press_seen_only_at_release_still_counts(clock: VirtualClock) -> None:
    interp = ButtonInterpreter(clock)
    interp.feed(True, clock())
    interp.feed(False, clock() + 2.5)  # no tick ran in between
    clock.advance(2.6)
    assert interp.tick() == [Press.LONG]


def test_bounces_closer_than_30_ms_are_ignored(clock: VirtualClock) -> None:
    interp = ButtonInterpreter(clock)
    t0 = clock()
    for i, down in enumerate([True, False, True, False, True]):  # 5 ms bounce train
        interp.feed(down, t0 + 0.005 * i)
    assert ticked(interp, clock, 0.3) == []
    assert interp.held
    for i, down in enumerate([False, True, False]):
        interp.feed(down, clock() + 0.004 * i)
    assert ticked(interp, clock, 0.1) == [Press.SHORT]


def test_a_glitch_shorter_than_the_debounce_is_not_a_press(clock: VirtualClock) -> None:
    interp = ButtonInterpreter(clock)
    interp.feed(True)
    clock.advance(0.02)
    interp.feed(False)
    assert ticked(interp, clock, 3.0) == []
    assert not interp.held


def test_a_button_held_over_30_s_is_stuck_reported_and_its_release_ignored(
    clock: VirtualClock,
) -> None:
    interp = ButtonInterpreter(clock)
    interp.feed(True)
    assert ticked(interp, clock, 29.9) == [Press.LONG]
    assert not interp.stuck
    assert ticked(interp, clock, 0.2) == []
    assert interp.stuck
    interp.feed(False)
    assert ticked(interp, clock, 0.1) == []
    assert not interp.stuck
    interp.feed(True)
    ticked(interp, clock, 0.2)
    interp.feed(False)
    assert ticked(interp, clock, 0.1) == [Press.SHORT]


def test_the_same_press_reported_by_both_sources_counts_once(clock: VirtualClock) -> None:
    interp = ButtonInterpreter(clock)
    interp.feed(True)  # GPIO
    clock.advance(0.003)
    interp.feed(True)  # the board reports the same press
    ticked(interp, clock, 0.3)
    interp.feed(False)
    clock.advance(0.004)
    interp.feed(False)
    assert ticked(interp, clock, 0.1) == [Press.SHORT]


@pytest.fixture
def gpio(mock_factory: MockFactory) -> Iterator[tuple[Button, list[object]]]:
    posted: list[object] = []
    button = gpio_button(PIN, mock_factory, posted.append)
    assert button is not None
    yield button, posted
    button.close()


def test_gpio_button_posts_edges(mock_factory: MockFactory, gpio) -> None:
    _button, posted = gpio
    pin = mock_factory.pin(PIN)
    pin.drive_low()
    pin.drive_high()
    assert posted == [GpioEdge(True, None), GpioEdge(False, None)]


def test_gpio_button_stamps_edges_with_the_clock_when_given(
    mock_factory: MockFactory, clock: VirtualClock
) -> None:
    posted: list[object] = []
    button = gpio_button(PIN, mock_factory, posted.append, clock=clock)
    assert button is not None
    try:
        mock_factory.pin(PIN).drive_low()
        assert posted == [GpioEdge(True, clock())]
    finally:
        button.close()


def test_no_pin_means_no_gpio_button(mock_factory: MockFactory) -> None:
    assert gpio_button(None, mock_factory, lambda e: None) is None


def test_a_pin_that_cannot_be_opened_raises(mock_factory: MockFactory) -> None:
    first = gpio_button(PIN, mock_factory, lambda e: None)
    try:
        with pytest.raises(ButtonError) as info:
            gpio_button(PIN, mock_factory, lambda e: None)  # already in use
        assert info.value.pin == PIN
    finally:
        assert first is not None
        first.close()


def press(loop: EventLoop, mock_factory: MockFactory, held_s: float) -> None:
    pin = mock_factory.pin(PIN)
    pin.drive_low()
    loop.run_for(held_s)
    pin.drive_high()
    loop.run_for(0.2)


@pytest.fixture
def wired(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock, mock_factory
) -> Iterator[tuple[EventLoop, object]]:
    controller = make_controller()
    loop = EventLoop(controller, core, clock)
    button = gpio_button(PIN, mock_factory, loop.post)
    assert button is not None
    yield loop, controller
    button.close()
    loop.close()


def test_gpio_presses_drive_a_whole_session_through_the_loop(
    wired, mock_factory: MockFactory, core: FakeCore
) -> None:
    loop, controller = wired
    press(loop, mock_factory, 0.3)
    assert controller.state is State.TREATING and core.outputs_on
    press(loop, mock_factory, 0.3)
    assert controller.state is State.PAUSED and not core.outputs_on
    press(loop, mock_factory, 0.3)
    assert controller.state is State.TREATING
    mock_factory.pin(PIN).drive_low()
    loop.run_for(2.1)  # still held: the long press has already stopped the session
    assert controller.state is State.COMPLETE and not core.outputs_on
    assert core.ended == [Outcome.STOPPED]
    mock_factory.pin(PIN).drive_high()
    loop.run_for(0.2)
    assert controller.state is State.COMPLETE  # the release after a long press is nothing
    press(loop, mock_factory, 0.3)
    assert controller.state is State.READY


def test_gpio_bounce_is_one_press(wired, mock_factory: MockFactory, core: FakeCore) -> None:
    loop, controller = wired
    pin = mock_factory.pin(PIN)
    for _ in range(3):
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    loop.run_for(0.3)
    pin.drive_high()
    pin.drive_low()
    pin.drive_high()
    loop.run_for(0.2)
    assert controller.state is State.TREATING  # one start; not start + pause


def test_stuck_gpio_button_is_reported_in_status(
    wired, mock_factory: MockFactory, core: FakeCore
) -> None:
    loop, controller = wired
    mock_factory.pin(PIN).drive_low()
    loop.run_for(31.0)
    warnings = controller.status()["warnings"]
    assert {"code": "button_stuck", "message": "button stuck"} in warnings
    assert controller.state is State.READY  # the long press in ready is refused
    mock_factory.pin(PIN).drive_high()
    loop.run_for(0.2)
    assert controller.status()["warnings"] == []
    assert controller.state is State.READY


def test_board_button_events_work_like_the_gpio_button(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller()
    loop = EventLoop(controller, core, clock)
    try:
        core.poll_events = [ButtonEdge(True, clock())]
        loop.run_for(0.2)
        core.poll_events = [ButtonEdge(False, clock())]
        loop.run_for(0.2)
        assert controller.state is State.TREATING
        core.poll_events = [ButtonEdge(True, clock())]
        loop.run_for(2.1)
        assert controller.state is State.COMPLETE
    finally:
        loop.close()
