"""The in-process simulated board as a serial port, on a virtual clock.

Owns: ``SimPort``, a PortLike (see docs/architecture.md) over a ``SimBoard`` whose
``wait_readable`` moves the shared ``VirtualClock`` forward, event by event, until
bytes reach the host or the timeout passes; and ``make_sim``, which builds the clock,
board and port; and ``RailWire``, the two wires (enable and heartbeat) from a host's
rail lines to the board, which a dead host's ``unplug`` cuts. Does not own the board's
behaviour (its hold circuit included) or the clock itself.

``wait_readable`` returns once bytes have reached the host at a board event or a
frame's end, and only once ``set_wake_bytes`` of them wait (a tty's VMIN), so the host
is not woken for every byte, nor for a lone ACK while telemetry streams. ``read`` at any
clock time still returns exactly the bytes that have arrived.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Callable
from typing import Any, Protocol

from hil.rigs.clock import VirtualClock
from hil.sim.board import SimBoard


class RailLines(Protocol):
    """The part of a host's rail (``safety.rail.PowerRail``) the wires attach to."""

    def add_listener(self, listener: Callable[[bool], None]) -> None: ...
    def add_heartbeat_listener(self, listener: Callable[[int], None]) -> None: ...


class RailWire:
    """The enable and heartbeat wires from one host's rail lines to an in-process board.

    A heartbeat reaches the board at the clock's time (the board is brought up to it
    first). ``unplug()`` models a host that died: its lines reach the board no more, so
    the board keeps the enable level it last saw and (with ``rail_hold_s``) its hold
    circuit drops the rail when the heartbeats stop.
    """

    def __init__(self, board: SimBoard, clock: Callable[[], float]) -> None:
        self.board: SimBoard | None = board
        self._clock = clock

    def connect(self, rail: RailLines) -> None:
        rail.add_listener(self.enable)
        rail.add_heartbeat_listener(self.heartbeat)

    def unplug(self) -> None:
        self.board = None

    def enable(self, enabled: bool) -> None:
        if self.board is not None:
            self.board.set_rail(enabled)

    def heartbeat(self, count: int) -> None:
        if self.board is not None:
            self.board.heartbeat(self._clock())


class SimPort:
    """A non-blocking serial port whose far end is a SimBoard. Times come from ``clock``."""

    def __init__(self, board: SimBoard, clock: VirtualClock) -> None:
        self.board = board
        self.clock = clock
        self.port = "sim://"
        self.name = "sim://"
        self.baudrate = board.baud
        self.timeout = 0.0
        self.is_open = True
        self.wake_bytes = 1
        self._rx = bytearray()

    def _check(self) -> None:
        if not self.is_open:
            raise OSError(errno.EBADF, "port is closed", self.port)
        if self.board.disconnected:
            raise OSError(errno.EIO, "Input/output error (device disconnected)", self.port)

    def _pull(self) -> None:
        self._check()
        data = self.board.host_read(self.clock())
        if data:
            self._rx += data

    def read(self, size: int = 1) -> bytes:
        if not self.is_open or self.board.disconnected:  # _check's test, without its call
            self._check()
        data = self.board.host_read(self.clock())
        rx = self._rx
        if not rx:
            if len(data) <= size:
                return data  # straight from the wire, no copy through the buffer
            rx += data
        elif data:
            rx += data
        if len(rx) <= size:
            out = bytes(rx)
            rx.clear()
            return out
        out = bytes(rx[:size])
        del rx[:size]
        return out

    def write(self, data: bytes) -> int:
        if not self.is_open or self.board.disconnected:  # as in read
            self._check()
        self.board.host_write(bytes(data), self.clock())
        return len(data)

    @property
    def in_waiting(self) -> int:
        self._pull()
        return len(self._rx)

    def reset_input_buffer(self) -> None:
        self._pull()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        self._check()

    def flush(self) -> None:
        self._check()

    def close(self) -> None:
        self.is_open = False
        self._rx.clear()

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the in-process simulator has no file descriptor")

    def set_wake_bytes(self, n_bytes: int) -> None:
        """As a tty's VMIN: ``wait_readable`` returns once ``n_bytes`` wait."""
        self.wake_bytes = n_bytes

    def wait_readable(self, timeout_s: float) -> bool:
        """Advance the virtual clock until ``wake_bytes`` have arrived or ``timeout_s``
        passed; True if any byte waits then (a short reply is read with the next frame).

        A disconnected port is "readable" at once, like a hung-up fd: read() then raises.
        """
        if not self.is_open or self.board.disconnected:
            return True
        clock, board, rx = self.clock, self.board, self._rx
        now_s = clock()
        wanted = self.wake_bytes - len(rx)
        if wanted <= 0:
            rx += board.host_read(now_s)
            return True
        # host_wait reads at now_s first: bytes already there count, as host_read's would
        t_s, data = board.host_wait(now_s, now_s + max(0.0, timeout_s), wanted)
        clock.advance_to(t_s)
        rx += data
        return board.disconnected or len(data) >= wanted

    def idle(self, timeout_s: float) -> None:
        """Let ``timeout_s`` of virtual time pass without reading (the host lost the port).

        The board keeps running: its lease expiry and physics go on as they would.
        """
        deadline_s = self.clock() + max(0.0, timeout_s)
        self.board.advance_to(deadline_s)
        self.clock.advance_to(deadline_s)


def make_sim(seed: int = 0, **board_kwargs: Any) -> tuple[VirtualClock, SimBoard, SimPort]:
    """A virtual clock, a board started at the clock's time, and a port onto it."""
    clock = VirtualClock()
    board_kwargs.setdefault("start_s", clock())
    board = SimBoard(seed=seed, **board_kwargs)
    return clock, board, SimPort(board, clock)
