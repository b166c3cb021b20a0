"""Turning a template into a response: the one Jinja2 environment and the error pages.

Owns: loading templates from the package (autoescaped), the values every page gets
(its CSRF token, whether a logout button is shown, the active tab), and the plain-words
error page (``error_page``): a status, one sentence, never a traceback.
"""

from __future__ import annotations

from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from web.sessions import Session

SESSION_SCOPE_KEY: Final = "nirpad.session"
ENV: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("web", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def session_of(request: Request) -> Session | None:
    session = request.scope.get(SESSION_SCOPE_KEY)
    return session if isinstance(session, Session) else None


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the values every page needs."""
    session = session_of(request)
    values: dict[str, Any] = {
        "csrf_token": "" if session is None else session.csrf_token,
        "logged_in": session is not None and session.logged_in,
        "login_required": _login_required(request),
        "tab": "",
        "message": None,
        "message_ok": True,
        "message_problems": (),
    }
    values.update(context)
    return HTMLResponse(ENV.get_template(template).render(values), status_code=status_code)


def _login_required(request: Request) -> bool:
    app = request.scope.get("app")  # absent when the guard answers before the app
    web = getattr(getattr(app, "state", None), "web", None)
    return bool(getattr(getattr(web, "settings", None), "login_required", False))


def error_page(request: Request, status_code: int, text: str) -> HTMLResponse:
    """The plain-words error page."""
    return page(request, "error.html", status_code, error_text=text, title=_TITLES.get(
        status_code, "Something went wrong"))  # fmt: skip


_TITLES: Final = {
    400: "This request cannot be used",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not possible here",
    413: "Too large",
    429: "Please wait",
    500: "Something went wrong",
}
