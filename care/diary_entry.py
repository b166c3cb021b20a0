"""What a nightly diary entry holds and what makes one valid.

Owns: the nightly entry's fields and their ranges (in nirpad's own words), the side
effects a patient can tick, the time-of-onset levels (the four-level Johns Hopkins
scale), and the checks shared with the IRLS: a whole-number score in its range, a date
neither in the future nor before the course (``CourseDates``: day 1, or before the
first session the prescription's issue date; a baseline IRLS from the issue date to
day 1), a short note of printable UTF-8 text; and which text shows nothing (only
whitespace and invisible characters: ``shows_nothing``), so that such a note is no
note. Every refusal is a ``DiaryError`` whose message a patient can act on.

Does not own storage (``care.diary``) or the IRLS (``care.irls``).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final

from care.diary_schema import DiaryError
from profiles.locator import printable

__all__ = [
    "NIGHTLY_FIELDS",
    "NOTE_MAX_CHARS",
    "CourseDates",
    "NightlyEntry",
    "Onset",
    "SideEffect",
    "calendar_date",
    "check_date",
    "check_score",
    "check_text",
    "field_label",
    "is_invisible",
    "parse_date",
    "shows_nothing",
    "whole_number",
]

NOTE_MAX_CHARS: Final = 500


class SideEffect(enum.StrEnum):
    """A side effect the patient noticed; the stored values are stable."""

    WARMTH = "warmth"
    REDNESS = "redness"
    SKIN_IRRITATION = "skin-irritation"
    HEADACHE = "headache"
    OTHER = "other"


class Onset(enum.IntEnum):
    """When symptoms usually start today (Johns Hopkins time-of-onset scale)."""

    NONE = 0
    AT_BEDTIME = 1
    EVENING = 2  # from 6 pm
    AFTERNOON = 3  # before 6 pm


@dataclass(frozen=True, slots=True)
class NightlyField:
    """One numeric question of the nightly entry: its name, range and wording."""

    name: str
    low: int
    high: int
    question: str


NIGHTLY_FIELDS: Final[tuple[NightlyField, ...]] = (
    NightlyField("leg_symptoms", 0, 10, "Leg symptoms tonight (0 none - 10 worst)"),
    NightlyField("sleep_quality", 0, 10, "Sleep quality last night (0 worst - 10 best)"),
    NightlyField("minutes_to_sleep", 0, 600, "Minutes to fall asleep last night"),
    NightlyField("awakenings", 0, 50, "Times you woke up last night"),
    NightlyField(
        "onset",
        0,
        3,
        "When did symptoms start today (0 no symptoms, 1 at bedtime, "
        "2 in the evening from 6 pm, 3 in the afternoon before 6 pm)",
    ),
)
_FIELD_BY_NAME: Final = {f.name: f for f in NIGHTLY_FIELDS}


@dataclass(frozen=True, slots=True)
class NightlyEntry:
    """A nightly entry as given (None = not answered); ``id``/``supersedes`` are set
    by the store when it is read back."""

    entry_date: date
    leg_symptoms: int | None = None
    sleep_quality: int | None = None
    minutes_to_sleep: int | None = None
    awakenings: int | None = None
    onset: int | None = None
    side_effects: frozenset[SideEffect] = frozenset()
    note: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.note, str) and shows_nothing(self.note):
            object.__setattr__(self, "note", "")  # frozen: a note that shows nothing is none

    @property
    def holds_answer(self) -> bool:
        """Whether any question is answered: a score, a side effect or a note."""
        scored = any(getattr(self, spec.name) is not None for spec in NIGHTLY_FIELDS)
        return scored or bool(self.side_effects) or bool(self.note)

    def validated(self, *, today: date, course: CourseDates | None) -> NightlyEntry:
        """This entry if every field is valid; raises DiaryError at the first fault."""
        check_date(self.entry_date, today=today, course=course)
        for spec in NIGHTLY_FIELDS:
            check_score(getattr(self, spec.name), spec.low, spec.high, field=spec.name)
        for effect in self.side_effects:
            if not isinstance(effect, SideEffect):
                raise DiaryError(
                    f"Unknown side effect {effect!r}: choose from "
                    f"{', '.join(e.value for e in SideEffect)}.",
                    field="side_effects",
                )
        check_text(self.note, field="note", max_chars=NOTE_MAX_CHARS)
        return self


def field_spec(name: str) -> NightlyField:
    return _FIELD_BY_NAME[name]


def check_score(value: object, low: int, high: int, *, field: str) -> None:
    """Refuse a score that is not a whole number from ``low`` to ``high`` (None passes)."""
    if value is None:
        return
    if type(value) is not int or not low <= value <= high:
        raise DiaryError(
            f"{field_label(field)} must be a whole number from {low} to {high}, not {value!r}.",
            field=field,
        )


@dataclass(frozen=True, slots=True)
class CourseDates:
    """The dates of the course the diary belongs to: the installed prescription's issue
    date and day 1 (the patient's local date of its first session; None before it)."""

    issued: date
    first_day: date | None = None

    def check(self, entry_date: date, *, baseline: bool = False) -> None:
        """Refuse a date before the course. An entry may not be dated before day 1, or,
        before the first session, before the prescription was issued (the nights
        before the first session are then recorded as they pass). A baseline IRLS is
        taken before the first session: from the issue date to day 1."""
        if baseline:
            self._check_baseline(entry_date)
        elif self.first_day is not None and entry_date < self.first_day:
            raise DiaryError(
                f"The date {entry_date.isoformat()} is before the course began "
                f"(day 1 was {self.first_day.isoformat()}).",
                field="date",
            )
        elif entry_date < self.issued:
            raise DiaryError(
                f"The date {entry_date.isoformat()} is before the course: the prescription "
                f"was issued on {self.issued.isoformat()}.",
                field="date",
            )

    def _check_baseline(self, entry_date: date) -> None:
        if entry_date < self.issued:
            raise DiaryError(
                f"The baseline IRLS date {entry_date.isoformat()} is before the course: "
                f"the prescription was issued on {self.issued.isoformat()}.",
                field="date",
            )
        if self.first_day is not None and entry_date > self.first_day:
            raise DiaryError(
                f"A baseline IRLS is taken before the first session, and the course "
                f"began on {self.first_day.isoformat()}: record the IRLS of "
                f"{entry_date.isoformat()} as a weekly one, not as the baseline.",
                field="baseline",
            )


def check_date(
    entry_date: date, *, today: date, course: CourseDates | None, baseline: bool = False
) -> None:
    """Refuse a date after ``today`` (local) or before the course (``course``, when
    known; ``baseline`` for a baseline IRLS)."""
    if entry_date > today:
        raise DiaryError(
            f"The date {entry_date.isoformat()} is in the future (today is {today.isoformat()}).",
            field="date",
        )
    if course is not None:
        course.check(entry_date, baseline=baseline)


def whole_number(text: str) -> int:
    """A typed whole number (spaces around it allowed), as ``int`` reads it but without
    the underscores Python allows between digits: ``1_0`` is not taken for 10. Raises
    ``ValueError``."""
    if "_" in text:
        raise ValueError(f"not a whole number: {text!r}")
    return int(text.strip())


_CALENDAR_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}")


def calendar_date(text: str) -> date:
    """A day written ``YYYY-MM-DD`` or ``YYYYMMDD`` (spaces around it allowed), the
    dates the commands take; raises ``ValueError`` otherwise. ``date.fromisoformat``
    would also read a week date (``2026-W47-1``, 16 Nov), which no patient means."""
    stripped = text.strip()
    if _CALENDAR_DATE.fullmatch(stripped) is None:
        raise ValueError(f"not a date written YYYY-MM-DD: {text!r}")
    return date.fromisoformat(stripped)


def parse_date(text: str) -> date:
    """A date written ``YYYY-MM-DD`` (or ``YYYYMMDD``: ``calendar_date``); raises
    DiaryError otherwise."""
    try:
        return calendar_date(text)
    except ValueError:
        raise DiaryError(
            f"'{printable(text)}' is not a date: write it as YYYY-MM-DD (for example 2026-03-14).",
            field="date",
        ) from None


_LINE_BREAKING: Final = frozenset({"Cc", "Zl", "Zp"})
"""Control characters, and the line and paragraph separators (U+2028, U+2029), which
are not control characters but break the line for many readers (a CSV row read by
lines, a text editor): the note would become a half row in the clinic's CSV."""

BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Embeddings, overrides and isolates: they make a note read differently in the
clinic's report and CSV from what was stored ("Trojan Source"). The plain marks
(U+200E, U+200F) that right-to-left writers use stay allowed."""


_INVISIBLE: Final = frozenset({"Cf", "Zs"})
"""Format characters (zero-width space, joiners, word joiner, byte-order mark, soft
hyphen, direction marks) and the spaces of every width: they show nothing by themselves."""

_BLANK_RANGES: Final = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors
    (0x2800, 0x2800),  # braille pattern blank: drawn as an empty cell
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
"""Characters outside ``_INVISIBLE`` that show nothing either: Unicode's default
ignorable code points of other categories (DerivedCoreProperties.txt), and the braille
blank."""


def is_invisible(ch: str) -> bool:
    """Whether the character ``ch`` shows nothing by itself: whitespace (line breaks
    and tabs included), one of ``_INVISIBLE`` or in ``_BLANK_RANGES``."""
    if ch.isspace() or unicodedata.category(ch) in _INVISIBLE:
        return True
    point = ord(ch)
    return any(low <= point <= high for low, high in _BLANK_RANGES)


def shows_nothing(text: str) -> bool:
    """Whether ``text`` is empty to the eye: made only of ``is_invisible`` characters
    (an empty text too). A note that shows nothing is recorded as no note."""
    return all(is_invisible(ch) for ch in text)


def check_text(text: str | bytes, *, field: str, max_chars: int) -> str:
    """The text if it is UTF-8, on one line (no control characters, no line or paragraph
    separators), without ``BIDI_CONTROLS`` and at most ``max_chars`` long; raises
    DiaryError otherwise."""
    try:
        value = text.decode("utf-8") if isinstance(text, bytes) else text
        value.encode("utf-8")  # a str from argv may carry undecodable bytes as surrogates
    except UnicodeError:
        raise DiaryError(
            f"The {field_label(field).lower()} is not readable text (it must be UTF-8).",
            field=field,
        ) from None
    if any(unicodedata.category(ch) in _LINE_BREAKING for ch in value):
        raise DiaryError(
            f"The {field_label(field).lower()} must be one line of text, without control "
            "characters (tabs, line breaks, escape codes).",
            field=field,
        )
    if any(ch in BIDI_CONTROLS for ch in value):
        raise DiaryError(
            f"The {field_label(field).lower()} holds an invisible character that reorders the "
            "text around it (a bidirectional override or isolate); type it again without "
            "copying it in.",
            field=field,
        )
    if len(value) > max_chars:
        raise DiaryError(
            f"The {field_label(field).lower()} is {len(value)} characters long; at most "
            f"{max_chars} fit.",
            field=field,
        )
    return value


_LABELS: Final = {
    "leg_symptoms": "Leg symptoms",
    "sleep_quality": "Sleep quality",
    "minutes_to_sleep": "Minutes to fall asleep",
    "awakenings": "Awakenings",
    "onset": "Time of onset",
    "side_effects": "Side effects",
    "note": "Note",
}


def field_label(field: str) -> str:
    """The name of a field (``"leg_symptoms"``, ``"note"``) in the patient's words."""
    return _LABELS.get(field, field[:1].upper() + field[1:])
