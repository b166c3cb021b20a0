"""``python -m hil.bench protocol``: its round-trip figures read as figures can."""

from __future__ import annotations

from hil.bench import protocol


def test_the_round_trip_percentiles_never_exceed_the_slowest_round_trip() -> None:
    # statistics.quantiles' default ("exclusive") put p99 at 7.88 ms above a max of 5 ms
    assert protocol.summary_ms([0.001, 0.002, 0.005]) == "p50 2.00 ms, p99 4.94 ms, max 5.00 ms"
