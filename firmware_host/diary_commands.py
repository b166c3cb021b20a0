"""``nirpad diary``, ``nirpad diary show`` and ``nirpad irls``: the symptom diary's CLI.

Owns: turning options or, in a terminal, answers to prompts into diary entries; the
text and JSON listings; exit codes (0 recorded, 1 storage error or cancelled, 2 a value
refused, with the patient's message on stderr and nothing written).

A command asks questions only when stdin is a terminal and no value was given as an
option (``is_interactive`` is the seam tests replace). A bad answer is asked again.
A nightly correction (``--corrects ID``) changes only the answers given
(``care.diary_correction``); its questions offer entry ID's answers, kept on Enter.
``NO_ANSWER`` (``-``), as an option's value or an answer, is no answer: in a correction
it clears one. The line it prints names both entries and what changed.
A new entry is held to the course's dates (``firmware_host.course_inputs``): not in
the future, not before day 1 (before the first session: not before the prescription's
issue date), a baseline IRLS from the issue date to day 1.

Does not own what an entry is, its checks or its storage (``care.diary``,
``care.irls``). The IRLS baseline flag is the caller's (``--baseline``); the wording
of the IRLS is the clinic's file, named in the site configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Final, TextIO, TypeVar

from care.diary import (
    Diary,
    StoredIrls,
    StoredNightly,
    diary_damaged_text,
    diary_exists,
    to_json,
)
from care.diary_correction import NightlyCorrection, correct_nightly, with_answers
from care.diary_entry import (
    NIGHTLY_FIELDS,
    NOTE_MAX_CHARS,
    NightlyEntry,
    SideEffect,
    check_date,
    check_score,
    check_text,
    field_label,
    parse_date,
    whole_number,
)
from care.diary_schema import DiaryError, DiaryStorageError
from care.irls import ITEM_COUNT, ITEM_MAX, IrlsWording, item_label, read_wording, wording_path
from firmware_host.course_inputs import CourseInputError, diary_course_dates, zone_named
from firmware_host.diary_args import NO_ANSWER
from firmware_host.paths import ensure_state_dir, resolve_site_config, resolve_state_dir
from firmware_host.stdout_guard import done
from profiles.locator import printable

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
T = TypeVar("T")

__all__ = ["format_listing", "is_interactive", "main_diary", "main_irls", "parse_items"]


def wall_clock() -> datetime:
    """Now, aware (tests replace it)."""
    return datetime.now(UTC)


def is_interactive() -> bool:
    """Whether to ask questions: stdin is a terminal."""
    return sys.stdin.isatty()


class _Cancelled(Exception):
    """The patient ended the questions (end of input)."""


def main_diary(args: argparse.Namespace) -> int:
    if args.diary_action == "show":
        return _guarded(lambda: _show(args))
    return _guarded(lambda: _record_nightly(args))


def main_irls(args: argparse.Namespace) -> int:
    return _guarded(lambda: _record_irls(args))


def _guarded(action: Callable[[], int]) -> int:
    try:
        return action()
    except DiaryError as exc:
        _err(f"{exc} Nothing was recorded.")
        return EXIT_USAGE
    except CourseInputError as exc:
        _err(f"{exc}; nothing was recorded.")
        return EXIT_USAGE
    except DiaryStorageError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except _Cancelled:
        _err("cancelled; nothing was recorded.")
        return EXIT_ERROR


def _record_nightly(args: argparse.Namespace) -> int:
    answers = _option_answers(args)
    correction = args.corrects is not None
    given = bool(answers) if correction else _says_something(answers)
    if not given and not is_interactive():
        raise DiaryError(
            "Nothing to record: give at least one value (nirpad diary --help).", field="entry"
        )
    with _open(args) as diary:
        entry_date = _entry_date(args, diary, "nightly")
        check_date(entry_date, today=diary.today(), course=diary.course)  # before any question
        old = diary.correctable_nightly(args.corrects).entry if correction else None
        if not given:
            answers = _ask_nightly(entry_date, old, sys.stdin, sys.stdout)
        if correction:
            made = correct_nightly(diary, args.corrects, answers, entry_date=entry_date)
            line = _corrected(made)
        else:
            new_id = diary.add_nightly(with_answers(NightlyEntry(entry_date), answers))
            line = _recorded("diary entry", new_id, entry_date, None)
    done(line)
    return EXIT_OK


def _option_answers(args: argparse.Namespace) -> dict[str, object]:
    """The answers given as options (``NO_ANSWER``: no answer), by name; the others
    are left out, so that a correction keeps them."""
    answers: dict[str, object] = {
        spec.name: None if getattr(args, spec.name) == NO_ANSWER else getattr(args, spec.name)
        for spec in NIGHTLY_FIELDS
        if getattr(args, spec.name) is not None
    }
    if args.side_effects is not None:
        answers["side_effects"] = _option_effects(args.side_effects)
    if args.note is not None:
        answers["note"] = "" if args.note.strip() == NO_ANSWER else args.note
    return answers


def _option_effects(names: list[str]) -> frozenset[SideEffect]:
    if NO_ANSWER in names and len(set(names)) > 1:
        raise DiaryError(
            f"--side-effect {NO_ANSWER} (none) cannot be given with a side effect.",
            field="side_effects",
        )
    return frozenset(SideEffect(name) for name in names if name != NO_ANSWER)


def _says_something(answers: dict[str, object]) -> bool:
    """Whether a new entry with ``answers`` would hold any answer (a note that shows
    nothing is no note): the rule ``Diary.add_nightly`` holds every new entry to."""
    return with_answers(NightlyEntry(date.min), answers).holds_answer


def _record_irls(args: argparse.Namespace) -> int:
    if args.items is None and not is_interactive():
        raise DiaryError(
            "Give the ten item scores with --items (nirpad irls --help).", field="items"
        )
    with _open(args) as diary:
        entry_date = _entry_date(args, diary, "irls")
        baseline = _baseline(args, diary)
        check_date(entry_date, today=diary.today(), course=diary.course, baseline=baseline)
        if args.items is not None:
            items = parse_items(args.items)
        else:
            items = _ask_irls(_wording(args), sys.stdin, sys.stdout)
        new_id = diary.add_irls(entry_date, items, baseline=baseline, corrects=args.corrects)
        [stored] = [i for i in diary.irls() if i.id == new_id]
    kind = "baseline IRLS" if baseline else "IRLS"
    done(_recorded(kind, new_id, entry_date, args.corrects))
    print(f"Total {stored.total} of 40: {stored.band.value}.")
    return EXIT_OK


def _baseline(args: argparse.Namespace, diary: Diary) -> bool:
    """``--baseline``/``--no-baseline``; else, for a correction, the mark of the IRLS it
    corrects (a typo fixed in the baseline must not unmark it); else not the baseline."""
    if args.baseline is not None:
        return bool(args.baseline)
    if args.corrects is None:
        return False
    return any(i.id == args.corrects and i.baseline for i in diary.irls(history=True))


def _entry_date(args: argparse.Namespace, diary: Diary, table: str) -> date:
    """``--date``; else, for a correction, the day of the entry it corrects (a
    correction made the next morning must not move last night's entry to today);
    else today."""
    if args.date is not None:  # an empty --date is refused, never "today"
        return parse_date(args.date)
    if args.corrects is not None:
        corrected = diary.entry_date(table, args.corrects)
        if corrected is not None:
            return corrected
    return diary.today()


def parse_items(text: str) -> dict[int, int]:
    """``"2,3,1,..."`` as {item number: score}; the store checks count and range."""
    items: dict[int, int] = {}
    for number, part in enumerate(text.split(","), start=1):
        try:
            items[number] = whole_number(part)
        except ValueError:
            raise DiaryError(
                f"Item {number}: '{printable(part.strip())}' is not a score (a whole number "
                f"0-{ITEM_MAX}).",
                field=f"item {number}",
            ) from None
    return items


def _open(args: argparse.Namespace) -> Diary:
    """The diary, held to the course's dates in the patient's zone."""
    zone = zone_named(args.tz)
    state_dir = ensure_state_dir(resolve_state_dir(args.state_dir))
    site = resolve_site_config(state_dir, getattr(args, "site_config", None))
    course, note = diary_course_dates(state_dir, site, zone, wall_clock)
    if note is not None:
        _err(f"note: {note}.")
    return Diary.open(state_dir, course=course, wall_clock=wall_clock, tz=zone)


def _wording(args: argparse.Namespace) -> IrlsWording | None:
    site = resolve_site_config(resolve_state_dir(args.state_dir), args.site_config)
    path = wording_path(site)
    return None if path is None else read_wording(path)


def _recorded(kind: str, new_id: int, entry_date: date, corrects: int | None) -> str:
    replacing = f", replacing entry {corrects}" if corrects is not None else ""
    return f"Recorded {kind} {new_id} for {entry_date.isoformat()}{replacing}."


def _corrected(correction: NightlyCorrection) -> str:
    """The success line of a correction: both entries, and what changed."""
    old, new = correction.replaced.entry, correction.entry
    changes = "; ".join(_change(name, old, new) for name in correction.changed)
    line = _recorded("diary entry", correction.new_id, new.entry_date, correction.replaced.id)
    return f"{line[:-1]}: {changes}; the other answers are kept."


def _change(name: str, old: NightlyEntry, new: NightlyEntry) -> str:
    """One changed answer in words: ``leg symptoms 3 (was 6)``, ``note cleared``."""
    if name == "entry_date":
        return f"moved from {old.entry_date.isoformat()}"
    label = field_label(name).lower()
    if name == "note":
        return f"{label} cleared" if not new.note else f"{label} changed"
    before, after = _answer_text(getattr(old, name)), _answer_text(getattr(new, name))
    return f"{label} {'cleared' if after == NO_ANSWER else after} (was {before})"


def _answer_text(value: object) -> str:
    """An answer as ``diary show`` prints it; no answer (no side effects, no note) ``-``."""
    if isinstance(value, frozenset):
        return ", ".join(sorted(e.value for e in value)) or NO_ANSWER
    if isinstance(value, str):
        return value or NO_ANSWER
    return _dash(value)


def _ask(prompt: str, stdin: TextIO, stdout: TextIO) -> str:
    stdout.write(prompt)
    stdout.flush()
    try:
        line = stdin.readline()
    except UnicodeDecodeError:
        return "\udcff"  # refused below as unreadable text, then asked again
    if not line:
        raise _Cancelled
    return line.rstrip("\n")


def _ask_until_valid(prompt: str, parse: Callable[[str], T], stdin: TextIO, stdout: TextIO) -> T:
    while True:
        try:
            return parse(_ask(prompt, stdin, stdout))
        except DiaryError as exc:
            stdout.write(f"  {exc} Please try again.\n")


def _score_parser(name: str, low: int, high: int) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        if not text.strip() or text.strip() == NO_ANSWER:
            return None
        try:
            value = whole_number(text)
        except ValueError:
            shown = printable(text.strip())
            raise DiaryError(f"'{shown}' is not a whole number.", field=name) from None
        check_score(value, low, high, field=name)
        return value

    return parse


def _parse_effects(text: str) -> frozenset[SideEffect]:
    if text.strip() == NO_ANSWER:
        return frozenset()
    names = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return frozenset(SideEffect(name) for name in names)
    except ValueError:
        raise DiaryError(
            f"Choose side effects from {', '.join(e.value for e in SideEffect)}.",
            field="side_effects",
        ) from None


def _parse_note(text: str) -> str:
    if text.strip() == NO_ANSWER:
        return ""
    return check_text(text, field="note", max_chars=NOTE_MAX_CHARS)


def _ask_nightly(
    entry_date: date, old: NightlyEntry | None, stdin: TextIO, stdout: TextIO
) -> dict[str, object]:
    """Every answer, asked; in a correction (``old``) Enter keeps its answer."""
    if old is None:
        stdout.write(f"Diary for {entry_date.isoformat()} (press Enter to skip a question).\n")
    else:
        stdout.write(
            f"Correcting the diary for {entry_date.isoformat()}: press Enter to keep an "
            f"answer, {NO_ANSWER} to clear it.\n"
        )
    answers: dict[str, object] = {}
    for name, question, parse in _nightly_questions():
        kept = getattr(old or NightlyEntry(entry_date), name)  # a new entry's: no answer
        prompt = f"{question}: " if old is None else f"{question} [{_answer_text(kept)}]: "
        answers[name] = _ask_until_valid(prompt, _or_kept(parse, kept), stdin, stdout)
    return answers


def _nightly_questions() -> list[tuple[str, str, Callable[[str], object]]]:
    """Each answer's name, question and parser, in the order they are asked."""
    effects = ", ".join(e.value for e in SideEffect)
    return [
        *((s.name, s.question, _score_parser(s.name, s.low, s.high)) for s in NIGHTLY_FIELDS),
        ("side_effects", f"Side effects ({effects}; comma-separated)", _parse_effects),
        ("note", f"Note (at most {NOTE_MAX_CHARS} characters)", _parse_note),
    ]


def _or_kept(parse: Callable[[str], object], kept: object) -> Callable[[str], object]:
    """``parse``, but an answer left empty is ``kept``."""

    def parse_or_keep(text: str) -> object:
        return kept if not text.strip() else parse(text)

    return parse_or_keep


def _ask_irls(wording: IrlsWording | None, stdin: TextIO, stdout: TextIO) -> dict[int, int]:
    stdout.write(f"IRLS: score each of the {ITEM_COUNT} items from 0 to {ITEM_MAX}.\n")
    items: dict[int, int] = {}
    for number in range(1, ITEM_COUNT + 1):
        parse = _score_parser(f"item {number}", 0, ITEM_MAX)
        answer = _ask_until_valid(
            f"{item_label(number, wording)}: ", _required(parse), stdin, stdout
        )
        items[number] = answer
    return items


def _required(parse: Callable[[str], int | None]) -> Callable[[str], int]:
    def required(text: str) -> int:
        value = parse(text)
        if value is None:
            raise DiaryError("Every IRLS item needs a score.", field="items")
        return value

    return required


def _show(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    damaged = 0
    if not diary_exists(state_dir):  # never create a diary just to list it
        nightly: list[StoredNightly] = []
        irls: list[StoredIrls] = []
    else:
        with Diary.open_to_read(state_dir) as diary:
            nightly, irls = diary.nightly(history=args.history), diary.irls(history=args.history)
            damaged = diary.damaged_rows
    if damaged:
        print(f"nirpad: {diary_damaged_text(damaged, 'shown')}", file=sys.stderr)
    wording = _wording(args)
    if args.json:
        irls_json = [to_json(i) | _subscales_json(i, wording) for i in irls]
        data = {"nightly": [to_json(n) for n in nightly], "irls": irls_json}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(format_listing(nightly, irls, wording))
    return EXIT_OK


def _subscales_json(stored: StoredIrls, wording: IrlsWording | None) -> dict[str, object]:
    if wording is None or wording.subscales is None:
        return {}
    return {"subscales": wording.subscales.scores(stored.items)}


def format_listing(
    nightly: list[StoredNightly],
    irls: list[StoredIrls],
    wording: IrlsWording | None = None,
) -> str:
    """The diary as text: nightly entries, then IRLS entries, oldest first."""
    lines = ["Nightly entries:"] + ([_nightly_line(n) for n in nightly] or ["  none"])
    lines += ["IRLS:"] + ([_irls_line(i, wording) for i in irls] or ["  none"])
    return "\n".join(lines)


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _nightly_line(stored: StoredNightly) -> str:
    e = stored.entry
    effects = ", ".join(sorted(x.value for x in e.side_effects)) or "none"
    text = (
        f"  #{stored.id} {e.entry_date.isoformat()}  legs {_dash(e.leg_symptoms)}/10  "
        f"sleep {_dash(e.sleep_quality)}/10  asleep in {_dash(e.minutes_to_sleep)} min  "
        f"woke {_dash(e.awakenings)}x  onset {_dash(e.onset)}  side effects: {effects}"
    )
    text += f"  note: {e.note}" if e.note else ""
    return text + _correction_note(stored.supersedes, stored.superseded_by)


def _irls_line(stored: StoredIrls, wording: IrlsWording | None) -> str:
    text = f"  #{stored.id} {stored.entry_date.isoformat()}  total {stored.total}/40"
    text += f" ({stored.band.value})"
    text += "  baseline" if stored.baseline else ""
    if wording is not None and wording.subscales is not None:
        scores = wording.subscales.scores(stored.items)
        text += (
            f"  symptom severity {scores['symptom_severity']}, "
            f"symptom impact {scores['symptom_impact']}"
        )
    return text + _correction_note(stored.supersedes, stored.superseded_by)


def _correction_note(supersedes: int | None, superseded_by: int | None) -> str:
    if superseded_by is not None:
        return f"  (corrected by #{superseded_by})"
    return f"  (corrects #{supersedes})" if supersedes is not None else ""


def _err(message: str) -> None:
    print(f"nirpad: {message}", file=sys.stderr)
