"""The course page: adherence per week, the next checkpoint, tonight, the diary forms,
and the clinic report for download.

Owns: ``GET /course`` (the course as ``nirpad course --json`` gives it, and the lines
``nirpad course`` prints on stderr, shown and logged in one line; with tonight's diary
and the weekly IRLS as forms), ``POST /diary/nightly`` and ``POST /diary/irls``
(written to the diary as ``nirpad diary`` and ``nirpad irls`` write them: the same
checks, the same course dates, a second entry for a date corrects the first; the
nightly form takes a missed day's date, as ``nirpad diary --date`` does; a form's
correction is only of the day it was loaded for; the answer, recorded or refused, goes
back to ``/course`` with ``web.forms.answered_once``, so a reload writes nothing again
and a double click writes once), and
``GET /report/<kind>`` (the PDF, CSV or FHIR file of ``nirpad report``, built in memory).
Does not own any figure, rule or check (``care``, ``firmware_host.course_commands``,
``firmware_host.report_commands``); the diary's refusals are shown word for word. Its
refusals of its own are about its own form: a field that is not a whole number, a side
effect the form does not offer (refused, never dropped), a correction sent on another
day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from care.diary import Diary
from care.diary_entry import NIGHTLY_FIELDS, NightlyEntry, SideEffect, parse_date, whole_number
from care.diary_schema import DiaryError, diary_exists
from care.irls import ITEM_COUNT, ITEM_MAX, item_label, read_wording, wording_path
from firmware_host.course_commands import course_document
from firmware_host.course_inputs import CourseInputError, diary_course_dates, zone_named
from firmware_host.paths import PathNameError, check_state_dir, resolve_site_config
from firmware_host.report_commands import REPORT_FILE_NAMES, report_files
from web.flash import Flash
from web.forms import answered_once, checked_form, shown
from web.pages_status import web_state
from web.render import error_page, page

log = logging.getLogger(__name__)

MAX_DIARY_FORM_BYTES: Final = 4096
MAX_DIARY_FIELDS: Final = 20
REPORT_TYPES: Final = {
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "fhir": "application/fhir+json",
}
NO_DIARY: Final[dict[str, Any]] = {
    "tonight_entry": None,
    "latest_irls": None,
    "today_irls": None,
    "diary_problem": None,
}
SIDE_EFFECT_WORDS: Final = {
    SideEffect.WARMTH: "Warmth",
    SideEffect.REDNESS: "Redness",
    SideEffect.SKIN_IRRITATION: "Skin irritation",
    SideEffect.HEADACHE: "Headache",
    SideEffect.OTHER: "Other",
}


def _site_arg(request: Request) -> str | None:
    site = web_state(request).settings.site_config
    return None if site is None else str(site)


def _open_diary(request: Request) -> Diary:
    """The diary held to the course's dates in the patient's zone, as the CLI opens it."""
    settings = web_state(request).settings
    zone = zone_named(settings.tz)
    state_dir = check_state_dir(settings.state_dir)  # a file, a link to nothing: said
    if not state_dir.is_dir():  # the controller makes it; the page never does
        raise DiaryError(
            f"There is no state directory {state_dir} yet: start the controller once.",
            field="diary",
        )
    site = resolve_site_config(state_dir, _site_arg(request))
    course, note = diary_course_dates(state_dir, site, zone, _now)
    if note is not None:
        log.info("diary: %s", note)
    return Diary.open(state_dir, course=course, wall_clock=_now, tz=zone)


def _now() -> datetime:
    return datetime.now(UTC)


def _diary_today(request: Request) -> dict[str, Any]:
    """Tonight's entry and the latest IRLS, if any (blocking; never creates a diary).
    Read as ``nirpad diary show`` reads it: on a full or read-only disk too."""
    settings = web_state(request).settings
    if not diary_exists(settings.state_dir):  # in its place or the old one
        return NO_DIARY
    try:
        zone = zone_named(settings.tz)
        with Diary.open_to_read(settings.state_dir, wall_clock=_now, tz=zone) as diary:
            today = diary.today()
            tonight = [n for n in diary.nightly() if n.entry.entry_date == today]
            irls = diary.irls()
    except (DiaryError, CourseInputError, OSError) as exc:
        return {**NO_DIARY, "diary_problem": str(exc)}
    today_irls = [i for i in irls if i.entry_date == today]
    return {
        "tonight_entry": tonight[-1] if tonight else None,
        "latest_irls": irls[-1] if irls else None,
        "today_irls": today_irls[-1] if today_irls else None,
        "diary_problem": None,
    }


def _irls_labels(request: Request) -> tuple[list[tuple[int, str]], str | None]:
    """Each IRLS item's label: the clinic's wording where its wording file (the site
    configuration's ``[course] irls_wording``) gives one, as ``nirpad irls`` asks it;
    and why the file cannot be used, if it cannot (blocking)."""
    settings = web_state(request).settings
    problem = None
    try:
        path = wording_path(resolve_site_config(settings.state_dir, _site_arg(request)))
        wording = None if path is None else read_wording(path)
    except (DiaryError, OSError) as exc:
        wording, problem = None, f"The clinic's IRLS wording cannot be used: {exc}"
    labels = [(n, item_label(n, wording)) for n in range(1, ITEM_COUNT + 1)]
    return [(n, label[:1].upper() + label[1:]) for n, label in labels], problem


def _course_context(request: Request) -> dict[str, Any]:
    settings = web_state(request).settings
    warnings: list[str] = []  # what `nirpad course` prints on stderr
    document = course_document(settings.state_dir, _site_arg(request), settings.tz, warnings)
    shown = [w[:1].upper() + w[1:] for w in warnings]
    if shown:  # one line for the request, however many
        log.warning("the course page shows: %s", " ".join(shown))
    course = None if isinstance(document, str) else document
    labels, irls_problem = _irls_labels(request)
    return {
        "course": course,
        "course_problem": document if isinstance(document, str) else None,
        "course_warnings": shown,
        "nightly_fields": NIGHTLY_FIELDS,
        "side_effects": SIDE_EFFECT_WORDS,
        "irls_items": labels,
        "irls_problem": irls_problem,
        "irls_max": ITEM_MAX,
        **_diary_today(request),
    }


async def course_page(request: Request) -> Response:
    context = await run_in_threadpool(_course_context, request)
    return page(request, "course.html", tab="course", **context, **shown(request))


def _number(form: FormData, name: str) -> int | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return whole_number(value)
    except ValueError:
        raise DiaryError(f"{name.replace('_', ' ').capitalize()}: {value!r} is not a whole "
                         "number.", field=name) from None  # fmt: skip


def _text(form: FormData, name: str) -> str:
    """A text field as the diary's check should see it: the browser's bytes that were
    not UTF-8 (which the form parser turned into U+FFFD) become a lone surrogate, so the
    diary refuses them in the CLI's own words ("… is not readable text")."""
    value = form.get(name)
    return value.replace("\ufffd", "\udcff") if isinstance(value, str) else ""


def _corrects(diary: Diary, table: str, form: FormData, entry_date: date) -> int | None:
    """The entry the form's hidden ``corrects`` names, if it is about ``entry_date``.

    The page fills it in with the entry it showed for that day. A form loaded before
    midnight and sent after it names yesterday's entry, and correcting that would move
    it to today (the store allows a correction to change the date, as ``nirpad diary
    --corrects --date`` does): refused, nothing written. An entry's date never changes
    (the diary is append-only), so checking it before the write is enough."""
    corrects = _number(form, "corrects")
    shown = None if corrects is None else diary.entry_date(table, corrects)
    if shown is not None and shown != entry_date:
        what = "tonight's entry" if table == "nightly" else "today's IRLS"
        raise DiaryError(
            f"This form was for {shown.isoformat()}; the day has changed. "
            f"Reload the page and enter {what}.",
            field="corrects",
        )
    return corrects


def _side_effects(form: FormData) -> frozenset[SideEffect]:
    """The ticked side effects; one the diary does not know is refused, never dropped."""
    effects: set[SideEffect] = set()
    known = [e.value for e in SideEffect]
    for value in form.getlist("side_effects"):
        if not isinstance(value, str) or value not in known:  # a file, a stranger's form
            named = repr(value) if isinstance(value, str) else "(a file)"
            raise DiaryError(f"Unknown side effect {named}: choose from {', '.join(known)}.",
                             field="side_effects")  # fmt: skip
        effects.add(SideEffect(value))
    return frozenset(effects)


def _nightly(request: Request, form: FormData) -> str:
    values = {spec.name: _number(form, spec.name) for spec in NIGHTLY_FIELDS}
    effects = _side_effects(form)
    note = _text(form, "note")
    chosen = _text(form, "date").strip()
    with _open_diary(request) as diary:
        today = diary.today()
        entry_date = parse_date(chosen) if chosen else today
        # the hidden id names tonight's entry: a missed day's date adds a new entry
        corrects = _corrects(diary, "nightly", form, entry_date) if entry_date == today else None
        entry = NightlyEntry(entry_date, side_effects=effects, note=note, **values)
        diary.add_nightly(entry, corrects=corrects)
    if entry_date == today:
        return "Tonight's diary entry is recorded."
    return f"The diary entry for {entry_date.isoformat()} is recorded."


def _irls(request: Request, form: FormData) -> str:
    items: dict[int, int] = {}
    for number in range(1, ITEM_COUNT + 1):
        score = _number(form, f"item_{number}")
        if score is not None:
            items[number] = score
    baseline = form.get("baseline") == "yes"
    with _open_diary(request) as diary:
        today = diary.today()
        corrects = _corrects(diary, "irls", form, today)
        new_id = diary.add_irls(today, items, baseline=baseline, corrects=corrects)
        [stored] = [i for i in diary.irls() if i.id == new_id]
    return f"The IRLS is recorded: total {stored.total} of 40, {stored.band.value}."


async def _diary_post(request: Request, write: Callable[[Request, FormData], str]) -> Response:
    form = await checked_form(
        request, MAX_DIARY_FORM_BYTES, MAX_DIARY_FIELDS, repeatable=frozenset({"side_effects"})
    )
    if isinstance(form, Response):
        return form

    async def written() -> Flash:
        try:
            message = await run_in_threadpool(write, request, form)
        except (DiaryError, CourseInputError, PathNameError, OSError) as exc:  # OSError: storage
            return Flash(f"Not recorded: {exc}", ok=False)
        return Flash(message, ok=True)

    return await answered_once(request, form, "/course", written)


async def diary_nightly(request: Request) -> Response:
    return await _diary_post(request, _nightly)


async def diary_irls(request: Request) -> Response:
    return await _diary_post(request, _irls)


async def report(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in REPORT_TYPES:
        return error_page(request, 404, "There is no such report file.")
    settings = web_state(request).settings
    start, end = request.query_params.get("from") or None, request.query_params.get("to") or None
    files = await run_in_threadpool(
        report_files, settings.state_dir, _site_arg(request), settings.tz, start, end
    )
    if isinstance(files, str):
        return error_page(request, 409, f"No report: {files}")
    name = Path(REPORT_FILE_NAMES[kind]).name
    return Response(
        files[kind],
        media_type=REPORT_TYPES[kind],
        headers={"content-disposition": f'attachment; filename="nirpad-{name}"'},
    )


ROUTES: Final = [
    Route("/course", course_page, methods=["GET"]),
    Route("/diary/nightly", diary_nightly, methods=["POST"]),
    Route("/diary/irls", diary_irls, methods=["POST"]),
    Route("/report/{kind}", report, methods=["GET"]),
]
