"""Fixtures for the caregiver's page: a fake controller behind a real control socket, and
Starlette's test client on the page as ``create_app`` builds it.

``FakeController`` answers the control socket's requests the way the controller's
tests pin them down (status document keys, refusals as sentences); it runs behind the
real ``ControlServer``, so the page talks to it exactly as it talks to ``nirpad run``.
The real controller is used in ``test_real_controller.py``.
"""

from __future__ import annotations

import html as html_text
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # Starlette 1.x asks for httpx2; the test extra pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from firmware_host.control import ControlServer, OnLoop
from firmware_host.control_client import ControlReply
from hil.rigs.clock import VirtualClock
from web.app import create_app
from web.settings import WebSettings

T = TypeVar("T")
BASE_URL = "http://127.0.0.1:8480"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

READY_STATUS: dict[str, Any] = {
    "state": "ready",
    "state_reason": None,
    "profile_id": "rls-810-standard",
    "elapsed_s": 0.0,
    "remaining_s": 0.0,
    "fluence_j_cm2": 0.0,
    "planned_fluence_j_cm2": 71.4,
    "irradiance_mw_cm2": {"810": 0.0},
    "skin_temp_c": 31.25,
    "board_temp_c": 27.5,
    "contact": True,
    "fault": None,
    "start_refusal": None,
    "next_start_allowed_at": None,
    "warnings": [],
    "fault_also_seen": {},
    "link": {},
}


@dataclass
class FakeController:
    """Answers status and the button commands; refuses what ``refusals`` names."""

    status_data: dict[str, Any] = field(default_factory=lambda: dict(READY_STATUS))
    refusals: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    installs: list[tuple[str, str]] = field(default_factory=list)
    install_problems: list[str] = field(default_factory=list)  # any: the install is refused

    def command(self, name: str, args: dict[str, Any] | None = None) -> ControlReply:
        self.commands.append(name)
        if name in self.refusals:
            return ControlReply(False, 3, self.refusals[name])
        return ControlReply(True, 0, f"ok: {name}")

    def status(self) -> dict[str, Any]:
        return self.status_data

    def install(self, name: str, data: str, on_loop: OnLoop) -> ControlReply:
        self.installs.append((name, data))
        if self.install_problems:
            problems = {"problems": self.install_problems}
            return ControlReply(False, 2, "the prescription cannot be used here", problems)
        return ControlReply(True, 0, f"installed {name}", {"problems": []})


class ThreadLoop:
    """Stands in for the event loop: runs each call on one 'loop' thread."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loop")

    def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
        return self.pool.submit(fn)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


@pytest.fixture
def control_server(state_dir: Path, controller: FakeController) -> Iterator[ControlServer]:
    loop = ThreadLoop()
    server = ControlServer(state_dir, controller, loop, installer=controller.install)
    server.start()
    try:
        yield server
    finally:
        server.close()
        loop.pool.shutdown(wait=True)
        assert not [t for t in threading.enumerate() if t.name.startswith("nirpad-control")]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def make_client(state_dir: Path, clock: VirtualClock) -> Callable[..., TestClient]:
    def make(**changes: Any) -> TestClient:
        settings = WebSettings(state_dir, clock=clock, control_timeout_s=5.0)
        fields = {**settings.__dict__, **changes}
        return TestClient(create_app(WebSettings(**fields)), base_url=BASE_URL)

    return make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


def csrf(client: TestClient, path: str = "/") -> str:
    """Open ``path`` (a session cookie comes with it) and return the page's CSRF token."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def element_text(html: str, element_id: str) -> str | None:
    """The text inside the element with ``id`` (tags stripped, entities decoded), or None."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.DOTALL)
    if found is None:
        return None
    return html_text.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def reload(client: TestClient, response: httpx.Response) -> httpx.Response:
    """What the browser's reload button sends for the page ``response`` left it on: the
    GET of the address a redirect took it to; else, when the page was the answer to the
    POST itself, that POST again (the caregiver says yes to "resubmit the form?")."""
    sent = response.request
    if response.history or sent.method == "GET":
        return client.get(str(response.url))
    return client.request(sent.method, sent.url, content=sent.content, headers=sent.headers)


def outcome(response: httpx.Response) -> str | None:
    """How a form was answered: it was redirected once (303, Post/Redirect/Get) and the
    page it landed on says ``ok`` or ``refused`` in ``#message``'s ``data-status``."""
    assert [r.status_code for r in response.history] == [303], response.text[-600:]
    assert response.status_code == 200
    found = re.search(r'id="message"[^>]*data-status="([a-z]+)"', response.text)
    return None if found is None else found.group(1)
