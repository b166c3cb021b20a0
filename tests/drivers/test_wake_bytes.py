"""A lone ACK does not wake the reader: the wake threshold of the port, the client's choice
of it, and the frame lengths the choice rests on."""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from dataclasses import replace
from typing import Any

import pytest

from drivers.client import BoardClient
from drivers.errors import BoardDisconnectedError
from drivers.protocol import (
    ACK_FRAME_BYTES,
    Ack,
    ChannelTelemetry,
    ClearFaults,
    Event,
    EventKind,
    FrameDecoder,
    Nak,
    NakCode,
    Telemetry,
    encode_frame,
)
from drivers.protocol.framing import MAX_ENCODED
from drivers.transport import PosixFdPort, open_port, set_wake_bytes
from tests.drivers.conftest import CALIBRATION, FakePort, make_info
from tests.drivers.test_client import ACK_TIMEOUT_S, SETPOINT, telemetry

MORE_THAN_AN_ACK = ACK_FRAME_BYTES + 1


class WakePort(FakePort):
    """A FakePort that keeps every wake threshold it is asked for, and honours it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.wake_bytes = 1
        self.asked: list[int] = []
        self.waits_at: list[int] = []  # the threshold in force at each wait
        self.refuse: BaseException | None = None

    def set_wake_bytes(self, n_bytes: int) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.asked.append(n_bytes)
        self.wake_bytes = n_bytes

    def wait_readable(self, timeout_s: float) -> bool:
        """As a tty with VMIN: True once ``wake_bytes`` wait, else False at the deadline."""
        self.waits_at.append(self.wake_bytes)
        deadline_s = self.clock() + timeout_s
        while self.in_waiting < self.wake_bytes:
            if not self._scheduled or self._scheduled[0][0] > deadline_s:
                self.clock.advance_to(deadline_s)
                return False
            self.clock.advance_to(self._scheduled[0][0])
        return True


@pytest.fixture
def port(clock: Any) -> WakePort:
    return WakePort(clock)


@pytest.fixture
def client(port: WakePort, clock: Any) -> BoardClient:
    return BoardClient(port, port_name="fake", clock=clock, ack_timeout_s=ACK_TIMEOUT_S, retries=3)


# ------------------------------------------------------------------ the frame lengths


def test_every_other_board_frame_is_longer_than_an_ack() -> None:
    assert len(encode_frame(Ack(0xFFFF), 0xFFFF)) == ACK_FRAME_BYTES
    others = [
        Nak(0, min(NakCode)),
        Event(0, EventKind.BUTTON_DOWN, 0),
        telemetry(),  # no channels: the shortest telemetry frame
        make_info(0, calibration=CALIBRATION[:1]),
    ]
    for message in others:
        assert len(encode_frame(message, 0)) > ACK_FRAME_BYTES, message


def test_an_overlong_frame_being_skipped_counts_as_half_read() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x01" * (MAX_ENCODED + 1)) == []
    assert decoder.holds_partial
    decoder.feed(b"\x01\x00")
    assert not decoder.holds_partial


def test_the_decoder_says_when_it_holds_half_a_frame() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(telemetry(), 1)
    assert not decoder.holds_partial
    assert decoder.feed(frame[:5]) == []
    assert decoder.holds_partial
    assert len(decoder.feed(frame[5:])) == 1
    assert not decoder.holds_partial


# ------------------------------------------------------------------ the client's choice


def test_any_byte_wakes_until_the_board_has_said_who_it_is(
    client: BoardClient, port: WakePort, board: Any
) -> None:
    port.wake_bytes = MORE_THAN_AN_ACK  # as an earlier client on this port left it
    board.send(telemetry(), 0.0)
    client.poll()
    assert port.asked == [1]  # no handshake yet: any byte
    client.handshake()
    assert port.waits_at and set(port.waits_at) == {1}


def test_a_streaming_board_wakes_the_reader_for_more_than_an_ack(
    client: BoardClient, port: WakePort, board: Any, clock: Any
) -> None:
    client.handshake()
    board.send(telemetry(), 0.0)
    client.poll()
    assert port.asked == [1, MORE_THAN_AN_ACK]
    seq = client.set_output(SETPOINT, lease_ms=200)
    clock.advance(0.01)  # the ACK (and only it) has arrived
    assert port.in_waiting == ACK_FRAME_BYTES
    assert not client.wait_readable(0.005)  # a lone ACK does not wake the reader
    board.send(telemetry(40), 0.0)
    assert client.wait_readable(0.005)  # the next frame does, and brings the ACK along
    inputs = client.poll()
    assert [type(x).__name__ for x in inputs] == ["CommandAcked", "Telemetry"]
    assert inputs[0].seq == seq
    assert port.asked == [1, MORE_THAN_AN_ACK]  # asked once, not on every poll


def test_a_caller_blocking_for_a_reply_wakes_for_any_byte(
    client: BoardClient, port: WakePort, board: Any
) -> None:
    client.handshake()
    client.poll()
    port.waits_at.clear()
    assert client.request(ClearFaults(), 0.5) == Ack(1)
    assert port.waits_at and set(port.waits_at) == {1}  # the ACK alone ends the wait
    client.poll()
    assert port.asked[-1] == MORE_THAN_AN_ACK  # and streaming again after it


def test_half_a_frame_wakes_the_reader_for_its_rest(
    client: BoardClient, port: WakePort, board: Any, clock: Any
) -> None:
    client.handshake()
    client.poll()
    lit = replace(telemetry(), channels=(ChannelTelemetry(350.0, 0, 100),))
    frame = encode_frame(lit, 9)
    port.deliver(frame[:4])
    assert client.poll() == []
    assert port.asked[-1] == 1  # the rest may be shorter than an ACK
    port.deliver(frame[4:])
    assert [type(x) for x in client.poll()] == [Telemetry]
    assert port.asked[-1] == MORE_THAN_AN_ACK


def test_a_port_that_fails_to_set_its_threshold_is_a_disconnect_after_its_frames(
    client: BoardClient, port: WakePort, board: Any
) -> None:
    client.handshake()
    client.poll()  # streaming: more than an ACK
    fault = Event(123, EventKind.BOARD_FAULT, 0x80)
    port.deliver(encode_frame(fault, 7) + encode_frame(telemetry(), 8)[:4])  # + half a frame
    port.refuse = termios.error(5, "Input/output error")  # the cable goes, mid-read
    assert client.poll() == [fault]  # what was read is not lost
    assert client.wait_readable(1.0)  # the loop comes back at once...
    with pytest.raises(BoardDisconnectedError) as caught:
        client.poll()  # ...and learns of the disconnect
    assert caught.value.code == "disconnected"


# ------------------------------------------------------------------ the ports


def test_a_port_without_the_feature_wakes_for_any_byte() -> None:
    port = open_port("loop://", baudrate=115200, write_timeout_s=0.5)
    client = BoardClient(port, port_name="loop://")
    try:
        set_wake_bytes(port, MORE_THAN_AN_ACK)
        client.output_off()  # loop:// echoes the host's 7-byte frame: it still wakes
        assert client.wait_readable(1.0)
    finally:
        client.close()


def test_a_tty_wakes_its_reader_only_once_enough_bytes_wait() -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    port = open_port(os.ttyname(slave), baudrate=115200, write_timeout_s=0.5)
    os.close(slave)
    assert isinstance(port, PosixFdPort)
    try:
        set_wake_bytes(port, MORE_THAN_AN_ACK)
        os.write(master, encode_frame(Ack(3), 3))
        time.sleep(0.05)  # the pty hands the bytes on a moment later
        assert select.select([port.fileno()], [], [], 0)[0] == []
        assert port.read(4096) == encode_frame(Ack(3), 3)  # reads still take what is there
        os.write(master, encode_frame(Ack(4), 4) + b"\x01")
        assert select.select([port.fileno()], [], [], 5.0)[0] == [port.fileno()]
        port.read(4096)
        os.close(master)  # a hang-up wakes the reader whatever the threshold
        assert select.select([port.fileno()], [], [], 5.0)[0] == [port.fileno()]
    finally:
        port.close()


def test_a_resend_that_fails_does_not_lose_the_frames_read_before_it(
    client: BoardClient, port: WakePort, board: Any, clock: Any
) -> None:
    client.handshake()
    board.silent = True  # the command goes unanswered: a resend falls due
    client.set_output(SETPOINT, lease_ms=200)
    clock.advance(ACK_TIMEOUT_S * 1.5)
    fault = Event(9, EventKind.BOARD_FAULT, 0x80)
    board.send(fault)
    original_write = port.write

    def failing_write(data: bytes) -> int | None:
        raise OSError(5, "Input/output error")

    port.write = failing_write  # type: ignore[method-assign]
    assert client.poll() == [fault]  # the resend failed after the event was read
    port.write = original_write  # type: ignore[method-assign]
    with pytest.raises(BoardDisconnectedError):
        client.poll()
