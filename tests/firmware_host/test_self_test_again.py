"""Between sessions, a self-test the core no longer counts (the pad reset, its power cut)
is run again by the controller, as at boot; a failure is a fault, never a silent wait."""

from __future__ import annotations

import logging

import pytest

from firmware_host.machine import State
from hil.rigs.clock import VirtualClock

from .conftest import ControllerFactory, FakeCore, ticks


def test_a_voided_self_test_is_run_again_while_ready(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller()
    core.calls.clear()
    ticks(controller, clock, 2.5)
    assert "self_test" not in core.calls  # it still counts: nothing to do
    core.self_test_passed = False  # what the core says after the pad reset
    ticks(controller, clock, 1.5)
    assert core.calls.count("self_test") == 1
    assert controller.state is State.READY


def test_a_failed_second_self_test_is_a_fault_with_its_reason(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller()
    core.self_test_passed = False
    core.self_test_result = "The pad sends no telemetry."
    ticks(controller, clock, 1.5)
    assert controller.state is State.FAULT
    assert controller.status()["fault"] == {
        "code": "self_test_failed",
        "message": "The pad sends no telemetry.",
        "clear_refusal": None,
    }


def test_no_self_test_while_a_session_runs_or_its_outcome_shows(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller()
    assert controller.command("start").ok
    core.self_test_passed = False
    core.calls.clear()
    ticks(controller, clock, 1.5)
    assert "self_test" not in core.calls
    assert controller.command("stop").ok
    ticks(controller, clock, 1.5)  # complete: the outcome shows until acknowledged
    assert "self_test" not in core.calls


def test_a_pad_that_keeps_resetting_is_logged_once_a_minute_not_every_second(
    make_controller: ControllerFactory,
    core: FakeCore,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller = make_controller()
    caplog.set_level(logging.INFO, logger="firmware_host.controller")
    for _ in range(30):  # a board in a reset loop voids each self-test the next second
        core.self_test_passed = False
        ticks(controller, clock, 1.0)
    assert core.calls.count("self_test") >= 30
    again = [r for r in caplog.records if "running it again" in r.getMessage()]
    assert len(again) == 1
