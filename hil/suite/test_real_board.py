"""Tests for a real driver board, with ``--board-url``; against ``nirpad sim`` without it.

One suite, two targets: with ``--board-url URL`` these talk to the board at URL; without
it, to a ``python -m hil.sim`` process on a pty, which behaves like a board on
/dev/ttyUSB0. The handshake and telemetry tests never command light. The lease test
does (marked ``emits``): on a real board it is skipped unless NIRPAD_ALLOW_EMISSION=1 is
set, and it asks for the lowest irradiance the limits allow (10 mW/cm²), for one lease.
Time is judged on the board's own clock (telemetry uptime) and, on the simulator, also on
its event time stamps, never on the host's sleeps.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.client import BoardClient, CommandAcked, CommandRejected, open_board
from drivers.protocol import (
    PROTOCOL_VERSION,
    BoardFault,
    ChannelSetpoint,
    Event,
    EventKind,
    NakCode,
    Telemetry,
)
from hil.rigs.harness import first_off_after
from hil.rigs.sim_child import SimChild
from safety.calibration import Calibration

pytestmark = [pytest.mark.hil, pytest.mark.timeout(60)]

LEASE_MS = 200
LOWEST_IRRADIANCE_MW_CM2 = 10.0
TELEMETRY_PERIOD_MS = 20


class Board:
    """The target: a URL, and the simulator child when there is no real board."""

    def __init__(self, url: str, sim: SimChild | None) -> None:
        self.url = url
        self.sim = sim


@pytest.fixture
def board(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Board]:
    url = request.config.getoption("--board-url", default=None)
    if url:
        yield Board(str(url), None)
        return
    sim = SimChild("--seed", "7", log_path=tmp_path / "sim.log")
    try:
        yield Board(sim.port, sim)
    finally:
        sim.stop()


@pytest.fixture
def client(board: Board) -> Iterator[BoardClient]:
    opened = open_board(board.url)
    try:
        yield opened
    finally:
        try:
            opened.output_off()  # the last thing the board hears is OFF
        finally:
            opened.close()


def collect(client: BoardClient, frames: int, limit_s: float = 5.0) -> list[Any]:
    """Inputs until ``frames`` telemetry frames have arrived (``limit_s`` guards a hang)."""
    inputs: list[Any] = []
    deadline_s = time.monotonic() + limit_s
    while sum(isinstance(x, Telemetry) for x in inputs) < frames:
        left_s = deadline_s - time.monotonic()
        assert left_s > 0, f"only {len(inputs)} inputs from the board within {limit_s} s"
        client.wait_readable(min(left_s, 0.1))
        inputs += client.poll()
    return inputs


def test_handshake_reports_the_board(client: BoardClient, board: Board) -> None:
    info = client.handshake(timeout_s=2.0)  # checks the version and calibration CRC
    assert info.protocol_version == PROTOCOL_VERSION
    assert info.serial
    assert [ch.wavelength_nm for ch in info.calibration] == [810, 850]
    calibration = Calibration(info.calibration)
    assert calibration.sanity_problem() is None
    assert info.simulator is (board.sim is not None)


@pytest.mark.slow
def test_telemetry_at_fifty_hertz_on_the_boards_clock(client: BoardClient) -> None:
    """50 frames: uptime steps of 20 ms (board clock), plausible sensors, dark outputs."""
    client.handshake(timeout_s=2.0)
    collect(client, 1)  # opening the port mid-frame may cost one partial frame
    before = client.stats
    bad_before = before.crc_errors + before.framing_errors
    frames = [x for x in collect(client, 50) if isinstance(x, Telemetry)]
    uptimes = [t.uptime_ms for t in frames]
    steps = [b - a for a, b in itertools.pairwise(uptimes)]
    assert all(step > 0 for step in steps), steps
    assert statistics.median(steps) == pytest.approx(TELEMETRY_PERIOD_MS, abs=2)
    assert max(steps) <= 5 * TELEMETRY_PERIOD_MS  # never stale on an idle link
    for frame in frames:
        assert not frame.output_on, "the board emits although nothing was commanded"
        for reading_c in (frame.skin_a_c, frame.skin_b_c, frame.board_c):
            assert 0.0 <= reading_c <= 60.0
        assert frame.faults == BoardFault.NONE
    stats = client.stats
    assert stats.crc_errors + stats.framing_errors == bad_before, stats


@pytest.mark.slow
@pytest.mark.emits
def test_an_unrenewed_lease_turns_the_light_off(client: BoardClient, board: Board) -> None:
    """One SET_OUTPUT at 10 mW/cm² with a 200 ms lease, never renewed: the board turns
    itself off within the lease plus one telemetry period, on its own clock."""
    info = client.handshake(timeout_s=2.0)
    current_ma = Calibration(info.calibration).current_ma(0, LOWEST_IRRADIANCE_MW_CM2)
    seq = client.set_output((ChannelSetpoint(0, current_ma),), lease_ms=LEASE_MS)
    inputs = collect(client, 25)
    rejected = [x for x in inputs if isinstance(x, CommandRejected) and x.seq == seq]
    if rejected and rejected[0].code in (NakCode.RAIL_OFF, NakCode.NO_CONTACT):
        pytest.skip(f"the board refused light ({rejected[0].code.name}): rail or contact off")
    assert any(isinstance(x, CommandAcked) and x.seq == seq for x in inputs), inputs
    frames = [x for x in inputs if isinstance(x, Telemetry)]
    on = [t.uptime_ms for t in frames if t.output_on]
    assert on, "the board never showed its output on"
    off_after = [t.uptime_ms for t in frames if not t.output_on and t.uptime_ms > on[0]]
    assert off_after, "the output never went off by itself"
    assert off_after[0] - on[0] <= LEASE_MS + TELEMETRY_PERIOD_MS + 2
    assert any(isinstance(x, Event) and x.kind is EventKind.LEASE_EXPIRED for x in inputs)
    if board.sim is not None:  # the simulator's truth, on its own time stamps
        events = board.sim.snapshot()
        on_event = next(e for e in events if e.get("event") == "output" and e["on"])
        off_s = first_off_after(events, float(on_event["t"]))
        assert off_s is not None
        assert off_s - on_event["t"] <= LEASE_MS / 1000.0 + 1e-6
