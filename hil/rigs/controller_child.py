"""The controller as a child process: how ``hil`` and the tests start ``nirpad run``.

Owns: the command line (``controller_argv``: ``python -m firmware_host run ARGS``, and
``sim_board_args``: the arguments of a controller on a simulator's pty) and
``ControllerChild``, that command as a child with its output in a log file and its own
NOTIFY_SOCKET: ready when it says READY=1 there (``wait_ready``, which also gives the
start-up time), ended like a power cut (``kill``: SIGKILL) or politely (``stop``:
SIGCONT, SIGTERM, then SIGKILL), always reaped. Waiting is on the socket, never on a
fixed sleep. Does not own the simulator child (``hil.rigs.sim_child``) nor what runs the
two together (``hil.rigs.process_rig``, the bench, the power-cut test).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from firmware_host.json_child import terminate_and_reap

__all__ = [
    "ControllerChild",
    "ControllerNotReadyError",
    "controller_argv",
    "sim_board_args",
]

ROOT: Final = Path(__file__).resolve().parents[2]
START_TIMEOUT_S: Final = 30.0
"""Generous: a Python start-up on a loaded 2-core machine. Only readiness waits on it."""
EXIT_TIMEOUT_S: Final = 10.0


class ControllerNotReadyError(RuntimeError):
    """``nirpad run`` exited, or did not say READY=1 in time; the message has its log."""


def controller_argv(args: Sequence[str]) -> list[str]:
    """``python -m firmware_host run ARGS``: ``nirpad run`` with this interpreter."""
    return [sys.executable, "-m", "firmware_host", "run", *args]


def sim_board_args(
    port: str, *, rail_file: Path, state_dir: Path, time_scale: float | None = None
) -> list[str]:
    """A controller on a simulator's pty: ``--port PORT --simulated-board [--time-scale
    X] --rail-file F --state-dir D`` (no time scale: the host's default, x1)."""
    args = ["--port", port, "--simulated-board"]
    if time_scale is not None:
        args += ["--time-scale", f"{time_scale:g}"]
    return [*args, "--rail-file", str(rail_file), "--state-dir", str(state_dir)]


class ControllerChild:
    """``nirpad run ARGS`` as a child; READY comes over a real NOTIFY_SOCKET.

    ``wait=False`` returns at once (call ``wait_ready``): a test that cuts the power
    during start-up. ``env`` is added to this process's environment.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        notify_path: Path,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        child_env = {**os.environ, **(env or {}), "NOTIFY_SOCKET": str(notify_path)}
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env.pop("WATCHDOG_USEC", None)
        self.argv = controller_argv(args)
        self.log_path = log_path
        try:
            self._log = log_path.open("ab")
        except BaseException:
            self._notify.close()
            raise
        self._started_s = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env=child_env, cwd=ROOT,
            )  # fmt: skip
        except BaseException:
            self._close_files()
            raise
        if wait:
            try:
                self.wait_ready(timeout_s)
            except BaseException:
                self.stop()
                raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Wait for READY=1; returns the seconds from the start (the start-up time)."""
        deadline_s = time.monotonic() + timeout_s
        while True:
            left_s = deadline_s - time.monotonic()
            if left_s <= 0 or self.proc.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-2000:]
                raise ControllerNotReadyError(
                    f"nirpad run never became ready (exit {self.proc.poll()}); log: {log}"
                )
            self._notify.settimeout(min(left_s, 0.5))
            try:
                data = self._notify.recv(4096)
            except TimeoutError:
                continue
            if b"READY=1" in data.split(b"\n"):
                return time.perf_counter() - self._started_s

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> int:
        """SIGKILL (a power cut: none of its code runs again), reaped."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        return self.proc.wait()

    def stop(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """SIGCONT (in case it is stopped), SIGTERM, then SIGKILL if it lingers; reaped,
        its socket and log closed. Safe after ``kill`` and on a second call."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
        code = terminate_and_reap(self.proc, timeout_s)
        self._close_files()
        return code

    def _close_files(self) -> None:
        self._notify.close()
        self._log.close()
