"""A child process that speaks JSON lines: commands on its stdin, events on its stdout.

Owns: starting the child in its own session (a terminal's Ctrl-C reaches only the
parent), a reader thread that keeps each JSON-object line of its stdout in arrival
order (so the pipe never fills and stalls the child), waiting on a condition for the
first event that matches (``wait_for``, from an index taken with ``mark``, so nothing
that arrived earlier is ever consumed by mistake), sending JSON-line commands, and
ending the child: SIGKILL (``kill``, a power cut) or politely (``close``: an optional
quit command, then SIGTERM, then SIGKILL), always reaped, with the reader joined and
the pipes closed. A child that exits on its own is reaped when its output ends.

Used by ``sim_process`` (``nirpad run --sim``, ``nirpad demo``) and by ``hil``'s
process rigs, the power-cut test and the benchmarks. Does not own any event vocabulary:
that is the child's (docs/hil.md for the simulator).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

Event = dict[str, Any]

EXIT_TIMEOUT_S: Final = 5.0
REAP_AFTER_EOF_S: Final = 1.0  # its output ended; how long to wait for its exit


def terminate_and_reap(proc: subprocess.Popen[Any], timeout_s: float = EXIT_TIMEOUT_S) -> int:
    """SIGTERM, then SIGKILL if it is still there after ``timeout_s``; always reaped.

    Returns the exit status (negative: the signal that ended it)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return proc.wait()


class EventTimeout(TimeoutError):
    """No matching event came in time, or the child's output ended first."""


class JsonLinesChild:
    """A child process; every JSON object its stdout prints is kept, in order.

    ``keep`` bounds memory for long-running children: once twice that many events are
    held, all but the newest ``keep`` are dropped (indices from ``mark`` stay valid).
    ``on_event`` is called on the reader thread for each event, outside any lock.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stderr: IO[Any] | int | None = None,
        keep: int | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            bufsize=1, env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
        self._events: list[Event] = []
        self._dropped = 0
        self._keep = keep
        self._on_event = on_event
        self._ended = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="json-child-out", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self._line(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the child is gone
        finally:
            self._reap_if_ended()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _reap_if_ended(self) -> None:
        """Its output ended: almost always because it exited. Reap it now, so a child
        that died under a long-running parent is not left a zombie until ``close``; one
        that only closed its stdout is left running (``close`` ends it)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(REAP_AFTER_EOF_S)

    def _line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # a stray non-JSON line (a log message)
        if not isinstance(event, dict):
            return
        with self._cond:
            self._events.append(event)
            if self._keep is not None and len(self._events) > 2 * self._keep:
                cut = len(self._events) - self._keep
                del self._events[:cut]
                self._dropped += cut
            self._cond.notify_all()
        if self._on_event is not None:
            self._on_event(event)

    def mark(self) -> int:
        """The index the next event will have; pass it to ``wait_for`` as ``after``."""
        with self._cond:
            return self._dropped + len(self._events)

    def snapshot(self) -> list[Event]:
        """Every event still kept, oldest first."""
        with self._cond:
            return list(self._events)

    def since(self, index: int) -> list[Event]:
        """The kept events from ``index`` (a ``mark``) on."""
        with self._cond:
            return self._events[max(0, index - self._dropped) :]

    def wait_for(self, match: Callable[[Event], bool], timeout_s: float, after: int = 0) -> Event:
        """The first event from index ``after`` on that matches; EventTimeout otherwise."""
        return self.wait_for_index(match, timeout_s, after)[1]

    def wait_for_index(
        self, match: Callable[[Event], bool], timeout_s: float, after: int = 0
    ) -> tuple[int, Event]:
        """Like ``wait_for``, also returning the event's index."""
        deadline_s = time.monotonic() + timeout_s
        with self._cond:
            while True:
                start = max(after, self._dropped)
                for i, event in enumerate(self._events[start - self._dropped :], start):
                    if match(event):
                        return i, event
                after = self._dropped + len(self._events)
                left_s = deadline_s - time.monotonic()
                if left_s <= 0 or self._ended:
                    raise EventTimeout(
                        f"no matching event within {timeout_s:g} s (exit "
                        f"{self.proc.poll()}); last: {self._events[-3:]}"
                    )
                self._cond.wait(left_s)

    def send(self, command: Event) -> None:
        """One JSON-line command; OSError or ValueError if the child's stdin is gone."""
        if self.proc.stdin is None:
            raise ValueError("the child has no stdin")
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL (a power cut), then reap."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()

    def close(self, quit_command: Event | None = None, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """End the child (``quit_command`` first, if given), reap it, release everything.

        Each polite step gets ``timeout_s``. Safe to call twice. Returns the exit status."""
        proc = self.proc
        if proc.poll() is None and quit_command is not None:
            with contextlib.suppress(OSError, ValueError):
                self.send(quit_command)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout_s)
        code = terminate_and_reap(proc, timeout_s)
        self._reader.join(timeout_s)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return code
