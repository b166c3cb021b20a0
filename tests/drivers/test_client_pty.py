"""BoardClient against a real ``python -m hil.sim`` process over its pseudo-terminal.

Real time is involved here, so the bounds are loose on purpose: the telemetry count is
checked within wide limits, and the lease deadline is checked on the simulator's own
time stamps (its JSON events), not on the host's wall clock.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from drivers.client import BoardClient, CommandAcked, open_board
from drivers.errors import BoardDisconnectedError
from drivers.protocol import ChannelSetpoint, Event, EventKind, Telemetry

LEASE_MS = 200


def collect_for(client: BoardClient, duration_s: float) -> list[Any]:
    inputs: list[Any] = []
    end_s = time.monotonic() + duration_s
    while (left_s := end_s - time.monotonic()) > 0:
        client.wait_readable(left_s)
        inputs += client.poll()
    return inputs


@pytest.mark.slow
def test_pty_handshake_telemetry_and_lease_expiry(pty_sim: Any) -> None:
    client = open_board(pty_sim.port)
    try:
        info = client.handshake(timeout_s=2.0)
        assert info.simulator
        assert client.fileno() is not None
        # Opening the pty can land mid-frame: that first partial frame is the only error
        # a clean link may show, so the link is judged from the handshake on.
        errors_before = (client.stats.crc_errors, client.stats.framing_errors)

        telemetry = [x for x in collect_for(client, 1.0) if isinstance(x, Telemetry)]
        assert 35 <= len(telemetry) <= 65  # 50 Hz, loosely
        assert (client.stats.crc_errors, client.stats.framing_errors) == errors_before

        channels = (ChannelSetpoint(0, info.calibration[0].max_current_ma / 4),)
        seq = client.set_output(channels, lease_ms=LEASE_MS)
        inputs = collect_for(client, 0.6)  # never renewed
        assert any(isinstance(x, CommandAcked) and x.seq == seq for x in inputs)
        states = [x.output_on for x in inputs if isinstance(x, Telemetry)]
        assert True in states and states[-1] is False  # on, then off by the lease
        assert any(isinstance(x, Event) and x.kind is EventKind.LEASE_EXPIRED for x in inputs)
    finally:
        client.output_off()
        client.close()
    outputs = pty_sim.events_named("output")
    on = next(e for e in outputs if e["on"])
    off = next(e for e in outputs if not e["on"] and e["t"] > on["t"])
    assert off["t"] - on["t"] <= LEASE_MS / 1000 + 0.025


def test_pty_disconnect_when_the_simulator_exits(pty_sim: Any) -> None:
    client = open_board(pty_sim.port)
    try:
        client.handshake(timeout_s=2.0)
        pty_sim.stop()
        end_s = time.monotonic() + 3.0
        with pytest.raises(BoardDisconnectedError) as caught:
            while time.monotonic() < end_s:
                client.wait_readable(0.1)
                client.poll()
        assert caught.value.code == "disconnected"
    finally:
        client.close()
