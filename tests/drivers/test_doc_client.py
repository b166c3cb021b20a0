"""Clean-room test: a minimal host written from docs/protocol.md alone talks to the simulator.

Nothing here imports ``drivers``: COBS, the CRC (binascii), the struct layouts and the
constants are re-implemented from the doc. If this host can do the handshake, read
telemetry and drive output under a lease, the doc is sufficient to implement a peer.
"""

from __future__ import annotations

import binascii
import os
import select
import struct
import time
import tty
from collections.abc import Callable
from typing import Any

import pytest

from hil.sim import inprocess

VERSION = 1
HELLO, INFO, SET_OUTPUT, OUTPUT_OFF, ACK, NAK, TELEMETRY, EVENT = (
    0x01, 0x02, 0x10, 0x11, 0x20, 0x21, 0x30, 0x31,
)  # fmt: skip
LEASE_EXPIRED = 5
OUTPUT_ON_FLAG = 0x01


def crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def cobs_encode(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
            continue
        block.append(byte)
        if len(block) == 254:
            out += b"\xff" + block
            block.clear()
    return bytes(out + bytes([len(block) + 1]) + block)


def cobs_decode(data: bytes) -> bytes | None:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1 : i + code]
        i += code
        if code != 255 and i < len(data):
            out.append(0)
    return bytes(out)


def frame(msg_type: int, seq: int, payload: bytes) -> bytes:
    body = struct.pack("<BBH", VERSION, msg_type, seq) + payload
    return cobs_encode(body + struct.pack("<H", crc(body))) + b"\x00"


class DocHost:
    """Just enough host: frames out, frames in, HELLO/INFO, SET_OUTPUT, TELEMETRY."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self.buffer = bytearray()
        self.seq = 0
        self.frames: list[tuple[int, int, bytes]] = []

    def send(self, msg_type: int, payload: bytes = b"") -> int:
        seq, self.seq = self.seq, self.seq + 1
        self.port.write(frame(msg_type, seq, payload))
        return seq

    def receive(self, timeout_s: float) -> None:
        self.port.wait_readable(timeout_s)
        self.buffer += self.port.read(4096)
        while b"\x00" in self.buffer:
            raw, _, rest = bytes(self.buffer).partition(b"\x00")
            self.buffer = bytearray(rest)
            body = cobs_decode(raw)
            if body is None or len(body) < 6 or crc(body[:-2]) != struct.unpack("<H", body[-2:])[0]:
                continue
            version, msg_type, seq = struct.unpack_from("<BBH", body)
            if version == VERSION:
                self.frames.append((msg_type, seq, body[4:-2]))

    def wait_for(self, match: Callable[[int, bytes], bool], clock: Any, timeout_s: float) -> bytes:
        end_s = clock() + timeout_s
        while clock() < end_s:
            self.receive(end_s - clock())
            for index, (msg_type, _, payload) in enumerate(self.frames):
                if match(msg_type, payload):
                    del self.frames[: index + 1]
                    return payload
        raise AssertionError("no matching frame")


def parse_info(payload: bytes) -> dict[str, Any]:
    echo, version, *_fw, flags, scale_x100 = struct.unpack_from("<HBBBBBH", payload)
    serial = payload[9:25].rstrip(b"\x00").decode("ascii")
    table_start, pos = 25, 26
    channels = []
    for _ in range(payload[table_start]):
        wavelength, max_x10, n_points = struct.unpack_from("<HHB", payload, pos)
        pos += 5 + 4 * n_points
        channels.append((wavelength, max_x10 / 10))
    (table_crc,) = struct.unpack_from("<H", payload, pos)
    assert pos + 2 == len(payload)
    assert crc(payload[table_start:pos]) == table_crc
    return {
        "echo": echo,
        "version": version,
        "sim": bool(flags & 1),
        "serial": serial,
        "channels": channels,
        "time_scale": scale_x100 / 100,
    }


def parse_telemetry(payload: bytes) -> dict[str, Any]:
    up, flags, faults, skin_a, skin_b, board_c, supply_mv, lease, count = struct.unpack_from(
        "<IBHhhhHHB", payload
    )
    assert len(payload) == 18 + 5 * count
    currents = [struct.unpack_from("<H", payload, 18 + 5 * i)[0] / 10 for i in range(count)]
    return {
        "uptime_ms": up,
        "on": bool(flags & OUTPUT_ON_FLAG),
        "faults": faults,
        "skin_c": (skin_a / 100, skin_b / 100),
        "board_c": board_c / 100,
        "supply_mv": supply_mv,
        "lease_ms": lease,
        "current_ma": currents,
    }


def set_output_payload(lease_ms: int, channel: int, current_ma: float) -> bytes:
    return struct.pack("<HB", lease_ms, 1) + struct.pack(
        "<BHHB", channel, round(current_ma * 10), 0, 100
    )


def test_doc_host_talks_to_the_simulator() -> None:
    clock, board, port = inprocess.make_sim(seed=3)
    host = DocHost(port)
    hello_seq = host.send(HELLO, bytes([VERSION]))
    info = parse_info(host.wait_for(lambda t, p: t == INFO, clock, 1.0))
    assert (info["echo"], info["version"], info["sim"]) == (hello_seq, VERSION, True)
    assert info["channels"][0][0] == 810

    tele = parse_telemetry(host.wait_for(lambda t, p: t == TELEMETRY, clock, 0.1))
    assert not tele["on"] and tele["faults"] == 0 and 10 < tele["skin_c"][0] < 40

    current_ma = info["channels"][0][1] / 2
    seq = host.send(SET_OUTPUT, set_output_payload(200, 0, current_ma))
    host.wait_for(lambda t, p: t == ACK and struct.unpack("<H", p)[0] == seq, clock, 0.1)
    tele = parse_telemetry(
        host.wait_for(lambda t, p: t == TELEMETRY and bool(p[4] & OUTPUT_ON_FLAG), clock, 0.1)
    )
    assert 0 < tele["lease_ms"] <= 200
    assert tele["current_ma"][0] == pytest.approx(current_ma, rel=0.1)

    host.wait_for(lambda t, p: t == EVENT and p[4] == LEASE_EXPIRED, clock, 0.3)
    tele = parse_telemetry(host.wait_for(lambda t, p: t == TELEMETRY, clock, 0.1))
    assert not tele["on"] and tele["lease_ms"] == 0
    assert not board.state()["outputs_on"]


class RawPty:
    """The pty opened with plain os calls, set raw as the doc's physical layer says."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def read(self, size: int) -> bytes:
        try:
            return os.read(self.fd, size)
        except BlockingIOError:
            return b""

    def wait_readable(self, timeout_s: float) -> bool:
        return bool(select.select([self.fd], [], [], max(0.0, timeout_s))[0])

    def close(self) -> None:
        os.close(self.fd)


@pytest.mark.slow
def test_doc_host_talks_to_the_pty_simulator(pty_sim: Any) -> None:
    port = RawPty(pty_sim.port)
    try:
        host = DocHost(port)
        hello_seq = host.send(HELLO, bytes([VERSION]))
        info = parse_info(host.wait_for(lambda t, p: t == INFO, time.monotonic, 2.0))
        assert info["echo"] == hello_seq and info["sim"]
        seq = host.send(SET_OUTPUT, set_output_payload(150, 0, info["channels"][0][1] / 4))
        is_ack = lambda t, p: t == ACK and struct.unpack("<H", p)[0] == seq  # noqa: E731
        host.wait_for(is_ack, time.monotonic, 0.5)
        host.wait_for(lambda t, p: t == TELEMETRY and bool(p[4] & 1), time.monotonic, 0.5)
        host.wait_for(lambda t, p: t == EVENT and p[4] == LEASE_EXPIRED, time.monotonic, 0.5)
        tele = parse_telemetry(host.wait_for(lambda t, p: t == TELEMETRY, time.monotonic, 0.5))
        assert not tele["on"]
    finally:
        port.close()
