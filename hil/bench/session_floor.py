"""The floor under the virtual session's wall time: the simulated board on its own.

Owns: ``session_floor_s``, which times the in-process simulated board treating with a
host that has no logic at all. The real stack starts a session (so the board is lit,
its lease running and its physics warm); then a bare loop takes the host's place on
the same board and clock: it waits for the board's frames as the controller's port
does (past a lone ACK), reads them without decoding, and every 20 ms writes the
controller's own last SET_OUTPUT frame again (pre-encoded, the next sequence number)
and toggles the rail's heartbeat. What that costs is what the simulator costs; the
speed figure's wall time minus this floor is what the host costs. Machines differ by
a factor of three from day to day here (docs/performance.md), so the floor is measured
beside the figure, in the same run. Does not own the speed figure
(``figures_inprocess``) or the stack (``figures_stack``).
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Final

from drivers.protocol import ACK_FRAME_BYTES, FrameDecoder, FrameEncoder, SetOutput
from drivers.transport import PortLike
from hil.bench.figures_stack import BenchSetupError, bench_command, bench_profile, stack
from hil.rigs.harness import InProcessRig
from hil.sim.inprocess import SimPort

PERIOD_S: Final = 0.02  # the controller's tick
WARM_UP_S: Final = 2.0  # of real treating before the bare host takes over


class _LastWrite:
    """A ``PortLike`` over the controller's ``SimPort`` that keeps what it last wrote."""

    def __init__(self, live: SimPort) -> None:
        self.live = live
        self.last_written = b""

    def read(self, size: int = 1) -> bytes:
        return self.live.read(size)

    def write(self, data: bytes) -> int:
        self.last_written = bytes(data)
        return self.live.write(data)

    @property
    def in_waiting(self) -> int:
        return self.live.in_waiting

    def reset_input_buffer(self) -> None:
        self.live.reset_input_buffer()

    def set_wake_bytes(self, n_bytes: int) -> None:
        self.live.set_wake_bytes(n_bytes)

    def wait_readable(self, timeout_s: float) -> bool:
        return self.live.wait_readable(timeout_s)

    def close(self) -> None:
        self.live.close()

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the in-process simulator has no file descriptor")


def _renewals(last_written: bytes) -> list[bytes]:
    """Every sequence number's frame of the controller's last SET_OUTPUT (a 16-bit
    sequence wraps), encoded before the timing starts."""
    commands = [f.message for f in FrameDecoder().feed(last_written)]
    if not commands or not isinstance(commands[-1], SetOutput):
        raise BenchSetupError(f"the controller's last frame was not a SET_OUTPUT: {commands}")
    encoder = FrameEncoder()
    return [encoder.encode(commands[-1], seq) for seq in range(0x10000)]


def _bare_host(rig: InProcessRig, renewals: list[bytes], duration_s: float) -> float:
    """Run the board for ``duration_s`` of virtual time under a host with no logic;
    the wall time it took."""
    clock, board = rig.clock, rig.board
    port = SimPort(board, clock)
    port.set_wake_bytes(ACK_FRAME_BYTES + 1)
    seq = 0
    started_s = time.perf_counter()
    next_tick_s = clock() + PERIOD_S
    end_s = clock() + duration_s
    while clock() < end_s:
        port.wait_readable(max(0.0, next_tick_s - clock()))
        port.read(4096)
        if clock() >= next_tick_s:
            port.write(renewals[seq & 0xFFFF])
            board.heartbeat(clock())
            seq += 1
            next_tick_s += PERIOD_S
    return time.perf_counter() - started_s


def session_floor_s(virtual_s: float, *, seed: int = 3) -> float:
    """Wall seconds the simulated board alone takes for ``virtual_s`` of treating."""
    recorder: list[_LastWrite] = []

    def record(live: SimPort) -> PortLike:
        recorder.append(_LastWrite(live))
        return recorder[-1]

    rx = bench_profile(duration_min=max(30, int(virtual_s // 60) + 5))
    with (
        tempfile.TemporaryDirectory(prefix="nirpad-bench-floor-") as tmp,
        stack(Path(tmp), rx, seed=seed, wrap_port=record) as rig,
    ):
        bench_command(rig, "start")
        rig.run(WARM_UP_S)
        if not rig.outputs_on():
            raise BenchSetupError(f"the board is dark after the start: {rig.status()}")
        wall_s = _bare_host(rig, _renewals(recorder[-1].last_written), virtual_s)
        if not rig.outputs_on():
            raise BenchSetupError("the board went dark under the bare host")
        return wall_s
