"""The report's inputs for the CSV and FHIR tests, read back from the real stores.

The six-week course with its diary (``report_fixture``), plus, through the same APIs:
a session ended by a fault on 23 Dec 2026 (a third of the plan, ``skin_overtemp``), a
session still running on 25 Dec, and a correction of the 17 Oct nightly entry (leg
symptoms 5, a note starting with ``-``, which a spreadsheet would take for a formula).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from care.diary import Diary, StoredIrls, StoredNightly
from care.diary_entry import NightlyEntry
from safety.faults import Outcome
from safety.ledger import Ledger
from safety.records import SessionRecord, read_records
from tests.care.course_fixture import SHA, course_profile, local
from tests.care.report_fixture import write_course_with_diary

FAULT_DAY: Final = date(2026, 12, 23)
RUNNING_DAY: Final = date(2026, 12, 25)
CORRECTED_DAY: Final = date(2026, 10, 17)
CORRECTION_NOTE: Final = "-3 since Monday, better"
CORRECTED_AT: Final = datetime(2026, 12, 23, 12, 30, tzinfo=UTC)
SESSION_COUNT: Final = 15 + 1 + 2
"""The course's 15, the earlier prescription's one, the fault and the running one."""


@dataclass(frozen=True, slots=True)
class ReportInputs:
    sessions: tuple[SessionRecord, ...]
    nightly: list[StoredNightly]
    irls: list[StoredIrls]
    nightly_history: list[StoredNightly]
    corrected_id: int
    correction_id: int


def write_report_inputs(state_dir: Path) -> ReportInputs:
    clock = write_course_with_diary(state_dir)
    rx = course_profile()
    planned = rx.planned_fluence_j_cm2
    with Ledger.open(state_dir, clock) as ledger:
        clock.now = local(FAULT_DAY, 19)
        sid = ledger.begin_session(rx.id, SHA, planned, planned_duration_s=rx.duration_s)
        clock.now += timedelta(seconds=rx.duration_s / 3)
        third = {ch: j / 3 for ch, j in planned.items()}
        ledger.end_session(sid, Outcome.FAULT, third, fault_code="skin_overtemp")
        clock.now = local(RUNNING_DAY, 19)
        ledger.begin_session(rx.id, SHA, planned, planned_duration_s=rx.duration_s)
    with Diary.open(state_dir, wall_clock=lambda: CORRECTED_AT) as diary:
        corrected = next(e for e in diary.nightly() if e.entry.entry_date == CORRECTED_DAY)
        entry = NightlyEntry(CORRECTED_DAY, leg_symptoms=5, note=CORRECTION_NOTE)
        correction_id = diary.add_nightly(entry, corrects=corrected.id)
        nightly, irls, history = diary.nightly(), diary.irls(), diary.nightly(history=True)
    sessions = read_records(state_dir, lambda: clock.now + timedelta(hours=1)).sessions
    return ReportInputs(sessions, nightly, irls, history, corrected.id, correction_id)
