"""Correcting a nightly diary entry by the answers that change.

Owns: the rule that a correction starts from the entry it corrects: the answers given
replace those answers and every other one is kept, so ``nirpad diary --corrects 12
--legs 3`` changes the leg score and nothing else (``correct_nightly``); an answer
given as no answer (None for a score, no side effects, an empty note) clears it. Also
which answers a correction changed (``NightlyCorrection.changed``), and refusing one
that changes nothing (it would only copy the entry).

Does not own what an entry is or its checks (``care.diary_entry``), nor storage and
which entries may be corrected (``care.diary``: a missing or already corrected entry is
refused there, in the same words for every writer). The course page does not use it:
its form is filled in with the entry it corrects and sends every answer, so what it
sends is the whole new entry (``Diary.add_nightly``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from care.diary import Diary, StoredNightly
from care.diary_entry import NIGHTLY_FIELDS, NightlyEntry
from care.diary_schema import DiaryError

__all__ = ["ANSWER_NAMES", "NightlyCorrection", "correct_nightly", "with_answers"]

ANSWER_NAMES: Final[tuple[str, ...]] = (
    *(spec.name for spec in NIGHTLY_FIELDS),
    "side_effects",
    "note",
)
"""The answers of a nightly entry, in the order the questions ask them."""


@dataclass(frozen=True, slots=True)
class NightlyCorrection:
    """A recorded correction: the new entry's id, the entry it replaced and the new one."""

    new_id: int
    replaced: StoredNightly
    entry: NightlyEntry

    @property
    def changed(self) -> tuple[str, ...]:
        """The names of the answers that differ (``"entry_date"`` first if it moved)."""
        names = ("entry_date", *ANSWER_NAMES)
        old = self.replaced.entry
        return tuple(n for n in names if getattr(old, n) != getattr(self.entry, n))


def with_answers(entry: NightlyEntry, answers: Mapping[str, object]) -> NightlyEntry:
    """``entry`` with ``answers`` (answer name -> value) in place of its own, the others
    kept. The values are checked when the entry is recorded (``Diary.add_nightly``); a
    name that is not an answer is a programming error (``ValueError``)."""
    unknown = sorted(set(answers) - set(ANSWER_NAMES))
    if unknown:
        raise ValueError(f"not answers of a nightly entry: {', '.join(unknown)}")
    changes: dict[str, Any] = dict(answers)
    return dataclasses.replace(entry, **changes)


def correct_nightly(
    diary: Diary,
    corrects: int,
    answers: Mapping[str, object],
    *,
    entry_date: date | None = None,
) -> NightlyCorrection:
    """Record a correction of nightly entry ``corrects``: its answers with ``answers``
    in place of those, about ``entry_date`` (default: the corrected entry's day).

    Raises DiaryError, writing nothing, when there is no such entry, it was already
    corrected, the new entry is not valid, or it would be the same as the old."""
    replaced = diary.correctable_nightly(corrects)
    moved = dataclasses.replace(replaced.entry, entry_date=entry_date or replaced.entry.entry_date)
    entry = with_answers(moved, answers)
    if entry == replaced.entry:
        raise DiaryError(
            f"This correction changes nothing in nightly entry {corrects}: "
            "give the answers that change.",
            field="corrects",
        )
    new_id = diary.add_nightly(entry, corrects=corrects)
    return NightlyCorrection(new_id, replaced, entry)
