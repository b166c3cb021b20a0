"""The newest counted sessions (``counted_sessions``): the same answer as the plain
reading of the rule, along the start-time index, with a confirmed clock's clamp."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safety.ledger import LEDGER_FILENAME, Ledger
from safety.ledger_events import EventKind, counted_sessions

T0_S = 1_796_000_000.0

# The rule read plainly: every counted session with the clamp applied, sorted by the
# clamped start. Correct, but the sort by an expression cannot use the index: it reads
# every session (3.5 ms at ten years of history).
PLAIN_SQL = (
    "SELECT CASE WHEN id <= :upto THEN MIN(started_at_s, :at) ELSE started_at_s END AS s, "
    "CASE WHEN id <= :upto AND ended_at_s IS NOT NULL THEN MIN(ended_at_s, :at) "
    "ELSE ended_at_s END AS e FROM sessions "
    "WHERE delivered_total_j_cm2 > 0 OR ended_at_s IS NULL ORDER BY s DESC"
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    state_dir: Path = tmp_path_factory.mktemp("events")
    with Ledger.open(state_dir, lambda: datetime.fromtimestamp(T0_S, UTC)):
        pass  # the schema, with its indexes
    conn = sqlite3.connect(state_dir / LEDGER_FILENAME)
    yield conn
    conn.close()


def _fill(
    conn: sqlite3.Connection,
    sessions: list[tuple[float, float | None, float]],
    confirmed: tuple[int, float] | None,
) -> None:
    conn.execute("DELETE FROM sessions")
    conn.execute("DELETE FROM events")
    for start_h, length_h, dose in sessions:
        start_s = T0_S + start_h * 3600.0
        end_s = None if length_h is None else start_s + length_h * 3600.0
        conn.execute(
            "INSERT INTO sessions (profile_id, profile_sha256, started_at_s, ended_at_s, "
            "planned_j_cm2, planned_total_j_cm2, delivered_total_j_cm2) "
            "VALUES ('p', 'h', ?, ?, '{}', 1.0, ?)",
            (start_s, end_s, dose),
        )
    if confirmed is not None:
        upto, at_h = confirmed
        conn.execute(
            "INSERT INTO events (at_s, kind, detail, upto_session_id) VALUES (?, ?, '', ?)",
            (T0_S + at_h * 3600.0, str(EventKind.CLOCK_CONFIRMED), upto),
        )


def _plain(conn: sqlite3.Connection, confirmed: tuple[int, float] | None) -> list[tuple]:
    upto, at_s = (0, 0.0) if confirmed is None else (confirmed[0], T0_S + confirmed[1] * 3600.0)
    rows = conn.execute(PLAIN_SQL, {"upto": upto, "at": at_s}).fetchall()
    if confirmed is not None:
        rows.append((at_s, at_s))  # a confirmed clock counts as a session ending then
    return sorted(rows, key=lambda row: row[0], reverse=True)


SESSIONS = st.lists(
    st.tuples(
        st.integers(-400, 400).map(float),  # start, hours from T0 (a clock may have run ahead)
        st.one_of(st.none(), st.sampled_from([0.5, 1.0, 30.0])),  # length; None: unfinished
        st.sampled_from([0.0, 1.0]),  # delivered: a session that delivered nothing is not counted
    ),
    max_size=25,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sessions=SESSIONS,
    confirmed=st.one_of(
        st.none(), st.tuples(st.integers(0, 26), st.integers(-400, 400).map(float))
    ),
    limit=st.integers(1, 8),
)
def test_the_newest_counted_sessions_are_the_plain_readings(
    db: sqlite3.Connection,
    sessions: list[tuple[float, float | None, float]],
    confirmed: tuple[int, float] | None,
    limit: int,
) -> None:
    _fill(db, sessions, confirmed)
    got = counted_sessions(db, limit)
    every = _plain(db, confirmed)
    assert [row.started_at_s for row in got] == [row[0] for row in every[:limit]]
    if len(every) > limit and every[limit][0] == every[limit - 1][0]:
        return  # sessions tied at the last start: either may be the one counted
    times = [(row.started_at_s, row.ended_at_s) for row in got]
    assert sorted(times, key=repr) == sorted(every[:limit], key=repr)


def test_the_query_reads_along_the_start_index(db: sqlite3.Connection) -> None:
    _fill(db, [(float(h), 0.5, 1.0) for h in range(200)], None)
    statements: list[str] = []
    db.set_trace_callback(statements.append)  # the SQL as run, with its values in place
    try:
        counted_sessions(db, 3)
    finally:
        db.set_trace_callback(None)
    reads = [sql for sql in statements if "FROM sessions" in sql]
    assert reads
    for sql in reads:
        plan = " ".join(str(step[-1]) for step in db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "SCAN sessions" not in plan or "sessions_counted_by_start" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of every session
