"""The status page and its buttons: live state, start, pause, resume, stop, acknowledge.

Owns: ``GET /`` (the whole page), ``GET /status/live`` (the part htmx fetches every
second), and ``POST /control/<command>`` for the five button commands. Each command is
the control-socket request the CLI sends (``nirpad start`` …), so the controller
applies the button's rules and its refusal is shown word for word, with the status
below it (why a start is refused now and when the next one is allowed): the answer
goes back to ``/`` (``web.forms.answered``), so a reload never sends a command again.
A stop first shows a confirmation page (server side: no script; it changes nothing, so
it is the POST's own answer); only ``confirm=yes`` sends it. The live part says the
time its figures are from, in a notice the stylesheet shows once ``STALE_AFTER_S`` pass
without a new live part (htmx swaps nothing when a poll fails: the page's process gone
or restarted, a 503), so old figures are never shown as current.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web import link
from web.flash import Flash
from web.forms import answered, checked_form, shown
from web.render import page
from web.settings import WebState
from web.status_view import status_view

DONE_WORDS: Final = {
    "start": "Started.",
    "pause": "Paused.",
    "resume": "Resumed.",
    "stop": "Stopped.",
    "ack": "Fault acknowledged.",
}
MAX_BUTTON_FORM_BYTES: Final = 1024
STALE_AFTER_S: Final = 10
"""The live part's notice "These figures are from …" shows after this long without a new
one (``web/static/nirpad.css``, ``.stale``): ten polls, and more than a control request's
deadline, so a slow controller's answer (its own sentence) comes before it."""


def web_state(request: Request) -> WebState:
    state = request.app.state.web
    assert isinstance(state, WebState)
    return state


async def live_context(request: Request) -> dict[str, Any]:
    """What the live part shows, from one status request."""
    settings = web_state(request).settings
    answer = await link.status(settings.state_dir, settings.control_timeout_s)
    view = status_view(answer.data) if answer.ok else None
    as_of = f"{datetime.now().astimezone():%H:%M:%S}"  # the zone ``next_start`` is shown in
    return {"running": answer.running, "link_message": answer.message, "view": view, "as_of": as_of}


async def status_page(request: Request) -> Response:
    context = await live_context(request)
    return page(request, "status.html", tab="status", **context, **shown(request))


async def status_live(request: Request) -> Response:
    return page(request, "live.html", **await live_context(request))


async def control(request: Request) -> Response:
    command = request.url.path.rsplit("/", 1)[-1]
    form = await checked_form(request, MAX_BUTTON_FORM_BYTES)
    if isinstance(form, Response):
        return form
    if command == "stop" and form.get("confirm") != "yes":
        return page(request, "confirm_stop.html", tab="status")
    settings = web_state(request).settings
    answer = await link.ask(settings.state_dir, {"cmd": command}, settings.control_timeout_s)
    if answer.ok:
        return answered(request, "/", Flash(answer.message or DONE_WORDS[command], ok=True))
    return answered(request, "/", Flash(answer.message or "Refused.", ok=False))


ROUTES: Final = [
    Route("/", status_page, methods=["GET"]),
    Route("/status/live", status_live, methods=["GET"]),
    *(Route(f"/control/{name}", control, methods=["POST"]) for name in link.BUTTONS),
]
