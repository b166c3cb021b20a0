"""``nirpad history [--csv|--json]``: the recorded sessions, for the caregiver and clinic.

Owns: reading the sessions from the ledger directly (no running controller needed; a
second reader is safe with SQLite WAL) and rendering them as a table, CSV or JSON:
date, profile, duration (to the nearest second in every form but JSON, which keeps the
fraction), delivered and planned fluence, outcome. Oldest first. A session in progress
shows the dose of its last checkpoint.

Does not own the ledger or its records (``safety.ledger``). Never creates a state
directory or a ledger: with no ledger there is simply no history.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from firmware_host.paths import resolve_state_dir
from safety.ledger import SessionRecord
from safety.records import read_records

CSV_FIELDS: Final = (
    "started_at",
    "ended_at",
    "profile_id",
    "duration_s",
    "delivered_fluence_j_cm2",
    "planned_fluence_j_cm2",
    "outcome",
    "fault_code",
)


def main(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    records = read_sessions(state_dir)
    if args.json:
        print(json.dumps([session_dict(r) for r in records], indent=2, ensure_ascii=False))
    elif args.csv:
        print(to_csv(records), end="")
    elif not records:
        print(f"No sessions recorded in {state_dir}.")
    else:
        print(to_table(records))
    return 0


def read_sessions(state_dir: Path) -> list[SessionRecord]:
    """All sessions, oldest first; an empty list when there is no ledger yet.

    Read through ``safety.records`` (read-only; nothing created, migrated or locked for
    writing), so what is not a ledger file raises ``LedgerError`` there and a session
    in progress shows the dose of its last checkpoint. Rows too damaged to read are
    left out and counted on stderr, never shown as sessions that did not happen."""
    records = read_records(state_dir, lambda: datetime.now(UTC))
    if records.damaged_rows:
        print(f"nirpad: {damaged_rows_text(records.damaged_rows)}", file=sys.stderr)
    return list(records.sessions)


def damaged_rows_text(damaged_rows: int) -> str:
    """What a reader of the history is told of the rows it could not show."""
    return (
        f"{damaged_rows} damaged row(s) of the treatment record could not be read and are "
        "not shown; the rest is."
    )


def duration_s(record: SessionRecord) -> float | None:
    """Wall time from start to end (pauses included); None while unfinished."""
    if record.ended_at is None:
        return None
    return (record.ended_at - record.started_at).total_seconds()


def whole_seconds(record: SessionRecord) -> int | None:
    """``duration_s`` to the nearest second, as every form shows it (a table's ``m:ss``,
    the CSV's ``duration_s``): 17.97 s is 18 in each, never 17 in one. None while
    unfinished."""
    seconds = duration_s(record)
    return None if seconds is None else round(seconds)


def duration_text(record: SessionRecord) -> str:
    """The duration as ``m:ss`` to the nearest second (``whole_seconds``); ``-`` while
    unfinished."""
    seconds = whole_seconds(record)
    if seconds is None:
        return "-"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}:{seconds:02d}"


def outcome_text(record: SessionRecord) -> str:
    if record.outcome is None:
        return "in progress"
    if record.fault_code:
        return f"{record.outcome} ({record.fault_code})"
    return str(record.outcome)


def session_dict(record: SessionRecord) -> dict[str, Any]:
    """The JSON form: ISO 8601 UTC times, per-channel fluence keyed by wavelength."""
    return {
        "id": record.id,
        "started_at": record.started_at.isoformat(),
        "ended_at": None if record.ended_at is None else record.ended_at.isoformat(),
        "profile_id": record.profile_id,
        "profile_sha256": record.profile_sha256,
        "duration_s": duration_s(record),
        "delivered_fluence_j_cm2": record.delivered_fluence_total_j_cm2,
        "planned_fluence_j_cm2": record.planned_fluence_total_j_cm2,
        "delivered_fluence_by_nm_j_cm2": _by_nm(record.delivered_fluence_j_cm2),
        "planned_fluence_by_nm_j_cm2": _by_nm(record.planned_fluence_j_cm2),
        "outcome": None if record.outcome is None else str(record.outcome),
        "fault_code": record.fault_code,
    }


def _by_nm(values: dict[int, float]) -> dict[str, float]:
    return {str(nm): value for nm, value in sorted(values.items())}


def to_csv(records: Sequence[SessionRecord]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = session_dict(record)
        row["duration_s"] = "" if row["duration_s"] is None else str(whole_seconds(record))
        row["delivered_fluence_j_cm2"] = f"{record.delivered_fluence_total_j_cm2:.2f}"
        row["planned_fluence_j_cm2"] = f"{record.planned_fluence_total_j_cm2:.2f}"
        writer.writerow(row)
    return out.getvalue()


def to_table(records: Sequence[SessionRecord]) -> str:
    """Aligned columns, times in local time."""
    header = ("date", "profile", "duration", "delivered J/cm²", "planned J/cm²", "outcome")
    rows = [header] + [_table_row(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _table_row(record: SessionRecord) -> tuple[str, ...]:
    return (
        record.started_at.astimezone().strftime("%Y-%m-%d %H:%M"),
        record.profile_id,
        duration_text(record),
        f"{record.delivered_fluence_total_j_cm2:.1f}",
        f"{record.planned_fluence_total_j_cm2:.1f}",
        outcome_text(record),
    )
