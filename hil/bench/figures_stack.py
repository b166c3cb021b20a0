"""The whole controller stack in one process, on one virtual clock, for benchmarks.

Owns: the bench's use of the one in-process rig (``hil.rigs.harness.InProcessRig``: the
stack ``nirpad run`` runs over the in-process simulator), where a refused command or a
boot that did not reach ``ready`` is a setup error; the bench prescriptions (the
built-in 810 nm profile, optionally shortened or pulsed, installed signed by the rigs'
clinic) and the "truth" fluence that the board delivered. Does not own any figure: the
``figures_*`` modules and ``hil.tools.trace`` drive the stack and measure.

The wall clock starts at the rigs' fixed evening (inside every built-in profile's
validity), so runs are reproducible; the ledger lives in the caller's (temporary) state
directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from drivers.client import PortLike
from hil.rigs.harness import InProcessRig
from hil.sim.inprocess import SimPort
from profiles.loader import load_profile_bytes
from profiles.schema import Profile
from safety.limits import HARD, check_profile

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


def bench_command(rig: InProcessRig, name: str) -> None:
    """A control command the bench needs to succeed: ``BenchSetupError`` if refused."""
    reply = rig.command(name)
    if not reply.ok:
        raise BenchSetupError(f"{name} refused: {reply.message}")


@contextlib.contextmanager
def stack(
    state_dir: Path,
    rx: BenchProfile,
    *,
    seed: int = 3,
    ambient_c: float = 22.0,
    wrap_port: Callable[[SimPort], PortLike] | None = None,
) -> Iterator[InProcessRig]:
    """Install ``rx``, build and boot the rig (``ready``); closes everything, outputs
    off, on exit.

    ``wrap_port`` puts a transport of the caller's between the core and the board's port
    (the per-frame benchmark replays frames from memory through one)."""
    try:
        rig = InProcessRig.build(
            state_dir, profile_bytes=rx.data, seed=seed, ambient_c=ambient_c, wrap_port=wrap_port
        )
    except ValueError as exc:  # the rig's prescription was refused
        raise BenchSetupError(f"bench profile not installed: {exc}") from exc
    try:
        if str(rig.controller.boot()) != "ready":
            raise BenchSetupError(f"boot ended in {rig.state}: {rig.status()}")
        rig.run(0.5)
        yield rig
    finally:
        rig.close()
