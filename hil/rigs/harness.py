"""The in-process rig: the whole nirpad stack around one simulated board, on one clock.

Owns: ``InProcessRig``, the one in-process rig of the HIL suite, the reliability tests,
the soak and the bench. It runs what ``nirpad run`` runs (``firmware_host.assembly``: the
real ``SafetyCore``, ``Controller`` and ``EventLoop``) over the in-process ``SimBoard``
on one ``VirtualClock``, with a settable wall clock (``hil.rigs.clock``) so that a
course of weeks or a clock jump costs nothing. The host has lives (``hil.rigs.host``):
a power cut drops it like a SIGKILL or a pulled plug while the board runs on, and a
restart starts the next on the same state directory and ledger. Its prescriptions are
signed by the rigs' clinic and checked with the trust store the site configuration
gives (``hil.rigs.clinic``); its ledger's storage can fill up or die with the host
(``hil.rigs.ledger_storage``). The simulator's truth (``truth()``) and its JSON-style
events with their ``"t"`` are read directly.

Also owns the helpers every scenario uses to judge what happened on the simulator's own
clock: ``first_off_after`` (when the board's outputs went dark after a time stamp) and
``outputs_on_at``. Does not own any safety decision, the judging of a run
(``hil.suite.invariants``), the simulator's vocabulary (docs/hil.md), the processes
(``hil.rigs.process_rig``), the suite's targets (``hil.rigs.targets``) or the lock of a
real board (``hil.rigs.locking``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from firmware_host.controller import CommandReply, Controller
from firmware_host.loop import EventLoop
from firmware_host.machine import State
from firmware_host.profile_commands import InstallOutcome, validate_and_install
from hil.rigs.clinic import sign, trust_rig_clinic
from hil.rigs.clock import WALL_START, SettableWallClock
from hil.rigs.host import Host, HostSetup
from hil.rigs.ledger_storage import LedgerStorage
from hil.sim.board import RAIL_HOLD_S, SimBoard
from hil.sim.inprocess import SimPort, make_sim
from profiles.shipped import BUILTIN_IDS, builtin_text
from safety.core import SafetyCore
from safety.core_connect import PortLike
from safety.ledger import FaultRecord, Ledger, SessionRecord
from safety.rail import PowerRail

if TYPE_CHECKING:
    from hil.tools.trace import TraceWriter

__all__ = [
    "BUILTIN_PROFILES",
    "DOSE_TOLERANCE",
    "WALL_START",
    "InProcessRig",
    "TickWatcher",
    "assert_dark_after_close",
    "assert_dose_within_plan",
    "builtin_profile_bytes",
    "first_off_after",
    "outputs_on_at",
]

DOSE_TOLERANCE: Final = 0.005
"""Dose accuracy the suite holds the stack to: within 0.5 % (docs/performance.md)."""
BUILTIN_PROFILES: Final = BUILTIN_IDS
DOWN_STEP_S: Final = 0.02
"""While only the board runs, it is stepped in telemetry periods for the tick watchers."""
Event = dict[str, Any]
TickWatcher = Callable[["InProcessRig"], None]


def _install(
    state_dir: Path, data: bytes, site_config: Path, wall: Callable[[], dt.datetime]
) -> None:
    """Install ``data``, signed by the rigs' clinic, as the caregiver's CLI does
    (validated against the site configuration, written, recorded)."""
    outcome = validate_and_install(
        state_dir, sign(data), "prescription.toml", site_config, session_state=lambda: None,
        wall_clock=wall,
    )  # fmt: skip
    if not outcome.ok:
        raise ValueError(f"the rig's prescription was refused: {outcome.message}")


def builtin_profile_bytes(profile_id: str) -> bytes:
    """The TOML of a built-in profile as shipped, as a caregiver would install it (the
    rig's wall clock starts at ``WALL_START``, inside its dates)."""
    return builtin_text(profile_id).encode()


def first_off_after(events: Iterable[Event], t_s: float) -> float | None:
    """The simulator time of the first ``output`` event with ``on=False`` at or after
    ``t_s``, or None if the outputs did not go off."""
    for event in events:
        if event.get("event") == "output" and not event.get("on") and float(event["t"]) >= t_s:
            return float(event["t"])
    return None


def outputs_on_at(events: Iterable[Event], t_s: float) -> bool:
    """Whether the board's outputs were on at simulator time ``t_s`` (from its events)."""
    on = False
    for event in events:
        if event.get("event") != "output" or float(event["t"]) > t_s:
            continue
        on = bool(event.get("on"))
    return on


class InProcessRig:
    """The real controller stack over the in-process simulator on one virtual clock.

    Build it with ``InProcessRig.build`` and always ``close`` it (the fixtures do). The
    host process has lives on one board, state directory and ledger: ``power_cut`` ends
    one as SIGKILL or a pulled plug does (the board runs on alone: its lease, not the
    host, turns the light off), ``start_host`` starts the next, ``restart`` does both and
    boots. ``events`` keeps every simulator event seen so far, with its ``"t"``;
    ``tick_watchers`` are called every tick of the loop and, while only the board runs,
    every telemetry period. Every input goes in through the product's door: buttons
    through the board's switch, commands through ``Controller.command`` (what the control
    socket calls), installs through ``validate_and_install`` (what ``nirpad profile
    install`` calls), then ``reload_prescription``.
    """

    def __init__(self, setup: HostSetup, board: SimBoard, wall: SettableWallClock) -> None:
        self.setup = setup
        self.clock = setup.clock
        self.board = board
        self.wall = wall
        self.state_dir = setup.state_dir
        self.events: list[Event] = []
        self.tick_watchers: list[TickWatcher] = []
        self.host: Host | None = None
        self.power_cuts = 0
        self.last_reload: CommandReply | None = None
        """The controller's reply to the ``reload_prescription`` after the last accepted
        ``install`` (its ``data["problem"]`` is None when the controller took it)."""
        self._on_close: list[Callable[[], None]] = []

    # -- building --------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        state_dir: Path,
        *,
        profile_id: str | None = "rls-810-standard",
        profile_bytes: bytes | None = None,
        seed: int = 0,
        time_scale: float = 1.0,
        ambient_c: float = 22.0,
        wall_start: dt.datetime = WALL_START,
        board_options: Mapping[str, Any] | None = None,
        wrap_port: Callable[[SimPort], PortLike] | None = None,
    ) -> InProcessRig:
        """Install the profile (if any), then start the first host (not booted: ``boot``).

        The state directory's site configuration trusts the rigs' clinic
        (``hil.rigs.clinic``), which signs the profile. ``board_options`` go to the
        simulated board (``hil.sim.inprocess.make_sim``); ``wrap_port`` puts a transport
        of the caller's between every host's core and its port onto the board."""
        if profile_bytes is None and profile_id is not None:
            profile_bytes = builtin_profile_bytes(profile_id)
        options = {"ambient_c": ambient_c, "rail_hold_s": RAIL_HOLD_S, **(board_options or {})}
        clock, board, first_port = make_sim(seed=seed, time_scale=time_scale, **options)
        first_port.close()  # each host life opens its own port, as a process opens the tty
        wall = SettableWallClock(clock, wall_start)
        site_config = trust_rig_clinic(state_dir)
        if profile_bytes is not None:  # as a caregiver would: validated and recorded
            _install(state_dir, profile_bytes, site_config, wall)
        setup = HostSetup(state_dir, site_config, clock, wall, wall.uptime_s, wrap_port)
        rig = cls(setup, board, wall)
        rig.start_host()
        return rig

    # -- the host's life -------------------------------------------------------------

    def start_host(self) -> None:
        """Start the host (a new process on the same state directory), not booted yet."""
        if self.host is not None:
            raise RuntimeError("the host is already running")
        self.host = Host(self.setup, self.board, self.on_tick)

    def boot(self, expect: State | None = State.READY) -> State:
        """Boot the running host and let it settle for 0.2 s; check it reached ``expect``."""
        self.controller.boot()
        self.run(0.2)
        if expect is not None:
            assert self.controller.state is expect, self.status()
        return self.controller.state

    def power_cut(self, down_s: float = 0.0) -> None:
        """The host dies now (``Host.abandon``); the board runs on alone for ``down_s``."""
        host = self.running_host()
        self.host = None
        host.abandon()
        self.power_cuts += 1
        self.advance_board(down_s)

    def restart(self, down_s: float = 0.0) -> State:
        """``power_cut(down_s)``, then a new host on the same ledger, booted."""
        self.power_cut(down_s)
        self.start_host()
        return self.controller.boot()

    def close(self) -> None:
        """A clean shutdown of the running host (loop closed, outputs off, core closed,
        rail released), then what ``trace_to`` opened. Idempotent, never raises on a
        second call; a host started afterwards is closed by the next call."""
        host, self.host = self.host, None
        try:
            if host is not None:
                host.shutdown()
        finally:
            self.collect()
            callbacks, self._on_close = self._on_close, []
            for callback in callbacks:
                callback()

    def trace_to(self, path: Path, every_s: float = 1.0) -> TraceWriter:
        """Write a CSV trace of this rig (``hil.tools.trace`` format) to ``path`` while it
        runs (while a host runs), until ``close``; returns the writer (its ``rows``)."""
        from hil.tools.trace import StackTracer, TraceWriter

        writer = TraceWriter(path)
        tracer = StackTracer(_TraceView(self), writer, every_s=every_s)

        def watch(rig: InProcessRig) -> None:
            if rig.running:
                tracer()

        def stop() -> None:
            self.tick_watchers.remove(watch)
            writer.close()

        self.tick_watchers.append(watch)
        self._on_close.append(stop)
        return writer

    # -- time ------------------------------------------------------------------------

    def run(self, duration_s: float) -> None:
        """Run the host's loop for ``duration_s`` of virtual time (only the board while
        the host is down)."""
        if self.host is None:
            self.advance_board(duration_s)
            return
        self.host.stack.loop.run_for(duration_s)
        self.collect()

    def advance_board(self, duration_s: float) -> None:
        """Let only the board's time pass (the host is dead, down or hung): with tick
        watchers in telemetry periods, so that they see it; else at once."""
        end_s = self.clock() + max(0.0, duration_s)
        step_s = DOWN_STEP_S if self.tick_watchers else max(0.0, duration_s)
        while self.clock() < end_s:
            self.clock.advance_to(min(end_s, self.clock() + step_s))
            self.board.advance_to(self.clock())
            self.on_tick()
        self.collect()

    def run_until(self, done: Callable[[], bool], limit_s: float, step_s: float = 0.1) -> float:
        """Run in steps until ``done()``; returns the virtual seconds used; fails at limit."""
        start_s = self.clock()
        while not done():
            if self.clock() - start_s > limit_s:
                raise AssertionError(f"not done within {limit_s} s: {self.status()}")
            self.run(step_s)
        return self.clock() - start_s

    def skip_idle(self, seconds: float) -> None:
        """Hours or days pass while the pad sits idle (not simulated: ``SettableWallClock``)."""
        self.wall.idle(dt.timedelta(seconds=seconds))

    def jump_wall(self, seconds: float) -> None:
        """The wall clock alone jumps (a Pi without an RTC, a bad NTP answer)."""
        self.wall.skip(dt.timedelta(seconds=seconds))

    def on_tick(self) -> None:
        for watcher in self.tick_watchers:
            watcher(self)

    # -- the patient, the caregiver and the board ------------------------------------

    def press(self, kind: str) -> None:
        """A short (0.3 s) or long (2.5 s) press on the pad's button."""
        self.board.press(kind)

    def command(self, name: str, args: dict[str, Any] | None = None) -> CommandReply:
        """A control-socket command (start, pause, resume, stop, ack, press_short…)."""
        return self.controller.command(name, args)

    def start(self) -> None:
        reply = self.command("start")
        assert reply.ok, reply.message
        self.run_until(lambda: bool(self.board.state()["outputs_on"]), 2.0, 0.02)

    def install(self, data: bytes, name: str = "prescription.toml") -> InstallOutcome:
        """``nirpad profile install`` through the running controller, then a reload. The
        rigs' clinic signs ``data`` first (what it cannot sign goes in as it is)."""
        controller = self.controller
        outcome = validate_and_install(
            self.state_dir, sign(data), name, self.setup.site_config,
            session_state=lambda: str(controller.state), wall_clock=self.wall,
        )  # fmt: skip
        if outcome.ok:
            self.last_reload = controller.command("reload_prescription")
        return outcome

    def inject(self, kind: str, **params: object) -> float:
        """Inject a simulator fault now; returns its simulator time stamp."""
        self.board.inject(kind, **params)
        self.collect()
        return next(
            float(e["t"])
            for e in reversed(self.events)
            if e.get("event") in ("injected", "reset") and e.get("fault", kind) == kind
        )

    def clear_injections(self) -> None:
        self.board.clear_injections()

    def set_contact(self, contact: bool) -> None:
        self.board.set_contact(contact)

    def set_ambient(self, ambient_c: float) -> None:
        self.board.set_ambient(ambient_c)

    def collect(self) -> list[Event]:
        """Take the board's new events into ``events``; returns them."""
        new = self.board.pop_events()
        self.events.extend(new)
        return new

    def events_after(self, seen: int) -> list[Event]:
        """The events after the first ``seen`` (collected now): for a reader of its own,
        as the rig stays the only reader of the board's events."""
        self.collect()
        return self.events[seen:]

    # -- looking -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.host is not None

    def running_host(self) -> Host:
        if self.host is None:
            raise RuntimeError("the host is down (power cut); call start_host()")
        return self.host

    @property
    def core(self) -> SafetyCore:
        return self.running_host().stack.core

    @property
    def controller(self) -> Controller:
        return self.running_host().stack.controller

    @property
    def loop(self) -> EventLoop:
        return self.running_host().stack.loop

    @property
    def rail(self) -> PowerRail:
        return self.running_host().rail

    @property
    def ledger_storage(self) -> LedgerStorage:
        """The storage under the running host's ledger (fill it up with ``full``)."""
        return self.running_host().ledger_storage

    @property
    def state(self) -> State | None:
        """The controller's state, or None while the host is down."""
        return None if self.host is None else self.host.stack.controller.state

    def in_state(self, state: State) -> bool:
        """Whether the controller is in ``state`` now (a call, so type checkers do not
        narrow ``rig.state`` across the runs that change it)."""
        return self.state is state

    def status(self) -> dict[str, Any]:
        return self.controller.status()

    def truth(self) -> Mapping[str, Any]:
        return self.board.state()

    def outputs_on(self) -> bool:
        return bool(self.board.state()["outputs_on"])

    def true_fluence_total_j_cm2(self) -> float:
        """The board's delivered fluence (its physical truth, with its unit error)."""
        truth: list[float] = self.board.state()["delivered_fluence_j_cm2"]  # type: ignore[assignment]
        return float(sum(truth))

    def true_fluence_calibrated_j_cm2(self) -> float:
        """The truth divided by the board's unit-to-unit optical error, which the host
        cannot know: what the host's dose integrator should match."""
        truth: list[float] = self.board.state()["delivered_fluence_j_cm2"]  # type: ignore[assignment]
        factors = self.board.optics.unit_factor
        return float(sum(f / k for f, k in zip(truth, factors, strict=True)))

    def unit_factor_max(self) -> float:
        return float(max(self.board.optics.unit_factor))

    def off_after(self, t_s: float) -> float | None:
        return first_off_after(self.events, t_s)

    def sessions(self) -> list[SessionRecord]:
        with Ledger.open(self.state_dir, self.wall) as ledger:
            return ledger.sessions()

    def faults(self) -> list[FaultRecord]:
        with Ledger.open(self.state_dir, self.wall) as ledger:
            return ledger.faults()

    def last_session(self) -> SessionRecord:
        sessions = self.sessions()
        assert sessions, "no session in the ledger"
        return sessions[0]


class _TraceView:
    """What ``hil.tools.trace.StackTracer`` reads, over a rig that stays the only reader of the
    board's events: ``pop_events`` hands over the rig's collected events once each."""

    def __init__(self, rig: InProcessRig) -> None:
        self.rig = rig
        self.clock = rig.clock
        self.board = self
        self._seen = 0

    @property
    def controller(self) -> Controller:
        return self.rig.controller

    def pop_events(self) -> list[Event]:
        new = self.rig.events_after(self._seen)
        self._seen += len(new)
        return new

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rig.board, name)


def assert_dark_after_close(closed: InProcessRig) -> None:
    """The last thing the board saw must leave it dark: outputs off, no lease running."""
    closed.advance_board(0.6)  # longer than any lease: nothing may keep it on
    truth = closed.truth()
    assert not truth["outputs_on"], f"the board is still emitting after the test: {truth}"
    assert truth["lease_remaining_ms"] == 0


def assert_dose_within_plan(
    rig: InProcessRig, planned_j_cm2: float, rel_tol: float = DOSE_TOLERANCE
) -> None:
    """Delivered ≤ planned: the host's figure, the ledger's and the board's truth.

    The truth is compared after dividing by the board's unit-to-unit optical error,
    which the host cannot know (it trusts the factory calibration)."""
    ceiling = planned_j_cm2 * (1.0 + rel_tol)
    assert rig.status()["fluence_j_cm2"] <= ceiling
    assert rig.true_fluence_calibrated_j_cm2() <= ceiling, rig.truth()
    for record in rig.sessions():
        assert record.delivered_fluence_total_j_cm2 <= ceiling
