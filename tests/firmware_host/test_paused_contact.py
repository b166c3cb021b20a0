"""While paused, what the status says about skin contact follows the pad's contact.

The safety core reports a lost contact only while treating (it darkens the light at
once); while paused the pad may come off and back on any number of times, and a resume
needs contact. The reason and the warning must say so, not what was true earlier.
"""

from __future__ import annotations

from firmware_host.controller import Controller
from firmware_host.machine import State
from hil.rigs.clock import VirtualClock
from safety.core_events import ContactLost, ContactRegained

from .conftest import ControllerFactory, FakeCore, ticks

S = State
NO_CONTACT = {"code": "contact_lost", "message": "no skin contact"}
BACK = "skin contact is back: press the button to resume"


def _paused_by_command(make_controller: ControllerFactory) -> Controller:
    controller = make_controller()
    assert controller.command("start").ok
    assert controller.command("pause").ok
    return controller


def test_contact_lost_again_while_paused_is_said_again(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller()
    assert controller.command("start").ok
    core.contact = False
    controller.handle_safety_events([ContactLost()])
    core.contact = True
    controller.handle_safety_events([ContactRegained()])
    ticks(controller, clock)
    assert controller.status()["state_reason"] == BACK
    core.contact = False  # off the leg again, still paused: the core says nothing
    ticks(controller, clock)
    status = controller.status()
    assert status["state_reason"] == "paused: skin contact lost"
    assert NO_CONTACT in status["warnings"]
    assert not controller.command("press_short").ok
    core.contact = True
    ticks(controller, clock)
    status = controller.status()
    assert status["state_reason"] == BACK and status["warnings"] == []
    assert controller.command("press_short").ok
    assert controller.state is S.TREATING


def test_contact_lost_during_a_pause_says_why_a_resume_is_refused(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = _paused_by_command(make_controller)
    core.contact = False
    ticks(controller, clock)
    status = controller.status()
    assert status["state_reason"] == (
        "paused: by a pause command; no skin contact: put the pad on the leg to resume"
    )
    assert NO_CONTACT in status["warnings"]
    assert not controller.command("resume").ok
    core.contact = True
    ticks(controller, clock)
    assert controller.status()["state_reason"] == BACK
    assert controller.command("resume").ok
    ticks(controller, clock)
    assert controller.status()["warnings"] == []


def test_the_warning_does_not_outlive_the_contact_after_the_session_ended(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = _paused_by_command(make_controller)
    core.contact = False
    ticks(controller, clock)
    assert controller.command("stop").ok
    assert NO_CONTACT in controller.status()["warnings"]  # still true: the pad is off
    core.contact = True
    ticks(controller, clock)
    assert controller.status()["warnings"] == []


def test_contact_not_known_changes_nothing(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    """Telemetry not current: contact is null, neither lost nor back."""
    controller = _paused_by_command(make_controller)
    core.contact = None  # type: ignore[assignment]
    ticks(controller, clock)
    status = controller.status()
    assert status["state_reason"] == "paused: by a pause command"
    assert status["warnings"] == []
