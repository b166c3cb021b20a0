"""Rules on every request: headers, Host, Origin, body cap, cookie, CSRF, plain errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from hil.rigs.clinic import reissued_today
from web.app import create_app
from web.guard import POLL_PATHS, Guard
from web.sessions import MAX_SESSIONS
from web.settings import WebSettings, WebState

from .conftest import BASE_URL, TestClient, csrf, element_text, outcome

RX = reissued_today()  # checked on the real wall clock
TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"

POST_PATHS = (
    "/control/start",
    "/control/pause",
    "/control/resume",
    "/control/stop",
    "/control/ack",
    "/prescription/check",
    "/prescription/install",
    "/diary/nightly",
    "/diary/irls",
    "/login",
    "/logout",
)


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/status/live", "/prescription", "/history", "/nope", "/static/nirpad.css"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_the_pages_have_no_inline_script_and_ship_htmx(client: TestClient) -> None:
    html = client.get("/").text
    assert '<script src="/static/htmx.min.js" defer></script>' in html
    assert html.count("<script") == 1 and " onclick" not in html and "style=" not in html
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200 and js.text.startswith("var htmx=function()")


def test_the_session_cookie_is_httponly_strict_and_holds_only_a_token(client: TestClient) -> None:
    cookie = client.get("/").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert client.get("/").headers.get("set-cookie") is None  # the same session is kept


def test_under_tls_the_cookie_is_secure(make_client: Callable[..., TestClient]) -> None:
    client = make_client(tls=True)
    assert "; Secure" in client.get("/").headers["set-cookie"]


def test_every_post_route_is_known_to_this_test(state_dir: Path) -> None:
    app = create_app(WebSettings(state_dir))
    inner = app.app  # type: ignore[attr-defined]
    posts = {r.path for r in inner.routes if isinstance(r, Route) and "POST" in (r.methods or ())}
    assert posts == set(POST_PATHS)


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_post_without_the_csrf_token_is_refused(client: TestClient, path: str) -> None:
    csrf(client)  # a session, but the form leaves out its token
    response = client.post(path, data={"confirm": "yes", "password": "x"})
    assert response.status_code == 403
    assert "nothing was done" in response.text


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_post_with_another_sessions_token_is_refused(
    make_client: Callable[..., TestClient], path: str
) -> None:
    first, second = make_client(), make_client()
    token = csrf(first)
    csrf(second)
    response = second.post(path, data={"csrf_token": token, "confirm": "yes"})
    assert response.status_code == 403


def test_a_post_without_a_session_is_refused(client: TestClient) -> None:
    response = client.post("/control/start", data={"csrf_token": "guessed"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "https://127.0.0.1:8480", "http://127.0.0.1:9999"]
)
def test_a_form_from_another_site_is_refused(client: TestClient, origin: str) -> None:
    token = csrf(client)
    response = client.post("/control/stop", data={"csrf_token": token}, headers={"origin": origin})
    assert response.status_code == 403
    assert "another web site" in response.text


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site"])
def test_a_browser_marked_cross_site_post_is_refused(client: TestClient, fetch_site: str) -> None:
    token = csrf(client)
    response = client.post(
        "/control/stop", data={"csrf_token": token}, headers={"sec-fetch-site": fetch_site}
    )
    assert response.status_code == 403


def test_origin_null_passes_only_from_the_same_origin(client: TestClient) -> None:
    """Chromium sends ``Origin: null`` on a same-origin form POST under
    ``Referrer-Policy: no-referrer``; ``Sec-Fetch-Site`` tells the two apart."""
    token = csrf(client)
    same = {"origin": "null", "sec-fetch-site": "same-origin"}
    response = client.post("/control/stop", data={"csrf_token": token}, headers=same)
    assert response.status_code == 200 and 'id="confirm-stop"' in response.text
    for headers in ({"origin": "null"}, {"origin": "null", "sec-fetch-site": "cross-site"}):
        response = client.post("/control/stop", data={"csrf_token": token}, headers=headers)
        assert response.status_code == 403


def test_a_referer_from_another_site_is_refused(client: TestClient) -> None:
    token = csrf(client)
    response = client.post(
        "/control/stop", data={"csrf_token": token}, headers={"referer": "http://evil.example/x"}
    )
    assert response.status_code == 403


def test_the_own_origin_is_accepted(client: TestClient) -> None:
    token = csrf(client)
    response = client.post(
        "/control/stop", data={"csrf_token": token}, headers={"origin": BASE_URL}
    )
    assert response.status_code == 200 and 'id="confirm-stop"' in response.text


@pytest.mark.parametrize("host", ["evil.example", "nirpad.evil.example:8480", "192.168.1.5:8480"])
def test_on_loopback_another_host_name_is_refused(client: TestClient, host: str) -> None:
    response = client.get("/", headers={"host": host})
    assert response.status_code == 400
    assert "its own address" in response.text


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8480", "localhost:8480", "[::1]:8480", "localhost", "[::1]", "127.0.0.1",
        "localhost:1", "localhost:65535", "localhost:00080", "[::1]:0",
    ],
)  # fmt: skip
def test_loopback_host_names_are_accepted(client: TestClient, host: str) -> None:
    assert client.get("/healthz", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["LOCALHOST:8480", "LocalHost", "[2001:DB8::1]:8480", "Pad.Local:8480"]
)
def test_a_host_name_in_another_case_is_the_same_name(
    make_client: Callable[..., TestClient], host: str
) -> None:
    client = make_client(allowed_hosts=frozenset({"localhost", "2001:db8::1", "pad.local"}))
    assert client.get("/healthz", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["EVIL.example", "Evil.Example:8480", "LOCALHOST.evil.example"])
def test_another_host_name_is_refused_in_any_case(client: TestClient, host: str) -> None:
    response = client.get("/", headers={"host": host})
    assert response.status_code == 400
    assert "its own address" in response.text


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:abc", "localhost:", "[::1]:x", "[::1]:", "localhost:65536", "localhost:123456",
        "localhost:+80", "localhost:-1", "localhost: 80", "localhost:8\xb2", "localhost:8_0",
        "[::1]8480", "[::1]x", "[::1", "[::1]:8480:80",
    ],
)  # fmt: skip
def test_a_host_whose_port_is_not_a_port_is_refused(client: TestClient, host: str) -> None:
    """Refused as any other Host is ("²", byte 0xb2 read as Latin-1 as Starlette reads
    headers, is a digit to ``str.isdigit`` and not to ``int``)."""
    response = client.get("/healthz", headers={"host": host.encode("latin-1")})
    assert response.status_code == 400
    assert "its own address" in response.text


def test_off_loopback_a_host_name_with_a_bad_port_is_refused(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(allowed_hosts=frozenset({"pad.local"}), tls=True)
    assert client.get("/healthz", headers={"host": "pad.local:8480"}).status_code == 200
    assert client.get("/healthz", headers={"host": "pad.local:abc"}).status_code == 400


def test_a_declared_body_over_the_cap_is_refused_unread(client: TestClient) -> None:
    token = csrf(client)
    body = b"csrf_token=" + token.encode() + b"&x=" + b"a" * (100 * 1024)
    response = client.post(
        "/control/start",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "larger than the page accepts" in response.text


def test_a_streamed_body_over_the_cap_is_cut(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=4096)  # the upload (10 KiB) is within its own cap
    token = csrf(client, "/prescription")
    boundary = "nirpadtestboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="rx.toml"\r\n'
        "Content-Type: application/toml\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the guard counts what arrives
        yield head
        for _ in range(10):
            yield b"#" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/prescription/check",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert "larger than the page accepts (4 KiB)" in response.text


def test_an_unknown_page_is_plain_words(client: TestClient) -> None:
    response = client.get("/does/not/exist")
    assert response.status_code == 404
    assert "There is no such page here." in response.text


def test_a_wrong_method_is_plain_words(client: TestClient) -> None:
    response = client.get("/control/start")
    assert response.status_code == 405
    assert "nothing was done" in response.text


def test_an_exception_becomes_a_plain_page_without_a_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(data: dict[str, object]) -> object:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("web.pages_status.status_view", broken)
    client = TestClient(client.app, base_url=BASE_URL, raise_server_exceptions=False)
    from web import link

    monkeypatch.setattr(link, "ask_now", lambda *a: link.LinkAnswer(True, True, "", {}))
    response = client.get("/")
    assert response.status_code == 500
    assert "The page failed" in response.text
    assert "Traceback" not in response.text and "secret internal detail" not in response.text
    assert "x-frame-options" in response.headers  # the error page is guarded too
    assert "secret internal detail" in caplog.text  # the log keeps it


def test_a_failing_error_page_still_answers_in_words(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(request: Request, *args: object, **kwargs: object) -> object:
        raise RuntimeError("template broken")

    monkeypatch.setattr("web.pages_status.page", broken)
    monkeypatch.setattr("web.app.error_page", broken)
    monkeypatch.setattr("web.guard.error_page", broken)
    client = TestClient(client.app, base_url=BASE_URL, raise_server_exceptions=False)
    response = client.get("/status/live")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "Traceback" not in response.text


def test_healthz_needs_nothing_and_says_nothing_else(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.text == "ok"


def test_static_files_and_healthz_keep_no_session(client: TestClient) -> None:
    for path in ("/healthz", "/static/nirpad.css", "/static/htmx.min.js"):
        response = client.get(path)
        assert response.status_code == 200 and "set-cookie" not in response.headers, path


@pytest.mark.slow
def test_anonymous_requests_do_not_evict_a_live_session(client: TestClient) -> None:
    token = csrf(client, "/")
    for _ in range(MAX_SESSIONS + 10):
        TestClient(client.app, base_url=BASE_URL).get("/")
    response = client.post("/control/stop", data={"csrf_token": token})
    assert response.status_code == 200 and 'id="confirm-stop"' in response.text


@pytest.mark.slow
def test_a_checked_upload_survives_a_flood_of_anonymous_requests(client: TestClient) -> None:
    token = csrf(client, "/prescription")
    files = {"file": ("rx.toml", RX, "application/toml")}
    html = client.post("/prescription/check", data={"csrf_token": token}, files=files).text
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', html)
    assert sha256 is not None
    for _ in range(MAX_SESSIONS + 10):
        TestClient(client.app, base_url=BASE_URL).get("/prescription")
    data = {"csrf_token": token, "sha256": sha256.group(1)}
    response = client.post("/prescription/install", data=data)
    assert outcome(response) == "refused"  # the upload was still there: only no controller
    assert "The controller is not running" in (element_text(response.text, "message") or "")


def test_a_planted_cookie_is_replaced_by_one_the_page_makes(client: TestClient) -> None:
    planted = "A" * 43  # the shape of a token, set by another service on this host
    client.cookies.set("nirpad_session", planted)
    response = client.get("/")
    assert response.status_code == 200
    assert "nirpad_session=" in response.headers["set-cookie"]
    assert planted not in response.headers["set-cookie"]


def test_every_htmx_poll_in_the_templates_is_known_to_the_guard() -> None:
    """A poll htmx sends by itself must not count as the caregiver's activity."""
    polled = set()
    for template in sorted(TEMPLATES.glob("*.html")):
        for tag in re.findall(r"<[^>]*hx-trigger=\"[^\"]*\bevery\b[^>]*>", template.read_text()):
            found = re.search(r'hx-get="([^"]+)"', tag)
            assert found is not None, (template.name, tag)
            polled.add(found.group(1))
    assert polled == POLL_PATHS


def test_a_websocket_is_refused_before_any_route_sees_it(state_dir: Path) -> None:
    """The page serves no WebSocket; one must not reach a route past the Host, user and
    login checks that only HTTP requests get."""
    reached: list[str] = []

    async def accepting(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["type"])
        await receive()
        await send({"type": "websocket.accept"})

    guarded = Guard(accepting, WebState(WebSettings(state_dir, password_hash="scrypt$x")))
    client = TestClient(guarded, base_url=BASE_URL)
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/", headers={"host": "evil.example"}),
    ):
        pass
    assert reached == []
