"""The controller against a fake safety core: every (state, command) and (state, event)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from firmware_host.controller import Controller
from firmware_host.machine import State
from firmware_host.status import STATUS_KEYS
from profiles.loader import LoadResult
from safety.core_events import (
    ContactLost,
    ContactRegained,
    FaultLatched,
    SafetyWarning,
    SessionFinished,
)
from safety.errors import StartRefusedError
from safety.faults import FaultCode, Outcome, WarningCode

from .conftest import ControllerFactory, FakeCore, WallClock, loaded, make_profile

S = State
REFUSED = "refused"
COMMANDS = ("start", "pause", "resume", "stop", "ack", "press_short", "press_long")

# Hand-written: what each command does in each state the controller can rest in.
EXPECTED: dict[State, dict[str, State | str]] = {
    S.BOOTING: dict.fromkeys(COMMANDS, REFUSED),
    S.IDLE: dict.fromkeys(COMMANDS, REFUSED),
    S.READY: {
        **dict.fromkeys(COMMANDS, REFUSED),
        "start": S.TREATING,
        "press_short": S.TREATING,
    },
    S.TREATING: {
        **dict.fromkeys(COMMANDS, REFUSED),
        "pause": S.PAUSED,
        "press_short": S.PAUSED,
        "stop": S.COMPLETE,
        "press_long": S.COMPLETE,
    },
    S.PAUSED: {
        **dict.fromkeys(COMMANDS, REFUSED),
        "resume": S.TREATING,
        "press_short": S.TREATING,
        "stop": S.COMPLETE,
        "press_long": S.COMPLETE,
    },
    S.COMPLETE: {
        **dict.fromkeys(COMMANDS, REFUSED),
        "ack": S.READY,
        "press_short": S.READY,
        "press_long": S.READY,
    },
    S.FAULT: {**dict.fromkeys(COMMANDS, REFUSED), "ack": S.READY, "press_long": S.READY},
}


def drive_to(
    state: State, make: ControllerFactory, core: FakeCore, rx: dict[str, object]
) -> Controller:
    if state is S.BOOTING:
        return make(boot=False)
    if state is S.IDLE:
        rx["rx"] = None
    if state is S.FAULT:
        core.self_test_result = "the rail line does not switch"
    controller = make()
    core.self_test_result = None
    steps = {S.TREATING: ["start"], S.PAUSED: ["start", "pause"], S.COMPLETE: ["start", "stop"]}
    for name in steps.get(state, []):
        assert controller.command(name).ok
    assert controller.state is state
    return controller


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("state", list(EXPECTED))
def test_every_state_and_command(
    state: State, command: str, make_controller: ControllerFactory, core: FakeCore, rx_holder: dict
) -> None:
    controller = drive_to(state, make_controller, core, rx_holder)
    reply = controller.command(command)
    expected = EXPECTED[state][command]
    if expected == REFUSED:
        assert (reply.ok, reply.exit_code) == (False, 3)
        assert reply.message.startswith(f"cannot {command.replace('_', ' ')}"[:10])
        assert controller.state is state
    else:
        assert (reply.ok, reply.exit_code) == (True, 0), reply.message
        assert controller.state is expected
    assert core.outputs_on == (controller.state is S.TREATING)


SAFETY_EVENTS = {
    "fault": FaultLatched(FaultCode.SKIN_OVERTEMP, "too warm"),
    "contact_lost": ContactLost(),
    "contact_regained": ContactRegained(),
    "finished": SessionFinished(Outcome.COMPLETED),
    "warning": SafetyWarning(WarningCode.SKIN_TEMP_WARN, "warm"),
}


@pytest.mark.parametrize("event", list(SAFETY_EVENTS))
@pytest.mark.parametrize("state", list(EXPECTED))
def test_every_state_and_safety_event(
    state: State, event: str, make_controller: ControllerFactory, core: FakeCore, rx_holder: dict
) -> None:
    controller = drive_to(state, make_controller, core, rx_holder)
    controller.handle_safety_events([SAFETY_EVENTS[event]])
    expected = {
        "fault": S.FAULT,
        "contact_lost": S.PAUSED if state is S.TREATING else state,
        "finished": S.COMPLETE if state in (S.TREATING, S.PAUSED) else state,
    }.get(event, state)
    assert controller.state is expected
    if expected is S.FAULT:
        assert controller.status()["fault"]["code"] in ("skin_overtemp", "self_test_failed")


def test_boot_ends_ready_with_a_valid_prescription(make_controller: ControllerFactory) -> None:
    controller = make_controller()
    assert controller.state is S.READY
    assert controller.status()["profile_id"] == "rls-test"


def test_the_boot_line_gives_a_reason_only_when_there_is_one(
    make_controller: ControllerFactory,
    rx_holder: dict[str, LoadResult | None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="firmware_host.controller")
    make_controller()
    rx_holder["rx"] = None
    make_controller()
    booted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("boot ")]
    assert booted == [
        "boot finished in ready",
        "boot finished in idle (no valid prescription: no prescription is installed)",
    ]


@pytest.mark.parametrize(
    ("rx", "reason"),
    [
        (None, "no prescription is installed"),
        (loaded(None, "cannot be read: gone"), "cannot be read: gone"),
        (loaded(make_profile(expires=dt.date(2026, 11, 1))), "expired on 2026-11-01"),
        (loaded(make_profile(issued=dt.date(2026, 12, 1))), "not valid before 2026-12-01"),
    ],
)
def test_no_usable_prescription_boots_to_idle_with_the_reason(
    rx: object, reason: str, make_controller: ControllerFactory, rx_holder: dict
) -> None:
    rx_holder["rx"] = rx
    controller = make_controller()
    assert controller.state is S.IDLE
    assert reason in controller.status()["state_reason"]
    reply = controller.command("start")
    assert reply.exit_code == 3
    assert reason in reply.message
    assert reason in controller.status()["start_refusal"]


def test_self_test_failure_boots_to_fault_with_the_reason(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    core.self_test_result = "The pad sends no telemetry."
    controller = make_controller()
    assert controller.state is S.FAULT
    status = controller.status()
    assert status["fault"] == {
        "code": "self_test_failed",
        "message": "The pad sends no telemetry.",
        "clear_refusal": None,  # an acknowledgement would be tried (and run the self-test)
    }
    assert core.all_off_count >= 1


@pytest.mark.parametrize(
    "reason",
    [
        "The pad has not passed its self-test yet.",
        "Place the pad on the skin: there is no skin contact.",
        "The skin is too warm to start (40.5 °C; it must be below 40 °C).",
        "The last session ended 3.0 h ago; the next may start after 20 h.",
        "The clock is behind the last ledger entry.",
        "The treatment record cannot be written.",
    ],
)
def test_each_start_refusal_reason_reaches_the_reply_and_status(
    reason: str, make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    core.start_refusal_result = reason
    for command in ("start", "press_short"):
        reply = controller.command(command)
        assert (reply.ok, reply.exit_code, reply.message) == (False, 3, reason)
    assert controller.status()["start_refusal"] == reason
    assert controller.state is S.READY
    assert "begin_session" not in core.calls


def test_a_start_refused_inside_begin_session_is_a_refusal(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    core.begin_error = StartRefusedError("the ledger was written by another session")
    reply = controller.command("start")
    assert (reply.exit_code, reply.message) == (3, "the ledger was written by another session")
    assert controller.state is S.READY
    assert not core.outputs_on


def test_pause_and_resume_keep_the_session(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    controller.command("pause", {"reason": "phone call"})
    assert controller.state is S.PAUSED and not core.outputs_on
    assert controller.status()["state_reason"] == "paused: phone call"
    assert controller.command("resume").ok
    assert controller.state is S.TREATING and core.outputs_on
    assert core.calls.count("begin_session") == 1
    assert core.ended == []


def test_ten_minutes_paused_ends_the_session_as_stopped(
    make_controller: ControllerFactory, core: FakeCore, clock
) -> None:
    controller = make_controller()
    controller.command("start")
    controller.command("pause")
    clock.advance(599.9)
    controller.on_tick()
    assert controller.state is S.PAUSED
    clock.advance(0.2)
    controller.on_tick()
    assert controller.state is S.COMPLETE
    assert core.ended == [Outcome.STOPPED]
    assert "10 minutes" in controller.status()["state_reason"]


def test_resuming_restarts_the_pause_deadline(
    make_controller: ControllerFactory, core: FakeCore, clock
) -> None:
    controller = make_controller()
    controller.command("start")
    controller.command("pause")
    clock.advance(500)
    controller.command("resume")
    controller.command("pause")
    clock.advance(500)
    controller.on_tick()
    assert controller.state is S.PAUSED


def test_stop_ends_the_session_and_complete_returns_to_ready(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    assert controller.command("stop").ok
    assert controller.state is S.COMPLETE and not core.outputs_on
    assert core.ended == [Outcome.STOPPED]
    assert controller.status()["state_reason"].startswith("session stopped")
    assert controller.command("ack").ok
    assert controller.state is S.READY


def test_finished_session_shows_its_outcome(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    core.session_active = core.outputs_on = False
    controller.handle_safety_events([SessionFinished(Outcome.COMPLETED)])
    assert controller.state is S.COMPLETE
    assert controller.status()["state_reason"] == "session completed"
    assert core.ended == []  # the core closed it itself


def test_contact_loss_pauses_and_regained_contact_does_not_resume(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    core.contact = False
    controller.handle_safety_events([ContactLost()])
    assert controller.state is S.PAUSED
    assert controller.status()["state_reason"] == "paused: skin contact lost"
    assert {"code": "contact_lost", "message": "no skin contact"} in controller.status()["warnings"]
    reply = controller.command("resume")
    assert reply.exit_code == 3 and "contact" in reply.message
    core.contact = True
    controller.handle_safety_events([ContactRegained()])
    assert controller.state is S.PAUSED
    assert "press the button to resume" in controller.status()["state_reason"]
    assert controller.command("press_short").ok
    assert controller.state is S.TREATING


def test_fault_needs_the_cause_cleared_then_a_fresh_self_test(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    core.latch(FaultCode.SKIN_OVERTEMP)
    controller.handle_safety_events([FaultLatched(FaultCode.SKIN_OVERTEMP, "too warm")])
    assert controller.state is S.FAULT and not core.outputs_on
    core.ack_result = "the skin is still 41.5 °C"
    reply = controller.command("press_long")
    assert reply.exit_code == 3 and "41.5" in reply.message
    assert controller.state is S.FAULT
    core.ack_result = None
    core.calls.clear()
    assert controller.command("ack").ok
    assert core.calls.index("acknowledge_fault") < core.calls.index("self_test")
    assert controller.state is S.READY
    assert controller.status()["fault"] is None


@pytest.mark.parametrize("where", ["pause", "begin_session", "end_session", "tick", "self_test"])
def test_an_exception_anywhere_ends_in_fault_with_outputs_off(
    where: str, make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    if where != "begin_session":
        assert core.outputs_on
    else:
        controller.command("stop")
        controller.command("ack")
    core.raise_in[where] = RuntimeError("boom")
    action = {
        "pause": lambda: controller.command("pause"),
        "begin_session": lambda: controller.command("start"),
        "end_session": lambda: controller.command("stop"),
        "tick": controller.on_tick,
        "self_test": lambda: (
            controller.handle_safety_events([FaultLatched(FaultCode.BOARD_RESET, "reset")])
            or controller.command("ack")
        ),
    }[where]
    action()
    assert controller.state is S.FAULT
    assert not core.outputs_on
    assert core.all_off_count >= 1
    assert controller.status()["fault"]["code"] in ("controller_error", "board_reset")


def test_prescription_expiring_while_ready_goes_to_idle(
    make_controller: ControllerFactory, wall: WallClock, clock, rx_holder: dict
) -> None:
    rx_holder["rx"] = loaded(make_profile(expires=dt.date(2026, 11, 25)))
    controller = make_controller()
    assert controller.state is S.READY
    wall.now = dt.datetime(2026, 11, 25, 0, 0, 1, tzinfo=dt.UTC)
    clock.advance(1.0)
    controller.on_tick()
    assert controller.state is S.IDLE
    assert "expired on 2026-11-25" in controller.status()["state_reason"]


def test_reload_prescription_moves_idle_to_ready(
    make_controller: ControllerFactory, rx_holder: dict
) -> None:
    rx_holder["rx"] = None
    controller = make_controller()
    assert controller.state is S.IDLE
    rx_holder["rx"] = loaded(make_profile(id="rls-new"))
    reply = controller.command("reload_prescription")
    assert reply.ok and controller.state is S.READY
    assert controller.status()["profile_id"] == "rls-new"


def test_reload_during_a_session_keeps_the_session_prescription(
    make_controller: ControllerFactory, rx_holder: dict
) -> None:
    controller = make_controller()
    controller.command("start")
    rx_holder["rx"] = loaded(make_profile(id="rls-new"))
    reply = controller.command("reload_prescription")
    assert reply.ok and "keeps its prescription" in reply.message
    assert controller.state is S.TREATING
    assert controller.status()["profile_id"] == "rls-test"


def test_unknown_command_is_refused(make_controller: ControllerFactory) -> None:
    reply = make_controller().command("launch")
    assert (reply.ok, reply.exit_code) == (False, 3)
    assert "unknown command" in reply.message


def test_status_has_exactly_the_documented_keys_and_is_json(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    core.ended.append(Outcome.STOPPED)  # the fake then reports a next start time
    status = controller.status()
    assert tuple(status) == STATUS_KEYS
    assert set(STATUS_KEYS) >= {
        "state", "profile_id", "elapsed_s", "remaining_s", "fluence_j_cm2",
        "planned_fluence_j_cm2", "irradiance_mw_cm2", "skin_temp_c", "board_temp_c",
        "contact", "fault", "start_refusal", "next_start_allowed_at", "warnings",
        "state_reason",
    }  # fmt: skip
    assert json.loads(json.dumps(status)) == status
    assert status["state"] == "treating"
    assert status["next_start_allowed_at"] == "2026-11-25T15:00:00+00:00"


def test_a_controller_error_turns_outputs_off_at_once_and_closes_the_session_as_fault(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    controller.command("start")
    core.raise_in["tick"] = RuntimeError("boom")
    core.all_off_count = 0
    controller.on_tick()
    # once by the controller's guard, once more on entering fault
    assert core.all_off_count == 2
    assert core.ended == [Outcome.FAULT]
    assert controller.state is S.FAULT


def test_a_start_refused_for_want_of_a_prescription_says_it_once(
    make_controller: ControllerFactory, rx_holder: dict
) -> None:
    """It read "there is no valid prescription (no valid prescription: none is installed)"."""
    rx_holder["rx"] = None
    controller = make_controller()
    reason = controller.status()["state_reason"]
    assert reason.startswith("no valid prescription: ")
    assert controller.command("start").message == f"cannot start: {reason}"
    assert controller.status()["start_refusal"] == f"cannot start: {reason}"


def test_reloading_a_still_unusable_prescription_updates_the_idle_reason(
    make_controller: ControllerFactory, rx_holder: dict
) -> None:
    rx_holder["rx"] = None
    controller = make_controller()
    rx_holder["rx"] = loaded(make_profile(expires=dt.date(2026, 11, 2)))
    reply = controller.command("reload_prescription")
    assert reply.ok and "expired on 2026-11-02" in reply.message
    assert controller.state is S.IDLE
    assert "expired on 2026-11-02" in controller.status()["state_reason"]


@pytest.mark.usefixtures("new_york")  # behind UTC: year 9999's last minute has no UTC time
@pytest.mark.parametrize(
    "stated", ["0001-01-01 00:00", "9999-12-31 23:59", "0001-01-01T00:00+14:00"]
)
def test_a_date_out_of_range_in_clock_confirm_is_refused_and_the_session_goes_on(
    make_controller: ControllerFactory, core: FakeCore, stated: str
) -> None:
    """A caregiver's typo (year 1, year 9999) in ``nirpad clock confirm`` is a refusal
    with the help text, not a controller error that latches a fault mid-session."""
    controller = make_controller()
    assert controller.command("start").ok
    reply = controller.command("clock_confirm", {"now": stated})
    assert not reply.ok
    assert "internal error" not in reply.message
    assert controller.state is S.TREATING and core.outputs_on


@pytest.mark.parametrize(
    ("command", "shown"),
    [("pause", "paused: by a pause command"), ("stop", "session stopped: by a stop command")],
)
def test_the_status_names_a_command_not_the_patient(
    make_controller: ControllerFactory, core: FakeCore, command: str, shown: str
) -> None:
    """A caregiver's pause or stop from nirpad or the web page is not the patient's."""
    controller = make_controller()
    controller.command("start")
    assert controller.command(command).ok
    assert controller.status()["state_reason"] == shown
