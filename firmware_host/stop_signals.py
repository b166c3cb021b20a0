"""What SIGTERM, SIGINT and SIGHUP do, for the whole life of a controller process.

Owns: the handlers of ``nirpad run`` and ``nirpad demo``, installed before anything is
built and restored only after everything is closed. Before the event loop runs, a
signal unwinds what was built (``KeyboardInterrupt``: the light is never on then, and
every part built so far closes on the way out, the demo's temporary folder too). Once
the loop runs, the first signal stops it (its ``finally`` turns the outputs off and cuts
the rail; the session is closed as ``stopped``), and any further one is logged and
ignored: a second Ctrl-C or a systemd retry must not cut the shutdown short half-way.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Final

from firmware_host.loop import EventLoop

log = logging.getLogger(__name__)

STOPPING: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP: terminal closed


class StopSignals:
    """The stop request of one process; ``attach`` the loop once it is built."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._loop: EventLoop | None = None

    def attach(self, loop: EventLoop) -> None:
        """From now on a signal stops ``loop`` instead of unwinding the start-up."""
        self._loop = loop

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._loop is None:
            raise KeyboardInterrupt(name)  # still starting: close what was built, exit
        if self.stop.is_set():
            log.info("%s: already stopping; the outputs are off or about to be", name)
            return
        log.info("%s: stopping", name)
        self.stop.set()
        self._loop.request_stop()


@contextlib.contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Install the handlers for the ``with`` block; the previous ones are put back after."""
    signals = StopSignals()
    previous = {sig: signal.signal(sig, signals.handle) for sig in STOPPING}
    try:
        yield signals
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
