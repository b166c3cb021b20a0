"""The HIL harness: the whole nirpad stack around one board, in-process or as processes.

Owns: building and always tearing down the two kinds of rig the HIL suite uses.

* ``InProcessRig``: the stack ``nirpad run`` runs (``firmware_host.assembly``: the real
  ``SafetyCore``, ``Controller`` and ``EventLoop``) over the in-process ``SimBoard`` on one
  ``VirtualClock``, with a settable wall clock (``SettableWallClock``) so that a course
  of weeks or a clock jump costs nothing. Its prescriptions are signed by the rigs'
  clinic and checked with the trust store the site configuration gives
  (``hil.rigs.clinic``); its ledger's storage can fill up or die with the host
  (``hil.rigs.ledger_storage``). The simulator's truth (``state()``) and its JSON-style events
  with their ``"t"`` are read directly.
* ``hil.rigs.process_rig.ProcessRig``: ``python -m hil.sim`` on a pty and ``nirpad run
  --port`` as two real processes (the scenarios about real time).

Also owns the helpers every scenario uses to judge what happened on the simulator's own
clock: ``first_off_after`` (when the board's outputs went dark after a time stamp) and
``SimEvents`` (the events collected so far). Does not own any safety decision, the
simulator's vocabulary (docs/hil.md) or the lock of a real board (``hil.rigs.locking``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from firmware_host.assembly import AssembledStack, assemble_stack
from firmware_host.controller import Controller
from firmware_host.loop import EventLoop
from firmware_host.machine import State
from hil.rigs.clinic import sign, trust_rig_clinic
from hil.rigs.clock import VirtualClock
from hil.rigs.ledger_storage import LedgerStorage
from hil.sim.board import RAIL_HOLD_S, SimBoard
from hil.sim.inprocess import RailWire, SimPort, make_sim
from safety.board_kind import BoardKind
from safety.core import SafetyCore
from safety.ledger import FaultRecord, Ledger, SessionRecord
from safety.rail import PowerRail, make_rail

__all__ = [
    "ALLOW_EMISSION_ENV",
    "BUILTIN_PROFILES",
    "DOSE_TOLERANCE",
    "EMITS",
    "SIM_ONLY",
    "WALL_START",
    "InProcessRig",
    "SettableWallClock",
    "assert_dark_after_close",
    "assert_dose_within_plan",
    "builtin_profile_bytes",
    "emission_allowed",
    "first_off_after",
    "outputs_on_at",
    "skip_reason",
]

WALL_START: Final = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)
"""The wall clock of every in-process rig at its start: a Tuesday evening, in the
built-in profiles' 18:00–23:00 window, inside their validity."""
DOSE_TOLERANCE: Final = 0.005
"""Dose accuracy the suite holds the stack to: within 0.5 % (docs/performance.md)."""
BUILTIN_PROFILES: Final = ("rls-810-standard", "rls-850-standard", "rls-dual")
Event = dict[str, Any]


# -- targets: the simulator, or a real board only when asked ------------------------------

ALLOW_EMISSION_ENV: Final = "NIRPAD_ALLOW_EMISSION"
EMITS: Final = "emits"
"""Marker of tests that turn light on: on a real board they need NIRPAD_ALLOW_EMISSION=1."""
SIM_ONLY: Final = "sim_only"
"""Marker of tests that need the simulator (fault injection, its physical truth)."""


def emission_allowed() -> bool:
    return os.environ.get(ALLOW_EMISSION_ENV) == "1"


def skip_reason(board_url: str | None, markers: set[str], allow_emission: bool) -> str | None:
    """Why a HIL test must not run against this target, or None if it may."""
    if board_url is None:
        return None
    if SIM_ONLY in markers:
        return (
            f"needs the simulator's fault injection or physical truth; {board_url} is a "
            "real board (run without --board-url to use the simulator)"
        )
    if EMITS in markers and not allow_emission:
        return (
            f"would turn on the LEDs of the real board at {board_url}; set "
            f"{ALLOW_EMISSION_ENV}=1 to allow emission (and put the pad where that is safe)"
        )
    return None


def _install(
    state_dir: Path, data: bytes, site_config: Path, wall: Callable[[], dt.datetime]
) -> None:
    """Install ``data``, signed by the rigs' clinic, as the caregiver's CLI does
    (validated against the site configuration, written, recorded)."""
    from firmware_host.profile_commands import validate_and_install

    outcome = validate_and_install(
        state_dir, sign(data), "prescription.toml", site_config, session_state=lambda: None,
        wall_clock=wall,
    )  # fmt: skip
    if not outcome.ok:
        raise ValueError(f"the rig's prescription was refused: {outcome.message}")


def builtin_profile_bytes(profile_id: str) -> bytes:
    """The TOML of a built-in profile, as a caregiver would install it."""
    return resources.files("profiles").joinpath("builtin", f"{profile_id}.toml").read_bytes()


class SettableWallClock:
    """UTC wall time = ``start`` + virtual seconds elapsed + whatever ``skip``/``idle`` added.

    ``skip`` moves the wall clock alone: a jump (a Pi without an RTC that lost its time,
    or a clock set ahead). ``idle`` lets real time pass that is not simulated (days
    between sessions): the wall clock and ``uptime_s``, the monotonic time the
    controller's schedule trusts, move together.
    """

    def __init__(self, clock: VirtualClock, start: dt.datetime = WALL_START) -> None:
        self._clock = clock
        self._origin_s = clock()
        self._start = start
        self.offset = dt.timedelta(0)
        self._idle_s = 0.0

    def __call__(self) -> dt.datetime:
        return self._start + self.offset + dt.timedelta(seconds=self._clock() - self._origin_s)

    def skip(self, delta: dt.timedelta) -> None:
        self.offset += delta

    def idle(self, delta: dt.timedelta) -> None:
        if delta < dt.timedelta(0):
            raise ValueError("time does not run backwards; use skip")
        self.offset += delta
        self._idle_s += delta.total_seconds()

    def uptime_s(self) -> float:
        return self._clock() + self._idle_s


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


@dataclass
class InProcessRig:
    """The real controller stack over the in-process simulator on one virtual clock.

    Build it with ``InProcessRig.build`` and always ``close`` it (the fixture does), or
    ``crash`` it. ``events`` keeps every simulator event seen so far, with its ``"t"``;
    ``ledger_storage`` is the storage under the host's ledger (fill it up with ``full``).
    """

    clock: VirtualClock
    board: SimBoard
    port: SimPort
    rail: PowerRail
    wall: SettableWallClock
    state_dir: Path
    stack: AssembledStack
    ledger_storage: LedgerStorage
    events: list[Event] = field(default_factory=list)
    _closed: bool = False
    _on_close: list[Callable[[], None]] = field(default_factory=list)

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
        board: tuple[VirtualClock, SimBoard, SimPort] | None = None,
        wall: SettableWallClock | None = None,
    ) -> InProcessRig:
        """Install the profile (if any), assemble the stack on a fresh (or given) board.

        The state directory's site configuration trusts the rigs' clinic
        (``hil.rigs.clinic``), which signs the profile."""
        if profile_bytes is None and profile_id is not None:
            profile_bytes = builtin_profile_bytes(profile_id)
        if board is None:
            board = make_sim(
                seed=seed, time_scale=time_scale, ambient_c=ambient_c, rail_hold_s=RAIL_HOLD_S
            )
        clock, sim, port = board
        wall = wall or SettableWallClock(clock, wall_start)
        site_config = trust_rig_clinic(state_dir)
        if profile_bytes is not None:  # as a caregiver would: validated and recorded
            _install(state_dir, profile_bytes, site_config, wall)
        rail = make_rail(None, None)
        RailWire(sim, clock).connect(rail)  # enable and heartbeat lines to the board's HAT
        storage = LedgerStorage()
        try:
            stack = assemble_stack(
                state_dir=state_dir, board=BoardKind.simulated(sim.time_scale), rail=rail,
                transport=port, site_config=site_config, clock=clock, wall_clock=wall,
                uptime_clock=wall.uptime_s, ledger_connection=storage.connection,
            )  # fmt: skip
        except BaseException:
            rail.close()
            raise
        return cls(clock, sim, port, rail, wall, state_dir, stack, storage)

    @property
    def core(self) -> SafetyCore:
        return self.stack.core

    @property
    def controller(self) -> Controller:
        return self.stack.controller

    @property
    def loop(self) -> EventLoop:
        return self.stack.loop

    def boot(self, expect: State | None = State.READY) -> State:
        self.controller.boot()
        self.run(0.2)
        if expect is not None:
            assert self.controller.state is expect, self.status()
        return self.controller.state

    def close(self) -> None:
        """Loop closed (outputs off), core closed, rail released. Idempotent, never raises
        on a second call."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stack.close()
        finally:
            self.rail.close()
            self.collect()
            for callback in self._on_close:
                callback()

    def trace_to(self, path: Path, every_s: float = 1.0) -> None:
        """Write a CSV trace of this rig (``hil.tools.trace`` format) to ``path`` while it runs."""
        from hil.tools.trace import StackTracer, TraceWriter

        writer = TraceWriter(path)
        tracer = StackTracer(_TraceView(self), writer, every_s=every_s)
        previous = self.loop.on_tick_hook

        def hook() -> None:
            if previous is not None:
                previous()
            tracer()

        self.loop.on_tick_hook = hook
        self._on_close.append(writer.close)

    def crash(self) -> None:
        """The host process dies here: nothing of ours runs any more (no OFF, no ledger
        close). What the kernel closes is closed: the ledger's connections (through the
        storage's seam, with no further write), the loop's pipe, the GPIO lines."""
        self._closed = True
        self.ledger_storage.drop_connections()
        self.loop.close()
        self.rail.close()

    # -- driving ---------------------------------------------------------------------

    def run(self, duration_s: float) -> None:
        """Run the controller's loop for ``duration_s`` of virtual time."""
        self.loop.run_for(duration_s)
        self.collect()

    def advance_board(self, duration_s: float) -> None:
        """Let only the board's time pass (the host is dead or hung)."""
        self.clock.advance(duration_s)
        self.board.advance_to(self.clock())
        self.collect()

    def run_until(self, done: Callable[[], bool], limit_s: float, step_s: float = 0.1) -> float:
        """Run in steps until ``done()``; returns the virtual seconds used; fails at limit."""
        start_s = self.clock()
        while not done():
            if self.clock() - start_s > limit_s:
                raise AssertionError(f"not done within {limit_s} s: {self.status()}")
            self.run(step_s)
        return self.clock() - start_s

    def command(self, name: str) -> Any:
        return self.controller.command(name)

    def start(self) -> None:
        reply = self.command("start")
        assert reply.ok, reply.message
        self.run_until(lambda: bool(self.board.state()["outputs_on"]), 2.0, 0.02)

    def inject(self, kind: str, **params: object) -> float:
        """Inject a simulator fault now; returns its simulator time stamp."""
        self.board.inject(kind, **params)
        self.collect()
        return next(
            float(e["t"])
            for e in reversed(self.events)
            if e.get("event") in ("injected", "reset") and e.get("fault", kind) == kind
        )

    def collect(self) -> list[Event]:
        new = self.board.pop_events()
        self.events.extend(new)
        return new

    # -- looking -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.controller.state

    def in_state(self, state: State) -> bool:
        """Whether the controller is in ``state`` now (a call, so type checkers do not
        narrow ``rig.state`` across the runs that change it)."""
        return self.controller.state is state

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
        self.controller = rig.controller
        self.board = self
        self._seen = 0

    def pop_events(self) -> list[Event]:
        self.rig.collect()
        new = self.rig.events[self._seen :]
        self._seen = len(self.rig.events)
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
