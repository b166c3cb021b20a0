"""The forms' answers, kept for one look: the flash store on a virtual clock, and each
form that changes something answered by a redirect (Post/Redirect/Get) whose page shows
the answer once, to the session that sent it, and never after a reload."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources

import httpx
import pytest

from hil.rigs.clock import VirtualClock
from web.flash import FLASH_TTL_S, MAX_FLASHES, Flash, FlashStore

from .conftest import BASE_URL, FakeController, TestClient, csrf, csrf_of

RX = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_bytes()
SAID = Flash("Done.", ok=True)


def test_a_flash_is_taken_once_by_its_owner() -> None:
    store = FlashStore(VirtualClock())
    flash_id = store.put("session-a", SAID)
    assert store.take("session-b", flash_id) is None  # another session: nothing
    assert store.take("session-a", flash_id) == SAID  # a foreign look did not use it up
    assert store.take("session-a", flash_id) is None
    assert len(store) == 0


@pytest.mark.parametrize("flash_id", [None, "", "no-such-id"])
def test_an_unknown_id_is_no_flash(flash_id: str | None) -> None:
    store = FlashStore(VirtualClock())
    store.put("session-a", SAID)
    assert store.take("session-a", flash_id) is None
    assert len(store) == 1


def test_a_flash_expires_after_its_time_to_live() -> None:
    clock = VirtualClock()
    store = FlashStore(clock)
    kept, gone = store.put("a", SAID), store.put("a", SAID)
    clock.advance(FLASH_TTL_S)
    assert store.take("a", kept) == SAID  # still within its time
    clock.advance(0.001)
    assert store.take("a", gone) is None
    assert len(store) == 0


def test_the_store_keeps_at_most_its_maximum_the_oldest_going_first() -> None:
    store = FlashStore(VirtualClock())
    ids = [store.put("a", Flash(f"answer {n}", ok=True)) for n in range(MAX_FLASHES + 1)]
    assert len(store) == MAX_FLASHES and len(set(ids)) == len(ids)
    assert store.take("a", ids[0]) is None
    assert store.take("a", ids[1]) == Flash("answer 1", ok=True)
    assert all(len(flash_id) >= 22 for flash_id in ids)  # 16 random bytes


Send = Callable[[TestClient], httpx.Response]


def _start(client: TestClient) -> httpx.Response:
    return client.post("/control/start", data={"csrf_token": csrf(client)})


def _nightly(client: TestClient) -> httpx.Response:
    data = {"csrf_token": csrf(client, "/course"), "leg_symptoms": "6"}
    return client.post("/diary/nightly", data=data)


def _irls(client: TestClient) -> httpx.Response:
    items = {f"item_{n}": "2" for n in range(1, 11)}
    return client.post("/diary/irls", data={"csrf_token": csrf(client, "/course"), **items})


def _install(client: TestClient) -> httpx.Response:
    token = csrf(client, "/prescription")
    files = {"file": ("rx.toml", RX, "application/toml")}
    html = client.post("/prescription/check", data={"csrf_token": token}, files=files).text
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', html)
    assert sha256 is not None
    data = {"csrf_token": csrf_of(html), "sha256": sha256.group(1)}
    return client.post("/prescription/install", data=data)


FORMS = [
    pytest.param(_start, "/", "ok: start", id="button"),
    pytest.param(_nightly, "/course", "Tonight's diary entry is recorded.", id="nightly"),
    pytest.param(_irls, "/course", "The IRLS is recorded: total 20 of 40, moderate.", id="irls"),
    pytest.param(_install, "/prescription", "Installed. Installed rx.toml.", id="install"),
]


def _message(response: httpx.Response) -> tuple[str, str] | None:
    """``(data-status, text)`` of the page's ``#message``, or None."""
    assert response.status_code == 200
    found = re.search(r'<p id="message"[^>]*data-status="(\w+)"[^>]*>(.*?)</p>', response.text)
    return None if found is None else (found.group(1), found.group(2).replace("&#39;", "'"))


def _posted(client: TestClient, send: Send, page: str) -> str:
    """Send the form without following the redirect; its Location."""
    client.follow_redirects = False
    try:
        response = send(client)
    finally:
        client.follow_redirects = True
    assert response.status_code == 303, response.text[-400:]
    location = response.headers["location"]
    assert re.fullmatch(rf"{re.escape(page)}\?shown=[\w-]{{22,}}", location), location
    return location


@pytest.mark.usefixtures("builtin_wall_clock", "control_server")
@pytest.mark.parametrize(("send", "page", "said"), FORMS)
def test_a_form_is_answered_by_a_redirect_whose_page_says_it_once(
    client: TestClient, controller: FakeController, send: Send, page: str, said: str
) -> None:
    location = _posted(client, send, page)
    assert client.head(location).status_code == 200  # a HEAD takes nothing
    assert _message(client.get(location)) == ("ok", said)
    assert _message(client.get(location)) is None  # the reload: nothing said, nothing sent
    sent = controller.commands + [name for name, _ in controller.installs]
    assert len(sent) == (0 if page == "/course" else 1)  # the diary is the page's own


@pytest.mark.usefixtures("builtin_wall_clock", "control_server")
@pytest.mark.parametrize(("send", "page", "said"), FORMS)
def test_another_session_never_sees_the_answer(
    client: TestClient, send: Send, page: str, said: str
) -> None:
    location = _posted(client, send, page)
    stranger = TestClient(client.app, base_url=BASE_URL)
    assert _message(stranger.get(location)) is None
    assert _message(client.get(location)) == ("ok", said)


@pytest.mark.usefixtures("control_server")
def test_an_answer_not_fetched_in_time_is_gone(client: TestClient, clock: VirtualClock) -> None:
    location = _posted(client, _start, "/")
    clock.advance(FLASH_TTL_S + 1.0)
    assert _message(client.get(location)) is None


@pytest.mark.usefixtures("control_server")
def test_a_refusal_is_said_as_refused(client: TestClient, controller: FakeController) -> None:
    controller.refusals["pause"] = "Nothing to pause: no session is running."
    response = client.post("/control/pause", data={"csrf_token": csrf(client)})
    assert _message(response) == ("refused", "Nothing to pause: no session is running.")


@pytest.mark.usefixtures("control_server")
@pytest.mark.parametrize("query", ["?shown=", "?shown=made-up", "?shown=a&shown=b", ""])
def test_an_unknown_answer_shows_the_page_without_a_message(client: TestClient, query: str) -> None:
    assert _message(client.get(f"/{query}")) is None


@pytest.mark.usefixtures("builtin_wall_clock", "control_server")
def test_a_refused_install_lists_the_controllers_problems_once(
    client: TestClient, controller: FakeController
) -> None:
    controller.install_problems = ["irradiance: 45 mW/cm² is over the site's limit <40>"]
    response = _install(client)
    assert _message(response) == (
        "refused", "Not installed: the prescription cannot be used here."
    )  # fmt: skip
    assert "<li>irradiance: 45 mW/cm² is over the site&#39;s limit &lt;40&gt;</li>" in response.text
    again = client.get(str(response.url))
    assert _message(again) is None and 'id="problems"' not in again.text
