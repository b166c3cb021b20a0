"""No log floods: a condition that lasts is logged once (and again when it changes), never
once per telemetry frame or per tick.

A Pi writes its journal to an SD card: 50 lines a second is millions a day. Each test
holds a lasting condition for a minute of virtual time on the in-process simulator and
counts the log records (every level, every logger) that minute produced.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from drivers.protocol import FrameDecoder, encode_frame
from safety.core_events import FaultLatched, SafetyEvent
from safety.faults import FaultCode

from .conftest import Rig, make_profile

MINUTE_S = 60.0
HANDFUL = 6
"""At most this many log records in a minute of a lasting condition."""


def _latched(events: list[SafetyEvent]) -> bool:
    return any(isinstance(e, FaultLatched) for e in events)


def _records_in(rig: Rig, caplog: pytest.LogCaptureFixture, seconds: float) -> list[str]:
    caplog.clear()
    rig.run(seconds)
    return [record.getMessage() for record in caplog.records]


@pytest.mark.slow
def test_a_minute_in_fault_with_the_board_reporting_its_own_fault_logs_a_handful(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The sensor came back, but the board keeps its own latched SENSOR_FAULT and reports
    it in every frame while the host is in ``sensor_open``: the secondary finding is
    logged once and counted after that."""
    caplog.set_level(logging.DEBUG)
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)
    rig.board.inject("ntc_open", sensor="skin_b")
    rig.run(1.0, until=_latched)
    rig.board.clear_injections()
    rig.run(1.0)
    snap = core.snapshot()
    assert snap.fault is not None and snap.fault.code is FaultCode.SENSOR_OPEN
    lines = _records_in(rig, caplog, MINUTE_S)
    assert len(lines) <= HANDFUL, lines
    # still seen in every frame, and counted where a person can look
    seen = core.snapshot().fault_also_seen[FaultCode.BOARD_FAULT]
    assert seen >= 0.9 * MINUTE_S / 0.02


def test_the_count_of_the_findings_not_logged_is_logged_at_the_acknowledgement(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)
    rig.board.inject("ntc_open", sensor="skin_b")
    rig.run(1.0, until=_latched)
    rig.run(5.0)
    rig.board.clear_injections()
    rig.run(0.5)
    caplog.set_level(logging.INFO)
    assert core.acknowledge_fault() is None
    (summary,) = [r.getMessage() for r in caplog.records if "also seen" in r.getMessage()]
    assert "board_fault" in summary and "times" in summary
    assert core.snapshot().fault_also_seen == {}


class _OtherVersionPort:
    """A board that speaks protocol version 2: every frame it sends has a v2 header."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._decoder = FrameDecoder()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self, size: int = 1) -> bytes:
        frames = self._decoder.feed(self.inner.read(size))
        return b"".join(encode_frame(f.message, f.seq, version=2) for f in frames)


def test_a_minute_with_a_board_of_another_protocol_version_logs_a_handful(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused at handshake; then every tick finds the telemetry stale and the commands
    unanswered (every frame is dropped by the decoder): each is logged once."""
    caplog.set_level(logging.DEBUG)
    core = rig.connect(_OtherVersionPort(rig.port))
    rig.run(1.0)
    snap = core.snapshot()
    assert snap.fault is not None and snap.fault.code is FaultCode.PROTOCOL_VERSION
    lines = _records_in(rig, caplog, MINUTE_S)
    assert len(lines) <= HANDFUL, lines
    seen = core.snapshot().fault_also_seen
    assert seen[FaultCode.TELEMETRY_STALE] >= 0.9 * MINUTE_S / 0.02
