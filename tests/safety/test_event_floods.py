"""A board that repeats an EVENT in every frame while idle (a reset loop, a lease it
claims ran out again and again): logged once a minute at most, with the count."""

from __future__ import annotations

import logging

import pytest

from drivers.protocol import Event, EventKind, Message, Telemetry

from .conftest import BoardFramePort, Rig

MINUTE_S = 60.0
HANDFUL = 6


class _EventEveryFrame(BoardFramePort):
    """After every telemetry frame, an EVENT of ``kind`` (once ``on``)."""

    def __init__(self, rig: Rig, kind: EventKind) -> None:
        super().__init__(rig.port)
        self.kind = kind
        self.on = False
        self.alter = self._add_event

    def _add_event(self, message: Message) -> Message:
        if self.on and isinstance(message, Telemetry):
            self.send(Event(message.uptime_ms, self.kind, 2))
        return message


def _a_minute_of(
    rig: Rig, caplog: pytest.LogCaptureFixture, kind: EventKind, seconds: float = MINUTE_S
) -> list[str]:
    port = _EventEveryFrame(rig, kind)
    rig.ready(port)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    port.on = True
    rig.run(seconds)
    return [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize("kind", [EventKind.BOARD_RESET, EventKind.LEASE_EXPIRED])
def test_an_event_in_every_frame_while_idle_logs_a_handful(
    rig: Rig, caplog: pytest.LogCaptureFixture, kind: EventKind
) -> None:
    lines = _a_minute_of(rig, caplog, kind)
    assert len(lines) <= HANDFUL, lines[: HANDFUL + 2]
    assert any(kind.name in line or "reset" in line for line in lines)


def test_the_next_line_a_minute_later_says_how_many_were_not_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    lines = _a_minute_of(rig, caplog, EventKind.BOARD_RESET, seconds=MINUTE_S + 1.0)
    resets = [line for line in lines if "board reset while idle" in line]
    assert 1 <= len(resets) <= 2, resets  # the board's own boot reset was the first
    assert "more times in the last 60 s" in resets[-1]
