"""The history page: the sessions newest first with outcomes, the chart, the CSV file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_host.history import to_csv
from safety.faults import Outcome
from safety.ledger import Ledger
from safety.records import read_records
from web.chart import MAX_BARS, SessionPoint, fluence_chart

from .conftest import TestClient, element_text

T0 = datetime(2026, 11, 2, 19, 0, tzinfo=UTC)


@pytest.fixture
def with_sessions(state_dir: Path) -> Path:
    now = [T0]
    with Ledger.open(state_dir, lambda: now[0]) as ledger:
        first = ledger.begin_session(
            "rls-810-standard", "a" * 64, {810: 71.4}, planned_duration_s=1800
        )
        now[0] += timedelta(seconds=1800)
        ledger.end_session(first, Outcome.COMPLETED, {810: 71.4})
        now[0] = T0 + timedelta(days=2)
        second = ledger.begin_session(
            "rls-810-standard", "a" * 64, {810: 71.4}, planned_duration_s=1800
        )
        now[0] += timedelta(seconds=605)
        ledger.end_session(second, Outcome.FAULT, {810: 20.0}, fault_code="skin_overtemp")
    return state_dir


def test_no_record_says_no_sessions_and_creates_nothing(
    client: TestClient, state_dir: Path
) -> None:
    html = client.get("/history").text
    assert element_text(html, "no-sessions") == "No sessions recorded yet."
    assert list(state_dir.iterdir()) == []


@pytest.mark.usefixtures("with_sessions")
def test_sessions_newest_first_with_outcomes_and_a_chart(client: TestClient) -> None:
    html = client.get("/history").text
    rows = re.findall(r'<tr class="session">(.*?)</tr>', html, re.DOTALL)
    assert len(rows) == 2
    assert "fault (skin_overtemp)" in rows[0] and "20.0" in rows[0] and "10:05" in rows[0]
    assert "completed" in rows[1] and "71.4" in rows[1]
    assert '<svg id="chart"' in html
    assert html.count('class="delivered"') == 2
    assert 'class="bar-short"' in html and 'class="bar-done"' in html


def test_a_duration_is_shown_to_the_nearest_second(client: TestClient, state_dir: Path) -> None:
    """17.97 s is 0:18, as in ``nirpad history`` and the CSV (never truncated to 0:17)."""
    now = [T0]
    with Ledger.open(state_dir, lambda: now[0]) as ledger:
        session = ledger.begin_session("rls-810-standard", "a" * 64, {810: 71.4})
        now[0] += timedelta(seconds=17.97)
        ledger.end_session(session, Outcome.STOPPED, {810: 0.7})
    [row] = re.findall(r'<tr class="session">(.*?)</tr>', client.get("/history").text, re.DOTALL)
    assert "<td>0:18</td>" in row


def test_the_csv_is_the_clis(client: TestClient, with_sessions: Path) -> None:
    response = client.get("/history.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    sessions = read_records(with_sessions, lambda: datetime.now(UTC)).sessions
    assert response.text == to_csv(sessions)
    assert response.text.count("\n") == 3


def test_a_damaged_record_is_said_in_words(client: TestClient, state_dir: Path) -> None:
    """In the safety layer's words, as ``nirpad history`` and the course page say it; it
    said "cannot be read just now; try again in a minute" of a file no retry will read."""
    (state_dir / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    for path in ("/history", "/history.csv"):
        response = client.get(path)
        assert response.status_code == 503
        text = element_text(response.text, "error-text") or ""
        assert text.startswith("The treatment record cannot be read: the file is damaged ("), text
        assert "try again" not in text


def test_a_record_that_is_no_file_or_emptied_is_said_in_words(
    client: TestClient, state_dir: Path
) -> None:
    (state_dir / "ledger.sqlite3").write_bytes(b"")
    text = element_text(client.get("/history").text, "error-text") or ""
    assert text.startswith("The treatment record cannot be read: its file is empty"), text
    (state_dir / "ledger.sqlite3").unlink()
    (state_dir / "ledger.sqlite3").mkdir()
    text = element_text(client.get("/history.csv").text, "error-text") or ""
    assert text.startswith("The treatment record cannot be read: it is not a file"), text


def test_an_unexpected_failure_to_read_the_record_is_one_plain_sentence(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("an internal detail")

    monkeypatch.setattr("web.pages_history.read_records", broken)
    response = client.get("/history")
    assert response.status_code == 503 and "an internal detail" not in response.text
    assert "cannot be read just now" in response.text


def test_damaged_rows_are_left_out_and_said_in_words(
    client: TestClient, with_sessions: Path
) -> None:
    assert "damaged-rows" not in client.get("/history").text
    with sqlite3.connect(with_sessions / "ledger.sqlite3") as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json' WHERE id = 1")
    conn.close()
    html = client.get("/history").text
    assert len(re.findall(r'<tr class="session">', html)) == 1
    assert element_text(html, "damaged-rows") == (
        "1 damaged row(s) of the treatment record could not be read and are not shown; the rest is."
    )


def test_the_chart_scales_to_the_largest_and_keeps_the_newest() -> None:
    points = [SessionPoint(f"day {i}", float(i), 50.0, "completed") for i in range(40)]
    chart = fluence_chart(points)
    assert len(chart.bars) == MAX_BARS
    assert chart.bars[-1].title.startswith("day 39")
    tallest = max(chart.bars, key=lambda b: b.planned_height)
    assert tallest.planned_height == chart.baseline_y - 10  # 50 J/cm² fills the plot
    assert chart.top_label == "50 J/cm²"
    assert fluence_chart([]).bars == ()


@pytest.mark.usefixtures("with_sessions")
@pytest.mark.parametrize(("tz", "first"), [("Pacific/Auckland", "2026-11-03 08:00"),
                                           ("America/New_York", "2026-11-02 14:00")])  # fmt: skip
def test_times_are_in_the_course_pages_zone(
    make_client: Callable[..., TestClient], tz: str, first: str
) -> None:
    html = make_client(tz=tz).get("/history").text
    rows = re.findall(r'<tr class="session">(.*?)</tr>', html, re.DOTALL)
    assert first in rows[1], rows[1]
