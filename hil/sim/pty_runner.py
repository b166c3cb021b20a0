"""The simulated board as a process on a pseudo-terminal (``python -m hil.sim``).

Owns: the pty (opened with os.openpty and set raw before its name is printed), the
single-threaded select loop over the pty master, stdin and a signal wake-up pipe on
real monotonic time, the JSON-line commands read from stdin and the JSON-line events
written to stdout (the vocabulary is in docs/hil.md), and the optional rail file
(``<enable 0|1> <heartbeat count>``: the host's two rail lines; a change of the count
is a heartbeat to the board's hold circuit, at the time it is seen).
Does not own the board's behaviour (``board.py``) or the pacing of bytes, which the
board's link does: a frame is written to the master when its last byte would have
arrived on a real wire at the configured baud rate.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import stat
import sys
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

from hil.sim.board import SimBoard
from hil.sim.commands import QUIT, CommandError, apply_command

log = logging.getLogger(__name__)

RAIL_FILE_MAX_BYTES: Final = 64
"""``<enable> <count>\n`` is far shorter; a longer file is read no further."""
MAX_COMMAND_BYTES: Final = 65536
"""A longer stdin line is no command (a file piped in by mistake): dropped, with an error."""

RAIL_POLL_S: Final = 0.010
"""How often the rail file is read: a heartbeat is seen at most this late."""
MAX_SELECT_S: Final = 0.1


@dataclass(frozen=True)
class RailFile:
    """What a rail file says: the enable line, and the heartbeat count (None: none)."""

    enabled: bool
    count: int | None


def read_rail_file(path: Path) -> RailFile:
    """``<enable 0|1> <count>``; a missing, unreadable or malformed file is disabled.

    The enable is ``1`` or anything else (disabled); a count that is not a decimal
    integer is no count. A lone ``1`` (no count) enables the line but never beats.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not stop the board
        try:
            raw = os.read(fd, RAIL_FILE_MAX_BYTES + 1)  # /dev/zero must not either
        finally:
            os.close(fd)
    except OSError:
        return RailFile(False, None)
    fields = raw.decode("ascii", errors="replace").split()
    enabled = bool(fields) and fields[0] == "1"
    whole = len(raw) <= RAIL_FILE_MAX_BYTES  # else the count is cut short: no count
    count = int(fields[1]) if whole and len(fields) > 1 and fields[1].isdecimal() else None
    return RailFile(enabled, count)


def _eof_means_gone(fd: int) -> bool:
    """The end of stdin ends the simulator when stdin is a pipe, a socket or a terminal
    (the harness that started it is gone, or Ctrl-D); not when it is ``/dev/null`` or a
    file, as a script's ``nirpad sim &`` gets: that one runs until SIGTERM or SIGINT."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return True
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


class PtyBoard:
    """Runs one SimBoard on a pty until quit, SIGTERM, SIGINT or the end of a piped stdin."""

    def __init__(self, board: SimBoard, rail_file: Path | None, out: TextIO) -> None:
        self.board = board
        self.rail_file = rail_file
        self.out = out
        self.master_fd: int | None
        self.slave_fd: int | None
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.port = os.ttyname(self.slave_fd)
        self.bytes_overrun = 0
        self._stop = False
        self.out_error: OSError | None = None  # the events could not be written
        self._stdin_buf = b""
        self._stdin_open = True  # until its end: then no more commands are read
        self._dropping_line = False  # the rest of an over-long command line is dropped
        self._next_rail_poll_s = 0.0
        self._rail_count: int | None = None
        if rail_file is not None:  # a count already there is no heartbeat: a change is
            self._rail_count = read_rail_file(rail_file).count
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    # ------------------------------------------------------------------ output

    def emit(self, event: dict[str, object]) -> None:
        try:
            self.out.write(json.dumps(event, separators=(",", ":")) + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):
            self._stop = True  # nobody listens any more: end cleanly
        except OSError as exc:  # a full disk: say so once, end cleanly (exit 1)
            if self.out_error is None:
                log.error("the simulator cannot write its events (%s); stopping", exc.strerror)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.out.fileno())  # so the flush at exit cannot fail again
                os.close(devnull)
            self.out_error = exc
            self._stop = True

    def _emit_board_events(self) -> None:
        for event in self.board.pop_events():
            self.emit(event)

    def _write_to_host(self, now_s: float) -> None:
        data = self.board.host_read_whole(now_s)  # one write (and one host wake-up) a frame
        if not data or self.master_fd is None:
            return
        try:
            written = os.write(self.master_fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            log.warning("pty write failed: %s", exc)
            written = 0
        self.bytes_overrun += len(data) - written  # a host that does not read overruns

    # ------------------------------------------------------------------ input

    def _read_master(self, now_s: float) -> None:
        assert self.master_fd is not None
        try:
            data = os.read(self.master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("pty read failed: %s", exc)
            return
        self.board.host_write(data, now_s)

    def _read_stdin(self, fd: int) -> None:
        data = os.read(fd, 65536)
        if not data:
            self._end_of_stdin(fd)
            return
        *lines, self._stdin_buf = (self._stdin_buf + data).split(b"\n")
        if self._dropping_line and lines:
            lines.pop(0)  # the end of an over-long line
            self._dropping_line = False
        for line in lines:
            if line.strip():
                self._command(line)
        if len(self._stdin_buf) > MAX_COMMAND_BYTES:  # kept, it would cost quadratic time
            if not self._dropping_line:
                error = f"a command line longer than {MAX_COMMAND_BYTES} bytes was dropped"
                self.emit({"t": time.monotonic(), "event": "error", "error": error})
            self._stdin_buf = b""
            self._dropping_line = True

    def _end_of_stdin(self, fd: int) -> None:
        """No more commands. The last line of a file may lack its line end: it is a
        command all the same (``printf '{"cmd":"quit"}' > cmds; nirpad sim < cmds``)."""
        self._stdin_open = False
        last, self._stdin_buf = self._stdin_buf, b""
        if last.strip() and not self._dropping_line:
            self._command(last)
        if _eof_means_gone(fd):  # never cleared here: a SIGTERM may have set it
            self._stop = True

    def _command(self, line: bytes) -> None:
        self.board.advance_to(time.monotonic())
        try:
            command = json.loads(line)
            reply = apply_command(self.board, command, rail_locked=self.rail_file is not None)
        except (CommandError, ValueError, TypeError) as exc:
            self.emit({"t": time.monotonic(), "event": "error", "error": str(exc)})
            return
        self._emit_board_events()
        if isinstance(reply, dict):
            self.emit(reply)
        elif reply == QUIT:
            self._stop = True
        if self.board.disconnected:
            self._close_pty()

    def _close_pty(self) -> None:
        """A vanished cable: the host's reads on the slave now fail."""
        for fd in (self.master_fd, self.slave_fd):
            if fd is not None:
                os.close(fd)
        self.master_fd = self.slave_fd = None

    def _poll_rail(self, now_s: float) -> None:
        if self.rail_file is None or now_s < self._next_rail_poll_s:
            return
        self._next_rail_poll_s = now_s + RAIL_POLL_S
        rail = read_rail_file(self.rail_file)
        self.board.advance_to(now_s)
        if rail.count is not None and rail.count != self._rail_count:
            self.board.heartbeat()
        self._rail_count = rail.count
        if rail.enabled != self.board.rail_line:
            self.board.set_rail(rail.enabled)

    # ------------------------------------------------------------------ loop

    def _timeout_s(self, now_s: float) -> float:
        board = self.board
        due_s = min(now_s + MAX_SELECT_S, board.next_event_time())
        frame_s = board.next_frame_time()
        if frame_s is not None:
            due_s = min(due_s, frame_s)
        if self.rail_file is not None:
            due_s = min(due_s, self._next_rail_poll_s)
        return max(0.0, due_s - now_s)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def run(self, stdin_fd: int) -> int:
        old_handlers = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            self._loop(stdin_fd)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            self.close()
        return 0 if self.out_error is None else 1

    def _loop(self, stdin_fd: int) -> None:
        while not self._stop:
            now_s = time.monotonic()
            self._poll_rail(now_s)
            self.board.advance_to(now_s)
            self._write_to_host(now_s)
            self._emit_board_events()
            fds = [stdin_fd, self._wake_r] if self._stdin_open else [self._wake_r]
            if self.master_fd is not None:
                fds.append(self.master_fd)
            ready, _, _ = select.select(fds, [], [], self._timeout_s(now_s))
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
            if self.master_fd is not None and self.master_fd in ready:
                self._read_master(time.monotonic())
            if stdin_fd in ready:
                self._read_stdin(stdin_fd)

    def close(self) -> None:
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


def run_pty_sim(
    *,
    seed: int,
    ambient_c: float,
    baud: int,
    time_scale: float,
    rail_file: Path | None,
    rail_hold_s: float | None = None,
    info_claim: tuple[bool, float] | None = None,
) -> int:
    """Run the board until quit; ``rail_hold_s`` (only with ``rail_file``) models the
    HAT's hold circuit, in real seconds whatever ``time_scale`` is."""
    board = SimBoard(
        seed=seed,
        ambient_c=ambient_c,
        time_scale=time_scale,
        baud=baud,
        start_s=time.monotonic(),
        info_claim=info_claim,
        rail_hold_s=rail_hold_s if rail_file is not None else None,
    )
    if rail_file is not None:
        board.set_rail(read_rail_file(rail_file).enabled)
    runner = PtyBoard(board, rail_file, sys.stdout)
    runner.emit(
        {
            "event": "ready",
            "port": runner.port,
            "t": time.monotonic(),
            "pid": os.getpid(),
            "baud": baud,
            "time_scale": time_scale,
            "seed": seed,
            "serial": board.serial,
            "rail_file": str(rail_file) if rail_file is not None else None,
            "rail_hold_s": board.rail_hold_s,
        }
    )
    return runner.run(_stdin_fd())


def _stdin_fd() -> int:
    """stdin's descriptor; with stdin closed (``<&-``), /dev/null's: no commands, as
    ``nirpad sim &`` gets in a script."""
    if sys.stdin is None:
        return os.open(os.devnull, os.O_RDONLY)
    return sys.stdin.fileno()
