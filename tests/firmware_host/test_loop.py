"""The event loop: ticks on the virtual clock, posted calls, fd wake-ups, safe exits."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from firmware_host import loop as loop_module
from firmware_host.loop import EventLoop
from firmware_host.machine import State
from hil.rigs.clock import VirtualClock

from .conftest import ControllerFactory, FakeCore


@dataclass
class StubController:
    ticks: list[float] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    inputs: list[object] = field(default_factory=list)
    raise_on_tick: int | None = None
    clock: Any = None

    def handle_safety_events(self, events: list[Any]) -> None:
        self.events.extend(events)

    def handle_input(self, event: object) -> None:
        self.inputs.append(event)

    def on_tick(self) -> None:
        self.ticks.append(self.clock())
        if self.raise_on_tick is not None and len(self.ticks) >= self.raise_on_tick:
            raise RuntimeError("tick failed")


def _pipe_fds() -> set[int]:
    """This process's open pipe ends (Linux: /proc/self/fd)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                fds.add(int(name))
    return fds


def new_loop(*args: Any) -> tuple[EventLoop, set[int]]:
    """An ``EventLoop`` and the pipe ends it opened (its wake-up pipe)."""
    before = _pipe_fds()
    loop = EventLoop(*args)
    wake_fds = _pipe_fds() - before
    assert len(wake_fds) == 2, wake_fds
    return loop, wake_fds


def fd_closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_ticks_every_20_ms_on_the_virtual_clock(core: FakeCore, clock: VirtualClock) -> None:
    stub = StubController(clock=clock)
    hook_calls: list[int] = []
    loop = EventLoop(stub, core, clock, on_tick_hook=lambda: hook_calls.append(1))
    start_s = clock()
    loop.run(until_s=start_s + 1.0)
    assert len(stub.ticks) == 50
    assert stub.ticks[0] == pytest.approx(start_s + 0.02)
    assert all(
        b - a == pytest.approx(0.02) for a, b in zip(stub.ticks, stub.ticks[1:], strict=False)
    )
    assert len(hook_calls) == 50
    assert loop.tick_jitter_s and max(loop.tick_jitter_s) < 1e-9


def test_run_turns_the_outputs_off_on_every_exit(core: FakeCore, clock: VirtualClock) -> None:
    loop, wake_fds = new_loop(StubController(clock=clock), core, clock)
    core.outputs_on = True
    loop.run(until_s=clock() + 0.1)
    assert core.all_off_count == 1 and not core.outputs_on
    assert all(fd_closed(fd) for fd in wake_fds)


def test_an_exception_in_the_loop_still_turns_the_outputs_off(
    core: FakeCore, clock: VirtualClock
) -> None:
    loop, wake_fds = new_loop(StubController(clock=clock, raise_on_tick=3), core, clock)
    core.outputs_on = True
    with pytest.raises(RuntimeError, match="tick failed"):
        loop.run()
    assert core.all_off_count == 1 and not core.outputs_on
    assert all(fd_closed(fd) for fd in wake_fds)


def test_run_for_turns_the_outputs_off_when_it_raises(core: FakeCore, clock: VirtualClock) -> None:
    loop = EventLoop(StubController(clock=clock, raise_on_tick=2), core, clock)
    core.outputs_on = True
    with pytest.raises(RuntimeError):
        loop.run_for(1.0)
    assert not core.outputs_on
    loop.close()


def test_run_for_leaves_the_session_running(
    make_controller: ControllerFactory, core: FakeCore, clock: VirtualClock
) -> None:
    controller = make_controller()
    loop = EventLoop(controller, core, clock)
    controller.command("start")
    loop.run_for(5.0)
    assert controller.state is State.TREATING and core.outputs_on
    assert core.calls.count("tick") == 250
    loop.close()


def test_a_safety_event_goes_to_the_controller_on_arrival(
    core: FakeCore, clock: VirtualClock
) -> None:
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock, tick_s=10.0)
    core.poll_events = ["frame"]
    loop.run_for(0.001)
    assert stub.events == ["frame"] and stub.ticks == []
    loop.close()


@dataclass
class FdCore(FakeCore):
    """A core with a real file descriptor, as with a serial port."""

    fds: tuple[int, int] = field(default_factory=os.pipe)
    polled: threading.Event = field(default_factory=threading.Event)

    def fileno(self) -> int | None:
        return self.fds[0]

    def poll(self) -> list[Any]:
        data = b""
        os.set_blocking(self.fds[0], False)
        with contextlib.suppress(BlockingIOError):
            data = os.read(self.fds[0], 100)
        if data:
            self.polled.set()
        return [data] if data else []


def test_with_a_real_fd_telemetry_wakes_the_loop_before_the_tick() -> None:
    core = FdCore(VirtualClock())
    stub = StubController(clock=time.monotonic)
    loop = EventLoop(stub, core, time.monotonic, tick_s=3600.0)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    try:
        os.write(core.fds[1], b"telemetry")
        assert core.polled.wait(10.0)
    finally:
        stop.set()
        loop.request_stop()
        thread.join(10.0)
        for fd in core.fds:
            os.close(fd)
    assert not thread.is_alive()
    assert stub.events == [b"telemetry"] and stub.ticks == []
    assert core.all_off_count == 1


def test_call_soon_threadsafe_runs_on_the_loop_thread_and_returns_the_reply(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    fd_core = FdCore(core.clock)
    loop = EventLoop(controller, fd_core, time.monotonic, tick_s=0.02)
    threads: list[str] = []

    def start() -> Any:
        threads.append(threading.current_thread().name)
        return controller.command("start")

    thread = threading.Thread(target=loop.run, name="loop-thread")
    thread.start()
    try:
        reply = loop.call_soon_threadsafe(start).result(timeout=10.0)
    finally:
        loop.request_stop()
        thread.join(10.0)
        for fd in fd_core.fds:
            os.close(fd)
    assert reply.ok and reply.exit_code == 0
    assert threads == ["loop-thread"]
    assert not thread.is_alive()


def test_a_failing_posted_call_reaches_the_caller_and_the_loop_goes_on(
    core: FakeCore, clock: VirtualClock
) -> None:
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock)
    future = loop.call_soon_threadsafe(lambda: 1 / 0)
    loop.run_for(0.1)
    with pytest.raises(ZeroDivisionError):
        future.result(timeout=0)
    assert len(stub.ticks) == 5
    loop.close()


def test_posted_events_go_to_handle_input(core: FakeCore, clock: VirtualClock) -> None:
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock)
    loop.post("edge")
    loop.run_for(0.01)
    assert stub.inputs == ["edge"]
    loop.close()


def test_closing_cancels_waiting_calls_and_later_posts_are_harmless(
    core: FakeCore, clock: VirtualClock
) -> None:
    loop = EventLoop(StubController(clock=clock), core, clock)
    future = loop.call_soon_threadsafe(lambda: 1)
    loop.close()
    assert future.cancelled()
    loop.post("late")  # must not write into a closed (maybe reused) fd
    loop.close()


def test_request_stop_and_stop_event_end_the_run(core: FakeCore, clock: VirtualClock) -> None:
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock, on_tick_hook=lambda: loop.request_stop())
    loop.run(until_s=clock() + 100.0)
    assert len(stub.ticks) == 1
    stop = threading.Event()
    stop.set()
    loop2 = EventLoop(stub, core, clock)
    loop2.run(stop)
    assert len(stub.ticks) == 1
    assert core.all_off_count == 2


def test_jitter_samples_are_bounded(
    core: FakeCore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop_module, "MAX_JITTER_SAMPLES", 10)
    loop = EventLoop(StubController(clock=clock), core, clock)
    loop.run_for(1.0)
    assert len(loop.tick_jitter_s) == 10  # 50 ticks ran; the newest 10 are kept
    loop.close()


@dataclass
class FramedCore(FakeCore):
    """A board that sends a frame every ``period_s`` from ``first_s`` until ``last_s``,
    on the virtual clock; counts the loop's waits and polls."""

    first_s: float = 0.0
    period_s: float = 0.02
    last_s: float = float("inf")
    waits: int = 0
    polls: int = 0
    _next_frame_s: float = 0.0

    def __post_init__(self) -> None:
        self._next_frame_s = self.first_s

    def wait_readable(self, timeout_s: float) -> bool:
        self.waits += 1
        until_s = self.clock() + timeout_s
        if self._next_frame_s <= min(until_s, self.last_s):
            self.clock.advance(max(0.0, self._next_frame_s - self.clock()))
            self._next_frame_s += self.period_s
            return True
        self.clock.advance(timeout_s)
        return False

    def poll(self) -> list[Any]:
        self.polls += 1
        return []


def ticks_after(stub: StubController, start_s: float) -> list[float]:
    return [round(t - start_s, 6) for t in stub.ticks]


@pytest.mark.parametrize("offset_s", [-0.004, -0.001, 0.001, 0.004])
def test_a_frame_near_the_tick_takes_the_tick_along_one_wake_up_a_period(offset_s: float) -> None:
    clock = VirtualClock()
    start_s = clock()
    # frames 20 ms apart, each ``offset_s`` from the tick that would be due (start + 20 ms · k)
    core = FramedCore(clock, first_s=start_s + 0.02 + offset_s)
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock)
    loop.run(until_s=start_s + 1.0 + offset_s + 1e-6)
    ticks = ticks_after(stub, start_s)
    frames = [round(0.02 * k + offset_s, 6) for k in range(1, 51)]
    if offset_s > 0:  # no frame has come yet when the first tick is due: it runs on time
        assert ticks[0] == pytest.approx(0.02)
        ticks = ticks[1:]
        frames = frames[1:]
    assert ticks == pytest.approx(frames)  # every tick on a frame's wake-up
    assert core.waits <= 52  # one wake-up a period (a tick alone would be a second)
    # each frame is read once; a tick reads only when no frame woke the loop for it
    assert core.polls == 50 + (1 if offset_s > 0 else 0)
    assert max(loop.tick_jitter_s) <= max(0.0, offset_s) + 1e-9


def test_frames_half_a_period_from_the_ticks_draw_the_ticks_to_them() -> None:
    clock = VirtualClock()
    start_s = clock()
    core = FramedCore(clock, first_s=start_s + 0.01)  # frames halfway between ticks
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock)
    loop.run(until_s=start_s + 0.2 + 1e-6)
    ticks = ticks_after(stub, start_s)
    late_s = loop_module.TICK_LATE_S
    # the first tick waits TICK_LATE_S for a frame, then runs; the next meets a frame
    assert ticks == pytest.approx([0.02 + late_s, *[0.05 + 0.02 * k for k in range(8)]])
    assert max(loop.tick_jitter_s) <= late_s + 1e-9


def test_when_the_frames_stop_the_ticks_go_back_on_time() -> None:
    clock = VirtualClock()
    start_s = clock()
    core = FramedCore(clock, first_s=start_s + 0.023, last_s=start_s + 0.1)
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock)
    loop.run(until_s=start_s + 0.3 + 1e-6)
    ticks = ticks_after(stub, start_s)
    late_s = loop_module.TICK_LATE_S
    # on time before the first frame, then riding on the frames
    assert ticks[:4] == pytest.approx([0.02, 0.043, 0.063, 0.083])
    # no frame after 83 ms: the tick due at 103 ms waits TICK_LATE_S for one; then the
    # board counts as silent and the ticks keep an exact 20 ms grid
    assert ticks[4] == pytest.approx(0.103 + late_s)
    assert ticks[5:] == pytest.approx([0.128 + 0.02 * k for k in range(9)])


def test_a_posted_call_after_a_frame_makes_the_tick_read_the_board_again() -> None:
    # a posted request (an acknowledgement, the self-test) may leave the board's inputs
    # waiting in the client, where no select can see them: the tick reads them
    clock = VirtualClock()
    start_s = clock()
    core = FramedCore(clock, first_s=start_s + 0.02)
    stub = StubController(clock=clock)
    loop = EventLoop(stub, core, clock)
    calls: list[float] = []

    def post_on_the_third_frame(events: list[Any]) -> None:
        if core.polls == 3:
            loop.call_soon_threadsafe(lambda: calls.append(clock()))

    stub.handle_safety_events = post_on_the_third_frame  # type: ignore[method-assign]
    loop.run(until_s=start_s + 0.07)  # frames at 20, 40 and 60 ms, each with its tick
    assert len(stub.ticks) == 3 and calls == [pytest.approx(start_s + 0.06)]
    assert core.polls == 3 + 1  # the third tick read the board again after the call
