"""Whole sessions through the safety core on the in-process simulator.

A complete session delivers its plan (within 0.5 %) and is recorded COMPLETED, with a
checkpoint at least every 5 s; pauses (the patient's and lost contact) stop light and
dose at once; stopping ends with the outputs off; the snapshot reports what happens.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from drivers.client import CommandRejected
from drivers.protocol import Ack, ClearFaults, Event, EventKind, Message, Nak, NakCode
from hil.sim.inprocess import make_sim
from safety.core_events import (
    ButtonEdge,
    ContactLost,
    ContactRegained,
    FaultLatched,
    SafetyEvent,
    SafetyWarning,
    SessionFinished,
)
from safety.errors import StartRefusedError
from safety.faults import FaultCode, Outcome, WarningCode
from safety.limits import CALIBRATION_UNCERTAINTY_FRACTION
from safety.rail import MOCK_RAIL_PIN

from .conftest import BoardFramePort, Rig, make_profile


def _finished(events: list[SafetyEvent]) -> bool:
    return any(isinstance(e, SessionFinished | FaultLatched) for e in events)


def _run_to_end(rig: Rig, max_s: float = 200.0) -> None:
    rig.run(max_s, until=_finished)
    assert any(isinstance(e, SessionFinished) for e in rig.events), rig.events


def _check_complete(rig: Rig, rx: Any, min_checkpoints: int = 10, time_scale: float = 1.0) -> None:
    rig.run(0.1)  # the final OFF reaches the board
    planned = rx.planned_fluence_j_cm2
    unit = rig.board.optics.unit_factor
    truth = rig.board.state()["delivered_fluence_j_cm2"]
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
        checkpoints = ledger.checkpoints(session.id)
    assert session.outcome is Outcome.COMPLETED
    assert session.fault_code is None
    for nm, fluence in planned.items():
        counted = session.delivered_fluence_j_cm2[nm]
        assert counted == pytest.approx(fluence, rel=0.005)
        # the last capped period, the time since the last frame and the OFF's transit are
        # counted at the end (the light is on until the OFF lands): three periods at most
        one_period_j_cm2 = 50.0 * 0.02 * time_scale / 1000.0
        assert counted <= fluence + 3 * one_period_j_cm2
        channel = 0 if nm == 810 else 1
        # the board's true output differs from its calibration by its unit error only,
        # which the count's uncertainty margin covers: never under-counted, ≤ 0.5 % over
        assert truth[channel] == pytest.approx(
            counted * unit[channel], rel=0.005, abs=3 * one_period_j_cm2
        )
        lowest = (counted - 3 * one_period_j_cm2) / (1 + CALIBRATION_UNCERTAINTY_FRACTION) ** 2
        assert lowest <= truth[channel] <= counted
        assert truth[channel] >= fluence * (1 - 0.005)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(checkpoints)]
    assert len(checkpoints) >= min_checkpoints and max(gaps, default=0) <= 5.0 + 0.03
    assert [(c.delivered_fluence_total_j_cm2) for c in checkpoints] == sorted(
        c.delivered_fluence_total_j_cm2 for c in checkpoints
    )
    assert rig.board.state()["outputs_on"] is False


def test_complete_cw_session_delivers_the_plan(rig: Rig) -> None:
    core = rig.ready()
    rx = make_profile()
    core.begin_session(rx, "ab" * 32)
    assert core.snapshot().session_active
    rig.run(30.0)
    mid = core.snapshot()
    assert 0 < mid.delivered_total_j_cm2 < mid.planned_total_j_cm2
    assert mid.irradiance_mw_cm2[810] == pytest.approx(45.0, rel=0.02)
    assert mid.elapsed_s == pytest.approx(30.0, abs=0.1)
    assert mid.remaining_s == pytest.approx(30.0, abs=0.1)
    assert mid.contact and mid.rail_enabled and mid.self_test_passed and mid.fault is None
    assert mid.skin_temp_c is not None and mid.board_temp_c is not None
    _run_to_end(rig)
    assert [e for e in rig.events if isinstance(e, SessionFinished)] == [
        SessionFinished(Outcome.COMPLETED)
    ]
    _check_complete(rig, rx)
    end = core.snapshot()
    assert not end.session_active and end.remaining_s == 0.0
    planned = rx.planned_fluence_j_cm2[810]
    assert planned <= end.delivered_fluence_j_cm2[810] <= planned + 3 * 50.0 * 0.02 / 1000.0


@pytest.mark.slow
def test_pulsed_two_channel_session_delivers_the_plan(rig: Rig) -> None:
    core = rig.ready()
    rx = make_profile(
        channels=(
            {"wavelength_nm": 810, "irradiance_mw_cm2": 40.0},
            {"wavelength_nm": 850, "irradiance_mw_cm2": 30.0},
        ),
        mode={"kind": "pulsed", "pulse_hz": 10.0, "duty_pct": 50.0},
    )
    core.begin_session(rx, "ab" * 32)
    _run_to_end(rig)
    _check_complete(rig, rx)


def test_time_scaled_simulator_counts_board_time(tmp_path: Any) -> None:
    from safety.rail import make_rail

    from .conftest import Rig as RigType
    from .conftest import WallClock

    clock, board, port = make_sim(time_scale=10.0)
    rail = make_rail(None, None)
    rail.add_listener(board.set_rail)
    rig = RigType(clock, board, port, rail, tmp_path / "state", WallClock(clock))
    try:
        core = rig.ready()
        rx = make_profile()
        core.begin_session(rx, "ab" * 32)
        start_s = clock()
        _run_to_end(rig, max_s=20.0)
        assert clock() - start_s == pytest.approx(6.0, abs=0.1)  # 60 s of board time
        _check_complete(rig, rx, min_checkpoints=1, time_scale=10.0)
    finally:
        rig.c.close()
        rail.close()


@pytest.mark.slow
def test_pause_stops_light_and_dose_and_resume_continues(rig: Rig) -> None:
    core = rig.ready()
    rx = make_profile()
    core.begin_session(rx, "ab" * 32)
    rig.run(10.0)
    core.pause("patient pressed the button")
    core.pause("twice is harmless")
    rig.run(0.1)
    assert rig.board.state()["outputs_on"] is False
    before = core.snapshot()
    rig.run(30.0)
    during = core.snapshot()
    assert during.delivered_total_j_cm2 == before.delivered_total_j_cm2
    assert during.elapsed_s == before.elapsed_s
    core.resume()
    _run_to_end(rig)
    _check_complete(rig, rx)


def test_lost_contact_darkens_within_a_frame_and_resume_needs_contact(rig: Rig) -> None:
    """The core reports the loss and holds the light off; the state machine pauses."""
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    rig.board.set_contact(False)
    got = rig.run(0.04)
    assert ContactLost() in got
    assert rig.board.state()["outputs_on"] is False
    core.pause("skin contact lost")  # what the state machine does on ContactLost
    with pytest.raises(StartRefusedError, match="no contact"):
        core.resume()
    rig.board.set_contact(True)
    got = rig.run(0.1)
    assert ContactRegained() in got
    core.resume()
    rig.run(0.2)
    assert rig.board.state()["outputs_on"] is True
    assert core.snapshot().fault is None


def test_after_lost_contact_the_light_never_comes_back_by_itself(rig: Rig) -> None:
    """Without a pause and a resume (no state machine here), contact coming back does
    not bring the light back: the session stays dark until it is resumed or ends."""
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    rig.board.set_contact(False)
    assert rig.run(0.04).count(ContactLost()) == 1
    rig.board.set_contact(True)
    got = rig.run(2.0)
    assert ContactRegained() in got and ContactLost() not in got
    assert rig.board.state()["outputs_on"] is False
    assert core.snapshot().fault is None
    core.pause("skin contact lost")
    core.resume()
    rig.run(0.2)
    assert rig.board.state()["outputs_on"] is True


def test_a_pause_and_a_resume_log_one_line_each(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """The one line of each (the controller logs no other): the session and why; a
    pause with nothing treating says so (the light is already off)."""
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(1.0)
    caplog.set_level(logging.INFO)
    caplog.clear()
    core.pause("short press of the button")
    core.pause("pause command")
    core.resume("resume command")
    core.pause("skin contact lost")
    core.resume()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        "session 1 paused: short press of the button",
        "pause (pause command) with nothing treating (interlock paused): the light is off",
        "session 1 resumed: resume command",
        "session 1 paused: skin contact lost",
        "session 1 resumed",
    ]


def test_resume_without_a_paused_session_is_refused(rig: Rig) -> None:
    core = rig.ready()
    with pytest.raises(StartRefusedError, match="no paused session"):
        core.resume()
    core.begin_session(make_profile(), "ab" * 32)
    with pytest.raises(StartRefusedError, match="no paused session"):
        core.resume()
    assert core.snapshot().fault is None


def test_stop_ends_the_session_with_outputs_off(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(10.0)
    core.end_session(Outcome.STOPPED)
    core.end_session(Outcome.STOPPED)  # nothing open: no-op
    rig.run(0.1)
    assert rig.board.state()["outputs_on"] is False
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
    assert session.outcome is Outcome.STOPPED
    assert 0 < session.delivered_fluence_total_j_cm2 < session.planned_fluence_total_j_cm2


def test_all_off_cuts_everything_and_never_raises(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    rig.port.close()  # even with the port gone
    core.all_off()
    assert not rig.rail.enabled
    rig.board.advance_to(rig.clock() + 0.05)
    assert rig.board.state()["outputs_on"] is False
    assert not core.snapshot().self_test_passed
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
    assert session.outcome is Outcome.STOPPED


def test_all_off_after_a_fault_closes_nothing_twice(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    rig.board.inject("skin_overtemp")
    rig.run(0.5, until=_finished)
    core.all_off()
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
    assert session.outcome is Outcome.FAULT


def test_button_edges_and_warnings_reach_the_controller(rig: Rig) -> None:
    core = rig.ready()
    rig.board.press("short")
    got = rig.run(0.5)
    edges = [e for e in got if isinstance(e, ButtonEdge)]
    assert [e.down for e in edges] == [True, False]
    assert edges[1].t_s - edges[0].t_s == pytest.approx(0.3, abs=0.03)
    rig.board.inject("ntc_drift", sensor="skin_a", rate_c_per_min=60.0)
    rig.board.inject("ntc_drift", sensor="skin_b", rate_c_per_min=60.0)
    got = rig.run(15.0, until=lambda evs: any(isinstance(e, SafetyWarning) for e in evs))
    warnings = [e for e in got if isinstance(e, SafetyWarning)]
    assert warnings and warnings[0].code is WarningCode.SKIN_TEMP_WARN
    assert core.snapshot().warnings[0].code is WarningCode.SKIN_TEMP_WARN


def test_rail_cut_behind_the_cores_back_is_a_board_fault(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    assert rig.pins is not None
    rig.pins.pin(MOCK_RAIL_PIN).state = False  # the line drops (wiring fault)
    assert not rig.rail.enabled  # the board refuses SET_OUTPUT from here on
    rig.board.set_rail(False)
    rig.run(0.5, until=_finished)
    fault = core.snapshot().fault
    assert fault is not None and fault.code is FaultCode.BOARD_FAULT
    assert "RAIL_OFF" in fault.message or "rail" in fault.message.lower()


def test_a_rejected_clear_faults_is_not_a_fault(rig: Rig) -> None:
    """Checked on the core's routing directly: the client sends CLEAR_FAULTS only in a
    request, which takes its own reply (a NAK there is ``acknowledge_fault``'s refusal,
    test_core_start), so no rejection of one reaches the routing from the wire."""
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    core._on_rejected(CommandRejected(1, ClearFaults(), NakCode.FAULT_ACTIVE))
    assert core.snapshot().fault is None


def test_a_renewal_refused_for_no_contact_is_lost_contact(rig: Rig) -> None:
    port = BoardFramePort(rig.port)
    core = rig.ready(port)
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    refused: list[Nak] = []

    def refuse_once(message: Message) -> Message:
        """The board's next ACK (a renewal's) is a NAK: no contact."""
        if refused or not isinstance(message, Ack):
            return message
        refused.append(Nak(message.echo_seq, NakCode.NO_CONTACT))
        return refused[0]

    port.alter = refuse_once
    got = rig.run(0.5, until=lambda evs: bool(refused) and ContactLost() in evs)
    # routed as lost contact (the state machine pauses), not latched as a board fault
    assert refused and ContactLost() in got, got
    assert core.snapshot().fault is None


@pytest.mark.slow
def test_a_session_held_dark_keeps_its_clock_still_and_a_late_lease_is_no_fault(
    rig: Rig,
) -> None:
    """Contact lost and no pause yet (no state machine here): the session's treating time
    stands still as if paused, it never completes in the dark, and the board's lease
    running out meanwhile is not a fault."""
    port = BoardFramePort(rig.port)
    core = rig.ready(port)
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(6.0)
    rig.board.set_contact(False)
    rig.run(0.1)
    elapsed_s = core.snapshot().elapsed_s
    got = rig.run(70.0)  # longer than the whole one-minute session
    assert SessionFinished(Outcome.COMPLETED) not in got
    snap = core.snapshot()
    assert snap.session_active and snap.fault is None
    assert snap.elapsed_s == elapsed_s
    port.send(Event(0, EventKind.LEASE_EXPIRED, 0))  # one in flight at the loss
    core.poll()
    assert core.snapshot().fault is None
