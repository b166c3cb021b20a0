"""The simulator as a process on a pseudo-terminal (what ``nirpad sim`` execs).

Started with the one command line (``firmware_host.sim_process.sim_argv``) but read at
the level of its raw stdout lines and stdin, which is what these tests are about.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.protocol import FrameDecoder, Hello, Info, Message, Telemetry, encode_frame
from firmware_host.sim_process import sim_argv
from hil.sim import pty_runner
from hil.sim.board import SimBoard

DEADLINE_S = 10.0


class SimProcess:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._buf = b""

    def line(self, timeout_s: float = DEADLINE_S) -> dict[str, Any]:
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            remaining = end - time.monotonic()
            assert remaining > 0, "no JSON line from the simulator"
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, "simulator closed stdout"
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]

    def until(self, event: str) -> dict[str, Any]:
        while True:
            got = self.line()
            if got["event"] == event:
                return got

    def command(self, cmd: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        text = cmd if isinstance(cmd, str) else json.dumps(cmd)
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()


@contextmanager
def sim_process(*args: str) -> Iterator[SimProcess]:
    proc = subprocess.Popen(sim_argv(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with proc:
            yield SimProcess(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def open_port(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        yield fd
    finally:
        os.close(fd)


def read_until(fd: int, match: Callable[[Message], bool]) -> Message:
    decoder = FrameDecoder()
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], end - time.monotonic())
        if ready:
            for frame in decoder.feed(os.read(fd, 4096)):
                if match(frame.message):
                    return frame.message
    raise AssertionError("no matching frame from the pty")


def hung_up(fd: int) -> bool:
    """Drain what was already buffered; True once the slave reports EOF or EIO."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        select.select([fd], [], [], end - time.monotonic())
        try:
            if os.read(fd, 4096) == b"":
                return True
        except BlockingIOError:
            continue
        except OSError:
            return True  # EIO: the cable is gone
    return False


def test_pty_handshake_state_bad_json_and_quit() -> None:
    with sim_process("--seed", "3", "--time-scale", "2.5", "--baud", "57600") as sim:
        ready = sim.line()
        assert ready["event"] == "ready"
        assert (ready["baud"], ready["time_scale"], ready["pid"]) == (57600, 2.5, sim.proc.pid)
        with open_port(ready["port"]) as fd:
            os.write(fd, encode_frame(Hello(), 9))
            info = read_until(fd, lambda m: isinstance(m, Info))
            assert isinstance(info, Info) and info.echo_seq == 9 and info.time_scale == 2.5
            sim.command("this is not json")
            assert sim.until("error")["error"]
            sim.command({"cmd": "state"})
            state = sim.until("state")
            assert state["outputs_on"] is False and state["seed"] == 3
            assert state["t"] >= ready["t"]
        sim.command({"cmd": "quit"})
        assert sim.proc.wait(timeout=DEADLINE_S) == 0


def test_pty_rail_file_and_sigterm(tmp_path: Path) -> None:
    rail = tmp_path / "rail"
    rail.write_text("0 0")
    with sim_process("--rail-file", str(rail), "--rail-hold-ms", "0") as sim:
        ready = sim.line()
        assert ready["rail_hold_s"] is None  # no hold circuit: the enable alone rules
        with open_port(ready["port"]) as fd:
            off = read_until(fd, lambda m: isinstance(m, Telemetry))
            assert isinstance(off, Telemetry) and not off.rail_enabled
            rail.write_text("1")  # no heartbeat count at all
            read_until(fd, lambda m: isinstance(m, Telemetry) and m.rail_enabled)
            sim.command({"cmd": "inject", "fault": "disconnect"})
            assert sim.until("injected")["fault"] == "disconnect"
            assert hung_up(fd)
        sim.proc.send_signal(signal.SIGTERM)
        assert sim.proc.wait(timeout=DEADLINE_S) == 0


def test_pty_stdin_eof_ends_the_process() -> None:
    with sim_process() as sim:
        assert sim.line()["event"] == "ready"
        assert sim.proc.stdin is not None
        sim.proc.stdin.close()
        assert sim.proc.wait(timeout=DEADLINE_S) == 0


def test_pty_stdin_of_dev_null_keeps_the_board_running_until_sigterm() -> None:
    """``nirpad sim &`` in a script: its stdin is /dev/null, at its end from the start."""
    proc = subprocess.Popen(sim_argv(()), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    with proc:
        try:
            sim = SimProcess(proc)
            ready = sim.line()
            with open_port(ready["port"]) as fd:
                os.write(fd, encode_frame(Hello(), 4))
                info = read_until(fd, lambda m: isinstance(m, Info))
                assert isinstance(info, Info) and info.echo_seq == 4
                time.sleep(0.2)  # a busy loop on the ended stdin would show as no frames
                read_until(fd, lambda m: isinstance(m, Telemetry))
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=DEADLINE_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.timeout(10)
def test_pty_stdin_of_a_file_runs_its_commands_the_last_without_its_line_end(
    tmp_path: Path,
) -> None:
    """``nirpad sim < cmds.jsonl``: every command is applied, also a last line that a
    ``printf`` or an editor left without its line end (here: the quit that ends it)."""
    commands = tmp_path / "cmds.jsonl"
    commands.write_text('{"cmd": "set", "ambient_c": 30}\n{"cmd": "state"}\n{"cmd": "quit"}')
    out = io.StringIO()
    runner = pty_runner.PtyBoard(SimBoard(start_s=time.monotonic()), None, out)
    with commands.open("rb") as stdin:
        assert runner.run(stdin.fileno()) == 0  # without the last line: runs until the timeout
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["ambient_c"] for e in events if e["event"] == "state"] == [30]


@pytest.mark.timeout(10)
def test_a_sigterm_that_lands_as_stdin_ends_still_ends_the_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With stdin /dev/null, SIGTERM is the only way to end it: one that arrives while
    the end of stdin is being judged must not be undone by that judgement."""
    real = pty_runner._eof_means_gone

    def sigterm_meanwhile(fd: int) -> bool:
        signal.raise_signal(signal.SIGTERM)  # the handler runs here, before the return
        return real(fd)

    monkeypatch.setattr(pty_runner, "_eof_means_gone", sigterm_meanwhile)
    runner = pty_runner.PtyBoard(SimBoard(start_s=time.monotonic()), None, io.StringIO())
    with open(os.devnull, "rb") as null:
        assert runner.run(null.fileno()) == 0  # without the fix: runs until the timeout


def test_pty_with_stdin_closed_runs_as_with_dev_null() -> None:
    """``nirpad sim <&-``: no traceback; the board runs until SIGTERM."""
    argv = ["sh", "-c", 'exec "$0" "$@" <&-', *sim_argv(())]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with proc:
        try:
            ready = SimProcess(proc).line()
            with open_port(ready["port"]) as fd:
                read_until(fd, lambda m: isinstance(m, Telemetry))
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=DEADLINE_S) == 0
            assert proc.stderr is not None and proc.stderr.read() == b""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_pty_hold_circuit_drops_the_rail_a_hold_after_the_last_heartbeat(tmp_path: Path) -> None:
    rail = tmp_path / "rail"
    rail.write_text("1 7")  # a count already there when the simulator starts is no heartbeat
    with sim_process("--rail-file", str(rail), "--time-scale", "60") as sim:
        ready = sim.line()
        assert ready["rail_hold_s"] == 0.3  # real seconds, whatever the time scale
        sim.command({"cmd": "state"})
        state = sim.until("state")
        assert (state["rail_line"], state["rail_enabled"], state["heartbeats"]) == (True, False, 0)
        rail.write_text("1 8")  # one heartbeat, then silence (a host that died)
        up = sim.until("rail")
        down = sim.until("rail")
        assert (up["enabled"], down["enabled"], down["cause"]) == (True, False, "heartbeat_lost")
        assert down["t"] - up["t"] == pytest.approx(0.3)  # on the simulator's own clock
        rail.write_text("1 9")  # heartbeats resume: the hold circuit brings the rail back
        assert sim.until("rail")["enabled"] is True
        sim.command({"cmd": "quit"})
        assert sim.proc.wait(timeout=DEADLINE_S) == 0


def test_events_to_a_full_disk_end_the_simulator_with_one_line() -> None:
    with open("/dev/full", "wb") as full:  # every write: ENOSPC
        proc = subprocess.run(
            sim_argv(()), stdin=subprocess.PIPE, stdout=full, stderr=subprocess.PIPE,
            timeout=DEADLINE_S,
        )  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.strip().endswith("cannot write its events (No space left on device); stopping")


def test_a_line_longer_than_any_command_is_dropped_and_the_board_keeps_time() -> None:
    with sim_process() as sim:
        assert sim.line()["event"] == "ready"
        assert sim.proc.stdin is not None
        for _ in range(32):  # 2 MiB without a line end (a file piped in by mistake)
            sim.proc.stdin.write(b"x" * 65536)
        sim.proc.stdin.write(b'"tail of it"}\n')
        sim.proc.stdin.flush()
        sim.command({"cmd": "state"})
        error = sim.until("error")
        assert error["error"] == "a command line longer than 65536 bytes was dropped"
        assert sim.until("state")["outputs_on"] is False  # the next command is applied
        sim.command({"cmd": "quit"})
        assert sim.proc.wait(timeout=DEADLINE_S) == 0
