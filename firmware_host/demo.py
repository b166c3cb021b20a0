"""``nirpad demo``: one simulated session, start to finish, in about 30 seconds.

Owns: the newcomer's tour. It starts ``python -m hil.sim --time-scale 60`` as a child,
makes a temporary state directory, installs the built-in ``rls-810-standard`` (dated
from today: ``profiles.shipped``), runs the real controller in this process (the event
loop on the main thread, which owns the ledger's SQLite connection; a small UI thread
shows a rich progress bar), presses start, and ends by printing the ledger's record of
the session.

Does not own any safety decision: the same ``runner.build_app`` stack as ``nirpad run``
does the work. Leaves nothing behind, on success, error or Ctrl-C: the loop's
``finally`` turns the outputs off, an open session is closed as ``stopped``, the
simulator is terminated and the temporary directory removed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from firmware_host.history import duration_s, outcome_text, read_sessions
from firmware_host.runner import (
    App,
    build_app,
    close_open_session,
    hold_state_dir,
)
from firmware_host.sim_process import SimProcess
from firmware_host.stop_signals import StopSignals, stop_signals
from profiles.shipped import builtin_text, dated_from
from safety.board_kind import BoardKind

log = logging.getLogger(__name__)

PROFILE_ID: Final = "rls-810-standard"
TIME_SCALE: Final = 60.0
POLL_S: Final = 0.25
MAX_WALL_S: Final = 300.0  # a demo that runs longer than this is broken: stop it
RUNNING_STATES: Final = frozenset({"treating", "paused"})
INTERRUPTED: Final = "interrupted"


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


def main(args: argparse.Namespace) -> int:
    console = Console()
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.WARNING, format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )  # fmt: skip
    with stop_signals() as signals, tempfile.TemporaryDirectory(prefix="nirpad-demo-") as tmp:
        state_dir = Path(tmp)
        ended = _run(console, state_dir, signals)
        recorded = _print_record(console, state_dir)
    console.print("Demo finished; the simulated board is stopped and nothing is left running.")
    if ended == INTERRUPTED:
        return 130
    return 0 if recorded == "completed" else 1


def _run(console: Console, state_dir: Path, signals: StopSignals) -> str:
    with contextlib.ExitStack() as stack:
        lock = hold_state_dir(stack, state_dir)  # a temporary directory, locked all the same
        console.print(f"Starting the simulated board (time runs {TIME_SCALE:g}x faster)…")
        rail_file = state_dir / "sim-rail"
        sim = SimProcess(["--rail-file", str(rail_file), "--time-scale", f"{TIME_SCALE:g}"])
        stack.callback(sim.close)
        app = build_app(
            stack, state_dir=state_dir, port_url=sim.start(), rail_pin=None,
            rail_file=rail_file, site_config=None, board=BoardKind.simulated(TIME_SCALE),
            lock=lock,
        )  # fmt: skip
        console.print(install_builtin(state_dir))
        stop = signals.stop
        signals.attach(app.loop)
        console.print(f"Controller: {app.controller.boot()}")
        ui = _Ui(console, app, stop)
        ui.thread.start()
        try:
            app.loop.run(stop=stop)
        finally:
            stop.set()
            ui.thread.join()
            close_open_session(app.controller)
        if ui.error:
            raise DemoError(ui.error)
        return ui.final_state if ui.finished else INTERRUPTED


def install_builtin(state_dir: Path) -> str:
    """Install ``profiles/builtin/rls-810-standard.toml`` as the prescription, dated from
    today so the demo runs on any date (the shipped file expires like any other)."""
    from firmware_host.profile_commands import utc_today, validate_and_install

    name = f"{PROFILE_ID}.toml"
    data = dated_from(builtin_text(PROFILE_ID), utc_today()).encode()
    outcome = validate_and_install(state_dir, data, name, None, session_state=lambda: None)
    if not outcome.ok:
        reasons = "; ".join(outcome.problems) or outcome.message
        raise DemoError(f"the built-in profile was refused: {reasons}")
    return f"Installed the built-in prescription {PROFILE_ID}, dated from today for the demo."


class _Ui:
    """The UI thread: presses start through the loop, then shows progress until the end."""

    def __init__(self, console: Console, app: App, stop: threading.Event) -> None:
        self.console = console
        self.app = app
        self.stop = stop
        self.error: str | None = None
        self.final_state = "unknown"
        self.finished = False  # the session ended by itself (not Ctrl-C)
        self.thread = threading.Thread(target=self._main, name="nirpad-demo-ui", daemon=True)

    def _on_loop(self, fn: Any) -> Any:
        return self.app.loop.call_soon_threadsafe(fn).result(timeout=5.0)

    def _main(self) -> None:
        try:
            reply = self._on_loop(lambda: self.app.controller.command("start"))
            if not reply.ok:
                raise DemoError(f"start was refused: {reply.message}")
            self.console.print("Pressed start.")
            self._show_progress()
        except Exception as exc:  # shown by main; the loop must stop either way
            self.error = str(exc) or type(exc).__name__
        finally:
            self.stop.set()
            self.app.loop.request_stop()

    def _show_progress(self) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"))
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task("treating", total=1.0, info="")
            deadline_s = time.monotonic() + MAX_WALL_S
            while not self.stop.wait(POLL_S):
                status = self._on_loop(self.app.controller.status)
                self.final_state = str(status.get("state"))
                progress.update(task, **_progress_fields(status))
                if self.final_state not in RUNNING_STATES:
                    self.finished = True
                    return
                if time.monotonic() > deadline_s:
                    raise DemoError(f"the session did not end within {MAX_WALL_S:g} s")


def _progress_fields(status: dict[str, Any]) -> dict[str, Any]:
    delivered = float(status.get("fluence_j_cm2") or 0.0)
    planned = float(status.get("planned_fluence_j_cm2") or 0.0) or 1.0
    minutes, seconds = divmod(round(float(status.get("remaining_s") or 0.0)), 60)
    info = (
        f"{minutes:2d}:{seconds:02d} left  "  # to the nearest second, as nirpad status
        f"{delivered:5.1f}/{planned:.1f} J/cm²  "
        f"skin {_temp(status.get('skin_temp_c'))}  board {_temp(status.get('board_temp_c'))}"
    )
    return {
        "completed": min(delivered / planned, 1.0),
        "description": status["state"],
        "info": info,
    }


def _temp(value: object) -> str:
    return f"{value:.1f} °C" if isinstance(value, int | float) else "-"


DOSE_NOTE: Final = (
    "The ledger counts dose as an upper bound (the calibration's uncertainty, and the "
    "light until the off command lands), so 'delivered' may read a little above "
    f"'planned'. At the demo's {TIME_SCALE:g}x time each 20 ms step is "
    f"{0.020 * TIME_SCALE:g} s of light, so that margin is {TIME_SCALE:g} times what it "
    "is on a real pad."
)


def _print_record(console: Console, state_dir: Path) -> str | None:
    """Print the newest session from the ledger; return its outcome."""
    sessions = read_sessions(state_dir)
    if not sessions:
        console.print("The ledger has no session.")
        return None
    record = sessions[-1]
    seconds = duration_s(record)
    console.print("The ledger's record of the session:")
    for label, value in (
        ("profile", f"{record.profile_id} (sha256 {record.profile_sha256[:12]}…)"),
        ("started", record.started_at.astimezone().isoformat(timespec="seconds")),
        ("duration", "-" if seconds is None else f"{seconds:.0f} s of wall time"),
        ("delivered", f"{record.delivered_fluence_total_j_cm2:.2f} J/cm²"),
        ("planned", f"{record.planned_fluence_total_j_cm2:.2f} J/cm²"),
        ("outcome", outcome_text(record)),
    ):
        console.print(f"  {label:<10} {value}")
    console.print(DOSE_NOTE)
    return None if record.outcome is None else str(record.outcome)
