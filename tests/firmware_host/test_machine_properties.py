"""Property: whatever the patient, the board and the clock do, light only while treating."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.controller import Controller
from firmware_host.machine import State
from hil.rigs.clock import VirtualClock
from safety.core_events import ContactLost, ContactRegained, FaultLatched, SessionFinished
from safety.faults import FaultCode, Outcome

from .conftest import FakeCore, WallClock, loaded, make_profile

pytestmark = pytest.mark.slow

COMMANDS = ["start", "pause", "resume", "stop", "ack", "press_short", "press_long"]
EVENTS = [
    FaultLatched(FaultCode.SKIN_OVERTEMP, "hot"),
    ContactLost(),
    ContactRegained(),
    SessionFinished(Outcome.COMPLETED),
]
STEP = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(range(len(EVENTS))),
    st.floats(min_value=0.0, max_value=700.0),  # let time pass
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, max_size=25), contact=st.booleans())
def test_outputs_are_on_only_while_treating(steps: list[object], contact: bool) -> None:
    clock = VirtualClock()
    core = FakeCore(clock, contact=contact)
    with tempfile.TemporaryDirectory() as state_dir:
        controller = Controller(
            core, state_dir=Path(state_dir), clock=clock, wall_clock=WallClock(),
            prescription_loader=lambda: loaded(make_profile()),
        )  # fmt: skip
        controller.boot()
        for step in steps:
            if isinstance(step, str):
                reply = controller.command(step)
                assert reply.exit_code in (0, 3)
            elif isinstance(step, int):
                event = EVENTS[step]
                if isinstance(event, FaultLatched):
                    core.latch(event.code)
                if isinstance(event, SessionFinished) and core.session_active:
                    core.end_session(event.outcome)
                controller.handle_safety_events([event])
            else:
                clock.advance(step)
                controller.on_tick()
            assert core.outputs_on == (controller.state is State.TREATING)
            if controller.state is State.PAUSED:
                assert core.session_active
            assert set(controller.status()) >= {"state", "fault", "warnings"}
