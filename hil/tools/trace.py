"""Traces: what happened in a run, one CSV row per moment, for people to look at.

Owns: the trace CSV format (``TRACE_COLUMNS``: time, controller state, commanded and
measured irradiance per channel, the three temperature sensors, events), writing it
(``TraceWriter``), reading it back (``read_trace``), and ``StackTracer``, a tick hook
that records a trace from an in-process rig's run (a tick watcher of the rig's).
Does not own drawing (``hil.tools.plot``) or any judgement of the run: a trace is evidence
for an engineer, never a pass/fail.

``python -m hil.tools.trace OUT.csv [--minutes N]`` records a whole session of the built-in
810 nm profile on the virtual clock (used for docs/img/session-trace.png).

Columns, channel 0 is 810 nm and 1 is 850 nm:
``time_s`` (clock seconds from the start of the trace), ``state``,
``commanded_810_mw_cm2``/``commanded_850_mw_cm2`` (what the board was told, average over
a pulse period, from the board calibration), ``measured_810_mw_cm2``/
``measured_850_mw_cm2`` (what the host measured from telemetry), ``skin_a_c``,
``skin_b_c``, ``board_c`` (sensor readings), and ``events`` (``;``-separated).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TextIO

from hil.tools.arg_types import at_least, positive

WAVELENGTHS_NM: Final = (810, 850)
TRACE_COLUMNS: Final = (
    "time_s",
    "state",
    *(f"commanded_{wl}_mw_cm2" for wl in WAVELENGTHS_NM),
    *(f"measured_{wl}_mw_cm2" for wl in WAVELENGTHS_NM),
    "skin_a_c",
    "skin_b_c",
    "board_c",
    "events",
)


@dataclass(frozen=True)
class TraceRow:
    """One moment. Irradiances are per channel (index order); NaN means "not known"."""

    time_s: float
    state: str
    commanded_mw_cm2: tuple[float, float]
    measured_mw_cm2: tuple[float, float]
    skin_a_c: float
    skin_b_c: float
    board_c: float
    events: tuple[str, ...] = ()


def _num(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"


def _parse(text: str) -> float:
    return math.nan if text == "" else float(text)


class TraceWriter:
    """Writes ``TraceRow``s to a CSV file; use as a context manager, or ``close()``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file: TextIO = self.path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(TRACE_COLUMNS)
        self.rows = 0

    def write(self, row: TraceRow) -> None:
        self._csv.writerow(
            (
                f"{row.time_s:.3f}",
                row.state,
                *map(_num, row.commanded_mw_cm2),
                *map(_num, row.measured_mw_cm2),
                _num(row.skin_a_c),
                _num(row.skin_b_c),
                _num(row.board_c),
                ";".join(row.events),
            )
        )
        self.rows += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_trace(path: Path | str) -> list[TraceRow]:
    """Read a trace written by ``TraceWriter``; ValueError names the bad line."""
    rows = []
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block for ever
        raise ValueError(f"{path}: not a regular file; a trace is a CSV file")
    with Path(path).open(newline="", encoding="utf-8") as file:
        try:
            reader = csv.DictReader(file)
            if tuple(reader.fieldnames or ()) != TRACE_COLUMNS:
                raise ValueError(f"{path}: not a nirpad trace (columns {reader.fieldnames})")
            for line, record in enumerate(reader, start=2):
                try:
                    rows.append(_row(_whole(record)))
                except (KeyError, ValueError) as exc:
                    raise ValueError(f"{path}, line {line}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not a nirpad trace (not UTF-8 text)") from exc
    return rows


def _whole(record: dict[str | None, Any]) -> dict[str, str]:
    """``record`` if it has a value for every column and no more, else ValueError."""
    extra = record.get(None) or []
    fields = sum(value is not None for key, value in record.items() if key is not None)
    if extra or fields != len(TRACE_COLUMNS):
        raise ValueError(f"{fields + len(extra)} fields, a trace row has {len(TRACE_COLUMNS)}")
    return {key: value for key, value in record.items() if key is not None}


def _row(r: dict[str, str]) -> TraceRow:
    commanded = tuple(_parse(r[f"commanded_{wl}_mw_cm2"]) for wl in WAVELENGTHS_NM)
    measured = tuple(_parse(r[f"measured_{wl}_mw_cm2"]) for wl in WAVELENGTHS_NM)
    return TraceRow(
        float(r["time_s"]),
        r["state"],
        (commanded[0], commanded[1]),
        (measured[0], measured[1]),
        _parse(r["skin_a_c"]),
        _parse(r["skin_b_c"]),
        _parse(r["board_c"]),
        tuple(e for e in r["events"].split(";") if e),
    )


# ---------------------------------------------------------------- in-process recording


def describe_event(event: dict[str, Any]) -> str | None:
    """A short label for a simulator event; None for ones a trace need not show."""
    kind = str(event.get("event"))
    if kind == "output":
        return None  # the irradiance columns show it; "output on/off" is added on a flip
    if kind == "injected":
        return f"injected {event.get('fault')}"
    if kind == "board_fault":
        faults = event.get("faults")
        return "board_fault " + ",".join(map(str, faults if isinstance(faults, list) else []))
    if kind in ("contact", "rail"):
        value = event.get("contact", event.get("enabled"))
        return f"{kind} {'on' if value else 'off'}"
    if kind == "button":
        return f"button {'down' if event.get('down') else 'up'}"
    return kind


class StackTracer:
    """A tick hook that writes a row every ``every_s`` and whenever something happens.

    ``stack`` is anything with ``clock``, ``board`` (a ``SimBoard``) and ``controller``
    (the in-process rig's view in ``InProcessRig.trace_to``). It takes the board's events
    with ``pop_events()``: do not combine it with another reader of them.
    """

    def __init__(self, stack: Any, writer: TraceWriter, every_s: float = 1.0) -> None:
        self.stack = stack
        self.writer = writer
        self.every_s = every_s
        self._t0_s = float(stack.clock())
        self._next_row_s = self._t0_s
        self._last_state = ""
        self._output_on = False

    def __call__(self) -> None:
        now_s = float(self.stack.clock())
        state = str(self.stack.controller.state)
        events = self._events()
        if events or state != self._last_state or now_s >= self._next_row_s:
            self._last_state = state
            self._next_row_s = now_s + self.every_s
            self.writer.write(self.row(now_s, state, events))

    def _events(self) -> list[str]:
        labels = []
        for event in self.stack.board.pop_events():
            if event.get("event") == "output" and bool(event.get("on")) != self._output_on:
                self._output_on = bool(event.get("on"))
                labels.append(f"output {'on' if self._output_on else 'off'}")
            label = describe_event(event)
            if label is not None:
                labels.append(label)
        return labels

    def row(self, now_s: float, state: str, events: Sequence[str]) -> TraceRow:
        board = self.stack.board
        sensors = board.state()["sensors_c"]
        snapshot = self.stack.controller.core.snapshot()
        measured = tuple(snapshot.irradiance_mw_cm2.get(wl, 0.0) for wl in WAVELENGTHS_NM)
        return TraceRow(
            now_s - self._t0_s,
            state,
            _commanded_mw_cm2(board),
            (measured[0], measured[1]),
            float(sensors["skin_a"]),
            float(sensors["skin_b"]),
            float(sensors["board"]),
            tuple(events),
        )


def _commanded_mw_cm2(board: Any) -> tuple[float, float]:
    """The board's setpoints as average irradiance, through its nominal calibration."""
    from hil.sim.physics import interpolate_irradiance

    out = [0.0, 0.0]
    if board.firmware.output_on:
        for sp in board.firmware.setpoints:
            points = board.optics.calibration[sp.channel].points
            out[sp.channel] = interpolate_irradiance(points, sp.current_ma) * sp.duty_pct / 100.0
    return (out[0], out[1])


def record_session(path: Path, *, minutes: int = 30, every_s: float = 5.0) -> int:
    """A whole session of the built-in 810 nm profile, traced; returns the rows written."""
    import tempfile

    from hil.bench.figures_stack import bench_command, bench_profile, stack

    with (
        tempfile.TemporaryDirectory(prefix="nirpad-trace-") as tmp,
        stack(Path(tmp), bench_profile(duration_min=minutes)) as s,
    ):
        writer = s.trace_to(path, every_s)
        s.run(10.0)
        bench_command(s, "start")
        deadline_s = s.clock() + minutes * 60 + 600
        while str(s.controller.state) != "complete" and s.clock() < deadline_s:
            s.run(10.0)
        s.run(30.0)
    return writer.rows


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.tools.trace", description=record_session.__doc__
    )
    parser.add_argument("out", type=Path, help="the CSV file to write")
    parser.add_argument(
        "--minutes", type=at_least(1), default=30, help="session length (default 30)"
    )
    parser.add_argument("--every-s", type=positive, default=5.0, help="row interval when calm")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        rows = record_session(args.out, minutes=args.minutes, every_s=args.every_s)
    except OSError as exc:
        print(f"python -m hil.tools.trace: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = f"{args.out} holds the rows written until then"
        said = kept if args.out.exists() else "nothing was written"
        print(f"python -m hil.tools.trace: interrupted; {said}", file=sys.stderr)
        return 130  # the shell's code for SIGINT
    print(f"{args.out}: {rows} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
