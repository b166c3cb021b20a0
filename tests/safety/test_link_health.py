"""Link health: the link's counters in the snapshot, and the ``link_errors`` warning.

The monitor's rule is tested on its own with hand-made counters; the rest on the
in-process simulator with injected corruption, on the virtual clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from drivers.protocol import DecoderStats, FrameDecoder
from safety.core_events import SafetyEvent, SafetyWarning
from safety.faults import WarningCode
from safety.link_health import (
    LINK_CLEAR_FRACTION,
    LINK_SAMPLE_S,
    LINK_WARN_MIN_DROPPED,
    LINK_WINDOW_S,
    LinkMonitor,
)

from .conftest import Rig, make_profile

LINK_ERRORS = WarningCode.LINK_ERRORS


def _stats(frames_ok: int, crc_errors: int = 0, **other: Any) -> DecoderStats:
    return DecoderStats(frames_ok=frames_ok, crc_errors=crc_errors, **other)


def _warned(events: list[SafetyEvent]) -> bool:
    return any(isinstance(e, SafetyWarning) and e.code is LINK_ERRORS for e in events)


# ---------------------------------------------------------------- the rule on its own


def test_a_clean_link_never_warns() -> None:
    monitor = LinkMonitor()
    for second in range(300):
        assert not monitor.sample(float(second), _stats(100 * second))
    assert monitor.warnings == ()
    assert monitor.last_minute() == (6000, 0)


def test_more_than_one_percent_dropped_warns_then_clears_below_half_of_it() -> None:
    monitor = LinkMonitor()
    assert monitor.last_minute() == (0, 0)
    monitor.sample(0.0, _stats(0))
    # 3 of every 100 frames dropped: on as soon as at least the minimum is dropped
    seconds = 1
    while not monitor.sample(float(seconds), _stats(97 * seconds, crc_errors=3 * seconds)):
        seconds += 1
    assert monitor.warnings == (LINK_ERRORS,)
    assert 3 * seconds >= LINK_WARN_MIN_DROPPED > 3 * (seconds - 1)
    # the link is clean again: on until the minute holds at most half the threshold
    base_ok, base_crc = 97 * seconds, 3 * seconds
    t_s = float(seconds)
    for _ in range(int(LINK_WINDOW_S)):
        t_s += 1.0
        base_ok += 100
        if monitor.sample(t_s, _stats(base_ok, crc_errors=base_crc)):
            break
    assert monitor.warnings == ()
    frames, dropped = monitor.last_minute()
    assert dropped < LINK_WARN_MIN_DROPPED / 2 or dropped <= LINK_CLEAR_FRACTION * frames


def test_fewer_than_the_minimum_dropped_does_not_warn_even_at_a_high_rate() -> None:
    monitor = LinkMonitor()
    monitor.sample(0.0, _stats(0))
    assert not monitor.sample(1.0, _stats(10, crc_errors=LINK_WARN_MIN_DROPPED - 1))
    assert monitor.warnings == ()


def test_between_the_two_levels_the_warning_stays_as_it_is() -> None:
    """0.8 % dropped: not enough to raise, too much to clear (no flapping near 1 %)."""
    rising = LinkMonitor()
    rising.sample(0.0, _stats(0))
    for second in range(1, 61):
        rising.sample(float(second), _stats(992 * second, framing_errors=8 * second))
    assert rising.warnings == ()
    on = LinkMonitor()
    on.sample(0.0, _stats(0))
    on.sample(1.0, _stats(900, version_errors=100))
    assert on.warnings == (LINK_ERRORS,)
    for second in range(2, 200):
        on.sample(float(second), _stats(900 + 992 * second, version_errors=100 + 8 * second))
    assert on.warnings == (LINK_ERRORS,)


def test_samples_are_taken_once_a_second_and_kept_for_a_minute() -> None:
    monitor = LinkMonitor()
    monitor.sample(0.0, _stats(0))
    monitor.sample(LINK_SAMPLE_S / 2, _stats(1000, decode_errors=1000))  # not due: ignored
    assert monitor.last_minute() == (0, 0)
    for second in range(1, 200):
        monitor.sample(float(second), _stats(50 * second))
    assert monitor.last_minute() == (50 * int(LINK_WINDOW_S), 0)


# ---------------------------------------------------------------- on the simulator


def _treating(rig: Rig, transport: Any = None) -> None:
    core = rig.ready(transport)
    core.begin_session(make_profile(duration_min=10), "ab" * 32)
    rig.run(3.0)


class _WireTap:
    """The host's end of the wire, with a decoder of its own fed every byte the host
    reads: the counts the snapshot's link counters must equal."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.decoder = FrameDecoder()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self, size: int = 1) -> bytes:
        data = bytes(self.inner.read(size))
        self.decoder.feed(data)
        return data


def test_counters_are_in_the_snapshot_and_grow_with_corruption(rig: Rig) -> None:
    tap = _WireTap(rig.port)
    _treating(rig, tap)
    clean = rig.c.snapshot().link
    assert clean.frames_ok > 250  # telemetry and ACKs
    assert clean.lease_renewals > 100 and clean.commands_sent >= clean.lease_renewals
    assert clean.crc_errors + clean.framing_errors == 0 and clean.naks == {}
    rig.board.inject("link_corrupt", rate=0.002)
    rig.run(10.0)
    link = rig.c.snapshot().link
    assert link.crc_errors > clean.crc_errors and link.framing_errors > clean.framing_errors
    assert link.sequence_gaps > 0
    assert link.frames_ok > clean.frames_ok
    assert link.dropped_last_min > 0
    wire = tap.decoder.stats
    assert (link.frames_ok, link.framing_errors, link.crc_errors, link.decode_errors) == (
        wire.frames_ok,
        wire.framing_errors,
        wire.crc_errors,
        wire.decode_errors,
    )
    assert (link.version_errors, link.sequence_gaps, link.duplicates) == (
        wire.version_errors,
        wire.sequence_gaps,
        wire.duplicates,
    )


def test_naks_are_counted_by_code(rig: Rig) -> None:
    _treating(rig)
    rig.board.set_contact(False)  # the renewal already on its way is refused
    rig.run(0.2)
    naks = rig.c.snapshot().link.naks
    assert set(naks) == {"no_contact"} and naks["no_contact"] >= 1


@pytest.mark.slow
def test_a_lossy_link_warns_and_the_warning_clears_when_it_is_clean(rig: Rig) -> None:
    _treating(rig)
    rig.board.inject("link_corrupt", rate=0.002)  # about 4 % of frames dropped
    events = rig.run(LINK_WINDOW_S, until=_warned)
    assert _warned(events)
    assert LINK_ERRORS in [w.code for w in rig.c.snapshot().warnings]
    assert rig.c.snapshot().fault is None  # a warning, not a fault: treating goes on
    assert rig.board.state()["outputs_on"]
    rig.board.clear_injections()
    rig.run(LINK_WINDOW_S + 2 * LINK_SAMPLE_S)
    assert LINK_ERRORS not in [w.code for w in rig.c.snapshot().warnings]


@pytest.mark.slow
def test_a_clean_link_gives_no_warning_in_three_minutes(rig: Rig) -> None:
    _treating(rig)
    events = rig.run(3 * LINK_WINDOW_S)
    assert not _warned(events)
    link = rig.c.snapshot().link
    assert link.dropped_last_min == 0 and link.frames_last_min > 5000


@pytest.mark.slow
def test_an_occasional_bad_byte_does_not_warn(rig: Rig) -> None:
    """One byte in 5000 (about one frame in 300): below the threshold."""
    _treating(rig)
    rig.board.inject("link_corrupt", rate=0.0002)
    events = rig.run(2 * LINK_WINDOW_S)
    assert not _warned(events)
    assert rig.c.snapshot().link.dropped_last_min > 0
