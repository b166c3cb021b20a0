"""SimPort: the in-process simulator as a PortLike on a virtual clock."""

from __future__ import annotations

import io
from typing import Any

import pytest

from hil.sim.inprocess import SimPort, make_sim


def test_make_sim_builds_clock_board_and_port() -> None:
    clock, board, port = make_sim(seed=2, ambient_c=30.0)
    assert isinstance(port, SimPort)
    assert board.seed == 2 and board.state()["ambient_c"] == 30.0
    assert board.state()["t"] == clock()


def test_fileno_is_unsupported() -> None:
    _, _, port = make_sim()
    with pytest.raises(io.UnsupportedOperation):
        port.fileno()


def test_read_is_non_blocking_at_clock_time() -> None:
    clock, _, port = make_sim()
    start_s = clock()
    assert port.read(100) == b""
    assert port.in_waiting == 0
    assert clock() == start_s  # reading never moves time


def test_wait_readable_advances_the_clock_until_a_frame() -> None:
    clock, _, port = make_sim()
    assert port.wait_readable(1.0)
    first = port.read(1000)  # the power-up BOARD_RESET event
    assert first.endswith(b"\x00") and first.count(0) == 1
    assert port.wait_readable(1.0)
    assert clock() == pytest.approx(1000.02 + port.in_waiting * 10 / 115200)


def test_wait_readable_times_out_exactly() -> None:
    clock, _, port = make_sim()
    port.wait_readable(1.0)
    port.read(1000)
    start_s = clock()
    assert port.wait_readable(0.005) is False
    assert clock() == pytest.approx(start_s + 0.005)


def test_telemetry_rate_is_50_hz(host: Any) -> None:
    assert len(host.telemetry(host.run(10.0))) == pytest.approx(500, abs=1)


def test_closed_port_raises() -> None:
    _, _, port = make_sim()
    port.close()
    with pytest.raises(OSError):
        port.read(1)
