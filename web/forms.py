"""Reading a POSTed form: parsed within limits, and only with this session's CSRF token;
and how its answer comes back (Post/Redirect/Get).

Owns: the form limits (a few fields, a file only where a form takes one, each part
capped), the constant-time
check of the hidden ``csrf_token`` field against the session's token, and the refusal
pages when either fails. Every POST handler reads its form here, and a test posts to
every POST route without a token, so none can skip it. A form that changes something
is answered by ``answered``: its message goes to the flash store (``web.flash``) for
the session that sent it, and the browser is sent (303) to the page the form came from,
``?shown=<id>``; that page's GET takes the message with ``shown``, once. So the
browser's reload is a GET that sends nothing again and shows the message no more. A form
that records something (the install, the diary's) is answered by ``answered_once``: sent
again at once (a double click), it is done once and both get the first's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.flash import Flash, FlashStore
from web.guard import too_large_text
from web.render import error_page, session_of
from web.repeats import form_digest
from web.settings import WebState

log = logging.getLogger(__name__)

CSRF_FIELD: Final = "csrf_token"
MAX_FIELDS: Final = 8
MAX_UPLOAD_FILES: Final = 1
"""In the one form that takes a file (the prescription's upload); any other takes none."""
SHOWN_PARAM: Final = "shown"


async def checked_form(
    request: Request,
    max_part_bytes: int,
    max_fields: int = MAX_FIELDS,
    repeatable: frozenset[str] = frozenset(),
    max_files: int = 0,
) -> FormData | Response:
    """The form, or the page that refuses it (too large, malformed, a field sent twice
    that is not ``repeatable``, a file where none is taken, no valid token). A page's
    own form never sends a field twice, and which of two values a reader takes is the
    parser's choice, not the sender's; nor a file for a text field, which a page would
    read as no answer. The caller closes a form that may hold a file (``await
    form.close()``)."""
    try:
        form = await request.form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_bytes
        )
    except HTTPException as exc:  # Starlette's words for a malformed or oversized part
        log.warning("refused a form: %s", exc.detail)
        if "maximum size" in str(exc.detail):
            return error_page(request, 413, too_large_text(max_part_bytes))
        return error_page(request, 400, "The form could not be read; nothing was done.")
    twice = _sent_twice(form, repeatable)
    if twice is not None:
        await form.close()
        log.warning("refused a form with the field %r sent twice: %s", twice, request.url.path)
        return error_page(request, 400, "The form could not be read; nothing was done.")
    session = session_of(request)
    offered = form.get(CSRF_FIELD)
    if session is None or not isinstance(offered, str) or not session.csrf_ok(offered):
        await form.close()  # an uploaded file's temporary file goes at once
        log.warning("refused a form with a missing or wrong CSRF token: %s", request.url.path)
        return error_page(
            request,
            403,
            "This form is out of date or came from somewhere else; nothing was done. "
            "Open the page again and retry.",
        )
    _state(request).repeats.sent(session.token, form_digest(request.url.path, form.multi_items()))
    return form


def _sent_twice(form: FormData, repeatable: frozenset[str]) -> str | None:
    seen: set[str] = set()
    for name, _ in form.multi_items():
        if name in seen and name not in repeatable:
            return name[:40]
        seen.add(name)
    return None


def answered(request: Request, page_path: str, flash: Flash) -> RedirectResponse:
    """The answer to a form that was taken (done or refused): ``flash`` kept for this
    session, and a 303 to ``page_path?shown=<id>``, the page the form came from."""
    session = session_of(request)
    assert session is not None  # its form passed the CSRF check
    flash_id = _flashes(request).put(session.token, flash)
    return RedirectResponse(f"{page_path}?{urlencode({SHOWN_PARAM: flash_id})}", status_code=303)


async def answered_once(
    request: Request, form: FormData, page_path: str, action: Callable[[], Awaitable[Flash]]
) -> RedirectResponse:
    """``answered`` with ``action``'s flash, for a form that records something; the same
    form sent again at once by the same session (a double click) is not done again and
    gets the first one's answer (``web.repeats``)."""
    session = session_of(request)
    assert session is not None  # its form passed the CSRF check
    digest = form_digest(request.url.path, form.multi_items())
    flash = await _state(request).repeats.once(session.token, digest, action)
    return answered(request, page_path, flash)


def shown(request: Request) -> dict[str, Any]:
    """The page's message from the answer its ``?shown=`` names: only on a GET (a HEAD
    takes nothing), only for the session that sent the form, and once."""
    session = session_of(request)
    assert session is not None  # the guard gives every page request one
    if request.method != "GET":
        return {}
    flash = _flashes(request).take(session.token, request.query_params.get(SHOWN_PARAM))
    if flash is None:
        return {}
    return {"message": flash.text, "message_ok": flash.ok, "message_problems": flash.problems}


def _flashes(request: Request) -> FlashStore:
    return _state(request).flashes


def _state(request: Request) -> WebState:
    state = request.app.state.web
    assert isinstance(state, WebState)
    return state
