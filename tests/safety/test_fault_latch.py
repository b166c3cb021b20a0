"""The one fault latch: first fault wins, critical faults cut the rail, secondary
findings are counted and logged once per shape, records kept until the ledger takes them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from safety.errors import LedgerError
from safety.fault_latch import SECONDARY_LOG_MAX, FaultLatch, fault_message
from safety.faults import FAULT_MESSAGES, FaultCode
from safety.ledger import Ledger
from safety.rail import PowerRail, make_rail


class Bench:
    """A latch on a real (in-memory) rail, counting the serial OFFs it asks for."""

    def __init__(self) -> None:
        self.rail: PowerRail = make_rail(None, None)
        self.rail.enable()
        self.offs = 0
        self.ledger_error: str | None = "the disk is full"
        self.written: list[str] = []
        self.written_at: list[datetime | None] = []  # the time each row was given
        self.now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)  # the wall clock
        self.latch = FaultLatch(self.rail, self._ledger, lambda: self.now, outputs_off=self._off)

    def _off(self) -> None:
        self.offs += 1

    def _ledger(self) -> Ledger:
        if self.ledger_error is not None:
            raise LedgerError(self.ledger_error, path="")
        return self  # type: ignore[return-value]  # records below call only record_fault

    def record_fault(
        self, code: FaultCode, detail: str, session_id: int | None, *, at: datetime | None = None
    ) -> None:
        self.written.append(f"{code} {detail} {session_id}")
        self.written_at.append(at)


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_the_first_fault_wins_and_is_announced_once(bench: Bench) -> None:
    latch = bench.latch
    assert latch.code is None and latch.take_unannounced() is None
    latch.latch(FaultCode.BOARD_RESET, "board restarted (brownout)")
    latch.latch(FaultCode.LEDGER_WRITE_FAILED, "disk full")
    latch.latch(FaultCode.BOARD_RESET, "again")
    assert latch.code is FaultCode.BOARD_RESET
    assert latch.status is not None
    assert latch.status.message == fault_message(
        FaultCode.BOARD_RESET, "board restarted (brownout)"
    )
    assert latch.take_unannounced() == (FaultCode.BOARD_RESET, "board restarted (brownout)")
    assert latch.take_unannounced() is None
    assert latch.also_seen == {FaultCode.LEDGER_WRITE_FAILED: 1}
    assert bench.offs == 1  # outputs off once, at the first latch


def test_critical_faults_cut_the_rail_even_when_they_come_second(bench: Bench) -> None:
    bench.latch.latch(FaultCode.SENSOR_OPEN, "skin A open")
    assert bench.rail.enabled  # a sensor fault: OFF suffices
    bench.latch.latch(FaultCode.STUCK_ON, "stuck")
    assert not bench.rail.enabled
    assert bench.latch.code is FaultCode.SENSOR_OPEN


def test_a_critical_first_fault_cuts_the_rail(bench: Bench) -> None:
    bench.latch.latch(FaultCode.TELEMETRY_STALE, "no telemetry for 110 ms")
    assert not bench.rail.enabled and bench.offs == 1


def test_clearing_resets_the_counts_and_logs_them(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    latch = bench.latch
    latch.latch(FaultCode.SKIN_OVERTEMP, "41.0 °C")
    latch.latch(FaultCode.TELEMETRY_STALE, "no telemetry for 120 ms")
    with caplog.at_level(logging.INFO, logger="safety.fault_latch"):
        latch.clear()
    assert "telemetry_stale 1 times" in caplog.text
    assert latch.status is None and latch.also_seen == {}
    latch.clear()  # nothing latched: nothing to do
    assert latch.code is None


def test_secondary_findings_log_once_per_shape_and_at_most_a_bound(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    latch = bench.latch
    latch.latch(FaultCode.BOARD_RESET, "reset")
    with caplog.at_level(logging.INFO, logger="safety.fault_latch"):
        for age_ms in range(100, 300):
            latch.latch(FaultCode.TELEMETRY_STALE, f"no telemetry for {age_ms} ms")
        for sensor in range(2 * SECONDARY_LOG_MAX):
            latch.latch(FaultCode.SENSOR_OPEN, f"sensor {'x' * sensor} open")
    lines = [r for r in caplog.records if "while board_reset is latched" in r.getMessage()]
    assert len(lines) == SECONDARY_LOG_MAX
    assert latch.also_seen[FaultCode.TELEMETRY_STALE] == 200


def test_a_hazard_found_second_gets_a_fault_row_of_its_own_once_per_latch(bench: Bench) -> None:
    bench.ledger_error = None
    latch = bench.latch
    latch.latch(FaultCode.SENSOR_OPEN, "skin A open")
    latch.latch(FaultCode.TELEMETRY_STALE, "no telemetry for 120 ms")  # a consequence: counted
    latch.latch(FaultCode.STUCK_ON, "channels lit: [0]")
    latch.latch(FaultCode.STUCK_ON, "channels lit: [0, 1]")
    latch.latch(FaultCode.SENSOR_OPEN, "skin A open")  # the latched one itself
    assert bench.written == ["stuck_on found while sensor_open was latched: channels lit: [0] None"]
    assert latch.code is FaultCode.SENSOR_OPEN and latch.take_unannounced() is not None
    latch.clear()
    latch.latch(FaultCode.LEDGER_WRITE_FAILED, "disk full")
    latch.latch(FaultCode.SKIN_OVERTEMP, "41.2 °C")
    assert bench.written[1:] == [
        "skin_overtemp found while ledger_write_failed was latched: 41.2 °C None"
    ]


def test_a_hazard_found_second_on_a_full_disk_waits_for_the_ledger(bench: Bench) -> None:
    latch = bench.latch  # the disk is full
    latch.latch(FaultCode.LEDGER_WRITE_FAILED, "disk full")
    latch.latch(FaultCode.STUCK_ON, "channels lit: [0]")
    assert bench.written == [] and latch.unwritten == 1
    bench.ledger_error = None
    assert latch.write_unwritten() is None
    (row,) = bench.written
    assert row.startswith("stuck_on found while ledger_write_failed was latched: channels lit: [0]")
    assert "recorded late" in row


def test_records_wait_in_order_until_the_ledger_takes_them(bench: Bench) -> None:
    latch = bench.latch
    latch.record_fault(FaultCode.SKIN_OVERTEMP, "41.0 °C", 7)
    latch.record_fault(FaultCode.STUCK_ON, "stuck", None)
    assert latch.unwritten == 2 and bench.written == []
    latch.retry_unwritten(now_s=10.0)  # still full
    bench.ledger_error = None
    latch.retry_unwritten(now_s=10.5)  # too soon after the last try
    assert latch.unwritten == 2
    latch.retry_unwritten(now_s=11.0)
    assert latch.unwritten == 0
    assert bench.written == [
        "skin_overtemp 41.0 °C [latched at 2026-12-03T20:00:00+00:00; recorded late] 7",
        "stuck_on stuck [latched at 2026-12-03T20:00:00+00:00; recorded late] None",
    ]
    assert latch.write_unwritten() is None


def test_a_kept_fault_row_keeps_the_time_it_latched_not_the_time_it_is_written(
    bench: Bench,
) -> None:
    latched_at = bench.now
    bench.latch.record_fault(FaultCode.SKIN_OVERTEMP, "41.0 °C", 7)
    bench.now = latched_at + timedelta(hours=3)  # the disk stays full for hours
    bench.ledger_error = None
    bench.latch.retry_unwritten(now_s=10.0)
    assert bench.written == [
        "skin_overtemp 41.0 °C [latched at 2026-12-03T20:00:00+00:00; recorded late] 7"
    ]
    assert bench.written_at == [latched_at]


def test_a_fault_row_written_at_once_is_at_the_time_it_latched(bench: Bench) -> None:
    bench.ledger_error = None
    bench.latch.record_fault(FaultCode.STUCK_ON, "stuck", None)
    assert bench.written == ["stuck_on stuck None"] and bench.written_at == [bench.now]


def test_fault_message_without_detail_is_the_code_message() -> None:
    assert fault_message(FaultCode.STUCK_ON, "") == FAULT_MESSAGES[FaultCode.STUCK_ON]


def test_the_rail_is_cut_even_when_the_serial_off_fails(bench: Bench) -> None:
    def broken_off() -> None:
        raise RuntimeError("the OFF could not be sent")

    latch = FaultLatch(bench.rail, bench._ledger, lambda: datetime.now(UTC), outputs_off=broken_off)
    with pytest.raises(RuntimeError):
        latch.latch(FaultCode.STUCK_ON, "stuck")
    assert not bench.rail.enabled
    assert latch.code is FaultCode.STUCK_ON
