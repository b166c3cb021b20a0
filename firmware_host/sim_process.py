"""The simulated driver board as a child process: ``python -m hil.sim`` on a pty.

Owns: starting the child (in its own session, so a terminal's Ctrl-C reaches only the
controller, which turns the outputs off before it ends the child), reading its first
stdout line (JSON with ``"port"``), draining the JSON-line events that follow (so the
pipe never fills and stalls the simulator), sending it JSON-line commands, and
terminating and reaping it. Used by ``nirpad run --sim`` and ``nirpad demo``.

Does not import ``hil``: the child is started by module name (import-linter forbids
product code importing ``hil``). Does not own the simulator's vocabulary (docs/hil.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger(__name__)

SIM_START_TIMEOUT_S: Final = 15.0
CHILD_EXIT_TIMEOUT_S: Final = 5.0


class RunError(RuntimeError):
    """The controller cannot start (here: the simulator); the message says what to fix."""


class SimProcess:
    """``python -m hil.sim`` as a child; its first stdout line (JSON) names the pty."""

    def __init__(
        self,
        args: list[str],
        on_event: Callable[[dict[str, Any]], None] | None = None,
        *,
        module: str = "hil.sim",
    ) -> None:
        self.argv = [sys.executable, "-m", module, *args]
        self.port: str | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)
        self._on_event = on_event
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._first = threading.Event()

    def start(self, timeout_s: float = SIM_START_TIMEOUT_S) -> str:
        """Start the child and return its port; RunError if it gives none in time."""
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name="nirpad-sim-out", daemon=True)
        self._reader.start()
        if not self._first.wait(timeout_s) or self.port is None:
            self.close()
            raise RunError(f"the simulator did not report its port within {timeout_s:g} s")
        log.info("simulated board on %s (pid %d)", self.port, self._proc.pid)
        return self.port

    def send(self, command: dict[str, Any]) -> None:
        """One JSON-line command to the simulator (docs/hil.md)."""
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.write(json.dumps(command) + "\n")
            self._proc.stdin.flush()

    def close(self) -> None:
        """Terminate the child (kill if it lingers), reap it, close the pipes."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.terminate()
        try:
            proc.wait(CHILD_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(CHILD_EXIT_TIMEOUT_S)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            for line in proc.stdout:
                self._line(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the child is gone
        finally:
            self._first.set()

    def _line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            log.debug("simulator: %s", line.rstrip())
            return
        if not isinstance(event, dict):
            return
        if self.port is None and "port" in event:
            self.port = str(event["port"])
            self._first.set()
        self.recent.append(event)
        if self._on_event is not None:
            self._on_event(event)
