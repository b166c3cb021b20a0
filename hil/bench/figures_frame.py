"""The per-frame host path as a micro-benchmark: decode → supervisor → dose → interlock.

Owns: ``ReplayPort``, a transport that passes bytes to the in-process simulated board
until ``replay()``, then serves frames from memory; and ``frame_path_figures``, which
boots the stack on the virtual clock, treats on the simulated board until the ramp is
over, then replays: for each 20 ms frame, one ``SafetyCore.poll()`` (decode, link
bookkeeping, the supervisor's verdict, the dose, the interlock's observation) and one
``SafetyCore.tick()`` (staleness, the setpoint through the interlock, the lease renewal
and its SET_OUTPUT, the rail heartbeat, checkpoints), each timed with
``perf_counter``. The board's side (the ACK of each command, the next TELEMETRY frame)
is decoded and encoded between frames, outside the timing. Only the safety core's
public methods are called. Does not own the stack (``figures_stack``).
"""

from __future__ import annotations

import dataclasses
import gc
import io
import tempfile
import time
from pathlib import Path
from typing import Final

from drivers.client import PortLike
from drivers.protocol import Ack, FrameDecoder, Telemetry, encode_frame
from hil.bench.figures_common import Figure, median, percentile
from hil.bench.figures_stack import BenchSetupError, bench_command, bench_profile, stack
from hil.sim.inprocess import SimPort

FRAME_PERIOD_S: Final = 0.020
RAMP_DONE_S: Final = 35.0  # the bench profile ramps for 30 s: replay a steady frame
FRAME_BUDGET_US: Final = 200.0
"""All a frame may cost for the controller to stay at 1 % of a core at 50 frames a second."""


class ReplayPort:
    """A ``PortLike`` over a ``SimPort``; after ``replay()`` it serves ``feed``'s bytes.

    Live, it keeps the last TELEMETRY the board sent (``last_telemetry``). In replay the
    board is no longer asked: what the host writes is kept in ``written`` for the bench
    to answer, between frames.
    """

    def __init__(self, live: SimPort) -> None:
        self._live: SimPort | None = live
        self._seen = FrameDecoder()
        self._rx = bytearray()
        self.last_telemetry: Telemetry | None = None
        self.written: list[bytes] = []

    def replay(self) -> None:
        self._live = None

    def feed(self, data: bytes) -> None:
        self._rx += data

    def read(self, size: int = 1) -> bytes:
        if self._live is not None:
            data = self._live.read(size)
            for frame in self._seen.feed(data):
                if isinstance(frame.message, Telemetry):
                    self.last_telemetry = frame.message
            return data
        data = bytes(self._rx[:size])
        del self._rx[:size]
        return data

    def write(self, data: bytes) -> int:
        if self._live is not None:
            return self._live.write(data)
        self.written.append(bytes(data))
        return len(data)

    @property
    def in_waiting(self) -> int:
        return self._live.in_waiting if self._live is not None else len(self._rx)

    def wait_readable(self, timeout_s: float) -> bool:
        if self._live is not None:
            return self._live.wait_readable(timeout_s)
        return bool(self._rx)

    def close(self) -> None:
        if self._live is not None:
            self._live.close()

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the replay port has no file descriptor")


class _Board:
    """The board's side of the replay: an ACK for every command, then the next frame."""

    def __init__(self, port: ReplayPort, template: Telemetry) -> None:
        self._port = port
        self._template = template
        self._decoder = FrameDecoder()
        self._seq = 0

    def _send(self, data: bytes) -> None:
        self._port.feed(data)
        self._seq = (self._seq + 1) & 0xFFFF

    def answer_and_send(self, frame: int) -> None:
        """ACK what the host wrote since the last frame, then TELEMETRY number ``frame``."""
        for data in self._port.written:
            for command in self._decoder.feed(data):
                self._send(encode_frame(Ack(command.seq), self._seq))
        self._port.written.clear()
        uptime_ms = self._template.uptime_ms + round(FRAME_PERIOD_S * 1000) * (frame + 1)
        telemetry = dataclasses.replace(self._template, uptime_ms=uptime_ms)
        self._send(encode_frame(telemetry, self._seq))


def time_frames(frames: int) -> tuple[list[float], list[float]]:
    """Treat past the ramp, then replay ``frames`` frames: (poll s, tick s) per frame."""
    ports: list[ReplayPort] = []

    def wrap(live: SimPort) -> PortLike:
        ports.append(ReplayPort(live))
        return ports[-1]

    rx = bench_profile(duration_min=30)
    with (
        tempfile.TemporaryDirectory(prefix="nirpad-bench-frame-") as tmp,
        stack(Path(tmp), rx, wrap_port=wrap) as s,
    ):
        bench_command(s, "start")
        s.run(RAMP_DONE_S)
        port = ports[0]
        if port.last_telemetry is None or str(s.controller.state) != "treating":
            raise BenchSetupError(f"no steady treatment to replay: {s.controller.state}")
        port.replay()
        s.running_host().wire.unplug()
        board = _Board(port, port.last_telemetry)
        polls: list[float] = []
        ticks: list[float] = []
        gc.collect()
        for frame in range(frames):
            board.answer_and_send(frame)
            s.clock.advance(FRAME_PERIOD_S)
            t0 = time.perf_counter()
            polled = s.core.poll()
            t1 = time.perf_counter()
            ticked = s.core.tick()
            t2 = time.perf_counter()
            s.controller.handle_safety_events(polled + ticked)
            polls.append(t1 - t0)
            ticks.append(t2 - t1)
        if str(s.controller.state) != "treating":
            raise BenchSetupError(f"the replay ended in {s.controller.state}")
    return polls, ticks


def frame_path_figures(frames: int) -> list[Figure]:
    polls, ticks = time_frames(frames)
    both = [p + t for p, t in zip(polls, ticks, strict=True)]
    note = f"{frames} steady frames replayed from memory; the board's side is not timed"
    return [
        _figure(
            "frame_path.poll_tick",
            "per-frame host path: SafetyCore.poll + tick per 20 ms frame",
            both,
            note + "; tick: staleness, setpoint through the interlock, SET_OUTPUT, heartbeat, "
            "a checkpoint every 5 s (the p99)",
        ),
        _figure(
            "frame_path.poll",
            "of which poll: decode → supervisor → dose → interlock's observation",
            polls,
            note,
        ),
    ]


def _figure(name: str, title: str, samples_s: list[float], note: str) -> Figure:
    return Figure(
        name,
        title,
        "µs",
        median(samples_s, 1e6),
        len(samples_s),
        {
            "p95": percentile(samples_s, 95) * 1e6,
            "p99": percentile(samples_s, 99) * 1e6,
            "max": max(samples_s) * 1e6,
        },
        target=f"— (budget: {FRAME_BUDGET_US:g} µs a frame is 1 % of a core at 50 Hz)",
        note=note,
        details={"samples_us": [s * 1e6 for s in samples_s]},
    )
