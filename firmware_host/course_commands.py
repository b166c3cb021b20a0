"""``nirpad course``, ``nirpad remind`` and ``nirpad calendar``: the course on the CLI.

Owns: gathering the inputs (the installed prescription, the site configuration, the
patient's time zone, the ledger read-only with the controller's schedule rule; no
running controller is needed), showing the course (a rich table or JSON), the
reminder's exit code and hook, and writing the .ics file. Exit codes: ``course`` and
``calendar`` 0 done, 1 nothing to show or the record unreadable, 2 a bad site setting,
time zone or date; ``remind`` 0 when a session is due now and not yet done, 1 in every
other case (an error too: its reason on stderr).

Does not own the figures, the rule or tonight's status (``care``), nor the schedule
(``safety.records``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from care.adherence import SiteConfigError, rule_from_site
from care.calendar import course_calendar, planned_days
from care.course import Checkpoint, Course, IrlsTotal, build_course
from care.course_json import course_json
from care.diary import diary_damaged_text
from care.diary_entry import calendar_date
from care.diary_schema import DiaryStorageError
from care.remind import RemindSettings, remind_settings
from care.tonight import Tonight, tonight
from firmware_host.course_inputs import CourseInputError, diary_irls_totals, zone_named
from firmware_host.output_files import OutputRefused, write_atomically
from firmware_host.paths import PathNameError, resolve_site_config, resolve_state_dir, user_path
from firmware_host.stdout_guard import done
from profiles.errors import TrustStoreError
from profiles.locator import printable
from profiles.schema import Profile
from profiles.signing import TrustStore
from profiles.store import load_installed
from safety.errors import SafetyError
from safety.limits import load_site_limits
from safety.records import Records, read_records, schedule_rule

log = logging.getLogger(__name__)
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_NOT_DUE: Final = 1
CALENDAR_FROM_AFTER_TODAY_MAX_DAYS: Final = 366
STAND_IN: Final = "the last before day 1, not recorded as the baseline"
"""``calendar --from`` may be at most this many days after today."""
ENV_REMINDER: Final = "NIRPAD_REMINDER"
"""The hook's environment carries the reminder line here."""


def wall_clock() -> datetime:
    """Now, aware (tests replace it)."""
    return datetime.now(UTC)


class _Refused(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Inputs:
    rx: Profile
    records: Records
    course: Course
    tonight: Tonight
    zone: ZoneInfo
    site: Path | None


def main(args: argparse.Namespace) -> int:
    try:
        inputs = _gather(args, lambda warning: print(f"nirpad: {warning}", file=sys.stderr))
    except _Refused as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_NOT_DUE if args.command == "remind" else exc.code
    if args.command == "remind":
        return _remind(inputs, args.run_hook)
    if args.command == "calendar":
        return _calendar(inputs, args.output, args.from_day, resolve_state_dir(args.state_dir))
    if args.json:
        print(json.dumps(course_json(inputs.course, inputs.tonight), indent=2))
    else:
        _print_course(inputs)
    return EXIT_OK


def course_document(
    state_dir: Path,
    site_config: str | None,
    tz: str | None,
    warnings: list[str] | None = None,
) -> dict[str, object] | str:
    """The course as ``nirpad course --json`` gives it (the caregiver's page shows it),
    or the sentence that says why there is none. Never prints: a warning (the IRLS
    trend left out) is appended to ``warnings``, or logged when that is None."""
    args = argparse.Namespace(state_dir=str(state_dir), site_config=site_config, tz=tz,
                              command="course")  # fmt: skip
    try:
        inputs = _gather(args, log.warning if warnings is None else warnings.append)
    except (_Refused, PathNameError) as exc:  # PathNameError: the folder became a file
        return str(exc)
    return course_json(inputs.course, inputs.tonight)


def _gather(args: argparse.Namespace, warn: Callable[[str], None]) -> _Inputs:
    state_dir = resolve_state_dir(args.state_dir)
    site = resolve_site_config(state_dir, args.site_config)
    zone = local_zone(args.tz)
    now = wall_clock()
    try:
        rule = rule_from_site(site)
        limits = load_site_limits(site)
        loaded = load_installed(state_dir, trust=TrustStore.from_site_file(site))
    except (SiteConfigError, SafetyError, TrustStoreError) as exc:
        raise _Refused(f"the site configuration is unusable: {exc}", EXIT_USAGE) from exc
    if loaded is None or loaded.profile is None:
        why = "" if loaded is None else f" ({'; '.join(map(str, loaded.problems))})"
        raise _Refused(f"no usable prescription is installed in {state_dir}{why}", EXIT_ERROR)
    rx = loaded.profile
    try:
        records = read_records(state_dir, lambda: now, schedule_rule(rx, limits))
    except SafetyError as exc:
        raise _Refused(str(exc), EXIT_ERROR) from exc
    if records.damaged_rows:  # the course counts what could be read, and says so
        warn(
            f"{records.damaged_rows} damaged row(s) of the treatment record could not be "
            "read; the course counts the rest."
        )
    symptoms = _irls_totals(state_dir, warn) if args.command == "course" else []
    today = now.astimezone(zone).date()
    course = build_course(rx, records.sessions, today, zone, rule, symptoms)
    status = tonight(
        rx,
        course,
        records.sessions,
        now,
        zone,
        records.next_start_allowed_at,
        record_problem=records.record_problem,
    )
    return _Inputs(rx, records, course, status, zone, site)


def local_zone(name: str | None) -> ZoneInfo:
    """``name``, else $TZ, else the system's zone (/etc/localtime), else UTC."""
    try:
        return zone_named(name)
    except CourseInputError as exc:
        raise _Refused(str(exc), EXIT_USAGE) from exc


def _irls_totals(state_dir: Path, warn: Callable[[str], None]) -> list[IrlsTotal]:
    """The diary's IRLS totals for the checkpoints; a diary that cannot be read leaves
    the trend out (the adherence still stands) and says so through ``warn``."""
    try:
        totals, damaged = diary_irls_totals(state_dir)
    except DiaryStorageError as exc:
        warn(f"the IRLS trend is left out: {exc}")
        return []
    if damaged:
        warn(diary_damaged_text(damaged, "counted"))
    return totals


def _remind(inputs: _Inputs, run_hook: bool) -> int:
    """Tonight's line; when due, the hook. A ``[remind]`` the hook cannot run with is
    said at every run, due or not, so the journal shows it before the evening it fails."""
    line = f"nirpad: {inputs.tonight.text}"
    print(line)
    settings = _hook_settings(inputs.site) if run_hook else None
    if not inputs.tonight.due_now:
        return EXIT_NOT_DUE
    if settings is not None:
        run_reminder_hook(settings, line)
    return EXIT_OK


def _hook_settings(site: Path | None) -> RemindSettings | None:
    try:
        return remind_settings(site)
    except SiteConfigError as exc:
        print(f"nirpad: the reminder hook cannot be run: {exc}", file=sys.stderr)
        return None


def run_reminder_hook(settings: RemindSettings, line: str) -> bool:
    """Run the hook (no shell, a timeout, ``line`` in $NIRPAD_REMINDER, its output
    discarded); True if it exited 0. A failure is reported on stderr (the journal) and
    never raised."""
    if not settings.hook:
        return False
    name = settings.hook[0]
    try:
        done = subprocess.run(
            settings.hook,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # never held: a hook printing in a loop filled memory
            stderr=subprocess.DEVNULL,
            timeout=settings.hook_timeout_s,
            env={**os.environ, ENV_REMINDER: line},
            check=False,
        )
    except subprocess.TimeoutExpired:
        problem = f"did not finish in {settings.hook_timeout_s:g} s and was stopped"
    except OSError as exc:
        problem = f"could not run: {exc.strerror or exc}"
    else:
        if done.returncode == 0:
            return True
        problem = f"exited with status {done.returncode}"
    print(f"nirpad: the reminder hook {name} {problem}", file=sys.stderr)
    return False


def _calendar(inputs: _Inputs, output: str, from_day: str | None, state_dir: Path) -> int:
    first_day = inputs.course.first_day
    if first_day is None:
        try:
            first_day = calendar_date(from_day) if from_day is not None else inputs.course.today
        except ValueError:
            print(
                f"nirpad: --from '{printable(from_day or '')}' is not a date: write it as "
                "YYYY-MM-DD (like 2026-11-03)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        latest = inputs.course.today + timedelta(days=CALENDAR_FROM_AFTER_TODAY_MAX_DAYS)
        if first_day > latest:
            print(
                f"nirpad: --from {first_day} is more than a year after today "
                f"({inputs.course.today}): start by {latest}",
                file=sys.stderr,
            )
            return EXIT_USAGE
    elif from_day is not None:  # day 1 is the first session's: --from cannot move it
        print(
            f"nirpad: note: --from {printable(from_day)} is not used: the course began on "
            f"{first_day.isoformat()}, its first session",
            file=sys.stderr,
        )
    count = len(planned_days(inputs.rx, first_day))
    if count == 0:
        rx = inputs.rx
        print(
            f"nirpad: no evening to plan from {first_day.isoformat()}: prescription {rx.id} "
            f"is valid from {rx.issued.isoformat()} to the day before "
            f"{rx.expires.isoformat()}; nothing was written",
            file=sys.stderr,
        )
        return EXIT_ERROR
    ics = course_calendar(inputs.rx, first_day, inputs.zone, wall_clock())
    target = user_path(output)  # absolute, ~ expanded: the file written, as report says
    try:  # a full disk leaves the calendar before intact, never half of a new one
        write_atomically([(target, ics)], state_dir=state_dir)
    except OutputRefused as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return exc.code
    done(f"{count} planned sessions from {first_day.isoformat()} written to {target}")
    return EXIT_OK


def _print_course(inputs: _Inputs) -> None:
    from rich.console import Console

    rx, course = inputs.rx, inputs.course
    console = Console(highlight=False)
    window = "" if rx.window is None else f", {rx.window.start}–{rx.window.end}"
    console.print(
        f"Prescription {rx.id} ({rx.name}): {rx.sessions_per_week} sessions a week for "
        f"{rx.course_weeks} weeks{window}"
    )
    if course.first_day is None or course.end is None:
        console.print("Course: not started (day 1 is the first session)")
    else:
        week = course.current_week
        where = f"week {week} of {rx.course_weeks}" if week else "over"
        last = course.end - timedelta(days=1)
        console.print(f"Course: day 1 {course.first_day}, last day {last} ({where})")
        console.print(f"Rule: {course.rule.describe()}")
        console.print(_table(course))
        console.print(
            f"Weeks on target: {course.weeks_on_target} of {len(course.weeks)}; "
            f"longest run: {course.longest_run_on_target}"
        )
    for each in course.checkpoints:
        console.print(f"Checkpoint: {checkpoint_line(each)}", soft_wrap=True)
    checkpoint = course.next_checkpoint
    if checkpoint is not None:
        console.print(f"Next checkpoint: {checkpoint.name} on {checkpoint.on}")
    console.print(f"Tonight: {inputs.tonight.text}")
    for old in course.earlier:
        console.print(
            f"Earlier course: {old.profile_id}, {old.first_day} to {old.last_day}, "
            f"{old.done} session{'' if old.done == 1 else 's'} ({old.full} full)"
        )


def checkpoint_line(checkpoint: Checkpoint) -> str:
    """A checkpoint in one line: its day, the weeks on target by then and the IRLS
    trend since the baseline (patient-reported)."""
    weeks = checkpoint.weeks
    text = (
        f"{checkpoint.name} on {checkpoint.on}: {checkpoint.weeks_on_target} of {weeks} "
        f"week{'' if weeks == 1 else 's'} on target"
    )
    trend = checkpoint.symptoms
    if trend.baseline is None:
        return text + "; no baseline IRLS"
    on = trend.baseline[0] if trend.baseline_marked else f"{trend.baseline[0]}, {STAND_IN}"
    baseline = f"baseline IRLS {trend.baseline[1]} ({trend.baseline_band}, {on})"
    if trend.latest is None or trend.change is None:
        return f"{text}; {baseline}, none since"
    latest = f"{trend.latest[1]} ({trend.latest_band}, {trend.latest[0]})"
    return f"{text}; {baseline}, then {latest}: {trend.change:+d}"


def _table(course: Course) -> object:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for title in ("Week", "From", "Done", "Full", "Fluence", "Stops", "Outside", "Missed"):
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    rows = [(str(w.number), f"{w.start:%d %b}", w.figures, w.status) for w in course.weeks]
    rows.append(("all", "", course.total, ""))
    for number, start, figures, status in rows:
        stops = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in figures.early_stops.items() if n)
        table.add_row(
            number,
            start,
            f"{figures.done}/{figures.prescribed}",
            str(figures.full),
            f"{figures.fluence_share:.0%}",
            stops or "-",
            str(figures.outside_window),
            str(figures.missed),
            status,
        )
    return table
