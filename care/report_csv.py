"""The clinic report's CSV: one row per session and one per diary entry.

Owns: the CSV's columns (``CSV_COLUMNS``, documented in docs/course.md, "CSV columns")
and writing the rows with the ``csv`` module. Sessions come from the treatment record
(``source`` = ``device-measured``), nightly entries and IRLS scores from the symptom
diary (``patient-reported``). Superseded diary entries are always left out: a
correction is the current entry and names the entry it replaced in ``supersedes``.
Times are ISO 8601 with the offset in the patient's zone, to the second; fluence is
in J/cm² to 0.001. A note that a spreadsheet would take for a formula (starting with
``=``, ``+``, ``-`` or ``@``, also behind spaces or invisible characters, or written
as another form of these, such as the fullwidth ``＝``) is written with a leading
apostrophe.

Does not own choosing the period or reading the stores (the ``nirpad report``
command), nor the PDF or the FHIR bundle (``care.report_fhir``).
"""

from __future__ import annotations

import csv
import io
import itertools
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
from typing import Final, TextIO

from care.diary import StoredIrls, StoredNightly
from care.diary_entry import NIGHTLY_FIELDS, is_invisible
from care.irls import ITEM_COUNT
from safety.records import SessionRecord

__all__ = ["CSV_COLUMNS", "DEVICE_MEASURED", "PATIENT_REPORTED", "csv_text", "write_csv"]

DEVICE_MEASURED: Final = "device-measured"
PATIENT_REPORTED: Final = "patient-reported"
RUNNING: Final = "running"
"""The ``outcome`` of a session that has not ended (yet)."""

_NIGHTLY: Final = tuple(f.name for f in NIGHTLY_FIELDS)
_ITEMS: Final = tuple(f"irls_item_{n}" for n in range(1, ITEM_COUNT + 1))
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "kind",
    "id",
    "date",
    "source",
    "start",
    "end",
    "recorded_at",
    "prescription",
    "planned_j_cm2",
    "delivered_j_cm2",
    "outcome",
    "fault_code",
    *_NIGHTLY,
    "side_effects",
    "note",
    "irls_total",
    "irls_band",
    "irls_baseline",
    *_ITEMS,
    "supersedes",
)
_KIND_ORDER: Final = {"session": 0, "nightly": 1, "irls": 2}
_FORMULA_STARTS: Final = ("=", "+", "-", "@")

Row = dict[str, str]


def write_csv(
    out: TextIO,
    sessions: Sequence[SessionRecord],
    nightly: Sequence[StoredNightly],
    irls: Sequence[StoredIrls],
    *,
    zone: tzinfo,
) -> None:
    """Write the header and the rows to ``out`` (opened with ``newline=""``)."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(_rows(sessions, nightly, irls, zone))


def csv_text(
    sessions: Sequence[SessionRecord],
    nightly: Sequence[StoredNightly],
    irls: Sequence[StoredIrls],
    *,
    zone: tzinfo,
) -> str:
    """The same CSV as ``write_csv``, as a string (lines end in CRLF, as RFC 4180 asks)."""
    buffer = io.StringIO(newline="")
    write_csv(buffer, sessions, nightly, irls, zone=zone)
    return buffer.getvalue()


def _rows(
    sessions: Iterable[SessionRecord],
    nightly: Iterable[StoredNightly],
    irls: Iterable[StoredIrls],
    zone: tzinfo,
) -> list[Row]:
    keyed: list[tuple[tuple[date, int, float, int], Row]] = []
    for session in sessions:
        start = session.started_at.astimezone(zone)
        key = (start.date(), _KIND_ORDER["session"], start.timestamp(), session.id)
        keyed.append((key, _session_row(session, zone)))
    for entry in nightly:
        if entry.superseded_by is None:
            key = (entry.entry.entry_date, _KIND_ORDER["nightly"], 0.0, entry.id)
            keyed.append((key, _nightly_row(entry, zone)))
    for score in irls:
        if score.superseded_by is None:
            key = (score.entry_date, _KIND_ORDER["irls"], 0.0, score.id)
            keyed.append((key, _irls_row(score, zone)))
    keyed.sort(key=lambda pair: pair[0])
    return [row for _, row in keyed]


def _session_row(session: SessionRecord, zone: tzinfo) -> Row:
    start = session.started_at.astimezone(zone)
    return {
        "kind": "session",
        "id": str(session.id),
        "date": start.date().isoformat(),
        "source": DEVICE_MEASURED,
        "start": _when(session.started_at, zone),
        "end": "" if session.ended_at is None else _when(session.ended_at, zone),
        "prescription": session.profile_id,
        "planned_j_cm2": _fluence(session.planned_fluence_total_j_cm2),
        "delivered_j_cm2": _fluence(session.delivered_fluence_total_j_cm2),
        "outcome": RUNNING if session.outcome is None else str(session.outcome),
        "fault_code": session.fault_code or "",
    }


def _nightly_row(stored: StoredNightly, zone: tzinfo) -> Row:
    entry = stored.entry
    row = _diary_row("nightly", stored.id, entry.entry_date, stored.recorded_at, zone)
    for name in _NIGHTLY:
        value = getattr(entry, name)
        row[name] = "" if value is None else str(value)
    row["side_effects"] = ";".join(sorted(e.value for e in entry.side_effects))
    row["note"] = _text(entry.note)
    row["supersedes"] = "" if stored.supersedes is None else str(stored.supersedes)
    return row


def _irls_row(stored: StoredIrls, zone: tzinfo) -> Row:
    row = _diary_row("irls", stored.id, stored.entry_date, stored.recorded_at, zone)
    row["irls_total"] = str(stored.total)
    row["irls_band"] = stored.band.value
    row["irls_baseline"] = "true" if stored.baseline else "false"
    for number, score in stored.items.items():
        row[f"irls_item_{number}"] = str(score)
    row["supersedes"] = "" if stored.supersedes is None else str(stored.supersedes)
    return row


def _diary_row(kind: str, entry_id: int, day: date, recorded: datetime, zone: tzinfo) -> Row:
    return {
        "kind": kind,
        "id": str(entry_id),
        "date": day.isoformat(),
        "source": PATIENT_REPORTED,
        "recorded_at": _when(recorded, zone),
    }


def _when(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).isoformat(timespec="seconds")


def _fluence(j_cm2: float) -> str:
    return f"{j_cm2:.3f}"


def _text(value: str) -> str:
    """Free text, with an apostrophe in front when a spreadsheet would run it."""
    return "'" + value if _runs_as_formula(value) else value


def _runs_as_formula(value: str) -> bool:
    """Whether ``value`` starts with one of ``_FORMULA_STARTS`` once leading whitespace
    and invisible characters (``care.diary_entry.is_invisible``: a byte-order mark, a
    zero-width space), which a spreadsheet may skip, are left out: as written, or in its
    NFKC form, where the fullwidth and small forms (``＝``, ``＋``, ``﹣``, ``＠``) are
    the plain ones. Both, since NFKC may also join ``=`` to what follows (``≠``)."""
    return any(
        "".join(itertools.dropwhile(is_invisible, text)).startswith(_FORMULA_STARTS)
        for text in (value, unicodedata.normalize("NFKC", value))
    )
