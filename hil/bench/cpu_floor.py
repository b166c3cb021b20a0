"""The CPU floor of the controller's wire traffic on this machine: what the system calls
and wake-ups alone cost, with no Python logic between them.

Owns: a pair of minimal processes on a pseudo-terminal that exchange exactly the
controller's traffic while treating: a "board" writes a TELEMETRY-sized frame every
20 ms and answers each command with an ACK-sized frame; a "host" wakes (``epoll``) when
more than an ACK waits, as the controller's port is set (VMIN, docs/architecture.md,
"The loop's wake-ups"), reads, and after each telemetry frame writes a SET_OUTPUT-sized frame
(the lease renewal of its tick) and rewrites a rail file in place (the heartbeat). The
host's CPU share is the floor under the ``resources.cpu`` figure: no controller can use
less on this machine with this protocol. Also owns ``cpu_windows_pct``, the one loop
that samples a process's CPU share in windows (the controller's figure uses it too).
Does not own the controller's figure (``figures_pty``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import tempfile
import termios
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Final

from drivers.protocol import ACK_FRAME_BYTES

TELEMETRY_BYTES: Final = 36
SET_OUTPUT_BYTES: Final = 17
ACK_BYTES: Final = ACK_FRAME_BYTES
PERIOD_S: Final = 0.02


def _board(master: int, stop_at: float) -> None:
    """Telemetry every 20 ms; an ACK for each command (any bytes read)."""
    poller = select.epoll()
    poller.register(master, select.EPOLLIN)
    telemetry = b"\x01" * (TELEMETRY_BYTES - 1) + b"\x00"
    ack = b"\x02" * (ACK_BYTES - 1) + b"\x00"
    next_s = time.monotonic()
    while (now_s := time.monotonic()) < stop_at:
        if now_s >= next_s:
            os.write(master, telemetry)
            next_s += PERIOD_S
        for _ in poller.poll(max(0.0, next_s - time.monotonic())):
            with contextlib.suppress(BlockingIOError):
                os.read(master, 4096)
                os.write(master, ack)


def _host(slave: int, rail_path: str, stop_at: float) -> None:
    """Wake on each frame; after a telemetry frame, renew the lease and beat the rail."""
    poller = select.epoll()
    poller.register(slave, select.EPOLLIN)
    rail = os.open(rail_path, os.O_WRONLY | os.O_CREAT, 0o600)
    renewal = b"\x03" * (SET_OUTPUT_BYTES - 1) + b"\x00"
    beats = 0
    while time.monotonic() < stop_at:
        for _ in poller.poll(0.1):
            data = os.read(slave, 4096)
            if len(data) >= TELEMETRY_BYTES:
                os.write(slave, renewal)
                beats += 1
                os.pwrite(rail, b"1 %d\n" % beats, 0)


def cpu_floor_pct(duration_s: float, cpu_time_s: Callable[[int], float]) -> list[float]:
    """The host's CPU (% of one core) in 1 s windows over ``duration_s``."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[6][termios.VMIN] = ACK_BYTES + 1  # a lone ACK does not wake the host
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    stop_at = time.monotonic() + duration_s + 1.5
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="nirpad-bench-floor-") as tmp:
        board = context.Process(target=_board, args=(master, stop_at), daemon=True)
        host = context.Process(
            target=_host, args=(slave, str(Path(tmp) / "rail"), stop_at), daemon=True
        )
        board.start()
        host.start()
        try:
            time.sleep(0.5)
            assert host.pid is not None
            return cpu_windows_pct(host.pid, duration_s, cpu_time_s)
        finally:
            for process in (host, board):
                process.join(duration_s + 5.0)
                process.kill()
            os.close(master)
            os.close(slave)


def cpu_windows_pct(
    pid: int,
    duration_s: float,
    cpu_time_s: Callable[[int], float],
    window_s: float = 1.0,
    after_window: Callable[[], None] | None = None,
) -> list[float]:
    """The CPU of ``pid`` (% of one core) in ``window_s`` windows over ``duration_s``;
    ``after_window`` runs after each one, outside the windows (another figure's sample)."""
    samples = []
    end_s = time.monotonic() + duration_s
    while time.monotonic() < end_s:
        t0, c0 = time.monotonic(), cpu_time_s(pid)
        time.sleep(window_s)
        t1, c1 = time.monotonic(), cpu_time_s(pid)
        samples.append((c1 - c0) / (t1 - t0) * 100.0)
        if after_window is not None:
            after_window()
    return samples
