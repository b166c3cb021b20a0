"""What every figure of the performance report is made of, and how the table reads.

Owns: the ``Figure`` record (median, spread, unit, target, physical floor, a note), the
percentile/spread arithmetic, the physical floors (telemetry period plus the frames on
the wire at the configured baud rate), and the Markdown table. Does not own measuring:
the ``figures_*`` modules measure and hand back ``Figure`` records; ``report`` runs them
and writes the files. Figures are reported against their targets, never asserted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from drivers.protocol import (
    BoardFault,
    ChannelSetpoint,
    ChannelTelemetry,
    OutputOff,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    encode_frame,
)

BITS_PER_BYTE: Final = 10  # 8N1: start bit, 8 data bits, stop bit
TELEMETRY_PERIOD_S: Final = 0.020
# A typical two-channel TELEMETRY frame (both channels listed, output on, contact).
TYPICAL_TELEMETRY: Final = Telemetry(
    uptime_ms=123_456,
    flags=TelemetryFlag.OUTPUT_ON | TelemetryFlag.CONTACT | TelemetryFlag.RAIL_ENABLED,
    faults=BoardFault.NONE,
    skin_a_c=33.25,
    skin_b_c=33.5,
    board_c=41.0,
    supply_mv=11_940,
    lease_remaining_ms=180,
    channels=(ChannelTelemetry(349.8, 0, 100), ChannelTelemetry(0.0, 0, 100)),
)


@dataclass(frozen=True)
class Figure:
    """One row of the report. ``spread`` maps a label (``p99``, ``max``, ``IQR``) to text."""

    name: str  # stable key, the ``--only`` group it came from plus a suffix
    title: str
    unit: str
    median: float | None
    n: int
    spread: dict[str, float] = field(default_factory=dict)
    target: str = "—"
    met: bool | None = None  # None: no target, or nothing measured
    floor: float | None = None  # physical floor, in ``unit``
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # JSON only, not in the table

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def missing(name: str, title: str, unit: str, why: str, target: str = "—") -> Figure:
    """A row that says plainly why there is no figure (never a silent gap)."""
    return Figure(name, title, unit, None, 0, target=target, note=f"not measured: {why}")


# ---------------------------------------------------------------- arithmetic


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), linear between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be between 0 and 100, not {q}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def tail_spread(samples: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """p99 and max (latencies, where the tail is what matters), times ``scale``."""
    return {"p99": percentile(samples, 99) * scale, "max": max(samples) * scale}


def iqr_spread(samples: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """The interquartile range, as its two ends (p25, p75), times ``scale``."""
    return {"p25": percentile(samples, 25) * scale, "p75": percentile(samples, 75) * scale}


def median(samples: Sequence[float], scale: float = 1.0) -> float:
    return percentile(samples, 50) * scale


# ---------------------------------------------------------------- physical floors


def wire_time_s(frame: bytes, baud: int) -> float:
    """Time the last bit of ``frame`` needs to cross the wire, 8N1 at ``baud``."""
    return len(frame) * BITS_PER_BYTE / baud


def telemetry_wire_s(baud: int) -> float:
    return wire_time_s(encode_frame(TYPICAL_TELEMETRY, 0xBEEF), baud)


def output_off_wire_s(baud: int) -> float:
    return wire_time_s(encode_frame(OutputOff(), 0xBEEF), baud)


def set_output_wire_s(baud: int) -> float:
    command = SetOutput(200, (ChannelSetpoint(0, 443.0), ChannelSetpoint(1, 0.0)))
    return wire_time_s(encode_frame(command, 0xBEEF), baud)


def fault_floor_s(baud: int) -> float:
    """Worst-case physics of fault→off: a whole telemetry period until the board samples
    the fault, the TELEMETRY frame to the host, the OUTPUT_OFF frame back."""
    return TELEMETRY_PERIOD_S + telemetry_wire_s(baud) + output_off_wire_s(baud)


# ---------------------------------------------------------------- the table


def fmt_value(value: float | None) -> str:
    """Three significant figures, without scientific notation for everyday sizes."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.001:
        return f"{value:.3g}"
    return f"{value:.5f}"  # tiny values (a dose error in %) read better as plain decimals


def fmt_spread(spread: dict[str, float]) -> str:
    if {"p25", "p75"} <= spread.keys():
        rest = {k: v for k, v in spread.items() if k not in ("p25", "p75")}
        text = f"IQR {fmt_value(spread['p25'])}–{fmt_value(spread['p75'])}"
        return ", ".join([text, *(f"{k} {fmt_value(v)}" for k, v in rest.items())])
    return ", ".join(f"{k} {fmt_value(v)}" for k, v in spread.items()) or "—"


def _met(figure: Figure) -> str:
    return {None: "—", True: "yes", False: "**NO**"}[figure.met]


TABLE_HEADER: Final = (
    "| figure | n | median | spread | unit | physical floor | target | met | note |",
    "|---|---:|---:|---|---|---:|---|---|---|",
)
BEFORE_HEADER: Final = (
    "| figure | n | before | median | spread | unit | physical floor | target | met | note |",
    "|---|---:|---:|---:|---|---|---:|---|---|---|",
)


def render_markdown(
    figures: Sequence[Figure], before: Mapping[str, float | None] | None = None
) -> str:
    """The report's Markdown table, one row per figure, with a trailing newline.

    With ``before`` (figure name → an earlier run's median), a ``before`` column sits
    beside the median, so a change reads at a glance."""
    lines = list(TABLE_HEADER if before is None else BEFORE_HEADER)
    for fig in figures:
        cells = [
            fig.title,
            str(fig.n),
            fmt_value(fig.median),
            fmt_spread(fig.spread),
            fig.unit,
            fmt_value(fig.floor),
            fig.target,
            _met(fig),
            fig.note,
        ]
        if before is not None:
            cells.insert(2, fmt_value(before.get(fig.name)))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
