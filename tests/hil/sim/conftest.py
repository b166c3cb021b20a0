"""Fixtures for the simulated-board tests: a host that speaks the wire format.

The host side decodes everything with drivers.protocol.FrameDecoder, so every
assertion is about what a real host would see on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from drivers.protocol import (
    Ack,
    ChannelSetpoint,
    Event,
    EventKind,
    FrameDecoder,
    Info,
    Message,
    Nak,
    SetOutput,
    Telemetry,
    encode_frame,
)
from hil.sim.inprocess import make_sim


class WireHost:
    """A minimal host on the in-process simulator; collects every decoded message."""

    def __init__(self, **board_kwargs: Any) -> None:
        self.clock, self.board, self.port = make_sim(**board_kwargs)
        self.decoder = FrameDecoder()
        self.seq = 0
        self.received: list[tuple[float, Message]] = []

    def send(self, message: Message, seq: int | None = None) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.port.write(encode_frame(message, seq))
        return seq

    def run(self, duration_s: float) -> list[tuple[float, Message]]:
        """Let ``duration_s`` of virtual time pass; return what arrived, with arrival times."""
        end_s = self.clock() + duration_s
        got: list[tuple[float, Message]] = []
        while True:
            self.port.wait_readable(max(0.0, end_s - self.clock()))
            for frame in self.decoder.feed(self.port.read(1 << 16)):
                got.append((self.clock(), frame.message))
            if self.clock() >= end_s:
                break
        self.received += got
        return got

    def request(self, message: Message, timeout_s: float = 0.2) -> Ack | Nak | Info:
        seq = self.send(message)
        end_s = self.clock() + timeout_s
        while self.clock() < end_s:
            for _, msg in self.run(0.005):
                if isinstance(msg, Ack | Nak | Info) and msg.echo_seq == seq:
                    return msg
        raise AssertionError(f"no reply to {message!r}")

    def set_output(
        self, current_ma: float, channel: int = 0, lease_ms: int = 300, **kw: Any
    ) -> Ack | Nak | Info:
        return self.request(SetOutput(lease_ms, (ChannelSetpoint(channel, current_ma, **kw),)))

    def hold(
        self,
        duration_s: float,
        current_ma: float,
        channel: int = 0,
        every_s: float = 0.1,
        lease_ms: int = 300,
    ) -> list[tuple[float, Message]]:
        """Renew an output every ``every_s`` for ``duration_s`` (a host that is treating)."""
        got = []
        end_s = self.clock() + duration_s
        while self.clock() < end_s:
            self.send(SetOutput(lease_ms, (ChannelSetpoint(channel, current_ma),)))
            got += self.run(every_s)
        return got

    @staticmethod
    def telemetry(got: list[tuple[float, Message]]) -> list[Telemetry]:
        return [msg for _, msg in got if isinstance(msg, Telemetry)]

    @staticmethod
    def events(got: list[tuple[float, Message]], kind: EventKind | None = None) -> list[Event]:
        return [m for _, m in got if isinstance(m, Event) and (kind is None or m.kind is kind)]


@pytest.fixture
def host_factory() -> Callable[..., WireHost]:
    return WireHost


@pytest.fixture
def host() -> WireHost:
    h = WireHost()
    h.run(0.005)
    return h
