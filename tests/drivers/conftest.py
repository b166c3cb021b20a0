"""Shared fixtures of the driver tests: a fake port on a virtual clock and a scripted board.

``FakePort`` is a ``PortLike`` that delivers bytes at scheduled virtual times; its
``wait_readable`` advances the clock to the next delivery, as the in-process simulator
does. ``ScriptedBoard`` answers host frames with the real encoder, with knobs to drop,
NAK or mangle replies. Neither is a simulator: they exist to make the client's framing,
sequence and retry logic observable.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.protocol import (
    PROTOCOL_VERSION,
    Ack,
    CalibrationPoint,
    ChannelCalibration,
    Frame,
    FrameDecoder,
    Hello,
    Info,
    Message,
    Nak,
    NakCode,
    calibration_crc,
    encode_frame,
)
from hil.rigs.clock import VirtualClock
from hil.rigs.sim_child import SimChild

CALIBRATION = (
    ChannelCalibration(810, 1000.0, (CalibrationPoint(0.0, 0.0), CalibrationPoint(1000.0, 60.0))),
    ChannelCalibration(850, 1000.0, (CalibrationPoint(0.0, 0.0), CalibrationPoint(1000.0, 55.0))),
)


def make_info(echo_seq: int, **changes: object) -> Info:
    fields: dict[str, object] = {
        "echo_seq": echo_seq,
        "protocol_version": PROTOCOL_VERSION,
        "firmware_version": (1, 2, 3),
        "simulator": True,
        "time_scale": 1.0,
        "serial": "FAKE-0001",
        "calibration": CALIBRATION,
        "calibration_crc": calibration_crc(CALIBRATION),
    }
    fields.update(changes)
    return Info(**fields)  # type: ignore[arg-type]


class FakePort:
    """A PortLike with scheduled deliveries on a VirtualClock, and injectable failures."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.writes: list[bytes] = []
        self.on_write: Callable[[bytes], None] | None = None
        self.fail_with: BaseException | None = None
        self.closed = False
        self._scheduled: list[tuple[float, bytes]] = []
        self._ready = bytearray()

    def deliver(self, data: bytes, delay_s: float = 0.0) -> None:
        self._scheduled.append((self.clock() + delay_s, data))
        self._scheduled.sort(key=lambda item: item[0])

    def _collect(self) -> None:
        now_s = self.clock()
        while self._scheduled and self._scheduled[0][0] <= now_s:
            self._ready += self._scheduled.pop(0)[1]

    def read(self, size: int = 1) -> bytes:
        if self.fail_with is not None:
            raise self.fail_with
        self._collect()
        data = bytes(self._ready[:size])
        del self._ready[:size]
        return data

    def write(self, data: bytes) -> int | None:
        if self.fail_with is not None:
            raise self.fail_with
        self.writes.append(data)
        if self.on_write is not None:
            self.on_write(data)
        return len(data)

    @property
    def in_waiting(self) -> int:
        self._collect()
        return len(self._ready)

    def close(self) -> None:
        self.closed = True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fake port has no file descriptor")

    def wait_readable(self, timeout_s: float) -> bool:
        if self.in_waiting:
            return True
        deadline_s = self.clock() + timeout_s
        if self._scheduled and self._scheduled[0][0] <= deadline_s:
            self.clock.advance_to(self._scheduled[0][0])
            return True
        self.clock.advance_to(deadline_s)
        return False


@dataclass
class ScriptedBoard:
    """Answers HELLO with INFO and commands with ACK, after ``reply_delay_s``.

    ``ignore_first`` host frames are swallowed (to force retries); ``nak`` answers
    commands with NAK; ``info_changes`` alters INFO; ``silent`` never answers.
    """

    port: FakePort
    reply_delay_s: float = 0.005
    ignore_first: int = 0
    nak: NakCode | None = None
    silent: bool = False
    info_changes: dict[str, object] = field(default_factory=dict)
    header_version: int = PROTOCOL_VERSION
    received: list[Frame] = field(default_factory=list)
    _decoder: FrameDecoder = field(default_factory=FrameDecoder)
    _seq: int = 0

    def __post_init__(self) -> None:
        self.port.on_write = self._on_bytes

    def send(self, message: Message, delay_s: float = 0.0) -> None:
        frame = encode_frame(message, self._seq, version=self.header_version)
        self._seq = (self._seq + 1) & 0xFFFF
        self.port.deliver(frame, delay_s)

    def _on_bytes(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            self.received.append(frame)
            if self.silent or len(self.received) <= self.ignore_first:
                continue
            self.send(self._reply(frame), self.reply_delay_s)

    def _reply(self, frame: Frame) -> Message:
        if isinstance(frame.message, Hello):
            return make_info(frame.seq, **self.info_changes)
        if self.nak is not None:
            return Nak(frame.seq, self.nak)
        return Ack(frame.seq)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def port(clock: VirtualClock) -> FakePort:
    return FakePort(clock)


@pytest.fixture
def board(port: FakePort) -> ScriptedBoard:
    return ScriptedBoard(port)


# ------------------------------------------------------------------ the pty simulator process


@pytest.fixture
def pty_sim(tmp_path: Path) -> Iterator[SimChild]:
    """A running ``python -m hil.sim``: its pty path, its JSON events, a command channel."""
    sim = SimChild("--seed", "5", log_path=tmp_path / "sim.log")
    try:
        yield sim
    finally:
        sim.stop()
