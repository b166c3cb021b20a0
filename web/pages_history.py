"""The history page: the recorded sessions with their outcomes, a chart, and a CSV file.

Owns: ``GET /history`` (newest first, times in the patient's zone, the one the course
page uses (``--tz``, else $TZ, else the system's), and the fluence chart) and ``GET
/history.csv`` (the same CSV as ``nirpad history --csv``). The record is read through
the safety layer's read-only API
(``safety.records``: opened ``mode=ro``, never created or written), the one the course
uses; no running controller is needed. A record that cannot be read is said in the
safety layer's words, as ``nirpad history`` says it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from firmware_host.course_inputs import CourseInputError, zone_named
from firmware_host.history import damaged_rows_text, duration_text, outcome_text, to_csv
from safety.records import LedgerError, Records, SessionRecord, read_records
from web.chart import SessionPoint, fluence_chart
from web.pages_status import web_state
from web.render import error_page, page

log = logging.getLogger(__name__)

UNREADABLE: Final = "The treatment record cannot be read just now; try again in a minute."


def _records(state_dir: Path) -> Records | str:
    """The sessions oldest first, and the rows too damaged to read; or why the record
    cannot be read: the safety layer's sentence, as ``nirpad history`` and the course
    page say it (a damaged, emptied or missing file: waiting cures none of them)."""
    try:
        return read_records(state_dir, lambda: datetime.now(UTC))
    except LedgerError as exc:
        log.warning("the history page cannot read the treatment record: %s", exc)
        return str(exc)
    except Exception:  # anything else: logged in full, one plain sentence for the page
        log.exception("the treatment record cannot be read for the history page")
        return UNREADABLE


def _zone(tz: str | None) -> tzinfo | None:
    """The course page's zone; None (the system's) when it cannot be found."""
    try:
        return zone_named(tz)
    except CourseInputError:
        log.warning("history: the time zone cannot be found; times are the system's")
        return None


def _row(record: SessionRecord, zone: tzinfo | None) -> dict[str, str]:
    return {
        "date": record.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "profile": record.profile_id,
        "duration": duration_text(record),
        "delivered": f"{record.delivered_fluence_total_j_cm2:.1f}",
        "planned": f"{record.planned_fluence_total_j_cm2:.1f}",
        "outcome": outcome_text(record),
    }


async def history_page(request: Request) -> Response:
    records = await run_in_threadpool(_records, web_state(request).settings.state_dir)
    if isinstance(records, str):
        return error_page(request, 503, records)
    sessions = records.sessions
    zone = _zone(web_state(request).settings.tz)
    points = [
        SessionPoint(
            record.started_at.astimezone(zone).strftime("%Y-%m-%d"),
            record.delivered_fluence_total_j_cm2,
            record.planned_fluence_total_j_cm2,
            outcome_text(record),
        )
        for record in sessions
    ]
    rows = [_row(r, zone) for r in reversed(sessions)]
    return page(
        request,
        "history.html",
        tab="history",
        rows=rows,
        chart=fluence_chart(points),
        damaged=damaged_rows_text(records.damaged_rows) if records.damaged_rows else None,
    )


async def history_csv(request: Request) -> Response:
    records = await run_in_threadpool(_records, web_state(request).settings.state_dir)
    if isinstance(records, str):
        return error_page(request, 503, records)
    return Response(
        to_csv(records.sessions),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="nirpad-history.csv"'},
    )


ROUTES: Final = [
    Route("/history", history_page, methods=["GET"]),
    Route("/history.csv", history_csv, methods=["GET"]),
]
