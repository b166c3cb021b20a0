"""A driver that ignores OFF at the end of a session: the light until the rail cut is
counted into that session's ledger row (over-count, never under-count).

The stateful test found it: stop a session while the driver is stuck on. The OFF goes
out and the row closes at once, but the board emits for another ``STUCK_ON_GRACE_S``
and more until the interlock sees it and cuts the rail. Those frames came after the
close and were counted nowhere, so the ledger held less than the skin received.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_host.machine import State
from hil.rigs.clinic import profile_toml
from hil.rigs.harness import InProcessRig
from hil.suite.invariants import LedgerView, TruthMonitor

IRRADIANCE_MW_CM2 = 45.0


def _treat(tmp_path: Path) -> tuple[InProcessRig, TruthMonitor]:
    rig = InProcessRig.build(tmp_path, profile_id=None, seed=0)
    rig.controller.boot()
    monitor = TruthMonitor(LedgerView(tmp_path))
    rig.tick_watchers.append(monitor)
    assert rig.install(profile_toml(irradiance_mw_cm2=(IRRADIANCE_MW_CM2,), ramp_s=0.0)).ok
    rig.run(0.3)
    assert rig.command("start").ok
    rig.run(5.0)
    assert rig.state is State.TREATING
    return rig, monitor


def _ledger_total_j_cm2(rig: InProcessRig) -> float:
    return rig.last_session().delivered_fluence_total_j_cm2


@pytest.mark.parametrize("end", ["stop", "pause_then_stop"])
def test_light_after_the_close_is_counted_until_the_rail_cut(tmp_path: Path, end: str) -> None:
    rig, monitor = _treat(tmp_path)
    try:
        rig.inject("stuck_on")
        rig.run(0.05)
        if end == "pause_then_stop":
            assert rig.command("pause").ok
            rig.run(0.01)
        assert rig.command("stop").ok
        rig.run(2.0)
        assert rig.status()["fault"]["code"] == "stuck_on"
        assert rig.state is State.FAULT
        assert not rig.outputs_on()
        truth_j_cm2 = rig.true_fluence_calibrated_j_cm2()
        assert truth_j_cm2 > 0.2  # 5 s at 45 mW/cm²: the comparison below is not vacuous
        assert monitor.findings == []
        assert _ledger_total_j_cm2(rig) >= truth_j_cm2
    finally:
        rig.close()
        monitor.ledger.close()


def test_a_normal_stop_leaves_the_row_as_closed(tmp_path: Path) -> None:
    """Without a stuck driver the light goes off with the OFF: nothing is added later."""
    rig, monitor = _treat(tmp_path)
    try:
        assert rig.command("stop").ok
        rig.run(0.001)
        closed_j_cm2 = _ledger_total_j_cm2(rig)
        rig.run(2.0)
        assert _ledger_total_j_cm2(rig) == closed_j_cm2
        assert rig.status()["fault"] is None
        assert monitor.findings == []
    finally:
        rig.close()
        monitor.ledger.close()
