"""``python -m hil.tools.plot TRACE.csv -o out.png``: draw a trace so a person can see a run.

Owns: the picture of one trace (``hil.tools.trace`` format): irradiance commanded (dashed) and
measured (solid) per channel; the three temperature sensors with the 40 °C warning,
41 °C software stop and 43 °C board cutoff; and the controller state as a step line with
the events marked and labelled, all against one time axis (minutes for long runs).
Does not own the trace format or any judgement of the run.

matplotlib is the optional extra ``plot`` (``pip install 'nirpad[plot]'``); it is
imported only when drawing, with the Agg backend, so no display is needed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from hil.tools.trace import WAVELENGTHS_NM, TraceRow, read_trace

STATES: Final = ("booting", "self_test", "idle", "ready", "treating", "paused", "complete", "fault")
TEMPERATURE_LINES_C: Final = (
    (40.0, "warn 40 °C"),
    (41.0, "stop 41 °C"),
    (43.0, "board cutoff 43 °C"),
)
CHANNEL_COLOURS: Final = ("tab:red", "tab:purple")
MAX_EVENT_LABELS: Final = 40


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotUnavailableError(
            "drawing a trace needs matplotlib, the optional extra 'plot': "
            "pip install 'nirpad[plot]' (or pip install matplotlib)"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trace(rows: Sequence[TraceRow], out: Path, title: str = "") -> Path:
    """Draw ``rows`` into the PNG ``out``; returns ``out``."""
    if not rows:
        raise ValueError("the trace has no rows")
    plt = _pyplot()
    minutes = rows[-1].time_s - rows[0].time_s > 180.0
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    t = [r.time_s / scale for r in rows]
    fig, (ax_irr, ax_temp, ax_state) = plt.subplots(
        3, 1, sharex=True, figsize=(11, 8), height_ratios=(3, 3, 2), layout="constrained"
    )
    _irradiance(ax_irr, t, rows)
    _temperatures(ax_temp, t, rows)
    _states(ax_state, t, rows)
    ax_state.set_xlabel(f"time ({unit})")
    fig.suptitle(title or "nirpad trace")
    fig.savefig(out, dpi=110, format="png")  # to ``out`` itself, whatever its suffix
    plt.close(fig)
    return out


def _irradiance(ax: Any, t: list[float], rows: Sequence[TraceRow]) -> None:
    for ch, (wl, colour) in enumerate(zip(WAVELENGTHS_NM, CHANNEL_COLOURS, strict=True)):
        commanded = [r.commanded_mw_cm2[ch] for r in rows]
        measured = [r.measured_mw_cm2[ch] for r in rows]
        if not any(v > 0 for v in commanded + measured):
            continue  # an unused channel only clutters the legend
        ax.step(t, commanded, where="post", ls="--", color=colour, label=f"{wl} nm commanded")
        ax.step(t, measured, where="post", color=colour, alpha=0.7, label=f"{wl} nm measured")
    ax.set_ylabel("irradiance (mW/cm²)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")


def _temperatures(ax: Any, t: list[float], rows: Sequence[TraceRow]) -> None:
    ax.plot(t, [r.skin_a_c for r in rows], label="skin A", color="tab:orange")
    ax.plot(t, [r.skin_b_c for r in rows], label="skin B", color="tab:brown", ls=":")
    ax.plot(t, [r.board_c for r in rows], label="board", color="tab:gray")
    for limit_c, label in TEMPERATURE_LINES_C:
        ax.axhline(limit_c, color="tab:red", lw=0.8, ls="--", alpha=0.6)
        ax.annotate(
            label, (0.0, limit_c), xycoords=("axes fraction", "data"), fontsize="x-small",
            color="tab:red", va="bottom", xytext=(3, 1), textcoords="offset points",
        )  # fmt: skip
    ax.set_ylabel("temperature (°C)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")


def _states(ax: Any, t: list[float], rows: Sequence[TraceRow]) -> None:
    names = list(STATES) + sorted({r.state for r in rows} - set(STATES))
    ax.step(t, [names.index(r.state) for r in rows], where="post", color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.set_ylim(-0.5, len(names) - 0.5)
    ax.set_ylabel("state")
    ax.grid(alpha=0.3)
    marked = [(x, r) for x, r in zip(t, rows, strict=True) if r.events]
    for x, _ in marked:
        for axis in ax.get_figure().axes:
            axis.axvline(x, color="tab:green", lw=0.6, alpha=0.5)
    for x, text in _label_groups(marked, (t[-1] - t[0]) * 0.015)[:MAX_EVENT_LABELS]:
        ax.annotate(text, (x, len(names) - 0.6), rotation=90, va="top", fontsize="x-small",
                    color="tab:green", xytext=(2, 0), textcoords="offset points")  # fmt: skip


def _label_groups(marked: list[tuple[float, TraceRow]], gap: float) -> list[tuple[float, str]]:
    """Events closer than ``gap`` share one label, so labels do not print over each other."""
    groups: list[tuple[float, list[str]]] = []
    for x, row in marked:
        if groups and x - groups[-1][0] < gap:
            groups[-1][1].extend(row.events)
        else:
            groups.append((x, list(row.events)))
    return [(x, "; ".join(events)) for x, events in groups]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.tools.plot", description=__doc__.split("\n")[0]
    )
    parser.add_argument("trace", type=Path, help="a trace CSV written by hil.tools.trace")
    parser.add_argument("-o", "--out", type=Path, help="PNG to write (default: TRACE.png)")
    parser.add_argument("--title", default="", help="title above the plots")
    args = parser.parse_args(argv)
    out = args.out or args.trace.with_suffix(".png")
    try:
        plot_trace(read_trace(args.trace), out, args.title or args.trace.name)
    except (PlotUnavailableError, ValueError, OSError) as exc:
        print(f"python -m hil.tools.plot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # matplotlib takes seconds to load and draw
        print("python -m hil.tools.plot: interrupted", file=sys.stderr)
        return 130  # the shell's code for SIGINT
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
