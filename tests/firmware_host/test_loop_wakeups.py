"""While treating, the loop wakes once a telemetry period: the tick and the lease renewal
ride on the frame's wake-up, and the renewal's ACK is read with the next frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware_host.machine import State
from hil.rigs.harness import InProcessRig

PERIOD_S = 0.02
MEASURED_S = 2.0


def test_treating_wakes_the_loop_once_a_period_and_every_ack_is_read(
    tmp_path: Path, mocker: Any
) -> None:
    rig = InProcessRig.build(tmp_path / "state")
    try:
        rig.boot()
        rig.start()
        rig.run(1.0)
        before = rig.core.snapshot().link
        polls = mocker.spy(rig.core, "poll")
        rig.run(MEASURED_S)
        after = rig.core.snapshot().link
        assert rig.state is State.TREATING
    finally:
        rig.close()
    periods = round(MEASURED_S / PERIOD_S)
    renewals = after.lease_renewals - before.lease_renewals
    assert renewals >= periods * 0.9  # the lease is renewed every tick...
    assert after.command_retries == before.command_retries  # ...each ACK read in time
    assert after.command_timeouts == before.command_timeouts
    assert after.frames_ok - before.frames_ok >= 2 * periods * 0.9  # telemetry and ACKs
    assert polls.call_count <= periods * 1.1  # one wake-up a period, not two
