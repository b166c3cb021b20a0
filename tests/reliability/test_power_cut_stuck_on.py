"""Finding 5 of docs/reliability.md: a stuck LED driver while the host dies (hazard H25).

The stateful test's "light only in treating" invariant allows ``TRANSITION_S`` (one
maximum lease + two ticks) after the last tick the controller was ``treating`` with
contact. A derandomized run once broke it with the host down after a power cut; its
steps were: treating, ``inject stuck_on``, a long press not yet recognized, then
``power_cut`` with 5 s down.

A stuck LED driver emits whatever the firmware does, lease expiry included: only the
rail stops it (docs/hil.md, ``stuck_on``). While the host commands the same output the
fault is latent (the supervisor sees what it asked for); it shows only when the host
commands OFF, and the host then cuts the rail (H05). A host that dies first cuts
nothing, and ``InProcessRig.power_cut`` leaves the enable line at its level, as a released
GPIO line does. Before the dead-man rail the light stayed on for the whole down time.
Now the rail's hold circuit on the HAT (docs/hardware.md) drops the rail
``RAIL_HOLD_S`` after the dead host's last heartbeat: dark within the hold time, well
inside ``TRANSITION_S``. The next host's boot still finds the stuck driver (its rail
check re-enables the rail, and the light it then sees while commanding off latches
``stuck_on``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_host.machine import State
from hil.rigs.clinic import profile_toml
from hil.rigs.harness import InProcessRig
from hil.sim.board import RAIL_HOLD_S
from hil.suite.invariants import LedgerView, TruthMonitor

DOWN_S = 1.0  # > TRANSITION_S: the board runs alone long enough to be judged


def _treat_then_power_cut(
    tmp_path: Path, *, stuck_on: bool, down_s: float = DOWN_S
) -> tuple[InProcessRig, TruthMonitor]:
    stack = InProcessRig.build(tmp_path, profile_id=None, seed=0)
    stack.controller.boot()
    monitor = TruthMonitor(LedgerView(tmp_path))
    stack.tick_watchers.append(monitor)
    assert stack.install(profile_toml(irradiance_mw_cm2=(45.0,), ramp_s=0.0)).ok
    stack.run(0.3)
    assert stack.command("start").ok
    stack.run(2.0)
    assert stack.state is State.TREATING
    if stuck_on:
        stack.inject("stuck_on")  # latent: the board emits what the host commands anyway
    stack.run(0.05)
    assert not monitor.findings
    stack.power_cut(down_s)
    return stack, monitor


@pytest.mark.parametrize("stuck_on", [False, True])
def test_light_ends_within_the_transition_after_a_host_power_cut(
    tmp_path: Path, stuck_on: bool
) -> None:
    stack, monitor = _treat_then_power_cut(tmp_path, stuck_on=stuck_on)
    try:
        assert not stack.running
        assert monitor.findings == []
    finally:
        stack.close()
        monitor.ledger.close()


def test_a_stuck_driver_is_dark_within_the_hold_after_the_host_dies(tmp_path: Path) -> None:
    stack, monitor = _treat_then_power_cut(tmp_path, stuck_on=True, down_s=0.0)
    try:
        died_s = stack.clock()
        while max(stack.board.state()["irradiance_mw_cm2"]) > 0.0:  # type: ignore[call-overload]
            assert stack.clock() - died_s < DOWN_S, "still emitting"
            stack.advance_board(0.001)
        dark_after_s = stack.clock() - died_s
        # the hold runs from the dead host's last heartbeat, its last tick (≤ 20 ms before)
        assert RAIL_HOLD_S - 0.02 <= dark_after_s <= RAIL_HOLD_S + 0.001
        stack.advance_board(DOWN_S - dark_after_s)
        truth = stack.board.state()
        assert truth["rail_line"] is True  # the dead host's enable line is still high
        assert truth["rail_enabled"] is False and truth["outputs_on"] is False
        assert max(truth["irradiance_mw_cm2"]) == 0.0  # type: ignore[call-overload]
        stack.start_host()
        stack.controller.boot()  # the new host's boot re-enables the rail in its rail check
        stack.run(0.3)
        truth = stack.board.state()
        assert truth["rail_enabled"] is False
        assert max(truth["irradiance_mw_cm2"]) == 0.0  # type: ignore[call-overload]
        assert stack.state is State.FAULT
        assert stack.status()["fault"]["code"] == "stuck_on"
        assert monitor.findings == []
    finally:
        stack.close()
        monitor.ledger.close()
