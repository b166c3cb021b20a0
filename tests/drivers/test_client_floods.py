"""A board that keeps sending what nobody asked for is counted, not logged per frame."""

from __future__ import annotations

import logging

import pytest

from drivers.client import BoardClient
from drivers.errors import DriverTimeoutError
from drivers.protocol import BoardFault, Hello, Nak, NakCode, Telemetry, TelemetryFlag
from hil.rigs.clock import VirtualClock

from .conftest import FakePort, ScriptedBoard, make_info

FRAMES = 3000
"""A minute of frames at 50 Hz."""


def _telemetry(uptime_ms: int) -> Telemetry:
    return Telemetry(
        uptime_ms, TelemetryFlag.CONTACT, BoardFault.NONE, 30.0, 30.1, 35.0, 12000, 0, ()
    )


def test_a_minute_of_unsolicited_frames_logs_once_per_kind(
    port: FakePort, board: ScriptedBoard, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = BoardClient(port, port_name="fake", clock=clock)
    client.handshake()
    caplog.set_level(logging.DEBUG, logger="drivers")
    caplog.clear()
    for index in range(FRAMES):
        board.send(_telemetry(20 * index))
        board.send(make_info(0))  # INFO again and again, nobody asked
        board.send(Hello())  # and a host command echoed back
        client.poll()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines[:5]
    assert client.counters.unsolicited == 2 * FRAMES


def test_a_hello_refused_in_every_frame_of_the_handshake_logs_once(
    port: FakePort, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A board that answers the HELLO with a NAK (not BAD_VERSION) hundreds of times
    within the handshake's second: one line, and the handshake still times out."""
    board = ScriptedBoard(port, silent=True)
    client = BoardClient(port, port_name="fake", clock=clock)
    for _ in range(FRAMES // 10):
        board.send(Nak(0, NakCode.FAULT_ACTIVE))  # the HELLO's seq is 0
    caplog.set_level(logging.DEBUG, logger="drivers")
    with pytest.raises(DriverTimeoutError, match=f"HELLO refused {FRAMES // 10} times"):
        client.handshake()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines[:5]
    assert "FAULT_ACTIVE" in lines[0]
