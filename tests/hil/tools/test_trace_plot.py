"""Traces: the CSV round trip, a trace of an in-process session, and its PNG."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

from hil.tools import plot, trace
from hil.tools.trace import TRACE_COLUMNS, TraceRow, TraceWriter, read_trace, record_session

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows() -> list[TraceRow]:
    return [
        TraceRow(0.0, "ready", (0.0, 0.0), (0.0, 0.0), 30.7, 30.72, 27.6, ("reset",)),
        TraceRow(1.5, "treating", (40.0, 0.0), (39.87, math.nan), 33.1, 33.0, 35.2),
        TraceRow(2.0, "fault", (0.0, 0.0), (0.0, 0.0), 42.0, 42.0, 35.3,
                 ("injected skin_overtemp", "output off")),
    ]  # fmt: skip


def test_a_trace_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with TraceWriter(path) as writer:
        for row in _rows():
            writer.write(row)
    assert writer.rows == 3
    assert path.read_text().splitlines()[0] == ",".join(TRACE_COLUMNS)
    back = read_trace(path)
    assert [r.state for r in back] == ["ready", "treating", "fault"]
    assert back[1].commanded_mw_cm2 == (40.0, 0.0)
    assert back[1].measured_mw_cm2[0] == 39.87 and math.isnan(back[1].measured_mw_cm2[1])
    assert back[2].events == ("injected skin_overtemp", "output off")
    assert back[0] == _rows()[0]


def test_a_file_that_is_not_a_trace_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a nirpad trace"):
        read_trace(path)
    path.write_text(",".join(TRACE_COLUMNS) + "\nsoon,ready,,,,,,,,\n")
    with pytest.raises(ValueError, match="line 2"):
        read_trace(path)


@pytest.mark.slow
def test_a_recorded_session_ramps_treats_and_completes(tmp_path: Path) -> None:
    path = tmp_path / "session.csv"
    rows = record_session(path, minutes=1, every_s=2.0)
    trace = read_trace(path)
    assert len(trace) == rows > 30
    states = [r.state for r in trace]
    assert states[0] == "ready" and states[-1] == "complete" and "treating" in states
    peak = max(r.commanded_mw_cm2[0] for r in trace)
    assert peak == pytest.approx(40.0, rel=0.01)
    assert max(r.measured_mw_cm2[0] for r in trace) == pytest.approx(peak, rel=0.05)
    events = [e for r in trace for e in r.events]
    assert events.count("output on") == 1 and events.count("output off") == 1


@pytest.mark.slow
def test_plot_writes_a_png(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    with TraceWriter(trace) as writer:
        for row in _rows():
            writer.write(row)
    out = tmp_path / "t.png"
    assert plot.main([str(trace), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_plot_explains_a_missing_trace_or_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plot.main([str(tmp_path / "none.csv")]) == 1
    assert "none.csv" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(plot.PlotUnavailableError, match=r"pip install 'nirpad\[plot\]'"):
        plot.plot_trace(_rows(), tmp_path / "t.png")


@pytest.mark.slow
def test_plot_writes_the_file_it_names_whatever_its_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.csv"
    with TraceWriter(trace) as writer:
        for row in _rows():
            writer.write(row)
    out = tmp_path / "picture"  # matplotlib alone would write picture.png
    assert plot.main([str(trace), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "picture.png").exists()
    assert plot.main([str(trace), "-o", "/dev/full"]) == 1  # the disk is full
    assert "No space left on device" in capsys.readouterr().err


@pytest.mark.timeout(10)
def test_a_fifo_or_a_folder_is_refused_without_waiting_for_a_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "trace.csv"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_trace(fifo)  # opening it would wait for a writer for ever
    assert plot.main([str(tmp_path)]) == 1
    assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"0.0,ready,0,0\n", "line 2: 4 fields, a trace row has 10"),
        (b"0.0,ready,0,0,0,0,20,20,20,,extra\n", "line 2: 11 fields, a trace row has 10"),
        (b"\x89\xaa\xff binary\n", "not UTF-8 text"),
    ],
    ids=["short-row", "long-row", "binary"],
)
def test_a_malformed_trace_is_refused_by_file_and_line(
    tmp_path: Path, body: bytes, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(",".join(TRACE_COLUMNS).encode() + b"\n" + body)
    with pytest.raises(ValueError, match=match):
        read_trace(path)
    assert plot.main([str(path)]) == 1
    assert f"{path}" in capsys.readouterr().err


def test_ctrl_c_ends_a_recording_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(path: Path, *, minutes: int, every_s: float) -> int:
        path.write_text(",".join(TRACE_COLUMNS) + "\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(trace, "record_session", interrupted)
    out = tmp_path / "t.csv"
    assert trace.main([str(out)]) == 130
    assert capsys.readouterr().err == (
        f"python -m hil.tools.trace: interrupted; {out} holds the rows written until then\n"
    )


@pytest.mark.parametrize(
    ("argv", "option"),
    [(["--minutes", "0"], "--minutes"), (["--every-s", "nan"], "--every-s"),
     (["--every-s", "0"], "--every-s")],
)  # fmt: skip
def test_a_recording_refuses_a_length_that_means_nothing(
    tmp_path: Path, argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        trace.main([str(tmp_path / "t.csv"), *argv])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err


def test_a_recording_that_cannot_be_written_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace.main([str(tmp_path), "--minutes", "1"]) == 1  # a folder, not a file
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith(
            f"python -m hil.tools.trace: cannot write {tmp_path}: [Errno 21] Is a directory"
        )
    )


def test_ctrl_c_ends_a_plot_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(rows: object, out: Path, title: str = "") -> Path:
        raise KeyboardInterrupt  # as while matplotlib loads or draws

    trace_csv = tmp_path / "t.csv"
    with TraceWriter(trace_csv) as writer:
        for row in _rows():
            writer.write(row)
    monkeypatch.setattr(plot, "plot_trace", interrupted)
    assert plot.main([str(trace_csv)]) == 130
    assert capsys.readouterr().err == "python -m hil.tools.plot: interrupted\n"
