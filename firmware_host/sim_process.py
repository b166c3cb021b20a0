"""The simulated driver board as a child process: ``python -m hil.sim`` on a pty.

Owns: the simulator's command line (``sim_argv``, the one place it is spelled; ``hil``'s
rigs use it too), starting the simulator (a ``JsonLinesChild``: its own session, so a
terminal's Ctrl-C reaches only the controller, which turns the outputs off before it
ends the child), waiting for its first event (JSON with ``"port"``), keeping its
recent events, sending it JSON-line commands, and terminating and reaping it. Used by
``nirpad run --sim`` and ``nirpad demo``.

Does not import ``hil``: the child is started by module name (import-linter forbids
product code importing ``hil``). Does not own the simulator's vocabulary (docs/hil.md).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from firmware_host.json_child import EventTimeout, JsonLinesChild

log = logging.getLogger(__name__)

SIM_PROG_ENV: Final = "NIRPAD_SIM_PROG"
"""The command name the simulator's help and usage errors show (``nirpad sim`` sets it;
``hil.sim`` spells it too, as it may not import this module)."""
SIM_START_TIMEOUT_S: Final = 15.0
CHILD_EXIT_TIMEOUT_S: Final = 5.0
RECENT_EVENTS: Final = 200
"""How many of the simulator's events are kept (it may run for days)."""


def sim_argv(args: Sequence[str], module: str = "hil.sim") -> list[str]:
    """``python -P -m hil.sim ARGS``: -P keeps the current directory off the module search
    path, so a stray ``hil.py`` there cannot stand in for the simulator."""
    return [sys.executable, "-P", "-m", module, *args]


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
        self.argv = sim_argv(args, module)
        self.port: str | None = None
        self._on_event = on_event
        self._child: JsonLinesChild | None = None

    @property
    def child(self) -> JsonLinesChild | None:
        """The running simulator (its process and events); None before start and after close."""
        return self._child

    @property
    def recent(self) -> list[dict[str, Any]]:
        """The newest events (at least the last ``RECENT_EVENTS``), oldest first."""
        return self._child.snapshot() if self._child is not None else []

    def start(self, timeout_s: float = SIM_START_TIMEOUT_S) -> str:
        """Start the child and return its port; RunError if it gives none in time."""
        self._child = JsonLinesChild(self.argv, keep=RECENT_EVENTS, on_event=self._on_event)
        try:
            first = self._child.wait_for(lambda e: "port" in e, timeout_s)
        except EventTimeout:
            self.close()
            raise RunError(
                f"the simulator did not report its port within {timeout_s:g} s"
            ) from None
        self.port = str(first["port"])
        log.info("simulated board on %s (pid %d)", self.port, self._child.pid)
        return self.port

    def send(self, command: dict[str, Any]) -> None:
        """One JSON-line command to the simulator (docs/hil.md); dropped if it is gone."""
        if self._child is not None:
            with contextlib.suppress(OSError, ValueError):
                self._child.send(command)

    def close(self) -> None:
        """Terminate the child (kill if it lingers), reap it, close the pipes."""
        child, self._child = self._child, None
        if child is not None:
            child.close(timeout_s=CHILD_EXIT_TIMEOUT_S)
