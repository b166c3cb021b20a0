"""``install`` over the control socket never runs validation on the event-loop thread:
with a validator that takes as long as the test likes (it waits for the loop to tick,
no sleeping), the real controller on the in-process simulator keeps ticking and keeps
treating; only the quick "is a session running?" and "reload" steps touch the loop."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware_host.control import ControlServer
from firmware_host.control_client import send
from firmware_host.profile_commands import InstallOutcome, validate_and_install
from firmware_host.runner import App, make_installer
from profiles.store import installed_path
from tests.firmware_host.sim_app import build_sim_app

# The shipped built-ins carry fixed dates: read them on a day they are valid.
pytestmark = pytest.mark.usefixtures("builtin_wall_clock")

RX = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_text()
SLOW_TICKS = 50  # the validation lasts 50 loop ticks: 1 s of the loop's clock
MAX_VIRTUAL_S = 600.0
Clock = Callable[[], float]


class SlowValidator:
    """Validates for real, but only after the loop has ticked ``SLOW_TICKS`` more times
    (it would wait forever on the loop's own thread: then it gives up and says so)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.ticks_at_start: int | None = None
        self.thread_name = ""
        self.done_waiting = threading.Event()

    def on_tick(self) -> None:
        self.ticks += 1
        start = self.ticks_at_start
        if start is not None and self.ticks - start >= SLOW_TICKS:
            self.done_waiting.set()

    def __call__(self, *args: Any, **kwargs: Any) -> InstallOutcome:
        self.thread_name = threading.current_thread().name
        self.ticks_at_start = self.ticks
        if not self.done_waiting.wait(10):
            return InstallOutcome(False, 1, "the loop did not tick while validating")
        return validate_and_install(*args, **kwargs)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[App, Clock, SlowValidator, Path]]:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    outcome = validate_and_install(state_dir, RX.encode(), "rx.toml", None)
    assert outcome.ok, outcome.message
    with contextlib.ExitStack() as stack:
        app, clock, _ = build_sim_app(stack, state_dir, seed=5)
        slow = SlowValidator()
        app.loop.on_tick_hook = slow.on_tick
        installer = make_installer(state_dir, None, app.controller, validate=slow)
        server = ControlServer(state_dir, app.controller, app.loop, installer=installer)
        app.controller.boot()
        server.start()
        stack.callback(server.close)
        yield app, clock, slow, state_dir
        app.loop.close()


def _install_while_looping(app: App, clock: Clock, text: str) -> dict[str, Any]:
    """Send ``install`` from a client thread and run the loop (virtual time) meanwhile."""
    replies: list[dict[str, Any] | None] = []
    client = threading.Thread(
        target=lambda: replies.append(
            send(app.server.path.parent, {"cmd": "install", "name": "rx.toml", "data": text}, 30)
        )
    )
    client.start()
    end_s = clock() + MAX_VIRTUAL_S
    while client.is_alive() and clock() < end_s:
        app.loop.run_for(0.2)
    client.join(10)
    assert replies and replies[0] is not None, "no answer to install"
    return replies[0]


@pytest.mark.timeout(60)
def test_a_slow_install_during_a_session_keeps_the_loop_ticking(
    rig: tuple[App, Clock, SlowValidator, Path],
) -> None:
    app, clock, slow, _ = rig
    assert app.controller.command("start").ok
    app.loop.run_for(10.0)
    reply = _install_while_looping(app, clock, RX)
    assert slow.thread_name == "nirpad-control-client"  # not the loop's thread
    assert slow.done_waiting.is_set()  # the loop ticked 50 times while it validated
    assert reply["ok"] is False and "a session is treating" in reply["message"]
    status = app.controller.status()
    assert status["state"] == "treating" and status["fault"] is None  # the lease held


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_slow_install_when_ready_is_written_and_reloaded_on_the_loop(
    rig: tuple[App, Clock, SlowValidator, Path],
) -> None:
    app, clock, slow, state_dir = rig
    text = RX.replace('id = "rls-810-standard"', 'id = "rls-810-renewed"')
    assert text != RX
    reply = _install_while_looping(app, clock, text)
    assert reply["ok"], reply["message"]
    assert slow.done_waiting.is_set()
    assert "rls-810-renewed" in installed_path(state_dir).read_text()
    assert app.controller.status()["profile_id"] == "rls-810-renewed"  # the controller reloaded it


def test_one_install_is_checked_at_a_time(tmp_path: Path) -> None:
    """Checks share the CPU with the loop: a second install while one is being checked
    is refused at once instead of validating beside it."""
    release = threading.Event()
    entered = threading.Event()

    def blocking(*args: Any, **kwargs: Any) -> InstallOutcome:
        entered.set()
        release.wait(10)
        return InstallOutcome(False, 3, "checked")

    install = make_installer(tmp_path, None, controller=None, validate=blocking)  # type: ignore[arg-type]
    replies: list[InstallOutcome] = []
    first = threading.Thread(target=lambda: replies.append(install("a.toml", RX, _no_loop)))
    first.start()
    try:
        assert entered.wait(10)
        second = install("b.toml", RX, _no_loop)
        assert not second.ok and "another prescription is being checked" in second.message
    finally:
        release.set()
        first.join(10)
    assert [r.message for r in replies] == ["checked"]
    assert install("c.toml", RX, _no_loop).message == "checked"  # free again afterwards
    release.set()


def _no_loop(fn: Callable[[], Any], even_late: bool = False) -> Any:
    raise AssertionError("a refused install never reaches the loop")
