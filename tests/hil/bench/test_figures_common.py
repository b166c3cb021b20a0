"""The report's arithmetic and table: percentiles, spreads, floors, Markdown rows."""

from __future__ import annotations

import pytest

from drivers.protocol import OutputOff, encode_frame
from hil.bench.figures_common import (
    TYPICAL_TELEMETRY,
    Figure,
    fault_floor_s,
    fmt_spread,
    fmt_value,
    iqr_spread,
    median,
    missing,
    percentile,
    render_markdown,
    tail_spread,
    wire_time_s,
)


def test_percentile_interpolates_between_closest_ranks_like_numpy() -> None:
    samples = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 50) == 3.0
    assert percentile(samples, 100) == 5.0
    assert percentile(samples, 25) == 2.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1.0, 100.5])
def test_percentile_refuses_a_q_outside_0_to_100(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_spreads_scale_seconds_to_milliseconds() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert median(samples, 1e3) == pytest.approx(50.5)
    tail = tail_spread(samples, 1e3)
    assert tail["max"] == pytest.approx(100.0)
    assert tail["p99"] == pytest.approx(99.01)
    assert iqr_spread(samples, 1e3) == pytest.approx({"p25": 25.75, "p75": 75.25})


def test_the_fault_floor_is_a_telemetry_period_plus_both_frames_on_the_wire() -> None:
    telemetry = encode_frame(TYPICAL_TELEMETRY, 1)
    off = encode_frame(OutputOff(), 1)
    expected_s = 0.020 + (len(telemetry) + len(off)) * 10 / 115200
    assert fault_floor_s(115200) == pytest.approx(expected_s)
    assert 0.023 < fault_floor_s(115200) < 0.026  # "about 25 ms" (docs/performance.md)
    assert wire_time_s(b"\x00" * 1152, 115200) == pytest.approx(0.1)


def test_values_are_printed_with_three_significant_figures() -> None:
    assert fmt_value(None) == "—"
    assert fmt_value(0.0) == "0"
    assert fmt_value(1234.5) == "1,234"
    assert fmt_value(23.84) == "23.8"
    assert fmt_value(2.5) == "2.50"
    assert fmt_value(0.01234) == "0.0123"
    assert fmt_value(-2.18e-05) == "-0.00002"
    assert fmt_spread({"p25": 1.0, "p75": 2.0, "max": 3.0}) == "IQR 1.00–2.00, max 3.00"
    assert fmt_spread({}) == "—"


def test_the_table_has_one_row_per_figure_with_floor_target_and_verdict() -> None:
    figures = [
        Figure(
            "fault", "fault→off", "ms", 15.0, 200, {"p99": 24.5, "max": 26.0},
            target="p99 ≤ 29.8 ms", met=True, floor=23.8, note="sim clock",
        ),
        Figure("cpu", "CPU", "%", 2.5, 10, {"max": 3.0}, target="< 2 %", met=False),
        missing("ledger", "ledger query", "ms", "no disk | none"),
    ]  # fmt: skip
    lines = render_markdown(figures).splitlines()
    assert lines[0].startswith("| figure | n | median | spread | unit | physical floor |")
    assert lines[2] == (
        "| fault→off | 200 | 15.0 | p99 24.5, max 26.0 | ms | 23.8 | p99 ≤ 29.8 ms | yes "
        "| sim clock |"
    )
    assert lines[3] == "| CPU | 10 | 2.50 | max 3.00 | % | — | < 2 % | **NO** |  |"
    assert lines[4] == (
        "| ledger query | 0 | — | — | ms | — | — | — | not measured: no disk \\| none |"
    )
    assert len(lines) == 5
