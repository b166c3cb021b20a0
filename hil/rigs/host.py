"""The whole controller stack in one process, on one virtual clock, with power cuts.

Owns: ``Stack``, which builds what ``nirpad run`` builds (``firmware_host.assembly``:
safety core, controller, event loop; a mock-pin rail) over the in-process ``SimBoard``
and a ``VirtualClock``, and the "process" life of the host around it: boot, run, and
``power_cut``, which drops the host like a SIGKILL or a pulled plug while the board
keeps running (its lease, not the host, turns the light off), then ``restart`` on the
same state directory and ledger. Its site configuration trusts the rigs' clinic, which
signs what ``install`` installs (``hil.rigs.clinic``).
Also owns ``StackClock``, the three clocks of a run: the host's monotonic clock (the
virtual clock), the *truth* time (monotonic plus the idle time skipped without
simulating it) and the wall clock (truth plus a settable, only-decreasing offset, so a
wall clock that jumps back can be modelled).

Does not own any safety decision (``safety``), the session logic (``firmware_host``),
the board (``hil.sim``) or the judging of a run (``hil.suite.invariants``). The HIL suite's
``hil.rigs.harness`` is the fixture-style rig for scenarios; this one is for the stateful
property test and the soak (tests/reliability, ``python -m hil.tools.soak``).

Every input goes in through the same door as in the product: buttons through the
board's switch, commands through ``Controller.command`` (what the control socket
calls), installs through ``firmware_host.profile_commands.validate_and_install`` (what
``nirpad profile install`` and the socket call), then ``reload_prescription``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

from firmware_host.assembly import assemble_stack
from firmware_host.controller import CommandReply, Controller
from firmware_host.machine import State
from firmware_host.profile_commands import InstallOutcome, validate_and_install
from hil.rigs.clinic import sign, trust_rig_clinic
from hil.rigs.clock import VirtualClock
from hil.rigs.ledger_storage import LedgerStorage
from hil.sim.board import RAIL_HOLD_S
from hil.sim.inprocess import RailWire, SimPort, make_sim
from safety.board_kind import BoardKind
from safety.core import SafetyCore
from safety.rail import PowerRail, make_rail

__all__ = ["WALL_START", "Host", "Stack", "StackClock", "builtin_profile", "profile_toml"]

log = logging.getLogger(__name__)

WALL_START: Final = dt.datetime(2026, 11, 10, 19, 0, tzinfo=dt.UTC)
DOWN_STEP_S: Final = 0.02
"""While the host is down, the board is stepped in telemetry periods so a watcher sees it."""

TickWatcher = Callable[["Stack"], None]


def builtin_profile(profile_id: str) -> bytes:
    """The bytes of a built-in profile (profiles/builtin/<id>.toml)."""
    return (resources.files("profiles") / "builtin" / f"{profile_id}.toml").read_bytes()


def profile_toml(
    *,
    profile_id: str = "stack-test",
    irradiance_mw_cm2: tuple[float, ...] = (40.0,),
    duration_min: int = 2,
    ramp_s: float = 10.0,
    sessions_per_week: int = 3,
    min_interval_h: float = 20.0,
    pulsed: tuple[float, float] | None = None,
    expires: str = "2028-01-01",
    extra: str = "",
) -> bytes:
    """A prescription as a caregiver's TOML file; channel i is 810 nm, then 850 nm."""
    lines = [
        "schema_version = 1",
        f'id = "{profile_id}"',
        'name = "generated for a reliability run"',
        'prescriber = "Dr Stack"',
        "issued = 2026-01-01",
        f"expires = {expires}",
        f"duration_min = {duration_min}",
        f"ramp_s = {ramp_s!r}",
        f"sessions_per_week = {sessions_per_week}",
        f"min_interval_h = {min_interval_h!r}",
        "course_weeks = 4",
        extra,
    ]
    for wavelength_nm, irradiance in zip((810, 850), irradiance_mw_cm2, strict=False):
        lines += ["[[channels]]", f"wavelength_nm = {wavelength_nm}"]
        lines += [f"irradiance_mw_cm2 = {irradiance!r}"]
    if pulsed is None:
        lines += ["[mode]", 'kind = "cw"']
    else:
        lines += ["[mode]", 'kind = "pulsed"', f"pulse_hz = {pulsed[0]!r}"]
        lines += [f"duty_pct = {pulsed[1]!r}"]
    return ("\n".join(lines) + "\n").encode()


class StackClock:
    """Monotonic (virtual), truth (monotonic + skipped idle time) and wall time."""

    def __init__(self, clock: VirtualClock, wall_start: dt.datetime = WALL_START) -> None:
        self.mono = clock
        self._mono_start_s = clock()
        self._wall_start = wall_start
        self.skipped_s = 0.0
        self.wall_offset_s = 0.0

    def truth_s(self) -> float:
        """Seconds of real time since the start of the run (never jumps back)."""
        return self.mono() - self._mono_start_s + self.skipped_s

    def wall(self) -> dt.datetime:
        """The host's wall clock (UTC); what the ledger and the schedule read."""
        return self._wall_start + dt.timedelta(seconds=self.truth_s() + self.wall_offset_s)

    def skip(self, seconds: float) -> None:
        """Real time passes that is not simulated (an idle pad overnight)."""
        if seconds < 0:
            raise ValueError("time does not run backwards; use jump_wall")
        self.skipped_s += seconds

    def jump_wall(self, seconds: float) -> None:
        """The wall clock alone jumps (a Pi without RTC, a bad NTP answer)."""
        self.wall_offset_s += seconds


class Host:
    """One life of the host process: its rail and port, and the stack assembled on them."""

    def __init__(self, stack: Stack) -> None:
        self.wire = RailWire(stack.board, stack.clock.mono)  # unplugged when this host dies
        self.rail: PowerRail = make_rail(None, None)
        self.wire.connect(self.rail)
        self.port = SimPort(stack.board, stack.clock.mono)
        # pyserial's open() flushes the input (tcflush): frames the board sent while no
        # host was listening are not read as current telemetry by the new host. With the
        # cable out there is nothing to flush; the core's handshake reports the cable.
        with contextlib.suppress(OSError):
            self.port.reset_input_buffer()
        self.ledger_storage = LedgerStorage()  # what this process's ledger connections are
        try:
            self.parts = assemble_stack(
                state_dir=stack.state_dir, board=BoardKind.simulated(stack.board.time_scale),
                rail=self.rail, transport=self.port, site_config=stack.site_config,
                clock=stack.clock.mono, wall_clock=stack.clock.wall,
                uptime_clock=stack.clock.truth_s,
                ledger_connection=self.ledger_storage.connection,
            )  # fmt: skip
        except BaseException:
            self.rail.close()
            raise
        self.core: SafetyCore = self.parts.core
        self.controller: Controller = self.parts.controller
        self.loop = self.parts.loop
        self.loop.on_tick_hook = lambda: stack.on_tick()

    def shutdown(self) -> None:
        """A clean exit: the loop's and the core's own closing (outputs off, ledger closed)."""
        try:
            self.parts.close()
        finally:
            self.rail.close()

    def abandon(self) -> None:
        """SIGKILL: none of our code runs again. The kernel closes the descriptors.

        The rail wires to the board are cut first, so closing the GPIO devices (which a
        dead process would not do, but the kernel releases) does not reach the board:
        the board keeps its enable level and its last lease, and the heartbeats stop,
        so the HAT's hold circuit drops the rail ``RAIL_HOLD_S`` after the last one.
        The ledger's SQLite connections are closed without any further write
        (``LedgerStorage.drop_connections``); a transaction is never open between steps.
        """
        self.wire.unplug()
        self.ledger_storage.drop_connections()
        self.port.close()
        self.loop.close()
        self.rail.close()


class Stack:
    """The in-process nirpad: build, drive, cut the power, restart, close."""

    def __init__(
        self,
        state_dir: Path,
        *,
        seed: int = 0,
        ambient_c: float = 22.0,
        wall_start: dt.datetime = WALL_START,
    ) -> None:
        self.state_dir = state_dir
        self.site_config = trust_rig_clinic(state_dir)
        mono, self.board, first_port = make_sim(
            seed=seed, ambient_c=ambient_c, rail_hold_s=RAIL_HOLD_S
        )
        first_port.close()  # each host life opens its own port, as a process opens the tty
        self.clock = StackClock(mono, wall_start)
        self.tick_watchers: list[TickWatcher] = []
        self.host: Host | None = None
        self.power_cuts = 0
        self.start_host()

    # -- the host's life ------------------------------------------------------------

    def start_host(self) -> State:
        """Start the host (a new process on the same state directory) and boot it."""
        if self.host is not None:
            raise RuntimeError("the host is already running")
        self.host = Host(self)
        return self.host.controller.boot()

    def power_cut(self, down_s: float = 0.0) -> None:
        """The host dies now; the board runs on alone for ``down_s`` seconds."""
        host = self._running()
        self.host = None
        host.abandon()
        self.power_cuts += 1
        self.advance_board(down_s)

    def restart(self, down_s: float = 0.0) -> State:
        """``power_cut(down_s)``, then a new host on the same ledger."""
        self.power_cut(down_s)
        return self.start_host()

    def close(self) -> None:
        """A clean shutdown (outputs off, ledger closed). Idempotent."""
        host, self.host = self.host, None
        if host is not None:
            host.shutdown()

    # -- time --------------------------------------------------------------------

    def run(self, duration_s: float) -> None:
        """Run the host's loop for ``duration_s`` of virtual time (or only the board)."""
        if self.host is None:
            self.advance_board(duration_s)
        else:
            self.host.loop.run_for(duration_s)

    def advance_board(self, duration_s: float) -> None:
        """Only the board runs (the host is down), watched every telemetry period."""
        end_s = self.clock.mono() + max(0.0, duration_s)
        while self.clock.mono() < end_s:
            self.clock.mono.advance_to(min(end_s, self.clock.mono() + DOWN_STEP_S))
            self.board.advance_to(self.clock.mono())
            self.on_tick()

    def skip_idle(self, seconds: float) -> None:
        """Hours or days pass while the pad sits idle (not simulated, see StackClock)."""
        self.clock.skip(seconds)

    def jump_wall(self, seconds: float) -> None:
        self.clock.jump_wall(seconds)

    def on_tick(self) -> None:
        for watcher in self.tick_watchers:
            watcher(self)

    # -- the patient and the caregiver ---------------------------------------------

    def press(self, kind: str) -> None:
        """A short (0.3 s) or long (2.5 s) press on the pad's button."""
        self.board.press(kind)

    def command(self, name: str, args: dict[str, Any] | None = None) -> CommandReply:
        """A control-socket command (start, pause, resume, stop, ack, press_short…)."""
        return self._running().controller.command(name, args)

    def install(self, data: bytes, name: str = "prescription.toml") -> InstallOutcome:
        """``nirpad profile install`` through the running controller, then a reload. The
        rigs' clinic signs ``data`` first (what it cannot sign goes in as it is)."""
        host = self._running()
        outcome = validate_and_install(
            self.state_dir, sign(data), name, self.site_config,
            session_state=lambda: str(host.controller.state), wall_clock=self.clock.wall,
        )  # fmt: skip
        if outcome.ok:
            host.controller.command("reload_prescription")
        return outcome

    def inject(self, kind: str, **params: object) -> None:
        self.board.inject(kind, **params)

    def clear_injections(self) -> None:
        self.board.clear_injections()

    def set_contact(self, contact: bool) -> None:
        self.board.set_contact(contact)

    def set_ambient(self, ambient_c: float) -> None:
        self.board.set_ambient(ambient_c)

    # -- looking -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.host is not None

    @property
    def controller(self) -> Controller:
        return self._running().controller

    @property
    def core(self) -> SafetyCore:
        return self._running().core

    @property
    def state(self) -> State | None:
        return None if self.host is None else self.host.controller.state

    def status(self) -> dict[str, Any]:
        return self._running().controller.status()

    def _running(self) -> Host:
        if self.host is None:
            raise RuntimeError("the host is down (power cut); call start_host()")
        return self.host
