"""The whole controller stack in one process, on one virtual clock, for benchmarks.

Owns: the stack ``nirpad run`` runs (``firmware_host.assembly``) over
``hil.sim.inprocess.make_sim``, the bench prescriptions (the built-in 810 nm profile,
optionally shortened or pulsed, installed signed by the rigs' clinic: ``hil.rigs.clinic``),
and the "truth" fluence that the board delivered. Does not own any figure: the
``figures_*`` modules and ``hil.tools.trace`` drive the stack and measure.

The wall clock starts at a fixed evening (inside every built-in profile's validity), so
runs are reproducible; the ledger lives in the caller's (temporary) state directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from drivers.client import PortLike
from firmware_host.assembly import assemble_stack
from firmware_host.controller import Controller
from firmware_host.loop import EventLoop
from firmware_host.profile_commands import validate_and_install
from hil.rigs.clinic import sign, trust_rig_clinic
from hil.rigs.clock import VirtualClock
from hil.sim.board import RAIL_HOLD_S, SimBoard
from hil.sim.inprocess import RailWire, SimPort, make_sim
from profiles.loader import load_profile_bytes
from profiles.schema import Profile
from safety.board_kind import BoardKind
from safety.core import SafetyCore
from safety.limits import HARD, check_profile
from safety.rail import make_rail

WALL_START: Final = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)
BENCH_PROFILE: Final = "rls-810-standard.toml"


class BenchSetupError(RuntimeError):
    """The bench could not build what it measures (a profile refused, a boot that failed)."""


def builtin_profile_text(name: str = BENCH_PROFILE) -> str:
    return resources.files("profiles").joinpath("builtin", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class BenchProfile:
    """A bench prescription: the TOML a caregiver installs, and the profile it holds."""

    data: bytes
    profile: Profile


def bench_profile(
    *, duration_min: int | None = None, pulse_hz: float | None = None, duty_pct: float = 50.0
) -> BenchProfile:
    """The built-in 810 nm profile, with a shorter duration or pulsed light if asked."""
    text = builtin_profile_text()
    if duration_min is not None:
        text = text.replace("duration_min = 30", f"duration_min = {duration_min}")
    if pulse_hz is not None:
        text = text.replace(
            'kind = "cw"', f'kind = "pulsed"\npulse_hz = {pulse_hz}\nduty_pct = {duty_pct}'
        )
    result = load_profile_bytes(
        text.encode(), BENCH_PROFILE, extra_checks=lambda rx: check_profile(rx, HARD)
    )
    if not result.ok or result.profile is None:
        raise BenchSetupError("bench profile refused: " + "; ".join(map(str, result.problems)))
    return BenchProfile(text.encode(), result.profile)


@dataclass
class Stack:
    """One booted controller on one simulated board; ``run(s)`` advances virtual time."""

    clock: VirtualClock
    board: SimBoard
    core: SafetyCore
    controller: Controller
    loop: EventLoop
    state_dir: Path
    wall: Callable[[], dt.datetime]
    rail_wire: RailWire

    def run(self, duration_s: float) -> None:
        self.loop.run_for(duration_s)

    def command(self, name: str) -> None:
        reply = self.controller.command(name)
        if not reply.ok:
            raise BenchSetupError(f"{name} refused: {reply.message}")

    def true_fluence_j_cm2(self) -> list[float]:
        """Delivered per channel, with the board's (unknowable) unit optical error removed:
        what a host that trusts the calibration can be held to."""
        truth = self.board.state()["delivered_fluence_j_cm2"]
        assert isinstance(truth, list)
        factors = self.board.optics.unit_factor
        return [float(f) / k for f, k in zip(truth, factors, strict=True)]


@contextlib.contextmanager
def stack(
    state_dir: Path,
    rx: BenchProfile,
    *,
    seed: int = 3,
    ambient_c: float = 22.0,
    wrap_port: Callable[[SimPort], PortLike] | None = None,
) -> Iterator[Stack]:
    """Install ``rx``, build and boot the stack (``ready``); closes everything, outputs
    off, on exit.

    ``wrap_port`` puts a transport of the caller's between the core and the board's port
    (the per-frame benchmark replays frames from memory through one)."""
    clock, board, sim_port = make_sim(seed=seed, ambient_c=ambient_c, rail_hold_s=RAIL_HOLD_S)
    port: PortLike = sim_port if wrap_port is None else wrap_port(sim_port)
    start_s = clock()

    def wall() -> dt.datetime:
        return WALL_START + dt.timedelta(seconds=clock() - start_s)

    site_config = trust_rig_clinic(state_dir)
    installed = validate_and_install(
        state_dir, sign(rx.data), BENCH_PROFILE, site_config, session_state=lambda: None,
        wall_clock=wall,
    )  # fmt: skip
    if not installed.ok:
        raise BenchSetupError(f"bench profile not installed: {installed.message}")
    rail = make_rail(None, None)
    rail_wire = RailWire(board, clock)
    rail_wire.connect(rail)
    try:
        parts = assemble_stack(
            state_dir=state_dir, board=BoardKind.simulated(board.time_scale), rail=rail,
            transport=port, site_config=site_config, clock=clock, wall_clock=wall,
        )  # fmt: skip
        try:
            built = Stack(
                clock, board, parts.core, parts.controller, parts.loop, state_dir, wall, rail_wire
            )
            if str(parts.controller.boot()) != "ready":
                status = parts.controller.status()
                raise BenchSetupError(f"boot ended in {parts.controller.state}: {status}")
            built.run(0.5)
            yield built
        finally:
            parts.close()
    finally:
        rail.close()
