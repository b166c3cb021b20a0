"""Every INFO example of docs/protocol.md passes the host's own handshake and self-test check.

Owns: feeding the doc's exact INFO wire bytes to a real ``BoardClient`` as a board's
answer to HELLO, through the safety core's ``handshake`` for a real board (version,
calibration CRC, simulator flag clear and time scale 1.00), and the boot self-test's
calibration check (``Calibration.sanity_problem``) on the table it carries; and the
doc's table of what the host does with each fault code (every code named, the rail
column matching ``is_critical``). The byte level of every example is checked in
tests/drivers/test_protocol_doc.py.
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
from safety.fault_latch import is_critical
from safety.faults import FaultCode

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


HOST_ONLY = (FaultCode.INTERLOCK_REFUSED, FaultCode.LEDGER_WRITE_FAILED, FaultCode.CONTROLLER_ERROR)


def _host_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## 9. What the host does") : text.index("## 10.")]


@pytest.mark.parametrize("code", [c for c in FaultCode if c not in HOST_ONLY])
def test_the_doc_says_what_the_host_does_with_each_fault_a_board_can_cause(
    code: FaultCode,
) -> None:
    rows = [row for row in _host_section().splitlines() if row.startswith(f"| `{code}` |")]
    assert len(rows) == 1, f"{code} has no row in docs/protocol.md §9"
    rail = rows[0].split(" | ")[2]
    assert rail.startswith("cut" if is_critical(code) else "not cut"), rows[0]


def test_the_doc_names_the_faults_a_board_never_causes() -> None:
    section = _host_section()
    assert all(f"`{code}`" in section for code in HOST_ONLY)
    assert not any(section.count(f"| `{code}` |") for code in HOST_ONLY)
