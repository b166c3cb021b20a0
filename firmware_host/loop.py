"""The single-threaded event loop of the controller (DESIGN §3).

Owns: the one loop thread, its wait (``selectors`` over the board's fd and a wake-up
pipe, with the next 20 ms tick deadline as the timeout), the queue of events posted from
other threads (gpiozero callbacks, the control socket), tick scheduling (a tick rides
on a frame's wake-up when one comes within a few ms of it: docs/architecture.md, "The
loop's wake-ups") and jitter samples, and the last line of defence: every exit from
``run`` turns the outputs off.

Does not own what an event means (the ``Controller`` does) nor the board (the safety
core does). When the core has no fd (the in-process simulator), the loop waits with
``core.wait_readable(timeout_s)``, which advances virtual time; nothing selects on the
wake-up pipe then, so it is drained (without blocking) only after a wake-up.

Threads: only ``post``, ``call_soon_threadsafe`` and ``request_stop`` may be called from
another thread. Everything else runs on the loop thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["MAX_JITTER_SAMPLES", "EventLoop", "LoopController", "LoopCore"]

log = logging.getLogger(__name__)

TICK_EARLY_S: Final = 0.005
"""How early a tick may run when a frame has just woken the loop: the tick then shares
that wake-up instead of having its own (docs/performance.md)."""
TICK_LATE_S: Final = 0.005
"""How late a tick may wait for the next frame while frames are arriving (one came in
the last ``FRAMES_FLOWING_S``). A silent board gets its ticks exactly on time."""
FRAMES_FLOWING_S: Final = 0.03
"""Frames count as arriving while the last one is younger than this (1.5 telemetry
periods): only then does a tick wait for the next one."""
MAX_JITTER_SAMPLES: Final = 3_000
"""The newest tick latenesses kept (one minute at 50 Hz, about 100 kB): enough for the
benchmark's 10 s, small and flat for a controller that runs for months."""
_WAKE: Final = b"\x00"


class LoopCore(Protocol):
    """The part of ``safety.core.SafetyCore`` the loop uses."""

    def fileno(self) -> int | None: ...
    def wait_readable(self, timeout_s: float) -> bool: ...
    def poll(self) -> list[Any]: ...
    def all_off(self) -> None: ...


class LoopController(Protocol):
    """The part of ``firmware_host.controller.Controller`` the loop drives."""

    def handle_safety_events(self, events: list[Any]) -> None: ...
    def handle_input(self, event: object) -> None: ...
    def on_tick(self) -> None: ...


@dataclass(frozen=True)
class _Call:
    fn: Callable[[], Any]
    future: Future[Any]


class EventLoop:
    """Runs the controller: telemetry on arrival, posted events, a tick every ``tick_s``."""

    def __init__(
        self,
        controller: LoopController,
        core: LoopCore,
        clock: Callable[[], float],
        *,
        tick_s: float = 0.02,
        on_tick_hook: Callable[[], None] | None = None,
    ) -> None:
        self._controller = controller
        self._core = core
        self._clock = clock
        self.tick_s = tick_s
        self.on_tick_hook = on_tick_hook
        self.tick_jitter_s: deque[float] = deque(maxlen=MAX_JITTER_SAMPLES)
        self._posted: deque[object] = deque()
        self._stop_requested = False
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._rfd, selectors.EVENT_READ)
        self._core_fd: int | None = None
        self._next_tick_s: float | None = None
        self._closed = False
        self._fd_lock = threading.Lock()  # a closed fd number may be reused: never write it
        self._woken = False  # set after each write to the wake-up pipe
        self._last_frame_s = -1e9  # when the board last woke the loop
        self._frame_woke = False  # this wake-up brought a frame
        self._read_fresh = False  # ...and nothing ran on the loop since it was read

    # -- any thread -------------------------------------------------------------------

    def post(self, event: object) -> None:
        """Queue ``event`` for ``controller.handle_input`` and wake the loop."""
        self._posted.append(event)
        self._wake()

    def call_soon_threadsafe(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on the loop thread; its result (or exception) lands in the future."""
        future: Future[Any] = Future()
        self.post(_Call(fn, future))
        return future

    def request_stop(self) -> None:
        self._stop_requested = True
        self._wake()

    # -- loop thread ----------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, until_s: float | None = None) -> None:
        """Run until ``stop`` is set, ``request_stop`` or ``until_s``; outputs off on exit."""
        try:
            self._run(stop, until_s)
        finally:
            self._core.all_off()
            self.close()

    def run_for(self, duration_s: float) -> None:
        """Run for ``duration_s`` of clock time (tests). Outputs off if it raises.

        Unlike ``run``, a normal return leaves the session running and the loop open, so
        a test can look at the state and call ``run_for`` again.
        """
        try:
            self._run(None, self._clock() + duration_s)
        except BaseException:
            self._core.all_off()
            raise

    def close(self) -> None:
        """Close the wake-up pipe and cancel calls still waiting. Idempotent."""
        if self._closed:
            return
        self._closed = True
        while self._posted:
            item = self._posted.popleft()
            if isinstance(item, _Call):
                item.future.cancel()
        self._selector.close()
        with self._fd_lock:
            for fd in (self._rfd, self._wfd):
                os.close(fd)

    def _run(self, stop: threading.Event | None, until_s: float | None) -> None:
        self._stop_requested = False
        if self._next_tick_s is None or self._next_tick_s < self._clock():
            self._next_tick_s = self._clock() + self.tick_s
        while not self._stop_requested and not (stop is not None and stop.is_set()):
            now_s = self._clock()
            if until_s is not None and now_s >= until_s:
                return
            timeout_s = max(0.0, self._tick_deadline_s() - now_s)
            if until_s is not None:
                timeout_s = min(timeout_s, until_s - now_s)
            self._frame_woke = self._read_fresh = False
            self._wait(timeout_s)
            if self._posted:
                self._read_fresh = False  # a posted request may have left inputs waiting
                self._drain_posted()
            self._maybe_tick()

    def _wait(self, timeout_s: float) -> None:
        fd = self._core.fileno()
        if fd is None:
            self._wait_without_fd(timeout_s)
            return
        if fd != self._core_fd:
            if self._core_fd is not None:
                self._selector.unregister(self._core_fd)
            self._selector.register(fd, selectors.EVENT_READ)
            self._core_fd = fd
        for key, _ in self._selector.select(timeout_s):
            if key.fd == self._rfd:
                self._drain_wake_pipe()
            else:
                self._frame_woke = self._read_fresh = True
                self._last_frame_s = self._clock()
                self._controller.handle_safety_events(self._core.poll())

    def _wait_without_fd(self, timeout_s: float) -> None:
        if self._posted:
            timeout_s = 0.0
        if self._core.wait_readable(timeout_s):
            self._frame_woke = self._read_fresh = True
            self._last_frame_s = self._clock()
            self._controller.handle_safety_events(self._core.poll())
        if self._woken:  # nothing selects on the pipe here: only keep it from filling up
            self._woken = False
            self._drain_wake_pipe()

    def _tick_deadline_s(self) -> float:
        """When the loop must wake for the tick: on time, or a little late while frames
        arrive (the next one will carry the tick with it)."""
        assert self._next_tick_s is not None
        if self._frames_flowing(self._next_tick_s):
            return self._next_tick_s + TICK_LATE_S
        return self._next_tick_s

    def _frames_flowing(self, at_s: float) -> bool:
        return at_s - self._last_frame_s < FRAMES_FLOWING_S

    def _maybe_tick(self) -> None:
        """Tick if due. A frame that woke the loop up to ``TICK_EARLY_S`` before the tick,
        or while the tick waits for it, takes the tick along: one wake-up, not two."""
        assert self._next_tick_s is not None
        now_s = self._clock()
        due_s = self._next_tick_s
        if now_s < due_s - TICK_EARLY_S:
            return
        if not self._frame_woke and now_s < self._tick_deadline_s():
            return  # waiting for the next frame to take the tick along
        self.tick_jitter_s.append(max(0.0, now_s - due_s))  # the oldest drops out at the bound
        if not self._read_fresh:  # else the board's bytes were read a moment ago
            self._controller.handle_safety_events(self._core.poll())
        self._controller.on_tick()
        if self.on_tick_hook is not None:
            self.on_tick_hook()
        if self._frames_flowing(now_s):
            self._next_tick_s = now_s + self.tick_s  # the next tick meets the frame after next
        else:
            self._next_tick_s = due_s + self.tick_s  # a silent board: the exact grid
        if self._next_tick_s <= now_s:  # fell behind: skip missed ticks, do not burst
            self._next_tick_s = now_s + self.tick_s

    def _drain_posted(self) -> None:
        while self._posted:
            item = self._posted.popleft()
            if isinstance(item, _Call):
                self._run_call(item)
            else:
                self._controller.handle_input(item)

    @staticmethod
    def _run_call(call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            call.future.set_result(call.fn())
        except Exception as err:  # the caller's thread gets it; the loop keeps running
            log.exception("a call posted into the loop raised")
            call.future.set_exception(err)

    def _wake(self) -> None:
        with self._fd_lock:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError):  # pipe full: the loop is awake
                os.write(self._wfd, _WAKE)
            self._woken = True

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._rfd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
