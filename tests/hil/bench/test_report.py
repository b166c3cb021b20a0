"""The report: choosing figures, surviving a failing collector, the files it writes,
and a smoke run of every collector with tiny sizes (figures are printed, never judged)."""

from __future__ import annotations

import errno
import io
import json
import sys
from pathlib import Path

import pytest

from hil.bench import report
from hil.bench.figures_common import Figure

TINY = report.Sizes(
    injections=2, kill_runs=1, jitter_s=0.5, resources_s=0.5, session_min=1, help_runs=1,
    boots=1, ledger_years=1, ledger_runs=3, ledger_writes=2, frames=20, course_sessions=1,
)  # fmt: skip


def test_only_takes_names_in_running_order_and_refuses_unknown_ones() -> None:
    assert report.parse_only(None) == list(report.COLLECTORS)
    assert report.parse_only(["ledger,dose", "fault_latency"]) == [
        "fault_latency", "dose", "ledger",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown figure warp"):
        report.parse_only(["dose,warp"])


def test_a_failing_collector_becomes_a_row_that_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(run: report.Run) -> list[Figure]:
        raise OSError("disk on fire")

    monkeypatch.setitem(report.COLLECTORS, "ledger", ("ledger query", broken, False))
    (figure,) = report.collect(["ledger"], report.Run(TINY, 115200))
    assert figure.median is None and figure.n == 0
    assert figure.note == "not measured: OSError: disk on fire"


def test_results_are_written_as_json_and_markdown(tmp_path: Path) -> None:
    env = report.environment(quick=True, baud=115200)
    figures = [Figure("x.y", "a figure", "ms", 1.5, 3, {"max": 2.0}, target="< 2 ms", met=True)]
    markdown = report.write_results(tmp_path, env, figures)
    document = json.loads((tmp_path / "bench-results.json").read_text())
    assert document["quick"] is True and document["baud"] == 115200
    assert document["figures"][0]["name"] == "x.y"
    assert document["figures"][0]["spread"] == {"max": 2.0}
    assert (tmp_path / "bench-results.md").read_text() == markdown
    assert "| a figure | 3 | 1.50 | max 2.00 | ms | — | < 2 ms | yes |  |" in markdown


@pytest.mark.slow
def test_every_collector_runs_with_tiny_sizes(tmp_path: Path) -> None:
    run = report.Run(TINY, 115200)
    figures = report.collect(list(report.COLLECTORS), run)
    by_name = {f.name: f for f in figures}
    assert not [f.note for f in figures if f.median is None]
    assert by_name["fault_latency.skin_overtemp"].n == 2
    assert by_name["fault_latency.skin_overtemp"].floor is not None
    assert by_name["sigkill.latency"].n == 1
    cpu_floor = by_name["resources.cpu"].floor  # the wire traffic alone, measured
    assert cpu_floor is not None and cpu_floor > 0
    assert by_name["startup.boot_to_ready"].n >= 3  # every controller started so far
    assert by_name["dose.error"].n == 3
    assert {"resources.cpu", "resources.rss", "jitter.tick", "speed.sessions_per_s",
            "startup.help", "ledger.schedule_query"} <= by_name.keys()  # fmt: skip
    assert by_name["frame_path.poll_tick"].n == by_name["frame_path.poll"].n == 20
    assert by_name["course.wall"].n == 1 and by_name["speed.session_wall_s"].n == 3
    speed_floor = by_name["speed.session_wall_s"].floor  # the simulator alone, measured
    assert speed_floor is not None and speed_floor > 0
    assert by_name["course.wall"].floor == pytest.approx(speed_floor / 30)  # 1 × 1 min


def test_an_earlier_run_goes_beside_as_a_before_column(tmp_path: Path) -> None:
    env = report.environment(quick=True, baud=115200)
    earlier = [Figure("x.y", "a figure", "ms", 3.0, 3), Figure("gone", "old", "ms", 9.0, 1)]
    report.write_results(tmp_path / "then", env, earlier)
    before = report.read_before(tmp_path / "then" / "bench-results.json")
    assert before == {"x.y": 3.0, "gone": 9.0}
    now = [Figure("x.y", "a figure", "ms", 1.5, 3), Figure("new", "fresh", "ms", 2.0, 1)]
    lines = report.write_results(tmp_path / "now", env, now, before).splitlines()
    assert lines[4] == "before: an earlier run"
    assert lines[6].startswith("| figure | n | before | median |")
    assert lines[8].startswith("| a figure | 3 | 3.00 | 1.50 |")
    assert lines[9].startswith("| fresh | 1 | — | 2.00 |")
    assert report.read_before(tmp_path / "absent.json") is None


def _must_not_measure(names: list[str], run: report.Run) -> list[Figure]:
    raise AssertionError("measured although the results could not be written")


@pytest.mark.parametrize(
    "what",
    ["out-dir-is-a-file", "before-is-not-a-report", "before-is-a-folder", "before-is-missing"],
)
def test_where_the_results_go_and_come_from_is_checked_before_measuring(
    tmp_path: Path,
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(report, "collect", _must_not_measure)
    a_file = tmp_path / "notes.txt"
    a_file.write_bytes(b"\x89 not json")
    args = ["--only", "ledger", "--out-dir", str(tmp_path / "out"), "--before", "none"]
    if what == "before-is-a-folder":
        args[5] = str(tmp_path)
        expected = f"--before {tmp_path}: not a bench-results.json"
    elif what == "before-is-missing":
        args[5] = str(tmp_path / "bench-results.jsn")  # a slip: no column, and no word of it
        expected = f"--before {tmp_path / 'bench-results.jsn'}: not a bench-results.json"
    elif what == "out-dir-is-a-file":
        args[3] = str(a_file)
        expected = f"--out-dir {a_file}: not a folder that can be written"
    else:
        args[5] = str(a_file)
        expected = f"--before {a_file}: not a bench-results.json"
    with pytest.raises(SystemExit) as exc:
        report.main(args)
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err


def test_results_that_cannot_be_written_are_still_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        report, "collect", lambda names, run: [Figure("x.y", "a figure", "ms", 1.5, 3)]
    )
    (tmp_path / report.JSON_NAME).mkdir()  # in the way of the JSON: the write fails
    assert report.main(["--out-dir", str(tmp_path), "--before", "none"]) == 1
    out, err = capsys.readouterr()
    assert "| a figure | 3 | 1.50 |" in out
    assert err.splitlines()[-1].startswith(
        f"python -m hil.bench report: the results could not be written to {tmp_path}: "
    )


def test_a_stdout_that_fails_after_the_files_were_written_is_not_blamed_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class FullStdout(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "collect", lambda names, run: [Figure("x.y", "a", "ms", 1.5, 3)])
    monkeypatch.setattr(sys, "stdout", FullStdout())
    assert report.main(["--out-dir", str(tmp_path), "--before", "none"]) == 1
    assert (tmp_path / report.JSON_NAME).is_file() and (tmp_path / report.MD_NAME).is_file()
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m hil.bench report: the report could not be written (No space left on device)"
    )
