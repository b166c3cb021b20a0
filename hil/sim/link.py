"""One direction of the simulated serial wire, paced at the baud rate.

Owns: when each byte reaches the far end (10 bits per byte, 8N1: one byte every
10/baud seconds, back to back), and the link faults that act on bytes in flight:
dropping, corrupting, delaying and duplicating. Does not own framing or what the
bytes mean. Times are protocol (real) seconds; the time scale never applies here.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Final

BITS_PER_BYTE: Final = 10
_EPS_BYTES: Final = 1e-6  # tolerance for float arithmetic on arrival times


@dataclass(slots=True)
class LinkFaults:
    """Link faults in force, shared by both directions of the wire."""

    drop_until_s: float = -math.inf
    corrupt_rate: float = 0.0
    delay_s: float = 0.0
    duplicate: bool = False

    def clear(self) -> None:
        self.drop_until_s = -math.inf
        self.corrupt_rate = 0.0
        self.delay_s = 0.0
        self.duplicate = False


# A queued segment: (when its first bit arrives, when its last byte arrives, its bytes).
# A plain tuple, not a dataclass: three are made every telemetry period, and only the
# first segment is ever partly handed over (``PacedLink._head_taken`` counts that part).
_Segment = tuple[float, float, bytes]


class PacedLink:
    """Bytes sent at one end arrive at the other one byte time apart, in order.

    Data is queued in segments that end at a frame delimiter (0x00), so the far end
    can ask when the next whole frame will have arrived.
    """

    def __init__(self, baud: int, rng: random.Random, faults: LinkFaults) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be positive, not {baud}")
        self.byte_time_s = BITS_PER_BYTE / baud
        self.faults = faults
        self.bytes_dropped = 0
        self.bytes_corrupted = 0
        self._rng = rng
        self._segments: deque[_Segment] = deque()
        self._head_taken = 0  # bytes of the first segment already handed to the far end
        self._wire_free_s = -math.inf
        self._last_arrival_s = -math.inf

    def send(self, data: bytes, now_s: float) -> None:
        """Put ``data`` on the wire at ``now_s`` (after anything still being sent)."""
        if not data:
            return
        faults = self.faults
        if now_s < faults.drop_until_s:
            self.bytes_dropped += len(data)
            return
        if faults.corrupt_rate > 0.0:
            data = self._corrupt(data, faults.corrupt_rate)
        delay_s = faults.delay_s
        if not faults.duplicate and data.find(0) == len(data) - 1:
            self._queue(data, now_s, delay_s)  # one whole frame (the usual send): no list
            return
        pieces = _pieces(data)
        for _ in range(2 if faults.duplicate else 1):
            for piece in pieces:
                self._queue(piece, now_s, delay_s)

    def _queue(self, piece: bytes, now_s: float, delay_s: float) -> None:
        duration_s = len(piece) * self.byte_time_s
        start_s = self._wire_free_s
        if now_s > start_s:
            start_s = now_s
        self._wire_free_s = start_s + duration_s
        arrival_start_s = start_s + delay_s
        if self._last_arrival_s > arrival_start_s:
            arrival_start_s = self._last_arrival_s
        self._last_arrival_s = arrival_end_s = arrival_start_s + duration_s
        self._segments.append((arrival_start_s, arrival_end_s, piece))

    def _corrupt(self, data: bytes, rate: float) -> bytes:
        out = bytearray(data)
        rng = self._rng
        for index in range(len(out)):
            if rng.random() < rate:
                out[index] ^= rng.randrange(1, 256)
                self.bytes_corrupted += 1
        return bytes(out)

    def receive(self, now_s: float) -> bytes:
        """Every byte whose last bit has arrived by ``now_s``, not returned before."""
        segments = self._segments
        if not segments:
            return b""
        byte_time_s = self.byte_time_s
        start_s, _, data = segments[0]
        if now_s <= start_s:
            return b""  # polled by its first bit's start (a frame just sent): nothing arrived
        taken = self._head_taken
        arrived = int((now_s - start_s) / byte_time_s + _EPS_BYTES)
        if arrived <= taken:
            return b""  # polled again before the next byte (the usual case)
        if arrived >= len(data) and len(segments) == 1:
            segments.popleft()  # one whole frame: hand it over without a copy
            self._head_taken = 0
            return data[taken:] if taken else data
        out = bytearray()
        while segments:
            start_s, _, data = segments[0]
            arrived = int((now_s - start_s) / byte_time_s + _EPS_BYTES)
            if arrived >= len(data):
                out += data[self._head_taken :]
                segments.popleft()
                self._head_taken = 0
                continue
            if arrived > self._head_taken:
                out += data[self._head_taken : arrived]
                self._head_taken = arrived
            break
        return bytes(out)

    def receive_whole(self, now_s: float) -> bytes:
        """The queued segments (usually whole frames) whose last bit has arrived by
        ``now_s``, not returned before; a segment still arriving waits for its last byte
        (a UART FIFO with a receive timeout hands over whole frames the same way)."""
        segments = self._segments
        if not segments:
            return b""
        out = bytearray()
        byte_time_s = self.byte_time_s
        while segments:
            start_s, _, data = segments[0]
            if (now_s - start_s) / byte_time_s + _EPS_BYTES < len(data):
                break
            out += data[self._head_taken :]
            segments.popleft()
            self._head_taken = 0
        return bytes(out)

    def next_arrival_s(self) -> float | None:
        """When the next byte not yet received arrives, or None if nothing is in flight."""
        if not self._segments:
            return None
        start_s = self._segments[0][0]
        return start_s + (self._head_taken + 1) * self.byte_time_s

    def next_complete_s(self) -> float | None:
        """When the last byte of the first queued segment (usually a frame) arrives."""
        segments = self._segments
        return segments[0][1] if segments else None

    @property
    def pending_bytes(self) -> int:
        return sum(len(data) for _, _, data in self._segments) - self._head_taken

    def flush(self) -> None:
        """Lose everything in flight (a reset or an unplugged cable)."""
        self._segments.clear()
        self._head_taken = 0


def _pieces(data: bytes) -> list[bytes]:
    """Split ``data`` after each 0x00 delimiter."""
    if data.find(0) in (-1, len(data) - 1):
        return [data]
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        end = data.find(0, start)
        end = len(data) if end < 0 else end + 1
        pieces.append(data[start:end])
        start = end
    return pieces
