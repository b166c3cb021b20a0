"""Assembling the page: the routes, the static files, the error handlers and the guard.

Owns: ``create_app(settings)``, the one function that builds the ASGI application (the
product, ``nirpad web`` and every test use it), and the handlers that turn any error
into a plain-words page: an unknown page, a method a page does not take, a body too
large, and any exception at all (logged in full; the browser gets one sentence). A
client gone before its form arrived whole (it left, or ``web.http_server`` closed it)
is no error: nothing was done, and no one is left to answer.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from web import pages_course, pages_history, pages_login, pages_prescription, pages_status
from web.guard import BodyTooLargeError, Guard, too_large_text
from web.render import error_page
from web.settings import WebSettings, WebState

log = logging.getLogger(__name__)

HTTP_WORDS: Final = {
    400: "This request cannot be used; nothing was done.",
    404: "There is no such page here.",
    405: "That cannot be done on this page; nothing was done.",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    text = HTTP_WORDS.get(status, "This request cannot be used; nothing was done.")
    return error_page(request, status, text)


async def _too_large(request: Request, exc: Exception) -> Response:
    return error_page(request, 413, too_large_text(request.app.state.web.settings.max_body_bytes))


async def _client_gone(request: Request, exc: Exception) -> Response:
    log.debug("the client of %s %s left before its body arrived", request.method, request.url.path)
    return Response(status_code=400)  # sent to no one: the connection is closed


async def _any_error(request: Request, exc: Exception) -> Response:
    log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "The page failed; nothing more was done. Try again.")


def create_app(settings: WebSettings) -> ASGIApp:
    """The caregiver's page for ``settings``: the Starlette app inside its guard."""
    state = WebState(settings)
    routes = [
        *pages_status.ROUTES,
        *pages_prescription.ROUTES,
        *pages_history.ROUTES,
        *pages_course.ROUTES,
        *pages_login.ROUTES,
        Mount("/static", StaticFiles(packages=[("web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            BodyTooLargeError: _too_large,
            ClientDisconnect: _client_gone,
            Exception: _any_error,
        },
    )
    app.state.web = state
    return Guard(app, state)
