"""Byte pacing at the baud rate, and determinism with a seed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from drivers.protocol import Hello, Info, encode_frame
from hil.sim.link import LinkFaults, PacedLink


@pytest.mark.parametrize("baud", [9600, 115200])
def test_n_bytes_take_n_times_10_over_baud(baud: int) -> None:
    link = PacedLink(baud, random.Random(0), LinkFaults())
    link.send(bytes(range(1, 101)), 5.0)
    byte_s = 10.0 / baud
    assert link.receive(5.0 + 99.5 * byte_s) == bytes(range(1, 100))
    assert link.next_arrival_s() == pytest.approx(5.0 + 100 * byte_s)
    assert link.receive(5.0 + 100 * byte_s) == bytes([100])
    assert link.next_arrival_s() is None


def test_back_to_back_sends_queue_on_the_wire() -> None:
    link = PacedLink(10_000, random.Random(0), LinkFaults())  # 1 ms per byte
    link.send(b"ab\x00", 0.0)
    link.send(b"cd\x00", 0.001)  # the wire is still busy until 3 ms
    assert link.next_complete_s() == pytest.approx(0.003)
    assert link.receive(0.0055) == b"ab\x00cd"
    assert link.next_complete_s() == pytest.approx(0.006)


def test_whole_frames_wait_for_their_last_byte() -> None:
    link = PacedLink(10_000, random.Random(0), LinkFaults())  # 1 ms per byte
    link.send(b"ab\x00cd\x00", 0.0)
    assert link.receive_whole(0.0025) == b""  # "ab" is there, its delimiter is not
    assert link.receive_whole(0.003) == b"ab\x00"
    assert link.receive_whole(0.0055) == b""
    assert link.receive(0.0055) == b"cd"  # the byte-level reader still sees what arrived
    assert link.receive_whole(0.006) == b"\x00"
    assert link.next_arrival_s() is None


@pytest.mark.parametrize("baud", [57600, 115200])
def test_round_trip_through_simport_takes_wire_time(host_factory: Any, baud: int) -> None:
    host = host_factory(baud=baud)
    host.run(0.004)  # the power-up event is through, the wire is idle
    hello = encode_frame(Hello(), host.seq + 1)
    sent_s = host.clock()
    reply = host.request(Hello())
    assert isinstance(reply, Info)
    wire_s = (len(hello) + len(encode_frame(reply, 1))) * 10.0 / baud
    arrival_s = next(t for t, m in host.received if m == reply)
    assert arrival_s - sent_s == pytest.approx(wire_s, abs=1e-9)


def _script(seed: int) -> bytes:
    from hil.sim.inprocess import make_sim

    clock, board, port = make_sim(seed=seed)
    out = bytearray()
    board.inject("link_corrupt", rate=0.01)
    port.write(encode_frame(Hello(), 1))
    end_s = clock() + 1.0
    while clock() < end_s:
        port.wait_readable(end_s - clock())
        out += port.read(1 << 16)
    return bytes(out)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert _script(4) == _script(4)
    assert _script(4) != _script(5)
