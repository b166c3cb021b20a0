"""Reading a POSTed form: parsed within limits, and only with this session's CSRF token.

Owns: the form limits (a few fields, one file, each part capped), the constant-time
check of the hidden ``csrf_token`` field against the session's token, and the refusal
pages when either fails. Every POST handler reads its form here, and a test posts to
every POST route without a token, so none can skip it.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from web.guard import too_large_text
from web.render import error_page, session_of

log = logging.getLogger(__name__)

CSRF_FIELD: Final = "csrf_token"
MAX_FIELDS: Final = 8
MAX_FILES: Final = 1


async def checked_form(
    request: Request, max_part_bytes: int, max_fields: int = MAX_FIELDS
) -> FormData | Response:
    """The form, or the page that refuses it (too large, malformed, no valid token).
    The caller closes a form that may hold a file (``await form.close()``)."""
    try:
        form = await request.form(
            max_files=MAX_FILES, max_fields=max_fields, max_part_size=max_part_bytes
        )
    except HTTPException as exc:  # Starlette's words for a malformed or oversized part
        log.warning("refused a form: %s", exc.detail)
        if "maximum size" in str(exc.detail):
            return error_page(request, 413, too_large_text(max_part_bytes))
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
    return form
