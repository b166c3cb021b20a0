"""BoardClient against the in-process simulated board, all on one virtual clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from drivers.client import BoardClient, CommandAcked, CommandRejected
from drivers.errors import BoardDisconnectedError
from drivers.protocol import ChannelSetpoint, Event, EventKind, NakCode, SetOutput, Telemetry
from hil.sim import inprocess

LEASE_MS = 200
LEASE_SLACK_S = 0.025


@pytest.fixture
def sim() -> Any:
    clock, board, port = inprocess.make_sim(seed=1)
    client = BoardClient(port, port_name="sim://", clock=clock)
    yield clock, board, client
    client.close()


def run_for(client: BoardClient, clock: Any, duration_s: float) -> list[Any]:
    inputs: list[Any] = []
    end_s = clock() + duration_s
    while clock() < end_s:
        client.wait_readable(end_s - clock())
        inputs += client.poll()
    return inputs


def half_current(client: BoardClient) -> tuple[ChannelSetpoint, ...]:
    assert client.info is not None
    return (ChannelSetpoint(0, client.info.calibration[0].max_current_ma / 2),)


def test_handshake_with_the_simulator(sim: Any) -> None:
    _, _, client = sim
    info = client.handshake()
    assert info.simulator and info.serial == "SIM-0000001"
    assert [cal.wavelength_nm for cal in info.calibration][:2] == [810, 850]


def test_telemetry_arrives_at_50_hz_of_virtual_time(sim: Any) -> None:
    clock, _, client = sim
    client.handshake()
    run_for(client, clock, 0.1)  # settle
    inputs = run_for(client, clock, 1.0)
    uptimes = [x.uptime_ms for x in inputs if isinstance(x, Telemetry)]
    assert 49 <= len(uptimes) <= 51
    assert {b - a for a, b in itertools.pairwise(uptimes)} == {20}
    assert client.stats.frames_dropped == 0 and client.stats.sequence_gaps == 0


def test_set_output_is_acked_and_reported(sim: Any) -> None:
    clock, board, client = sim
    client.handshake()
    channels = half_current(client)
    seq = client.set_output(channels, lease_ms=LEASE_MS)
    inputs = run_for(client, clock, 0.05)
    assert CommandAcked(seq, SetOutput(LEASE_MS, channels)) in inputs
    assert board.state()["outputs_on"]
    assert any(isinstance(x, Telemetry) and x.output_on for x in inputs)


def test_board_refuses_output_without_contact(sim: Any) -> None:
    clock, board, client = sim
    client.handshake()
    board.set_contact(False)
    seq = client.set_output(half_current(client), lease_ms=LEASE_MS)
    inputs = run_for(client, clock, 0.05)
    assert any(isinstance(x, CommandRejected) and x.seq == seq for x in inputs)
    assert [x.code for x in inputs if isinstance(x, CommandRejected)] == [NakCode.NO_CONTACT]


def test_lease_expiry_turns_output_off_within_25_ms(sim: Any) -> None:
    clock, board, client = sim
    client.handshake()
    board.pop_events()
    client.set_output(half_current(client), lease_ms=LEASE_MS)  # never renewed
    inputs = run_for(client, clock, 0.5)
    outputs = [e for e in board.pop_events() if e["event"] == "output"]
    assert [e["on"] for e in outputs] == [True, False]
    on_s, off_s = outputs[0]["t"], outputs[1]["t"]
    assert on_s + LEASE_MS / 1000 <= off_s <= on_s + LEASE_MS / 1000 + LEASE_SLACK_S
    assert any(isinstance(x, Event) and x.kind is EventKind.LEASE_EXPIRED for x in inputs)
    last = [x for x in inputs if isinstance(x, Telemetry)][-1]
    assert not last.output_on and last.lease_remaining_ms == 0


def test_renewed_lease_keeps_output_on(sim: Any) -> None:
    clock, board, client = sim
    client.handshake()
    for _ in range(20):  # 20 ticks of 20 ms = 400 ms, twice the lease
        client.set_output(half_current(client), lease_ms=LEASE_MS)
        run_for(client, clock, 0.02)
    assert board.state()["outputs_on"]
    assert client.counters.timeouts == 0


def test_disconnect_is_reported(sim: Any) -> None:
    clock, board, client = sim
    client.handshake()
    board.inject("disconnect")
    with pytest.raises(BoardDisconnectedError):
        run_for(client, clock, 0.1)
