"""``python -m hil.bench ledger``: the dose ledger with ten years of history.

Owns: building a synthetic history (``build_history``, reusable by the report) and
measuring and printing figures only, never pass/fail: the time of the budget/interval
query (``schedule_refusal`` and ``next_start_allowed_at``, median and p99), the size of
the database, and the cost of one real ``checkpoint()`` write (median, with the
production pragmas: WAL, ``synchronous=FULL``).

The history is written with ``executemany`` in one transaction straight into the
ledger's schema (created by ``Ledger.open``), so building ~3.9 M checkpoint rows takes
seconds, not hours; the measured calls all go through the real ``Ledger``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hil.tools.arg_types import at_least
from safety.faults import Outcome
from safety.ledger import LEDGER_FILENAME, Ledger

PLANNED_J_CM2 = {810: 44.25, 850: 44.25}
PLANNED_JSON = '{"810":44.25,"850":44.25}'


@dataclass(frozen=True)
class HistoryStats:
    sessions: int
    checkpoints: int
    build_s: float
    end: datetime


@dataclass(frozen=True)
class LedgerFigures:
    history: HistoryStats
    query_median_ms: float
    query_p99_ms: float
    next_start_median_ms: float
    next_start_p99_ms: float
    size_mb: float
    checkpoint_median_ms: float
    checkpoint_p99_ms: float


def _session_starts(end: datetime, years: int, per_day: int) -> Iterator[float]:
    days = 365 * years
    first_day = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(days):
        for i in range(per_day):  # between 08:00 and 24:00, evenly
            yield (first_day + timedelta(days=day, hours=8 + i * 16 / per_day)).timestamp()


def build_history(
    state_dir: Path,
    *,
    years: int = 10,
    sessions_per_day: int = 3,
    session_min: float = 30.0,
    checkpoint_s: float = 5.0,
    end: datetime | None = None,
) -> HistoryStats:
    """Fill the ledger in ``state_dir`` with completed sessions and their checkpoints."""
    end = end or datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    with Ledger.open(state_dir, lambda: end):
        pass  # creates the schema
    started = time.perf_counter()
    starts = list(_session_starts(end, years, sessions_per_day))
    per_session = int(session_min * 60 / checkpoint_s)
    rate = 44.25 / (session_min * 60)
    conn = sqlite3.connect(state_dir / LEDGER_FILENAME, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO sessions (id, profile_id, profile_sha256, started_at_s, ended_at_s, "
            "planned_duration_s, planned_j_cm2, planned_total_j_cm2, delivered_j_cm2, "
            "delivered_total_j_cm2, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (_session_row(i, s, session_min * 60) for i, s in enumerate(starts, start=1)),
        )
        conn.executemany(
            "INSERT INTO checkpoints (session_id, at_s, elapsed_s, delivered_j_cm2, "
            "delivered_total_j_cm2) VALUES (?,?,?,?,?)",
            _checkpoint_rows(starts, per_session, checkpoint_s, rate),
        )
        conn.execute("UPDATE newest_entry SET at_s = ?", (starts[-1] + session_min * 60,))
        conn.execute("COMMIT")
    finally:
        conn.close()
    build_s = time.perf_counter() - started
    return HistoryStats(len(starts), len(starts) * per_session, build_s, end)


def _session_row(session_id: int, start_s: float, duration_s: float) -> tuple[object, ...]:
    done = Outcome.COMPLETED.value
    return (
        session_id,
        "rls-std",
        "ab" * 32,
        start_s,
        start_s + duration_s,
        duration_s,
        PLANNED_JSON,
        88.5,
        PLANNED_JSON,
        88.5,
        done,
    )


def _checkpoint_rows(
    starts: list[float], per_session: int, checkpoint_s: float, rate: float
) -> Iterator[tuple[int, float, float, str, float]]:
    for session_id, start_s in enumerate(starts, start=1):
        for k in range(1, per_session + 1):
            elapsed_s = k * checkpoint_s
            j = round(rate * elapsed_s, 4)
            yield session_id, start_s + elapsed_s, elapsed_s, f'{{"810":{j},"850":{j}}}', 2 * j


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def measure(
    state_dir: Path, history: HistoryStats, runs: int = 200, writes: int = 500
) -> LedgerFigures:
    """Time the schedule query and real checkpoint writes on the built ledger."""
    now = history.end + timedelta(hours=1)
    with Ledger.open(state_dir, lambda: now) as ledger:
        query, next_start = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            ledger.schedule_refusal(20.0, 7)
            t1 = time.perf_counter()
            ledger.next_start_allowed_at(20.0, 7)
            next_start.append(time.perf_counter() - t1)
            query.append(t1 - t0)
        sid = ledger.begin_session("bench", "cd" * 32, PLANNED_J_CM2, planned_duration_s=1800)
        cost = []
        for k in range(1, writes + 1):
            t0 = time.perf_counter()
            ledger.checkpoint(sid, {810: k * 0.1, 850: k * 0.1}, k * 5.0)
            cost.append(time.perf_counter() - t0)
        ledger.end_session(sid, Outcome.STOPPED, {810: writes * 0.1, 850: writes * 0.1})
    size_b = sum(p.stat().st_size for p in state_dir.glob(LEDGER_FILENAME + "*"))
    return LedgerFigures(history, *_ms(query), *_ms(next_start), size_b / 1e6, *_ms(cost))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.bench ledger", description=__doc__)
    parser.add_argument("--years", type=at_least(1), default=10)
    parser.add_argument("--runs", type=at_least(1), default=200)
    parser.add_argument("--writes", type=at_least(1), default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nirpad-ledger-bench-") as tmp:
        history = build_history(Path(tmp), years=args.years)
        print(
            f"history: {history.sessions} sessions, {history.checkpoints} checkpoints, "
            f"built in {history.build_s:.1f} s"
        )
        figures = measure(Path(tmp), history, args.runs, args.writes)
    print(
        f"schedule_refusal:      median {figures.query_median_ms:.3f} ms, "
        f"p99 {figures.query_p99_ms:.3f} ms  (aim < 2 ms, {args.runs} runs)"
    )
    print(
        f"next_start_allowed_at: median {figures.next_start_median_ms:.3f} ms, "
        f"p99 {figures.next_start_p99_ms:.3f} ms"
    )
    print(f"database size:         {figures.size_mb:.1f} MB")
    print(
        f"checkpoint write:      median {figures.checkpoint_median_ms:.3f} ms, "
        f"p99 {figures.checkpoint_p99_ms:.3f} ms  ({args.writes} writes, synchronous=FULL)"
    )
    return 0
