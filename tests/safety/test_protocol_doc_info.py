"""Every INFO example of docs/protocol.md passes the host's own handshake and self-test check.

Owns: feeding the doc's exact INFO wire bytes to a real ``BoardClient`` as a board's
answer to HELLO, through the safety core's ``handshake`` for a real board (version,
calibration CRC, simulator flag clear and time scale 1.00), and the boot self-test's
calibration check (``Calibration.sanity_problem``) on the table it carries. The byte
level of every example is checked in tests/drivers/test_protocol_doc.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.client import BoardClient
from drivers.protocol import FrameDecoder, Hello, Info
from safety.board_kind import REAL_BOARD
from safety.calibration import Calibration
from safety.core_connect import handshake

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"```hex-example\n(.*?)```", re.S)


def _wire_of_each_example() -> list[bytes]:
    wires = []
    for block in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        for line in block.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "wire":
                wires.append(bytes.fromhex(value.strip()))
    return wires


def _info_examples() -> list[bytes]:
    found = []
    for wire in _wire_of_each_example():
        frames = FrameDecoder().feed(wire)
        if len(frames) == 1 and isinstance(frames[0].message, Info):
            found.append(wire)
    return found


INFO_WIRES = _info_examples()


class _SpecBoard:
    """A PortLike that answers the host's first HELLO with one fixed INFO frame."""

    def __init__(self, info_wire: bytes) -> None:
        self.now_s = 0.0
        self._info_wire = info_wire
        self._decoder = FrameDecoder()
        self._out = bytearray()

    def clock(self) -> float:
        return self.now_s

    def write(self, data: bytes) -> int:
        for frame in self._decoder.feed(data):
            if isinstance(frame.message, Hello) and frame.seq == 0:
                self._out += self._info_wire
        return len(data)

    def read(self, size: int = 1) -> bytes:
        chunk = bytes(self._out[:size])
        del self._out[:size]
        return chunk

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def wait_readable(self, timeout_s: float) -> bool:
        if not self._out:
            self.now_s += timeout_s
        return bool(self._out)

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("no fd")


def test_the_doc_has_an_info_example() -> None:
    assert INFO_WIRES


@pytest.mark.parametrize("wire", INFO_WIRES, ids=lambda wire: f"{len(wire)}-bytes")
def test_info_example_passes_the_handshake_of_a_real_board(wire: bytes) -> None:
    board = _SpecBoard(wire)
    client = BoardClient(board, port_name="spec", clock=board.clock)
    info, fault = handshake(client, REAL_BOARD)
    assert fault is None
    assert info is not None and not info.simulator and info.time_scale == 1.0


@pytest.mark.parametrize("wire", INFO_WIRES, ids=lambda wire: f"{len(wire)}-bytes")
def test_info_example_passes_the_self_test_calibration_check(wire: bytes) -> None:
    (frame,) = FrameDecoder().feed(wire)
    assert isinstance(frame.message, Info)
    assert Calibration.from_info(frame.message).sanity_problem() is None
