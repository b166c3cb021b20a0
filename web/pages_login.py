"""Logging in and out (only when a password is set), and the health check.

Owns: ``GET/POST /login`` (the password checked with ``web.passwords``, at most as
often as ``web.sessions.LoginLimiter`` allows: each attempt is counted before its
password is tried, one at a time, and while it says wait no password is even tried),
a new session on success (a fresh token: a session fixed before the login is
worth nothing after it), ``POST /logout``, and ``GET /healthz`` (``ok``, for a service
manager or a test waiting for the page to come up; it says nothing else).
"""

from __future__ import annotations

import logging
import math
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from web.forms import checked_form
from web.guard import session_cookie
from web.pages_status import web_state
from web.passwords import MAX_PASSWORD_CHARS, verify_password
from web.render import error_page, page, session_of

log = logging.getLogger(__name__)

MAX_LOGIN_FORM_BYTES: Final = MAX_PASSWORD_CHARS * 4 + 256


async def login_page(request: Request) -> Response:
    if not web_state(request).settings.login_required:
        return RedirectResponse("/", status_code=303)
    return page(request, "login.html", tab="login")


async def login(request: Request) -> Response:
    state = web_state(request)
    form = await checked_form(request, MAX_LOGIN_FORM_BYTES)
    if isinstance(form, Response):
        return form
    stored = state.settings.password_hash
    if stored is None:
        return RedirectResponse("/", status_code=303)
    wait_s = state.limiter.begin()  # counted before the password is tried
    if wait_s > 0:
        text = f"Too many wrong passwords. Try again in {math.ceil(wait_s)} seconds."
        return page(request, "login.html", 429, tab="login", message=text, message_ok=False)
    password = form.get("password")
    async with state.login_lock:  # one scrypt at a time (32 MiB each)
        right = isinstance(password, str) and await run_in_threadpool(
            verify_password, password, stored
        )
    if not right:
        log.warning("a wrong password on the login page (%d in a row)", state.limiter.failures)
        return page(
            request, "login.html", 401, tab="login",
            message="That password is not right.", message_ok=False,
        )  # fmt: skip
    state.limiter.succeeded()
    old = session_of(request)
    if old is not None:
        state.sessions.drop(old.token)
    fresh = state.sessions.new(logged_in=True)
    response = RedirectResponse("/", status_code=303)
    response.headers.append("set-cookie", session_cookie(fresh, tls=state.settings.tls))
    log.info("logged in on the page")
    return response


async def logout(request: Request) -> Response:
    form = await checked_form(request, 1024)
    if isinstance(form, Response):
        return form
    session = session_of(request)
    if session is not None:
        web_state(request).sessions.drop(session.token)
    if not web_state(request).settings.login_required:
        return error_page(request, 400, "There is no login on this page.")
    return RedirectResponse("/login", status_code=303)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


ROUTES: Final = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
]
