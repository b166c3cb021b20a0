"""A correction of a nightly entry starts from the entry it corrects."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from care.diary import Diary
from care.diary_correction import correct_nightly, with_answers
from care.diary_entry import NightlyEntry, SideEffect
from care.diary_schema import DiaryError
from tests.care.test_diary import COURSE, NOW, TODAY, TZ, rows

FULL = NightlyEntry(
    TODAY,
    leg_symptoms=6,
    sleep_quality=7,
    minutes_to_sleep=20,
    awakenings=3,
    onset=1,
    side_effects=frozenset({SideEffect.REDNESS}),
    note="full entry",
)


@pytest.fixture
def diary(tmp_path: Path) -> Iterator[Diary]:
    with Diary.open(tmp_path, course=COURSE, wall_clock=lambda: NOW, tz=TZ) as d:
        d.add_nightly(FULL)
        yield d


def test_the_answers_not_given_are_kept(diary: Diary) -> None:
    made = correct_nightly(diary, 1, {"leg_symptoms": 3})
    [current] = diary.nightly()
    assert current.id == made.new_id == 2
    assert current.supersedes == made.replaced.id == 1
    assert (
        current.entry
        == made.entry
        == NightlyEntry(
            TODAY,
            leg_symptoms=3,
            sleep_quality=7,
            minutes_to_sleep=20,
            awakenings=3,
            onset=1,
            side_effects=frozenset({SideEffect.REDNESS}),
            note="full entry",
        )
    )
    assert made.changed == ("leg_symptoms",)


def test_an_answer_given_as_none_is_cleared(diary: Diary) -> None:
    made = correct_nightly(
        diary, 1, {"sleep_quality": None, "side_effects": frozenset(), "note": ""}
    )
    [current] = diary.nightly()
    entry = current.entry
    assert (entry.sleep_quality, entry.side_effects, entry.note) == (None, frozenset(), "")
    assert (entry.leg_symptoms, entry.minutes_to_sleep, entry.onset) == (6, 20, 1)
    assert made.changed == ("sleep_quality", "side_effects", "note")


def test_a_correction_may_move_the_entry_keeping_its_answers(diary: Diary) -> None:
    yesterday = TODAY - timedelta(days=1)
    made = correct_nightly(diary, 1, {"awakenings": 1}, entry_date=yesterday)
    [current] = diary.nightly()
    assert current.entry == dataclasses.replace(FULL, entry_date=yesterday, awakenings=1)
    assert made.changed == ("entry_date", "awakenings")


@pytest.mark.parametrize(
    ("corrects", "answers", "message"),
    [
        (1, {"leg_symptoms": 6}, "This correction changes nothing in nightly entry 1"),
        (1, {}, "This correction changes nothing"),
        (9, {"leg_symptoms": 3}, "There is no nightly entry 9 to correct"),
        (1, {"leg_symptoms": 11}, "Leg symptoms must be a whole number from 0 to 10"),
    ],
)
def test_a_refused_correction_writes_nothing(
    diary: Diary, tmp_path: Path, corrects: int, answers: dict[str, object], message: str
) -> None:
    with pytest.raises(DiaryError, match=message):
        correct_nightly(diary, corrects, answers)
    assert rows(tmp_path)["nightly"] == 1


def test_an_entry_already_corrected_is_refused_before_it_is_read(
    diary: Diary, tmp_path: Path
) -> None:
    correct_nightly(diary, 1, {"leg_symptoms": 3})
    with pytest.raises(DiaryError, match="already corrected by 2; correct 2 instead"):
        diary.correctable_nightly(1)
    with pytest.raises(DiaryError, match="already corrected by 2; correct 2 instead"):
        correct_nightly(diary, 1, {"sleep_quality": 2})
    assert rows(tmp_path)["nightly"] == 2
    assert diary.correctable_nightly(2).entry.leg_symptoms == 3


def test_a_name_that_is_not_an_answer_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not answers of a nightly entry: legs"):
        with_answers(FULL, {"legs": 3})
