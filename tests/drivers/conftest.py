"""Shared fixtures of the driver tests: a fake port on a virtual clock and a scripted board.

``FakePort`` is a ``PortLike`` that delivers bytes at scheduled virtual times; its
``wait_readable`` advances the clock to the next delivery, as the in-process simulator
does. ``ScriptedBoard`` answers host frames with the real encoder, with knobs to drop,
NAK or mangle replies. Neither is a simulator: they exist to make the client's framing,
sequence and retry logic observable.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from hil.clock import VirtualClock

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

SIM_MAIN = Path(__file__).resolve().parents[2] / "hil" / "sim" / "__main__.py"


class PtySim:
    """A running ``python -m hil.sim``: its pty path, its JSON events, a command channel."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hil.sim", "--seed", "5", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=SIM_MAIN.parents[2],
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first, "python -m hil.sim printed nothing"
        self.port: str = json.loads(first)["port"]
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def events_named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == name]

    def command(self, **cmd: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.command(cmd="quit")
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self._reader.join(timeout=5)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def pty_sim() -> Iterator[PtySim]:
    if not SIM_MAIN.exists():
        pytest.skip("python -m hil.sim is not there yet")
    sim = PtySim()
    try:
        yield sim
    finally:
        sim.stop()
