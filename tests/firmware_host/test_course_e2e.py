"""A short course on the simulated board, end to end over the real CLI.

Three one-minute sessions (1 s each at 60x) through ``nirpad run --sim``, two days
apart: each session is its own controller process, whose wall clock reads the
system's plus an offset kept in a file (the only change: ``firmware_host.runner.utc_now``,
as in test_clock_jump_e2e.py). A new process trusts the wall clock it finds, so the
interval rule sees two days pass, as it would on a pad that was switched off. The
diary is written through ``nirpad diary`` and ``nirpad irls`` with flags (a baseline
IRLS the evening before day 1, a nightly entry each session evening, a weekly IRLS on
the last), then ``nirpad course --json`` must agree with ``nirpad history --json``.

``simulated_course`` builds all this once per module and hands the state directory
and "now" to the tests: the clinic report's end-to-end check belongs beside
``test_course_json_agrees_with_the_ledger`` (run ``nirpad report`` at
``SimulatedCourse.now`` with ``at_course_now``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Final

import pytest

from firmware_host import course_commands, diary_commands
from firmware_host.cli import main
from profiles.shipped import builtin_text, dated_from

pytestmark = [pytest.mark.slow, pytest.mark.hil, pytest.mark.timeout(180)]

CHILD: Final = """
import datetime as dt, sys
from pathlib import Path
import firmware_host.runner as runner
offset_file = Path(sys.argv[1])
def utc_now():
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(offset_file.read_text()))
runner.utc_now = utc_now
from firmware_host.cli import main
sys.exit(main(sys.argv[2:]))
"""
SESSION_DAYS: Final = (0, 2, 4)
"""Days after day 1 with a session, each at 19:00 UTC."""
BASELINE_ITEMS: Final = "3,3,3,3,2,2,2,2,2,2"  # 24, severe
WEEK_1_ITEMS: Final = "2,2,2,2,2,2,2,2,1,1"  # 18, moderate


@dataclass(frozen=True, slots=True)
class SimulatedCourse:
    """A state directory after the short course; ``now`` is the evening of the last
    session (UTC), the time every CLI call about the course is made at."""

    state_dir: Path
    day_1: date
    now: datetime
    history: list[dict[str, Any]]


def _short_rx(folder: Path, issued: date) -> Path:
    text = dated_from(builtin_text("rls-810-standard"), issued + timedelta(days=1))
    for old, new in (
        ('id = "rls-810-standard"', 'id = "rls-810-e2e"'),
        ("duration_min = 30", "duration_min = 1"),
        ("ramp_s = 30", "ramp_s = 0"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    rx = folder / "short.toml"
    rx.write_text(text, encoding="utf-8")
    return rx


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def at_course_now(now: datetime) -> Iterator[None]:
    """The in-process CLI's clocks (course, remind, calendar, diary) read ``now``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(course_commands, "wall_clock", lambda: now)
        patch.setattr(diary_commands, "wall_clock", lambda: now)
        patch.delenv("NIRPAD_SITE_CONFIG", raising=False)
        yield


def _wait_ready(sock: socket.socket, run: subprocess.Popen[bytes], log: Path) -> None:
    while True:
        try:
            if sock.recv(4096).startswith(b"READY=1"):
                return
        except TimeoutError:
            pytest.fail(f"nirpad run never became ready ({run.poll()}): {log.read_text()[-2000:]}")


def _wait_complete(state: Path, timeout_s: float) -> None:
    deadline_s = time.monotonic() + timeout_s
    while True:
        code, out, err = _cli("status", "--json", "--state-dir", str(state))
        assert code == 0, err
        status = json.loads(out)
        if status["state"] == "complete":
            return
        assert time.monotonic() < deadline_s, status
        time.sleep(0.2)


def _one_session(tmp: Path, state: Path, at: datetime, index: int) -> None:
    """``nirpad run --sim`` at 60x with its wall clock at ``at``; start, complete, stop."""
    offset = tmp / "offset"
    offset.write_text(repr((at - datetime.now(UTC)).total_seconds()))
    notify_path = tmp / f"notify-{index}"
    log = tmp / f"run-{index}.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    env.pop("WATCHDOG_USEC", None)
    argv = ["run", "--sim", "--time-scale", "60", "--state-dir", str(state)]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, log.open("wb") as out:
        sock.bind(str(notify_path))
        sock.settimeout(30)
        run = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(offset), *argv],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_ready(sock, run, log)
            code, _, err = _cli("start", "--state-dir", str(state))
            assert code == 0, err
            _wait_complete(state, 40.0)
            run.send_signal(signal.SIGTERM)
            assert run.wait(20) == 0, log.read_text()[-2000:]
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)  # its own session: it and its simulator
                run.wait()


def _diary(state: Path, now: datetime, *argv: str) -> None:
    with at_course_now(now):
        code, _, err = _cli(argv[0], "--state-dir", str(state), "--tz", "UTC", *argv[1:])
    assert code == 0, err


@pytest.fixture(scope="module")
def simulated_course(tmp_path_factory: pytest.TempPathFactory) -> SimulatedCourse:
    tmp = tmp_path_factory.mktemp("course-e2e")
    state = tmp / "state"
    issued = datetime.now(UTC).date()
    day_1 = issued + timedelta(days=2)
    evening = clock_time(19, 0, tzinfo=UTC)
    with at_course_now(datetime.now(UTC)):
        code, _, err = _cli(
            "profile", "install", str(_short_rx(tmp, issued)), "--state-dir", str(state)
        )
    assert code == 0, err
    day_before = datetime.combine(day_1 - timedelta(days=1), evening)
    _diary(state, day_before, "irls", "--baseline", "--items", BASELINE_ITEMS)
    for index, day in enumerate(SESSION_DAYS):
        at = datetime.combine(day_1 + timedelta(days=day), evening)
        _one_session(tmp, state, at, index)
        _diary(state, at + timedelta(hours=2), "diary", "--legs", str(6 - day), "--sleep", "5")
    now = datetime.combine(day_1 + timedelta(days=SESSION_DAYS[-1]), clock_time(21, 30, tzinfo=UTC))
    _diary(state, now, "irls", "--items", WEEK_1_ITEMS)
    code, out, err = _cli("history", "--json", "--state-dir", str(state))
    assert code == 0, err
    return SimulatedCourse(state, day_1, now, json.loads(out))


def course_json(course: SimulatedCourse) -> dict[str, Any]:
    with at_course_now(course.now):
        code, out, err = _cli(
            "course", "--json", "--tz", "UTC", "--state-dir", str(course.state_dir)
        )
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_the_sessions_ran_on_the_simulated_board(simulated_course: SimulatedCourse) -> None:
    history = simulated_course.history
    assert [s["outcome"] for s in history] == ["completed"] * len(SESSION_DAYS)
    assert {s["profile_id"] for s in history} == {"rls-810-e2e"}
    started = [datetime.fromisoformat(s["started_at"]).date() for s in history]
    assert started == [simulated_course.day_1 + timedelta(days=d) for d in SESSION_DAYS]
    assert all(s["delivered_fluence_j_cm2"] > 0 for s in history)


def test_course_json_agrees_with_the_ledger(simulated_course: SimulatedCourse) -> None:
    data = course_json(simulated_course)
    history = simulated_course.history
    assert data["profile_id"] == "rls-810-e2e"
    assert data["first_day"] == simulated_course.day_1.isoformat()
    assert data["current_week"] == 1
    week_1 = data["weeks"][0]
    assert (week_1["done"], week_1["full"], week_1["prescribed"]) == (3, 3, 3)
    assert week_1["status"] == "on target"
    delivered = sum(s["delivered_fluence_j_cm2"] for s in history)
    per_week = 3 * history[0]["planned_fluence_j_cm2"]  # prescribed sessions x the plan
    assert week_1["delivered_j_cm2"] == pytest.approx(delivered, abs=1e-3)
    assert week_1["planned_j_cm2"] == pytest.approx(per_week, abs=1e-3)
    assert data["total"]["delivered_j_cm2"] == pytest.approx(delivered, abs=1e-3)
    assert data["total"]["planned_j_cm2"] == pytest.approx(4 * per_week, abs=1e-3)  # 4 weeks
    assert data["total"]["done"] == len(history) == 3
    assert data["total"]["early_stops"] == {"stopped": 0, "fault": 0, "power_lost": 0}
    assert data["tonight"]["status"] == "done"


def test_course_json_shows_the_diarys_irls_trend(simulated_course: SimulatedCourse) -> None:
    week_2 = course_json(simulated_course)["checkpoints"][0]
    assert week_2["name"] == "week 2 review"
    day_before = (simulated_course.day_1 - timedelta(days=1)).isoformat()
    assert (week_2["irls_baseline"], week_2["irls_baseline_on"]) == (24, day_before)
    assert week_2["irls_baseline_marked"] is True
    assert (week_2["irls_latest"], week_2["irls_latest_band"], week_2["irls_change"]) == (
        18,
        "moderate",
        -6,
    )
    with at_course_now(simulated_course.now):
        code, out, err = _cli(
            "diary", "show", "--json", "--state-dir", str(simulated_course.state_dir)
        )
    assert code == 0, err
    assert [e["leg_symptoms"] for e in json.loads(out)["nightly"]] == [6, 4, 2]


def test_the_clinic_report_agrees_with_the_ledger(
    simulated_course: SimulatedCourse, tmp_path: Path
) -> None:
    from care.report_fhir import parse_bundle
    from firmware_host import report_commands
    from tests.care.test_report_pdf import pdf_text

    pdf, table, bundle = tmp_path / "r.pdf", tmp_path / "r.csv", tmp_path / "r.json"
    with at_course_now(simulated_course.now), pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_commands, "wall_clock", lambda: simulated_course.now)
        code, _, err = _cli(
            "report", "--tz", "UTC", "--state-dir", str(simulated_course.state_dir),
            "-o", str(pdf), "--csv", str(table), "--fhir", str(bundle),
        )  # fmt: skip
    assert code == 0, err
    history = simulated_course.history
    delivered = sum(s["delivered_fluence_j_cm2"] for s in history)
    share = delivered / (3 * history[0]["planned_fluence_j_cm2"])
    pages, text = pdf_text(pdf.read_bytes())
    assert pages == 1
    assert "(rls-810-e2e)" in text
    day_1 = simulated_course.day_1
    assert f"1 {day_1.day} {day_1:%b} - {(day_1 + timedelta(days=6)).day}" in text
    assert f"3 / 3 3 {share:.0%} 0 0 0 on target" in text
    assert "24 severe (baseline)" in text and "18 moderate" in text
    assert "Change since baseline: -6 (24 to 18)" in text
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    sessions = [r for r in rows if r["kind"] == "session"]
    assert [float(r["delivered_j_cm2"]) for r in sessions] == pytest.approx(
        [s["delivered_fluence_j_cm2"] for s in history], abs=1e-3
    )
    assert [r["kind"] for r in rows].count("nightly") == 3
    resources = [e.resource for e in parse_bundle(bundle.read_text(encoding="utf-8")).entry]
    assert [r.__resource_type__ for r in resources].count("DeviceUseStatement") == 3
