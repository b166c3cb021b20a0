"""The guard around every request: the rules no page can forget.

Owns, for every HTTP request before any page sees it: the Host check (only the names
``WebSettings.allowed_hosts`` holds: on loopback ``127.0.0.1``, ``localhost``, ``::1``
and the listen address; off loopback the listen address and the ``--host-name``s; in any
case, as host names are; against DNS rebinding; a malformed Host, such as a port that is
not a port, is refused the same way), the local user's check without a password (only
the users the control socket serves, ``web.local_users``; 403 in words for anyone else),
the body cap (a declared length over the cap is refused unread, and a body that grows
past it is cut), the session cookie (HttpOnly, SameSite=Strict, Secure under TLS, a
random token; its session is kept on the server only once it holds a login or an upload,
``web.sessions``; a background poll, ``POLL_PATHS``, does not count as activity for its
idle timeout), the login (with a password set, every page but the login page,
``/healthz`` and the static files needs one, on every address), the origin check on
every POST (``Sec-Fetch-Site`` and Origin: a form posted from another site is refused),
the security headers on every response (CSP without inline script, no framing, nosniff,
no referrer), and the last word on an exception: a plain-words page, never a traceback.
A WebSocket handshake is refused before any route sees it: the page serves none.

Does not own the CSRF token's check (``web.forms``: it needs the parsed form) nor what
a page does.
"""

from __future__ import annotations

import logging
import re
import string
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from web.local_users import LocalUsers, peer_uid
from web.render import SESSION_SCOPE_KEY, error_page
from web.sessions import Session
from web.settings import MAX_PORT, WebState

log = logging.getLogger(__name__)

COOKIE_NAME: Final = "nirpad_session"
WS_POLICY_VIOLATION: Final = 1008
_PORT: Final = re.compile(r"[0-9]{1,5}")  # ASCII digits only: str.isdigit() takes "²"
_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
OPEN_PATHS: Final = frozenset({"/login"})
POLL_PATHS: Final = frozenset({"/status/live"})
"""What htmx fetches by itself (``hx-trigger="every …"``): not the caregiver's activity,
so it does not restart the session's idle time."""
SECURITY_HEADERS: Final = (
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)


class BodyTooLargeError(Exception):
    """The request body grew past the cap while it was read."""


class Guard:
    """Pure ASGI middleware (outermost): see the module's docstring."""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the page has none: no Host, user or login check
            await WebSocketClose(WS_POLICY_VIOLATION)(scope, receive, send)
            return
        if scope["type"] != "http":  # the lifespan's start and end
            await self.app(scope, receive, send)
            return
        started = False
        new_session: Session | None = None

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
                if new_session is not None:
                    headers.append("set-cookie", self._cookie(new_session))
            await send(message)

        try:
            request = Request(scope)
            refusal = self._refusal(request)
            if refusal is None and _needs_no_session(request):
                await self.app(scope, self._capped(scope, receive), guarded_send)
                return
            if refusal is None:
                session, fresh = self._session(request)
                new_session = session if fresh else None
                scope[SESSION_SCOPE_KEY] = session
                refusal = self._login_refusal(request, session)
            if refusal is not None:
                await refusal(scope, receive, guarded_send)
                return
            await self.app(scope, self._capped(scope, receive), guarded_send)
        except Exception:
            if started:  # Starlette's handler already answered (and logged it)
                return
            log.exception("request %s %s failed", scope.get("method"), scope.get("path"))
            await self._plain_error(scope, receive, guarded_send)

    def _refusal(self, request: Request) -> Response | None:
        settings = self.state.settings
        host = _host_name(request.headers.get("host", ""))
        if settings.allowed_hosts is not None and (
            host is None or host not in settings.allowed_hosts
        ):
            return error_page(request, 400, "This page answers only under its own address.")
        if settings.local_users is not None and not _local_user_allowed(
            request, settings.local_users
        ):
            return error_page(request, 403, not_allowed_text(settings.local_users.group_name()))
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return error_page(request, 413, too_large_text(settings.max_body_bytes))
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            log.warning("refused a %s to %s from another site", request.method, request.url.path)
            return error_page(request, 403, "This form was sent from another web site.")
        return None

    def _session(self, request: Request) -> tuple[Session, bool]:
        """The stored session of the cookie, else an anonymous one (stored nowhere: a
        flood of requests without a login cannot push out anyone's session)."""
        token = request.cookies.get(COOKIE_NAME)
        session = self.state.sessions.get(token, touch=not _is_poll(request))
        if session is None:
            logged_in = not self.state.settings.login_required
            session = self.state.sessions.anonymous(token, logged_in=logged_in)
        return session, session.token != token

    def _login_refusal(self, request: Request, session: Session) -> Response | None:
        path = request.url.path
        if session.logged_in or path in OPEN_PATHS:
            return None
        if request.method in ("GET", "HEAD"):
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"hx-redirect": "/login"})
            return RedirectResponse("/login", status_code=303)
        return error_page(request, 401, "Please log in first; nothing was done.")

    def _capped(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.state.settings.max_body_bytes
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError
            return message

        return capped

    def _cookie(self, session: Session) -> str:
        return session_cookie(session, tls=self.state.settings.tls)

    async def _plain_error(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response: Response = error_page(
                Request(scope), 500, "The page failed; nothing more was done. Try again."
            )
        except Exception:  # even the template failed: a fixed sentence
            log.exception("the error page failed too")
            response = Response(
                "Something went wrong; nothing more was done. Try again.",
                status_code=500,
                media_type="text/plain",
            )
        await response(scope, receive, send)


def _local_user_allowed(request: Request, users: LocalUsers) -> bool:
    """Whether the local user who opened this connection may use the page (no password):
    found in the kernel's socket table on every request, never cached (a port is reused)."""
    uid = peer_uid(request.scope.get("client"), request.scope.get("server"), users.proc_net)
    if uid is not None and users.allowed(uid):
        return True
    log.warning("refused %s %s from local user id %s", request.method, request.url.path, uid)
    return False


def not_allowed_text(group: str) -> str:
    return (
        "This account may not use the pad's page: without a password it serves only the "
        f"users who may control the pad (root, the pad's own user and the group {group}). "
        f"To allow it, add the account to that group (sudo usermod -aG {group} NAME) and "
        "log in again; or set a password for the page (nirpad web passwd)."
    )


def session_cookie(session: Session, *, tls: bool) -> str:
    """The Set-Cookie value: the random token only, HttpOnly, SameSite=Strict (Secure: TLS)."""
    secure = "; Secure" if tls else ""
    return f"{COOKIE_NAME}={session.token}; Path=/; HttpOnly; SameSite=Strict{secure}"


def too_large_text(limit_bytes: int) -> str:
    return f"This is larger than the page accepts ({limit_bytes // 1024} KiB); nothing was done."


def _needs_no_session(request: Request) -> bool:
    """The stylesheet, htmx and the health check: no cookie, no session kept for them."""
    path = request.url.path
    return request.method in ("GET", "HEAD") and (path == "/healthz" or path.startswith("/static/"))


def _is_poll(request: Request) -> bool:
    """A page's background poll: served while the session lives, never keeps it alive."""
    return request.method in ("GET", "HEAD") and request.url.path in POLL_PATHS


def _host_name(host: str) -> str | None:
    """The Host header's name without its port, in lower case (``LocalHost:8480`` →
    ``localhost``, ``[::1]:8480`` → ``::1``; a host name is case-insensitive, RFC 3986
    §3.2.2, in its ASCII letters only: the others are left as they are), or None
    when it is malformed: a port that is not 1 to 5 digits up to 65535 (``localhost:``,
    ``127.0.0.1:abc``), or a bracket left open or followed by anything but a port."""
    if host.startswith("["):
        name, closed, after = host[1:].partition("]")
        if not closed:
            return None
    elif host.count(":") == 1:
        name, colon, port = host.partition(":")
        after = colon + port
    else:  # no port (an unbracketed IPv6 address is taken whole, as before)
        name, after = host, ""
    if after and not (after.startswith(":") and _is_port(after[1:])):
        return None
    return name.translate(_ASCII_LOWER)


def _is_port(text: str) -> bool:
    return _PORT.fullmatch(text) is not None and int(text) <= MAX_PORT


def _same_origin(request: Request) -> bool:
    """A POST must come from this page itself.

    ``Sec-Fetch-Site``, which browsers set and scripts in a page cannot, must say
    ``same-origin`` (or ``none``: typed by the user). Origin (else Referer), when sent,
    must be this page's own scheme and host; ``Origin: null`` is what a browser sends on
    every form POST under ``Referrer-Policy: no-referrer`` (the Fetch standard), so it
    passes only with ``Sec-Fetch-Site: same-origin``. With none of these it is not a
    browser's cross-site form, and the CSRF token still decides."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source == "null":
        return fetch_site == "same-origin"
    parts = urlsplit(source)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc == host
