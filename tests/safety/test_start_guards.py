"""The start guards as functions over the safety core's parts, given states the core
itself does not reach through the board (tests/safety/test_core_start.py covers the
rest through ``SafetyCore.start_refusal``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from drivers.client import BoardClient
from drivers.protocol import BoardFault, Telemetry
from safety.calibration import Calibration
from safety.fault_latch import FaultLatch
from safety.interlock import Interlock
from safety.ledger_handle import LedgerHandle
from safety.limits import HARD_LIMITS
from safety.start_guards import CoreState, GuardParts, start_refusal
from safety.supervisor import Supervisor
from safety.trusted_clock import TrustedClock

from .conftest import Rig, make_profile


@pytest.fixture
def parts(rig: Rig) -> Iterator[tuple[GuardParts, BoardClient]]:
    """The parts the core gives the guards, built as the core builds them, on the rig."""
    client = BoardClient(rig.port, port_name="sim", clock=rig.clock)
    calibration = Calibration.from_info(client.handshake())
    ledgers = LedgerHandle(rig.state_dir, rig.wall, rig.clock)
    faults = FaultLatch(rig.rail, ledgers.ledger_or_raise, rig.wall, outputs_off=lambda: None)
    interlock = Interlock(client, HARD_LIMITS, calibration, rig.rail, rig.clock, faults)
    supervisor = Supervisor(HARD_LIMITS, rig.clock, calibration)
    trusted = TrustedClock(rig.wall, rig.clock)
    try:
        yield GuardParts(HARD_LIMITS, interlock, supervisor, ledgers, trusted, rig.wall), client
    finally:
        client.close()
        ledgers.close()


def _frame(client: BoardClient) -> Telemetry:
    while True:
        client.wait_readable(0.05)
        for item in client.poll():
            if isinstance(item, Telemetry):
                return item


def test_the_board_fault_flags_guard(parts: tuple[GuardParts, BoardClient]) -> None:
    """A frame with a board flag latches ``board_fault`` in the core before any start
    (the state guard then answers first); the patient guard still refuses on its own."""
    guards, client = parts
    tm = _frame(client)
    ready = CoreState(fault=None, session_open=False, self_test_passed=True, telemetry=tm)
    assert start_refusal(make_profile(), guards, ready) is None  # the same frame, clean
    flagged = replace(ready, telemetry=replace(tm, faults=BoardFault.SUPPLY_LOW))
    assert "reports a fault" in (start_refusal(make_profile(), guards, flagged) or "")
