"""Link health: the serial link's counters as the status shows them, and the warning
when the link loses too many frames.

Owns: mapping the board client's counters (the decoder's, the commands') onto the plain
``LinkHealth`` of the snapshot, so the controller never sees a driver type, and
``LinkMonitor``, the one-minute rule behind the ``link_errors`` warning. Does not own
the counting (``drivers``) nor what a warning does (the controller shows it).

The rule: on the tick, at most once a second (nothing per frame), the monitor samples
how many frames the decoder has seen and how many it dropped (framing, CRC, decode and
version errors; each dropped frame is in exactly one). Over the last minute of samples
(host monotonic clock) the warning turns on when at least ``LINK_WARN_MIN_DROPPED``
frames were dropped and they are more than ``LINK_WARN_FRACTION`` of the frames seen,
and off again once they are at most ``LINK_CLEAR_FRACTION`` (or fewer than half the
minimum), so a rate near the threshold does not flap. Why 1 %: a UART on the pad's
short cable drops no frames at all; at the HIL matrix's F12 corruption (0.001 of the
bytes) about 2.4 % of frames are dropped, and although every session still completes, a
cable like that deserves a look (at 0.005 it is 11 %, at 0.01 the telemetry goes stale
within seconds and the session faults). Sequence gaps and duplicates are shown but not
part of the rate: a dropped frame usually also leaves a gap, and a wholly lost frame
is the stale-telemetry fault's business.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Final

from drivers.client import BoardClient
from drivers.protocol import DecoderStats
from safety.core_events import LinkHealth
from safety.faults import WarningCode

__all__ = [
    "LINK_CLEAR_FRACTION",
    "LINK_SAMPLE_S",
    "LINK_WARN_FRACTION",
    "LINK_WARN_MIN_DROPPED",
    "LINK_WINDOW_S",
    "LinkMonitor",
    "link_health",
]

log = logging.getLogger(__name__)

LINK_WINDOW_S: Final = 60.0
LINK_SAMPLE_S: Final = 1.0
LINK_WARN_FRACTION: Final = 0.01
LINK_CLEAR_FRACTION: Final = 0.005
LINK_WARN_MIN_DROPPED: Final = 10
_ON: Final = (WarningCode.LINK_ERRORS,)


class LinkMonitor:
    """Frames seen and dropped over the last minute, sampled on ticks; the warning."""

    def __init__(self, window_s: float = LINK_WINDOW_S, sample_s: float = LINK_SAMPLE_S) -> None:
        self._window_s = window_s
        self._sample_s = sample_s
        self._samples: deque[tuple[float, int, int]] = deque()  # (t, frames, dropped)
        self._next_s = -math.inf
        self.warnings: tuple[WarningCode, ...] = ()
        """``(LINK_ERRORS,)`` while the warning is on, else empty."""

    def last_minute(self) -> tuple[int, int]:
        """(frames seen, frames dropped) between the oldest and newest sample kept."""
        if not self._samples:
            return 0, 0
        _, frames_0, dropped_0 = self._samples[0]
        _, frames_1, dropped_1 = self._samples[-1]
        return frames_1 - frames_0, dropped_1 - dropped_0

    def sample(self, now_s: float, stats: DecoderStats) -> bool:
        """On a tick: take a sample if one is due. True when the warning turned on or off."""
        if now_s < self._next_s:
            return False
        self._next_s = now_s + self._sample_s
        dropped = stats.frames_dropped
        samples = self._samples
        samples.append((now_s, stats.frames_ok + dropped, dropped))
        while now_s - samples[0][0] > self._window_s:
            samples.popleft()
        return self._judge()

    def _judge(self) -> bool:
        frames, dropped = self.last_minute()
        if self.warnings:
            off = dropped < LINK_WARN_MIN_DROPPED / 2 or dropped <= LINK_CLEAR_FRACTION * frames
            if off:
                log.info("link: %d of %d frames dropped in the last minute", dropped, frames)
                self.warnings = ()
            return off
        on = dropped >= LINK_WARN_MIN_DROPPED and dropped > LINK_WARN_FRACTION * frames
        if on:
            log.warning("link: %d of %d frames dropped in the last minute", dropped, frames)
            self.warnings = _ON
        return on


def link_health(client: BoardClient, monitor: LinkMonitor) -> LinkHealth:
    """The client's counters since connecting and the monitor's last minute, as plain data."""
    stats, counters = client.stats, client.counters
    frames, dropped = monitor.last_minute()
    return LinkHealth(
        frames_ok=stats.frames_ok,
        framing_errors=stats.framing_errors,
        crc_errors=stats.crc_errors,
        decode_errors=stats.decode_errors,
        version_errors=stats.version_errors,
        sequence_gaps=stats.sequence_gaps,
        duplicates=stats.duplicates,
        commands_sent=counters.commands_sent,
        lease_renewals=counters.lease_renewals,
        command_retries=counters.retries,
        command_timeouts=counters.timeouts,
        naks={code.name.lower(): n for code, n in sorted(counters.naks_by_code.items())},
        frames_last_min=frames,
        dropped_last_min=dropped,
    )
