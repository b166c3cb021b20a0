"""``nirpad run``: assemble the controller and run it in the foreground until a signal.

Owns: the start-up order (state directory and its lock, rail, the stack of
``assembly.assemble_stack``, GPIO button, control socket, sd_notify READY), the
SIGTERM/SIGINT/SIGHUP path (stop the loop, which turns the outputs off; close an open
session in the ledger as ``stopped``; exit 0; the handlers are ``stop_signals``'), and
the ``--sim`` child process (``python -m hil.sim`` on a pty, started in its own session
so a terminal's Ctrl-C reaches only us, and terminated on exit, see ``sim_process``).

Does not own the light or the ledger (``safety``), how the stack is put together
(``assembly``), the session logic (``controller``), the socket protocol (``control``) or
sd_notify (``service``). Never imports ``drivers`` or ``hil``: the simulator is a
separate process, started by module name.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from firmware_host.assembly import AssembledStack, assemble_stack, utc_now
from firmware_host.control import ControlServer, Installer, OnLoop
from firmware_host.control_client import EXIT_USAGE
from firmware_host.controller import Controller
from firmware_host.loop import EventLoop
from firmware_host.paths import (
    PathNameError,
    ensure_state_dir,
    resolve_site_config,
    resolve_state_dir,
    user_path,
)
from firmware_host.service import (
    Notifier,
    WatchdogPinger,
    configure_logging,
    error_line,
    watchdog_interval_s,
)
from firmware_host.sim_process import RunError, SimProcess
from firmware_host.state_lock import StateLock
from firmware_host.stop_signals import StopSignals, stop_signals
from profiles.file_errors import os_error_text
from safety.board_kind import REAL_BOARD, BoardKind
from safety.core import SafetyCore
from safety.core_connect import PortLike
from safety.rail import PowerRail

log = logging.getLogger(__name__)

DEFAULT_RAIL_PIN: Final = 26  # the LED power-rail enable line on the pad's HAT
RAIL_HINT: Final = (
    "Without that GPIO line (a development machine, or `nirpad sim` in another terminal), "
    "give both `nirpad sim` and `nirpad run` the same `--rail-file PATH`, or use "
    "`nirpad run --sim`"
)
STATUS_EVERY_S: Final = 1.0


@dataclass
class App:
    """Everything ``nirpad run`` (and ``nirpad demo``) runs around one board: the
    assembled stack and its (not yet started) control server."""

    stack: AssembledStack
    server: ControlServer

    @property
    def core(self) -> SafetyCore:
        return self.stack.core

    @property
    def controller(self) -> Controller:
        return self.stack.controller

    @property
    def loop(self) -> EventLoop:
        return self.stack.loop


def main(args: argparse.Namespace) -> int:
    """``nirpad run``; returns 0 after a clean stop by signal, ``EXIT_USAGE`` (2) at once
    for options that do not go together, a path of no user's home or a state directory
    that is not a folder (the unit does not retry those)."""
    try:
        board = board_kind(args)
        check_paths(args)
    except (RunError, PathNameError) as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return EXIT_USAGE
    handler = configure_logging(getattr(logging, args.log_level, logging.INFO))
    notifier = Notifier()
    try:
        with stop_signals() as signals, contextlib.ExitStack() as stack:
            return _run(args, board, stack, notifier, signals)
    finally:
        notifier.close()
        logging.getLogger().removeHandler(handler)


def check_paths(args: argparse.Namespace) -> None:
    """``PathNameError`` for a state directory, site file or rail file of no user's
    home (``~name``), or a state directory that is not a folder (``paths.check_state_dir``,
    as every command checks it), before anything is created or opened."""
    resolve_state_dir(args.state_dir)
    resolve_site_config(None, args.site_config)
    if args.rail_file:
        user_path(args.rail_file)


def board_kind(args: argparse.Namespace) -> BoardKind:
    """The board this run is for, from the host's own command line only.

    ``--port`` alone is a real board, always at time scale 1. ``--sim`` (a simulator we
    start) and ``--port ... --simulated-board`` (one started by ``nirpad sim``) run at
    ``--time-scale``, within the simulator's range. The board's INFO must then agree.
    """
    simulated = bool(args.sim or getattr(args, "simulated_board", False))
    if not simulated:
        if args.time_scale != 1.0:
            raise RunError(
                "--time-scale needs --sim or --simulated-board: a real board runs in real time"
            )
        return REAL_BOARD
    try:
        return BoardKind.simulated(args.time_scale)
    except ValueError as exc:
        raise RunError(f"--time-scale: {exc}") from exc


def _run(
    args: argparse.Namespace,
    board: BoardKind,
    stack: contextlib.ExitStack,
    notifier: Notifier,
    signals: StopSignals,
) -> int:
    state_dir = ensure_state_dir(resolve_state_dir(args.state_dir))
    lock = hold_state_dir(stack, state_dir)  # before the simulator, the rail, the ledger
    port_url, rail_pin, rail_file = _board(args, state_dir, stack)
    app = build_app(
        stack, state_dir=state_dir, port_url=port_url, rail_pin=rail_pin, rail_file=rail_file,
        site_config=resolve_site_config(state_dir, args.site_config), board=board, lock=lock,
    )  # fmt: skip
    _open_button(stack, args.button_pin, app.loop)
    return serve(app, stack, notifier, signals)


def serve(
    app: App,
    stack: contextlib.ExitStack,
    notifier: Notifier,
    signals: StopSignals,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Boot, serve the socket, run the loop until SIGTERM/SIGINT, close the session.

    ``signals`` are installed by the caller around everything ``stack`` closes, so a
    second signal cannot cut the shutdown short."""
    app.loop.on_tick_hook = _chain(
        app.loop.on_tick_hook, _tick_hook(app.controller, notifier, clock)
    )
    signals.attach(app.loop)
    app.controller.boot()
    app.server.start()
    stack.callback(app.server.close)
    notifier.ready(f"{app.controller.state}; control socket {app.server.path}")
    log.info("controller running (%s); SIGTERM or Ctrl-C stops it", app.controller.state)
    try:
        app.loop.run(stop=signals.stop)
    finally:
        notifier.stopping("outputs off; closing the session")
        close_open_session(app.controller)
    log.info("controller stopped; outputs off")
    return 0


def _board(
    args: argparse.Namespace, state_dir: Path, stack: contextlib.ExitStack
) -> tuple[str, int | str | None, Path | None]:
    """The port URL and rail of this run; with ``--sim``, start the simulator first."""
    rail_file = user_path(args.rail_file) if args.rail_file else None
    if not args.sim:
        # A real board gets a real rail line: pin 26 unless told otherwise. With only a
        # rail file (a simulator started by ``nirpad sim``), the line is the file.
        pin = args.rail_pin if args.rail_pin else (None if rail_file else DEFAULT_RAIL_PIN)
        return str(args.port), pin, rail_file
    rail_file = rail_file or state_dir / "sim-rail"
    sim = SimProcess(["--rail-file", str(rail_file), "--time-scale", f"{args.time_scale:g}"])
    stack.callback(sim.close)
    return sim.start(), args.rail_pin, rail_file


def build_app(
    stack: contextlib.ExitStack,
    *,
    state_dir: Path,
    port_url: str | None,
    rail_pin: int | str | None,
    rail_file: Path | None,
    site_config: Path | None,
    board: BoardKind,
    clock: Callable[[], float] = time.monotonic,
    transport: PortLike | None = None,
    rail: PowerRail | None = None,
    lock: StateLock | None = None,
) -> App:
    """The assembled stack (``assemble_stack``) and its (not yet started) control server.

    ``board`` is what the host was started for (a real board, or a simulator at the
    host's own time scale); ``transport`` and ``rail`` let tests put the in-process
    simulator underneath. ``lock`` is this process's hold on ``state_dir``; without one
    the state directory is locked here first (``StateDirBusy`` if another holds it),
    before the rail, the port or the ledger is touched. Everything opened here is closed
    by ``stack``."""
    if lock is None:
        hold_state_dir(stack, state_dir)
    if rail is None:
        rail = open_rail(stack, rail_pin, rail_file)
    built = assemble_stack(
        state_dir=state_dir, board=board, rail=rail, port_url=port_url, transport=transport,
        site_config=site_config, clock=clock, wall_clock=utc_now,
    )  # fmt: skip
    stack.callback(built.close)
    installer = make_installer(state_dir, site_config, built.controller)
    return App(built, ControlServer(state_dir, built.controller, built.loop, installer=installer))


def open_rail(
    stack: contextlib.ExitStack, pin: int | str | None, rail_file: Path | None
) -> PowerRail:
    """The rail of this run (a GPIO line, or a simulator's rail file), closed by ``stack``."""
    from safety.rail import RailError, make_rail

    try:
        rail = make_rail(pin, rail_file)
    except RailError as exc:
        raise RunError(f"{exc}\n  {RAIL_HINT}.") from exc
    except OSError as exc:  # the rail file's first write: a missing folder, a full disk
        raise RunError(f"cannot write the rail file {rail_file}: {os_error_text(exc)}") from exc
    stack.callback(rail.close)
    return rail


def hold_state_dir(stack: contextlib.ExitStack, state_dir: Path) -> StateLock:
    """Lock ``state_dir`` for this process until ``stack`` closes (or it dies)."""
    lock = StateLock.acquire(state_dir, "controller")
    stack.callback(lock.release)
    return lock


def make_installer(
    state_dir: Path,
    site_config: Path | None,
    controller: Controller,
    validate: Callable[..., Any] | None = None,
) -> Installer:
    """``install`` over the socket, on the connection's thread, never on the loop's.

    Validation (as long as it takes) and the atomic write run here; only the two
    quick steps hop onto the loop: "is a session running?" (dropped once the client's
    deadline has passed: then nothing is written) and, after a write, "reload the
    prescription" (always: the file has changed). A session started between the two
    keeps the prescription it started with. ``validate`` stands in for
    ``profile_commands.validate_and_install`` in tests."""

    one_at_a_time = threading.Lock()  # checks share the CPU with the loop: never several

    def install(name: str, data: str, on_loop: OnLoop) -> Any:
        from firmware_host.control_client import EXIT_REFUSED
        from firmware_host.profile_commands import InstallOutcome, validate_and_install

        if not one_at_a_time.acquire(blocking=False):
            return InstallOutcome(
                False, EXIT_REFUSED, "another prescription is being checked; try again"
            )
        try:
            check = validate or validate_and_install
            reply = check(
                state_dir, data.encode(), name, site_config,
                session_state=lambda: on_loop(lambda: str(controller.state)), wall_clock=utc_now,
            )  # fmt: skip
        finally:
            one_at_a_time.release()
        if reply.ok:
            try:
                on_loop(lambda: controller.command("reload_prescription"), even_late=True)
            except TimeoutError:  # the loop is stopping: the next start loads the file
                log.warning("installed %s; the controller did not reload it", name)
        return reply

    return install


def _open_button(stack: contextlib.ExitStack, pin: str | None, loop: EventLoop) -> None:
    if pin is None:
        return
    from firmware_host.button import gpio_button

    button = gpio_button(pin, None, loop.post, clock=time.monotonic)
    if button is not None:
        stack.callback(button.close)


def _chain(first: Callable[[], None] | None, second: Callable[[], None]) -> Callable[[], None]:
    if first is None:
        return second

    def both() -> None:
        first()
        second()

    return both


def _tick_hook(
    controller: Controller, notifier: Notifier, clock: Callable[[], float]
) -> Callable[[], None]:
    """Watchdog pings (only from the loop thread) and a STATUS= line once a second."""
    interval_s = watchdog_interval_s()
    pinger = None if interval_s is None else WatchdogPinger(notifier, interval_s, clock)
    next_status_s = clock()

    def hook() -> None:
        nonlocal next_status_s
        if pinger is not None:
            pinger.tick()
        now_s = clock()
        if notifier.enabled and now_s >= next_status_s:
            next_status_s = now_s + STATUS_EVERY_S
            notifier.status(str(controller.state))

    return hook


def close_open_session(controller: Controller) -> None:
    """After the loop: a session still treating or paused is ended as ``stopped``."""
    state = str(controller.state)
    if state not in ("treating", "paused"):
        return
    reply = controller.command("stop")
    log.info("open session closed on shutdown: %s", reply.message)
    controller.core.all_off()
