"""The prescription page: the installed one, upload, check, and install on confirmation.

Owns: ``GET /prescription`` (the installed prescription as ``nirpad profile show``
reports it), ``POST /prescription/check`` (an uploaded file checked exactly as
``nirpad profile check`` checks it: schema, hard and site limits, the session plan,
signature and dates, with the same caregiver sentences) and ``POST
/prescription/install`` (only after a check passed, only for the file that was checked:
its bytes wait in the session under their SHA-256 and are taken from it before they
are sent, so one check installs once however often it is confirmed; sent to the
running controller with the control socket's ``install`` request, which ``nirpad
profile install`` sends too: the controller checks it again with its own site
configuration, writes it and records it). The install's answer goes back to
``/prescription`` (``web.forms.answered_once``: a double click gets the first's answer),
so a reload sends nothing again; the check,
which installs nothing, is the POST's own answer. With no controller running the page
says so and installs nothing: it never writes the prescription, the record or the state
directory's lock itself. Does not own any check (``firmware_host.profile_commands``)
nor the install (the controller).
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePath
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from firmware_host.paths import resolve_site_config
from firmware_host.profile_commands import check_bytes, installed_report
from profiles.errors import ProfileError
from profiles.locator import printable
from profiles.signing import TrustStore, signature_checked
from profiles.summary import describe
from web import link
from web.flash import Flash
from web.forms import MAX_UPLOAD_FILES, answered_once, checked_form, shown
from web.guard import too_large_text
from web.pages_status import web_state
from web.render import error_page, page, session_of
from web.sessions import PendingUpload

log = logging.getLogger(__name__)

MAX_NAME_CHARS: Final = 80
UNUSABLE_SITE: Final = "The site configuration cannot be used, so nothing can be checked"
NOT_RUNNING_INSTALL: Final = (
    "The controller is not running, so nothing was installed. Start it (on the pad: the "
    "nirpad service; for a try-out: `nirpad run --sim`), then upload and install again."
)
NOTHING_TO_INSTALL: Final = "Upload and check the prescription again; nothing was installed."


def _site(request: Request) -> Path | None:
    settings = web_state(request).settings
    arg = None if settings.site_config is None else str(settings.site_config)
    return resolve_site_config(settings.state_dir, arg)


def _installed(request: Request) -> dict[str, Any]:
    """The installed prescription for the page, or why none is shown (blocking)."""
    state_dir = web_state(request).settings.state_dir
    try:
        shown = installed_report(state_dir, _site(request))
    except (ProfileError, OSError, ValueError) as exc:
        return {"installed": None, "installed_problem": f"{UNUSABLE_SITE}: {exc}"}
    if isinstance(shown, str):
        return {"installed": None, "installed_problem": shown}
    report, profile = shown
    lines = describe(profile, signature_checked=report["signature_checked"])
    return {"installed": report, "installed_lines": lines, "installed_problem": None}


async def prescription_page(request: Request) -> Response:
    context = await run_in_threadpool(_installed, request)
    return page(request, "prescription.html", tab="prescription", **context, **shown(request))


async def _upload(request: Request, upload: UploadFile, limit: int) -> bytes | Response:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        return error_page(request, 413, too_large_text(limit))
    return data


def _file_name(upload: UploadFile) -> str:
    name = PurePath(upload.filename or "prescription.toml").name or "prescription.toml"
    return printable(name)[:MAX_NAME_CHARS]


def _check(request: Request, data: bytes, name: str) -> dict[str, Any]:
    """Check as ``nirpad profile check`` does; the page's context (blocking)."""
    site = _site(request)
    try:
        result = check_bytes(data, name, site)
        checked = signature_checked(TrustStore.from_site_file(site))
    except (ProfileError, OSError, ValueError) as exc:
        return {"problems": [f"{UNUSABLE_SITE}: {exc}"], "sha256": None}
    if not result.ok or result.profile is None:
        return {"problems": [str(p) for p in result.problems], "sha256": None}
    return {
        "problems": [],
        "sha256": result.sha256,
        "summary": describe(result.profile, signature_checked=checked),
        "profile_id": result.profile.id,
    }


async def check(request: Request) -> Response:
    limit = web_state(request).settings.max_upload_bytes
    form = await checked_form(request, limit, max_files=MAX_UPLOAD_FILES)
    if isinstance(form, Response):
        return form
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return error_page(request, 400, "Choose a prescription file first; nothing was done.")
        data = await _upload(request, upload, limit)
        if isinstance(data, Response):
            return data
        name = _file_name(upload)
    finally:
        await form.close()
    result = await run_in_threadpool(_check, request, data, name)
    session = session_of(request)
    assert session is not None  # the guard gave every request one
    sha256 = result["sha256"]
    session.pending = None if sha256 is None else PendingUpload(name, data, sha256)
    if session.pending is not None:
        web_state(request).sessions.keep(session)  # it now holds an upload
    status_code = 200 if sha256 else 422
    return page(request, "check.html", status_code, tab="prescription", name=name, **result)


async def install(request: Request) -> Response:
    form = await checked_form(request, 1024)
    if isinstance(form, Response):
        return form
    return await answered_once(request, form, "/prescription", lambda: _install(request, form))


async def _install(request: Request, form: FormData) -> Flash:
    session = session_of(request)
    pending = None if session is None else session.pending
    if pending is None or form.get("sha256") != pending.sha256:
        return Flash(NOTHING_TO_INSTALL, ok=False)
    assert session is not None  # it held the upload
    session.pending = None  # taken before the wait: a second click finds nothing to install
    settings = web_state(request).settings
    answer = await _send_install(settings.state_dir, pending, settings.install_timeout_s)
    log.info("install of %s from the page: %s", pending.name, answer.message)
    return _install_flash(answer)


def _install_flash(answer: link.LinkAnswer) -> Flash:
    """The install's answer: the controller's words, and the problems it listed."""
    if answer.ok:
        text = _installed_words(answer.message)
    elif not answer.running:
        text = NOT_RUNNING_INSTALL
    else:
        text = f"Not installed: {answer.message or 'refused'}."
    return Flash(text, answer.ok, tuple(_problems_of(answer.data)))


async def _send_install(
    state_dir: Path, pending: PendingUpload, timeout_s: float
) -> link.LinkAnswer:
    """The control socket's ``install`` request (the one ``nirpad profile install`` sends)."""
    try:
        text = pending.data.decode("utf-8")
    except UnicodeDecodeError:  # the check refuses such a file first; never sent
        return link.LinkAnswer(True, False, "the file is not UTF-8 text")
    request = {"cmd": "install", "name": pending.name, "data": text}
    return await link.ask(state_dir, request, timeout_s)


def _problems_of(data: Any) -> list[str]:
    problems = data.get("problems") if isinstance(data, dict) else None
    return [str(p) for p in problems] if isinstance(problems, list) else []


def _installed_words(message: str) -> str:
    return f"Installed. {message[:1].upper()}{message[1:]}." if message else "Installed."


ROUTES: Final = [
    Route("/prescription", prescription_page, methods=["GET"]),
    Route("/prescription/check", check, methods=["POST"]),
    Route("/prescription/install", install, methods=["POST"]),
]
