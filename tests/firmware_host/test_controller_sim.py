"""The controller with the real SafetyCore and the in-process simulated board.

Whole sessions run on one virtual clock through the real event loop, assembled by
``firmware_host.assembly`` as ``nirpad run`` assembles it; the prescription is installed
as a caregiver installs it, signed by a clinic the site configuration trusts. A 2-minute
prescription keeps the suite fast; the loop, the core and the board do not care.
The board's "truth" fluence includes its seeded unit-to-unit optical error, which the
host cannot know (it trusts the calibration), so it is compared after dividing by it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_host.assembly import assemble_stack
from firmware_host.controller import Controller
from firmware_host.loop import EventLoop
from firmware_host.machine import State
from firmware_host.profile_commands import validate_and_install
from hil.rigs.clinic import sign, trust_rig_clinic
from hil.rigs.clock import VirtualClock
from hil.sim.board import SimBoard
from hil.sim.inprocess import make_sim
from safety.board_kind import BoardKind
from safety.core import SafetyCore
from safety.faults import Outcome
from safety.ledger import Ledger
from safety.rail import make_rail

from .conftest import WALL_NOW

PLANNED_J_CM2 = 40.0 * (120.0 - 10.0 / 2) / 1000.0  # 40 mW/cm², 2 min, 10 s ramp
PRESCRIPTION = b"""\
schema_version = 1
id = "rls-test"
name = "test"
prescriber = "Dr Test"
issued = 2026-01-01
expires = 2028-01-01
duration_min = 2
ramp_s = 10.0
sessions_per_week = 3
min_interval_h = 20.0
course_weeks = 4

[[channels]]
wavelength_nm = 810
irradiance_mw_cm2 = 40.0

[mode]
kind = "cw"
"""


@dataclass
class Rig:
    clock: VirtualClock
    board: SimBoard
    core: SafetyCore
    controller: Controller
    loop: EventLoop
    state_dir: Path
    wall: Callable[[], dt.datetime]

    def run(self, duration_s: float) -> None:
        self.loop.run_for(duration_s)

    def board_outputs_on(self) -> bool:
        return bool(self.board.state()["outputs_on"])

    def sessions(self) -> list[Any]:
        with Ledger.open(self.state_dir, self.wall) as ledger:
            return ledger.sessions()

    def true_fluence_j_cm2(self) -> float:
        """The board's delivered fluence without its (unknowable) unit optical error."""
        truth = self.board.state()["delivered_fluence_j_cm2"]
        factors = self.board.optics.unit_factor
        return sum(f / k for f, k in zip(truth, factors, strict=True))


@pytest.fixture
def rig(mock_factory: MockFactory, tmp_path: Path) -> Iterator[Rig]:
    with _rig_on(tmp_path) as rig:
        yield rig


@contextmanager
def _rig_on(tmp_path: Path, *, history: tuple[dt.datetime, ...] = ()) -> Iterator[Rig]:
    """The stack on ``tmp_path``; ``history``: sessions of the prescription that began at
    these times, recorded before the controller starts (each one minute, completed)."""
    _record_history(tmp_path, history)
    clock, board, port = make_sim(seed=3)
    rail = make_rail(None, None)
    rail.add_listener(board.set_rail)
    start_s = clock()

    def wall() -> dt.datetime:
        return WALL_NOW + dt.timedelta(seconds=clock() - start_s)

    site = trust_rig_clinic(tmp_path)
    installed = validate_and_install(
        tmp_path, sign(PRESCRIPTION), "rx.toml", site, session_state=lambda: None, wall_clock=wall
    )
    assert installed.ok, installed.message
    stack = assemble_stack(
        state_dir=tmp_path, board=BoardKind.simulated(board.time_scale), rail=rail,
        transport=port, site_config=site, clock=clock, wall_clock=wall,
    )  # fmt: skip
    rig = Rig(clock, board, stack.core, stack.controller, stack.loop, tmp_path, wall)
    try:
        yield rig
    finally:
        stack.close()
        rail.close()


def _record_history(state_dir: Path, starts: tuple[dt.datetime, ...]) -> None:
    for start in starts:
        with Ledger.open(state_dir, lambda at=start: at) as ledger:
            sid = ledger.begin_session("rls-test", "ab" * 32, {810: PLANNED_J_CM2})
        end = start + dt.timedelta(minutes=1)
        with Ledger.open(state_dir, lambda at=end: at) as ledger:
            ledger.end_session(sid, Outcome.COMPLETED, {810: PLANNED_J_CM2})


def booted(rig: Rig) -> Rig:
    assert rig.controller.boot() is State.READY, rig.controller.status()
    rig.run(0.5)
    return rig


@pytest.mark.slow
def test_a_complete_session_delivers_the_planned_fluence(rig: Rig) -> None:
    booted(rig)
    reply = rig.controller.command("start")
    assert reply.ok, reply.message
    rig.run(60.0)
    assert rig.board_outputs_on()
    rig.run(70.0)
    assert rig.controller.state is State.COMPLETE
    assert not rig.board_outputs_on()
    status = rig.controller.status()
    assert status["fluence_j_cm2"] == pytest.approx(PLANNED_J_CM2, rel=0.005)
    assert status["planned_fluence_j_cm2"] == pytest.approx(PLANNED_J_CM2, rel=1e-6)
    assert rig.true_fluence_j_cm2() == pytest.approx(PLANNED_J_CM2, rel=0.005)
    (session,) = rig.sessions()
    assert session.outcome is Outcome.COMPLETED
    assert session.delivered_fluence_total_j_cm2 == pytest.approx(PLANNED_J_CM2, rel=0.005)


@pytest.mark.slow
def test_pause_and_resume_deliver_the_plan_with_the_light_off_while_paused(rig: Rig) -> None:
    booted(rig)
    rig.controller.command("start")
    rig.run(40.0)
    assert rig.controller.command("pause").ok
    rig.run(0.1)
    paused_at = rig.true_fluence_j_cm2()
    rig.run(20.0)
    assert rig.controller.state is State.PAUSED
    assert not rig.board_outputs_on()
    assert rig.true_fluence_j_cm2() == pytest.approx(paused_at, abs=1e-6)
    assert rig.controller.command("resume").ok
    rig.run(90.0)
    assert rig.controller.state is State.COMPLETE
    assert rig.true_fluence_j_cm2() == pytest.approx(PLANNED_J_CM2, rel=0.005)


@pytest.mark.slow
def test_ten_minutes_paused_stops_the_session(rig: Rig) -> None:
    booted(rig)
    rig.controller.command("start")
    rig.run(30.0)
    rig.controller.command("pause")
    rig.run(599.0)
    assert rig.controller.state is State.PAUSED
    rig.run(2.0)
    assert rig.controller.state is State.COMPLETE
    (session,) = rig.sessions()
    assert session.outcome is Outcome.STOPPED
    assert 0 < session.delivered_fluence_total_j_cm2 < PLANNED_J_CM2


@pytest.mark.slow
def test_a_long_press_on_the_pad_stops_and_the_next_start_is_refused(rig: Rig) -> None:
    booted(rig)
    rig.board.press("short")
    rig.run(1.0)
    assert rig.controller.state is State.TREATING
    rig.run(20.0)
    rig.board.press("long")
    rig.run(3.0)
    assert rig.controller.state is State.COMPLETE
    assert rig.controller.status()["state_reason"] == "session stopped: by the patient"
    assert not rig.board_outputs_on()
    assert rig.sessions()[0].outcome is Outcome.STOPPED
    rig.board.press("short")
    rig.run(1.0)
    assert rig.controller.state is State.READY
    reply = rig.controller.command("start")
    assert reply.exit_code == 3
    assert reply.message == rig.controller.status()["start_refusal"]
    assert rig.controller.status()["next_start_allowed_at"] is not None


def test_a_short_press_while_treating_pauses_by_the_patient(rig: Rig) -> None:
    booted(rig)
    _press(rig)
    rig.run(1.0)
    assert rig.controller.state is State.TREATING
    _press(rig)
    rig.run(1.0)
    assert rig.controller.state is State.PAUSED
    assert rig.controller.status()["state_reason"] == "paused: by the patient"


def test_lost_contact_pauses_and_the_patient_resumes(rig: Rig) -> None:
    booted(rig)
    rig.controller.command("start")
    rig.run(20.0)
    rig.board.set_contact(False)
    rig.run(0.1)
    assert rig.controller.state is State.PAUSED
    assert not rig.board_outputs_on()
    assert rig.controller.status()["state_reason"] == "paused: skin contact lost"
    assert rig.controller.command("resume").exit_code == 3
    rig.board.set_contact(True)
    rig.run(1.0)
    assert rig.controller.state is State.PAUSED  # never resumes by itself
    assert rig.controller.command("press_short").ok
    rig.run(1.0)
    assert rig.controller.state is State.TREATING and rig.board_outputs_on()


def test_the_status_says_while_a_faults_cause_is_present(rig: Rig) -> None:
    booted(rig)
    rig.controller.command("start")
    rig.run(5.0)
    rig.board.inject("skin_overtemp")
    rig.run(1.0)
    assert rig.controller.state is State.FAULT
    fault = rig.controller.status()["fault"]
    assert fault["clear_refusal"] == "the cause is still present: skin_overtemp"
    assert not rig.controller.command("ack").ok  # the same words the press would get
    rig.board.clear_injections()
    rig.run(1.0)
    assert rig.controller.status()["fault"]["clear_refusal"] is None


def test_a_board_fault_latches_with_the_light_off(rig: Rig) -> None:
    booted(rig)
    rig.controller.command("start")
    rig.run(20.0)
    rig.board.inject("led_open", channel=0)
    rig.run(1.0)
    assert rig.controller.state is State.FAULT
    assert not rig.board_outputs_on()
    status = rig.controller.status()
    assert status["fault"] is not None
    assert rig.sessions()[0].outcome is Outcome.FAULT


@pytest.mark.slow
def test_the_loop_exit_turns_the_light_off_and_closes_the_session(rig: Rig) -> None:
    booted(rig)
    rig.controller.command("start")
    rig.run(20.0)
    assert rig.board_outputs_on()
    rig.loop.run(until_s=rig.clock() + 1.0)
    rig.board.advance_to(rig.clock() + 0.1)
    assert not rig.board_outputs_on()
    assert rig.sessions()[0].outcome is not None


@pytest.mark.slow
def test_a_controller_error_mid_session_is_recorded_in_the_ledger(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault the controller finds itself is not only logged: it reaches the ledger."""
    booted(rig)
    assert rig.controller.command("start").ok
    rig.run(20.0)
    real_tick = rig.core.tick

    def broken_tick() -> list[Any]:
        monkeypatch.setattr(rig.core, "tick", real_tick)
        raise RuntimeError("boom")

    monkeypatch.setattr(rig.core, "tick", broken_tick)
    rig.run(0.1)
    assert rig.controller.state is State.FAULT
    assert not rig.board_outputs_on()
    assert rig.controller.status()["fault"]["code"] == "controller_error"
    (session,) = rig.sessions()
    assert session.outcome is Outcome.FAULT
    with Ledger.open(rig.state_dir, rig.wall) as ledger:
        assert [f.code for f in ledger.faults()] == ["controller_error"]


def test_a_caregiver_confirms_the_clock_and_the_next_start_waits_an_interval(rig: Rig) -> None:
    booted(rig)
    assert rig.controller.command("start").ok
    rig.run(5.0)
    assert rig.controller.command("stop").ok
    rig.run(0.5)
    assert rig.controller.command("ack").ok  # back to ready
    rig.run(0.5)
    assert not rig.controller.command("clock_confirm", {"now": "soon"}).ok
    year_one = {"now": "0001-01-01T00:00+14:00"}  # no UTC time: refused, not a fault
    assert not rig.controller.command("clock_confirm", year_one).ok
    assert str(rig.controller.state) == "ready"
    reply = rig.controller.command("clock_confirm", {"now": rig.wall().isoformat()})
    assert reply.ok and "one full interval" in reply.message, reply.message
    status = rig.controller.status()
    assert status["start_refusal"] is not None and "20 h" in status["start_refusal"]
    with Ledger.open(rig.state_dir, rig.wall) as ledger:
        assert [e.kind for e in ledger.events()] == ["clock_confirmed"]


def test_after_the_course_ended_the_status_shows_no_next_start(
    mock_factory: MockFactory, tmp_path: Path
) -> None:
    """The four-week course began 29 days ago and ended yesterday; the last session was
    3 hours ago. A start is refused for the course, and no start time is shown: the
    schedule's (tomorrow afternoon) would tell the patient the pad starts then."""
    history = (WALL_NOW - dt.timedelta(days=29), WALL_NOW - dt.timedelta(hours=3))
    with _rig_on(tmp_path, history=history) as rig:
        booted(rig)
        status = rig.controller.status()
        assert "The prescribed course of 4 weeks" in (status["start_refusal"] or "")
        assert status["next_start_allowed_at"] is None


def test_resetting_a_record_that_is_not_lost_is_refused(rig: Rig) -> None:
    booted(rig)
    reply = rig.controller.command("ledger_reset")
    assert not reply.ok and reply.exit_code == 3
    assert "nothing to reset" in reply.message


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines logged at INFO and above since the last call."""
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    caplog.clear()
    return lines


def _treating_and_logging(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """A session treating for 2 s, and the log captured at INFO from now on."""
    booted(rig)
    assert rig.controller.command("start").ok
    rig.run(2.0)
    caplog.set_level(logging.INFO)
    caplog.clear()


def _press(rig: Rig) -> None:
    rig.board.press("short")


def _command(name: str) -> Callable[[Rig], None]:
    def send(rig: Rig) -> None:
        assert rig.controller.command(name).ok

    return send


@pytest.mark.parametrize(
    ("pause", "resume", "why"),
    [
        (_press, _press, "short press of the button"),
        (_command("pause"), _command("resume"), "{} command"),
    ],
    ids=["button", "command"],
)
def test_a_pause_and_a_resume_log_one_line_each_saying_why(
    rig: Rig,
    caplog: pytest.LogCaptureFixture,
    pause: Callable[[Rig], None],
    resume: Callable[[Rig], None],
    why: str,
) -> None:
    """Not also the button's press, the machine's transition or the control socket."""
    _treating_and_logging(rig, caplog)
    pause(rig)
    rig.run(1.0)
    assert rig.controller.state is State.PAUSED
    assert logged(caplog) == [f"session 1 paused: {why.format('pause')}"]
    resume(rig)
    rig.run(1.0)
    assert rig.controller.state is State.TREATING
    assert logged(caplog) == [f"session 1 resumed: {why.format('resume')}"]


def test_a_pause_for_lost_contact_logs_one_line_and_a_refused_resume_its_own(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    _treating_and_logging(rig, caplog)
    rig.board.set_contact(False)
    rig.run(0.1)
    assert logged(caplog) == ["session 1 paused: skin contact lost"]
    assert rig.controller.command("resume").exit_code == 3
    assert logged(caplog) == [
        "refused resume in paused: no skin contact: put the pad on the leg, then resume"
    ]
    rig.board.set_contact(True)
    rig.run(1.0)
    assert rig.controller.command("resume").ok
    assert logged(caplog) == ["session 1 resumed: resume command"]


def test_the_pad_off_the_leg_again_while_paused_is_shown_and_a_press_stays_dark(rig: Rig) -> None:
    """Contact lost, back, then lost again while still paused: the status does not keep
    saying "press to resume", and the press that would resume is refused (light off)."""
    booted(rig)
    assert rig.controller.command("start").ok
    rig.run(20.0)
    rig.board.set_contact(False)
    rig.run(0.5)
    rig.board.set_contact(True)
    rig.run(0.5)
    assert rig.controller.status()["state_reason"] == (
        "skin contact is back: press the button to resume"
    )
    rig.board.set_contact(False)
    rig.run(0.5)
    status = rig.controller.status()
    assert status["state_reason"] == "paused: skin contact lost"
    assert {"code": "contact_lost", "message": "no skin contact"} in status["warnings"]
    _press(rig)
    rig.run(1.0)
    assert rig.controller.state is State.PAUSED and not rig.board_outputs_on()


def test_a_board_reset_while_ready_is_followed_by_a_fresh_self_test(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A brown-out of the pad between sessions: its self-test no longer counts. The
    controller runs a new one by itself; before, every start was refused ("The pad has
    not passed its self-test yet.") until nirpad was restarted."""
    booted(rig)
    caplog.set_level(logging.INFO)
    rig.board.reset("brownout")
    rig.run(3.0)
    assert rig.controller.state is State.READY
    assert rig.controller.status()["start_refusal"] is None
    assert any("self-test passed" in line for line in logged(caplog))
    assert rig.controller.command("start").ok
