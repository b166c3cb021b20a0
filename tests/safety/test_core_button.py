"""The pad's button reaches the controller even when one of its EVENT frames is lost.

Events are sent once and never acknowledged; each TELEMETRY frame carries the button's
level too (docs/protocol.md §4: "a lost EVENT is never the only evidence"). A lost
BUTTON_UP read as a button still held made a short press a long one (a pause became a
stop); a lost BUTTON_DOWN lost the press.
"""

from __future__ import annotations

import pytest

from drivers.protocol import Event, EventKind
from safety.core_events import ButtonEdge

from .conftest import BoardFramePort, Rig


def _edges(rig: Rig, seconds: float) -> list[ButtonEdge]:
    return [e for e in rig.run(seconds) if isinstance(e, ButtonEdge)]


@pytest.mark.parametrize("lost", [EventKind.BUTTON_UP, EventKind.BUTTON_DOWN])
def test_a_lost_button_event_is_made_good_by_the_next_telemetry_frame(
    rig: Rig, lost: EventKind
) -> None:
    port = BoardFramePort(rig.port)
    rig.ready(port)
    port.lose = lambda message: isinstance(message, Event) and message.kind is lost
    rig.board.press("short")
    edges = _edges(rig, 0.5)
    assert [e.down for e in edges] == [True, False]
    assert edges[1].t_s - edges[0].t_s == pytest.approx(0.3, abs=0.05)


def test_frames_that_agree_with_the_events_add_no_edge(rig: Rig) -> None:
    rig.ready()
    rig.board.button(True)
    assert [e.down for e in _edges(rig, 3.0)] == [True]
    rig.board.button(False)
    assert [e.down for e in _edges(rig, 3.0)] == [False]
