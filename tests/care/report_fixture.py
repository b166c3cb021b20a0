"""The six-week course of ``course_fixture`` with its diary, for the clinic report.

Through the real stores: the ledger (the course's sessions, plus one fault outside a
session on 18 Nov 2026 at 20:15 local time) and the symptom diary (the IRLS totals of
``course_fixture.IRLS``, 24 at baseline down to 12, each written as ten item scores;
a nightly entry on every session evening, leg symptoms 8 down to 2 and sleep 3 up
to 8, warmth on 13 and 15 Oct).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from care.diary import Diary
from care.diary_entry import NightlyEntry, SideEffect
from safety.ledger import Ledger
from tests.care.course_fixture import IRLS, SESSIONS, SettableClock, local, write_six_weeks

FAULT_AT: Final = local(date(2026, 11, 18), 20, 15)
FAULT_MESSAGE: Final = "The pad got too warm on the skin. The light is off. (41.6 °C)"
DIARY_WRITTEN_AT: Final = datetime(2026, 12, 23, 12, tzinfo=UTC)
WARMTH_DAYS: Final = (date(2026, 10, 13), date(2026, 10, 15))


def irls_items(total: int) -> dict[int, int]:
    """Ten item scores 0-4 that add up to ``total``."""
    items = {k: 0 for k in range(1, 11)}
    for k in range(total):
        items[k % 10 + 1] += 1
    return items


def nightly_scores() -> list[tuple[date, int, int]]:
    """(date, leg symptoms, sleep quality) on each session evening."""
    days = [day for day, *_ in SESSIONS]
    return [(day, 8 - (6 * i) // (len(days) - 1), 3 + (5 * i) // (len(days) - 1))
            for i, day in enumerate(days)]  # fmt: skip


def write_course_with_diary(state_dir: Path) -> SettableClock:
    """The ledger and the diary in ``state_dir``; returns the ledger's clock."""
    clock = write_six_weeks(state_dir)
    clock.now = FAULT_AT
    with Ledger.open(state_dir, clock) as ledger:
        ledger.record_fault("skin_overtemp", FAULT_MESSAGE)
    with Diary.open(state_dir, wall_clock=lambda: DIARY_WRITTEN_AT) as diary:
        for i, (day, total) in enumerate(IRLS):
            diary.add_irls(day, irls_items(total), baseline=i == 0)
        for day, legs, sleep in nightly_scores():
            effects = frozenset({SideEffect.WARMTH}) if day in WARMTH_DAYS else frozenset()
            diary.add_nightly(
                NightlyEntry(day, leg_symptoms=legs, sleep_quality=sleep, side_effects=effects)
            )
    clock.now = DIARY_WRITTEN_AT + timedelta(minutes=1)
    return clock
