"""The page against the real controller on the in-process simulator (virtual time): the
safety layer's own refusals reach the browser word for word, and a prescription installed
through the page is the one the controller starts.

The page's requests run on a client thread; this thread runs the controller's loop
meanwhile (as the control-socket tests do), so nothing here sleeps on the wall clock.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from firmware_host.runner import App
from hil.rigs.clinic import reissued_today
from tests.firmware_host.sim_app import build_sim_app

from .conftest import TestClient, csrf_of, element_text, outcome

RX = reissued_today()  # the controller runs on the real wall clock
MAX_VIRTUAL_S = 120.0


@pytest.fixture
def real(state_dir: Path) -> Iterator[App]:
    with contextlib.ExitStack() as stack:
        app, _, _ = build_sim_app(stack, state_dir, seed=7)
        app.controller.boot()
        app.server.start()
        stack.callback(app.server.close)
        app.loop.run_for(2.0)  # self-test
        yield app
        app.loop.close()


def _while_looping(app: App, request: Callable[[], httpx.Response]) -> httpx.Response:
    """Run ``request`` on a client thread and the controller's loop here meanwhile."""
    replies: list[httpx.Response] = []
    client = threading.Thread(target=lambda: replies.append(request()))
    client.start()
    waited_s = 0.0
    while client.is_alive() and waited_s < MAX_VIRTUAL_S:
        app.loop.run_for(0.1)
        waited_s += 0.1
        client.join(0.001)
    client.join(10)
    assert replies, "the page did not answer"
    return replies[0]


def _post(app: App, client: TestClient, path: str, **fields: Any) -> httpx.Response:
    token = csrf_of(_while_looping(app, lambda: client.get("/")).text)
    return _while_looping(app, lambda: client.post(path, data={"csrf_token": token, **fields}))


@pytest.mark.timeout(60)
def test_a_start_with_no_prescription_shows_the_controllers_refusal(
    real: App, client: TestClient
) -> None:
    response = _post(real, client, "/control/start")
    assert outcome(response) == "refused"
    message = element_text(response.text, "message") or ""
    assert message == real.controller.command("start").message  # the same words as the CLI
    assert "no valid prescription" in message
    assert real.controller.status()["state"] == "idle"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_install_through_the_page_then_start_stop_and_the_interval_refusal(
    real: App, client: TestClient, state_dir: Path
) -> None:
    page = _while_looping(real, lambda: client.get("/prescription"))
    checked = _while_looping(
        real,
        lambda: client.post(
            "/prescription/check",
            data={"csrf_token": csrf_of(page.text)},
            files={"file": ("rx.toml", RX, "application/toml")},
        ),
    )
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', checked.text)
    assert sha256 is not None
    installed = _post(real, client, "/prescription/install", sha256=sha256.group(1))
    assert outcome(installed) == "ok", installed.text
    assert real.controller.status()["profile_id"] == "rls-810-standard"  # reloaded

    started = _post(real, client, "/control/start")
    assert outcome(started) == "ok", started.text
    real.loop.run_for(5.0)
    live = _while_looping(real, lambda: client.get("/status/live")).text
    assert element_text(live, "state") == "Treating"
    stopped = _post(real, client, "/control/stop", confirm="yes")
    assert outcome(stopped) == "ok"
    assert real.controller.status()["state"] == "complete"

    _post(real, client, "/control/ack")
    refused = _post(real, client, "/control/start")
    assert outcome(refused) == "refused"
    assert "The next session is allowed at" in (element_text(refused.text, "message") or "")
    assert element_text(refused.text, "next-start") is not None
    history = _while_looping(real, lambda: client.get("/history")).text
    assert "stopped" in history and history.count('<tr class="session">') == 1
