"""The simulated board as a child process: how ``hil`` and the tests start ``python -m hil.sim``.

Owns: ``SimChild``, the simulator as a ``firmware_host.json_child.JsonLinesChild`` (its
pty, from its first event ``ready``; its JSON events with their ``"t"``; its JSON-line
commands; fault injection; its truth), and ``sim_state``, the truth of any simulator
child (also one started as ``nirpad sim``). The command line is
``firmware_host.sim_process.sim_argv``, the product's own (``python -P -m hil.sim``), so
the rigs start the simulator exactly as ``nirpad run --sim`` does. Waiting is on events,
never on a fixed sleep. Does not own the simulator's vocabulary (docs/hil.md) or the
controller process (``hil.rigs.process_rig``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from firmware_host.json_child import Event, JsonLinesChild
from firmware_host.sim_process import sim_argv

__all__ = ["SimChild", "sim_state"]

START_TIMEOUT_S: Final = 30.0
"""Generous: a Python start-up on a loaded 2-core machine. Only readiness waits on it."""
REPLY_TIMEOUT_S: Final = 10.0
QUIT: Final[Event] = {"cmd": "quit"}


def sim_state(sim: JsonLinesChild, timeout_s: float = REPLY_TIMEOUT_S) -> Event:
    """The simulator's truth now (its ``state`` event, with its ``"t"``); no other event
    is consumed."""
    mark = sim.mark()
    sim.send({"cmd": "state"})
    return sim.wait_for(lambda e: e.get("event") == "state", timeout_s, after=mark)


class SimChild(JsonLinesChild):
    """``python -P -m hil.sim ARGS`` as a child, started and ready (``port``, ``ready``).

    The reader thread and the waiting are ``JsonLinesChild``'s: ``wait_for`` blocks on a
    condition (never a sleep) and raises ``EventTimeout``. ``stop`` always ends and reaps
    the child and joins the reader. ``keep`` and ``on_event`` are ``JsonLinesChild``'s.
    """

    def __init__(
        self,
        *args: str,
        log_path: Path | None = None,
        keep: int | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self._log = open(log_path or os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        super().__init__(sim_argv(args), stderr=self._log, keep=keep, on_event=on_event)
        try:
            self.ready = self.wait_for(lambda e: e.get("event") == "ready", START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        self.port = str(self.ready["port"])

    def command(self, **cmd: object) -> None:
        self.send(cmd)

    def events_named(self, name: str) -> list[Event]:
        return [e for e in self.snapshot() if e.get("event") == name]

    def inject(self, fault: str, **params: object) -> float:
        """Inject ``fault``; returns the simulator time stamp of its ``injected`` event."""
        mark = self.mark()
        self.command(cmd="inject", fault=fault, **params)
        event = self.wait_for(
            lambda e: e.get("event") in ("injected", "error") and e.get("fault", fault) == fault,
            REPLY_TIMEOUT_S,
            mark,
        )
        assert event["event"] == "injected", event
        return float(event["t"])

    def state(self) -> Event:
        """The simulator's truth now (its ``state`` event, with its ``"t"``)."""
        return sim_state(self)

    def close(self, quit_command: Event | None = QUIT, timeout_s: float = REPLY_TIMEOUT_S) -> int:
        """Quit (or terminate, or kill), reap, join the reader, close the pipes and log.

        Safe to call twice. Returns the exit status."""
        code = super().close(quit_command, timeout_s)
        self._log.close()
        return code

    def stop(self) -> None:
        self.close()
