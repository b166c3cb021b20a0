"""With a password every request needs a login (rate-limited on a virtual clock); off
loopback the page refuses to start without TLS and a password."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import uvicorn

from firmware_host.cli import main
from hil.rigs.clock import VirtualClock
from tests.web.real_server import self_signed
from web import serve
from web.app import create_app
from web.guard import COOKIE_NAME
from web.http_server import MAX_CONNECTIONS, REQUEST_TIMEOUT_S, RequestDeadlineProtocol
from web.passwords import hash_password, write_password_hash
from web.serve import ListenRefusedError, is_loopback, settings_for
from web.sessions import FIRST_WAIT_S, FREE_FAILURES, IDLE_TIMEOUT_S, MAX_SESSIONS

from .conftest import BASE_URL, TestClient, csrf, element_text

PASSWORD = "a long caregiver password"


@pytest.fixture
def guarded(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(password_hash=hash_password(PASSWORD, n=1 << 10))


def _login(client: TestClient, password: str) -> tuple[int, str]:
    token = csrf(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "password": password}, follow_redirects=False
    )
    return response.status_code, response.text


@pytest.mark.parametrize("path", ["/", "/status/live", "/prescription", "/history", "/history.csv"])
def test_every_page_needs_a_login(guarded: TestClient, path: str) -> None:
    response = guarded.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "x-frame-options" in response.headers


def test_the_login_page_the_styles_and_htmx_need_no_login(guarded: TestClient) -> None:
    for path in ("/login", "/static/nirpad.css", "/static/htmx.min.js", "/healthz"):
        assert guarded.get(path, follow_redirects=False).status_code == 200, path


def test_the_live_part_asks_htmx_to_go_to_the_login(guarded: TestClient) -> None:
    response = guarded.get("/status/live", headers={"hx-request": "true"})
    assert response.status_code == 401 and response.headers["hx-redirect"] == "/login"


def test_a_post_without_a_login_does_nothing(guarded: TestClient) -> None:
    token = csrf(guarded, "/login")
    response = guarded.post("/control/start", data={"csrf_token": token})
    assert response.status_code == 401 and "nothing was done" in response.text


def test_a_login_gives_a_new_session_that_opens_the_pages(guarded: TestClient) -> None:
    csrf(guarded, "/login")
    before = guarded.cookies[COOKIE_NAME]
    status, _ = _login(guarded, PASSWORD)
    assert status == 303
    assert guarded.cookies[COOKIE_NAME] != before  # no session fixation
    html = guarded.get("/").text
    assert 'id="logout"' in html and 'id="live"' in html
    token = csrf(guarded)
    response = guarded.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.headers["location"] == "/login"
    assert guarded.get("/", follow_redirects=False).status_code == 303


def test_a_wrong_password_is_refused(guarded: TestClient) -> None:
    status, html = _login(guarded, "not the password")
    assert status == 401 and element_text(html, "message") == "That password is not right."
    assert guarded.get("/", follow_redirects=False).status_code == 303


def test_logins_are_rate_limited_on_the_clock(guarded: TestClient, clock: VirtualClock) -> None:
    for _ in range(FREE_FAILURES):
        assert _login(guarded, "wrong guess")[0] == 401
    status, html = _login(guarded, PASSWORD)  # even the right one waits
    assert status == 429
    assert f"Try again in {FIRST_WAIT_S:.0f} seconds" in html
    clock.advance(FIRST_WAIT_S)
    assert _login(guarded, "wrong again")[0] == 401
    clock.advance(FIRST_WAIT_S)  # the wait doubled: half of it is not enough
    assert _login(guarded, PASSWORD)[0] == 429
    clock.advance(FIRST_WAIT_S)
    assert _login(guarded, PASSWORD)[0] == 303


def test_without_a_password_there_is_no_login_page(client: TestClient) -> None:
    response = client.get("/login", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert 'id="logout"' not in client.get("/").text


def test_a_session_idle_too_long_must_log_in_again(
    guarded: TestClient, clock: VirtualClock
) -> None:
    _login(guarded, PASSWORD)
    assert guarded.get("/", follow_redirects=False).status_code == 200
    clock.advance(31 * 60.0)
    assert guarded.get("/", follow_redirects=False).status_code == 303


def _poll(client: TestClient) -> int:
    response = client.get("/status/live", headers={"hx-request": "true"})
    if response.status_code == 401:
        assert response.headers["hx-redirect"] == "/login"
    return response.status_code


@pytest.mark.slow
def test_the_live_part_polled_every_second_does_not_keep_a_login_alive(
    guarded: TestClient, clock: VirtualClock
) -> None:
    _login(guarded, PASSWORD)
    assert guarded.get("/", follow_redirects=False).status_code == 200
    answers = []
    for _ in range(31 * 60):
        clock.advance(1.0)
        answers.append(_poll(guarded))
    assert answers[: int(IDLE_TIMEOUT_S)] == [200] * int(IDLE_TIMEOUT_S)
    assert answers[-1] == 401  # as any expired session's htmx request: to the login
    assert guarded.get("/", follow_redirects=False).status_code == 303


def test_a_page_request_within_the_idle_time_keeps_a_polled_login_alive(
    guarded: TestClient, clock: VirtualClock
) -> None:
    _login(guarded, PASSWORD)
    for second in range(1, 45 * 60 + 1):
        clock.advance(1.0)
        if second == 20 * 60:
            assert guarded.get("/history", follow_redirects=False).status_code == 200
        elif second % 10 == 0:
            assert _poll(guarded) == 200, second


@pytest.mark.parametrize("listen", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_nothing(tmp_path: Path, listen: str) -> None:
    assert is_loopback(listen)
    settings = settings_for(tmp_path, listen, None, None)
    assert not settings.login_required and settings.allowed_hosts is not None


def test_off_loopback_without_tls_or_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ListenRefusedError, match=r"TLS certificate and key.*and a password"):
        settings_for(tmp_path, "0.0.0.0", None, None)
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    with pytest.raises(ListenRefusedError, match="needs a TLS certificate") as err:
        settings_for(tmp_path, "192.168.1.20", None, None)
    assert "password" not in str(err.value)


def test_off_loopback_without_a_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ListenRefusedError, match="needs a password"):
        settings_for(tmp_path, "192.168.1.20", "cert.pem", "key.pem")


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ListenRefusedError, match="go together"):
        settings_for(tmp_path, "127.0.0.1", "cert.pem", None)


def test_off_loopback_with_tls_and_a_password_needs_a_login(tmp_path: Path) -> None:
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    settings = settings_for(tmp_path, "192.168.1.20", "cert.pem", "key.pem")
    assert settings.login_required and settings.tls
    assert settings.allowed_hosts == {"192.168.1.20"}


def test_nirpad_web_refuses_to_start_off_loopback_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["web", "--listen", "0.0.0.0", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "serving on 0.0.0.0 (not this machine only) needs" in err
    assert "nirpad web passwd" in err and "Traceback" not in err


@pytest.fixture(autouse=True)
def _any_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests that replace uvicorn's run need a socket, not the port they name: a
    real ``nirpad web`` on this machine, or another test, may hold 8480."""
    bind = serve.listening_socket
    monkeypatch.setattr(serve, "listening_socket", lambda listen, port: bind(listen, 0))


def test_nirpad_web_serves_with_the_options_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[uvicorn.Config] = []

    def fake_run(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        assert sockets is not None and sockets[0].getsockname()[0] == "127.0.0.1"
        seen.append(server.config)

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    assert main(["web", "--state-dir", str(tmp_path), "--port", "8999"]) == 0
    (config,) = seen
    assert config.host == "127.0.0.1" and config.port == 8999
    assert config.ssl_certfile is None and config.server_header is False
    assert config.limit_concurrency == MAX_CONNECTIONS and config.access_log is False
    assert isinstance(config.http, type) and issubclass(config.http, RequestDeadlineProtocol)
    assert config.http.request_timeout_s == REQUEST_TIMEOUT_S


@pytest.mark.slow
def test_requests_without_a_login_do_not_log_the_caregiver_out(guarded: TestClient) -> None:
    _login(guarded, PASSWORD)
    for _ in range(MAX_SESSIONS + 10):
        TestClient(guarded.app, base_url=BASE_URL).get("/login")
    assert guarded.get("/", follow_redirects=False).status_code == 200


def test_parallel_logins_cannot_pass_the_limit_together(
    guarded: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = guarded.app.state
    seen: list[int] = []

    def verify(password: str, stored: str) -> bool:
        seen.append(state.limiter.failures)  # counted before the password is tried
        return False

    monkeypatch.setattr("web.pages_login.verify_password", verify)
    _login(guarded, "a wrong one, first")
    assert seen == [1]


def test_with_a_password_loopback_needs_a_login_too(tmp_path: Path) -> None:
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    app = create_app(settings_for(tmp_path, "127.0.0.1", None, None))
    response = TestClient(app, base_url=BASE_URL).get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_without_a_password_the_status_page_says_who_may_use_it(
    client: TestClient, guarded: TestClient
) -> None:
    assert "serves only the accounts that may control the pad" in (
        element_text(client.get("/").text, "no-login") or ""
    )
    _login(guarded, PASSWORD)
    assert 'id="no-login"' not in guarded.get("/").text


@pytest.mark.parametrize("listen", ["127.0.0.2", "::1", "127.1.2.3"])
def test_a_loopback_listen_address_serves_under_its_own_name(tmp_path: Path, listen: str) -> None:
    settings = settings_for(tmp_path, listen, None, None)
    app = create_app(dataclasses.replace(settings, local_users=None))  # the test client: no uid
    host = f"[{listen}]" if ":" in listen else listen
    response = TestClient(app, base_url=f"http://{host}:8480").get("/healthz")
    assert response.status_code == 200, response.text[:200]


def test_off_loopback_only_the_listen_address_and_host_names_are_answered(
    tmp_path: Path,
) -> None:
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    settings = settings_for(tmp_path, "192.168.1.20", "c.pem", "k.pem", host_names=["Pad.local"])
    app = create_app(settings)
    for host, status in (("192.168.1.20", 200), ("pad.local", 200), ("evil.example", 400)):
        response = TestClient(app, base_url=f"https://{host}:8480").get("/healthz")
        assert response.status_code == status, host


def test_an_ipv6_listen_address_is_answered_in_the_form_browsers_send(tmp_path: Path) -> None:
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    settings = settings_for(tmp_path, "2001:0DB8:0:0::1", "c.pem", "k.pem", host_names=["[::2]"])
    app = create_app(settings)
    for host in ("[2001:db8::1]", "[::2]"):
        response = TestClient(app, base_url=f"https://{host}:8480").get("/healthz")
        assert response.status_code == 200, host


def test_on_every_address_a_host_name_is_needed(tmp_path: Path) -> None:
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    with pytest.raises(ListenRefusedError, match=r"needs the name the browser uses.*--host-name"):
        settings_for(tmp_path, "0.0.0.0", "c.pem", "k.pem")
    settings = settings_for(tmp_path, "::", "c.pem", "k.pem", host_names=["pad.local"])
    assert settings.allowed_hosts == {"pad.local"}


@pytest.mark.parametrize(
    "name", ["pad.local:8443", "https://pad.local", "pad.local/", "", "pad local", "[::1]:8480"]
)
def test_a_host_name_that_is_no_host_name_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The Host check compares names without their port: with ``--host-name
    pad.local:8443`` (or a URL) the page started and refused every request, its
    caregiver's included, "This page answers only under its own address"."""
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    with pytest.raises(ListenRefusedError, match="--host-name") as refused:
        settings_for(tmp_path, "0.0.0.0", "c.pem", "k.pem", host_names=["pad.local", name])
    assert "is not a host name" in str(refused.value)
    assert main(["web", "--state-dir", str(tmp_path), "--host-name", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nirpad: --host-name ") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--port", "99999"], "--port must be between 1 and 65535, not 99999"),
        (["--port", "0"], "--port must be between 1 and 65535, not 0"),
        (["--tz", "Bad/Zone"], "--tz: unknown time zone 'Bad/Zone'"),
        (["--tls-cert", "/missing/c.pem", "--tls-key", "/missing/k.pem"], "/missing/c.pem"),
    ],
)
def test_nirpad_web_refuses_bad_options_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], words: str
) -> None:
    assert main(["web", "--state-dir", str(tmp_path), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nirpad: ") and words in err and err.count("\n") == 1, err


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["named pipe", "folder"])
def test_nirpad_web_refuses_a_tls_file_that_is_not_a_file_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    cert = tmp_path / "c.pem"
    if kind == "named pipe":
        os.mkfifo(cert)  # nobody writes it: OpenSSL's open would wait for ever
    else:
        cert.mkdir()
    (tmp_path / "k.pem").write_text("not read")
    tls = ["--tls-cert", str(cert), "--tls-key", str(tmp_path / "k.pem")]
    assert main(["web", "--state-dir", str(tmp_path), *tls]) == 2
    assert capsys.readouterr().err == (
        f"nirpad: --tls-cert {cert} is not a file (a folder, a named pipe or a device)\n"
    )


def test_nirpad_web_refuses_an_encrypted_key_without_asking_for_its_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = self_signed(tmp_path, "pad.local", passphrase=b"secret passphrase")
    tls = ["--tls-cert", cert, "--tls-key", key]
    assert main(["web", "--state-dir", str(tmp_path), *tls]) == 2
    err = capsys.readouterr().err
    assert "is encrypted, and the page cannot ask for its passphrase" in err
    assert err.count("\n") == 1


def test_nirpad_web_refuses_a_certificate_that_is_not_pem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.pem").write_text("not a certificate")
    (tmp_path / "k.pem").write_text("not a key")
    tls = ["--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    assert main(["web", "--state-dir", str(tmp_path), *tls]) == 2
    err = capsys.readouterr().err
    assert "are not PEM" in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("listen", ["127.0.0.1", "::1"])
def test_a_port_another_program_holds_is_said_in_one_line_before_any_address(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    listen: str,
) -> None:
    """Never a URL printed that leads to the other program's page, never a traceback."""
    monkeypatch.undo()  # the real binding
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: pytest.fail("ran"))
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    with socket.socket(family) as other:
        other.bind((listen, 0))
        other.listen()
        port = other.getsockname()[1]
        assert (
            main(["web", "--state-dir", str(tmp_path), "--listen", listen, "--port", str(port)])
            == 1
        )
    shown = f"[{listen}]" if ":" in listen else listen
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(
        f"nirpad: cannot serve on {shown}:{port}: another program is using that port; "
        "choose another with --port\n"
    )
    assert "Traceback" not in err


def test_the_page_listens_on_the_socket_it_bound(tmp_path: Path) -> None:
    with serve.listening_socket("127.0.0.1", 0) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert sock.get_inheritable()


def test_matplotlibs_cache_is_a_temporary_directory_removed_when_the_page_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        seen.append(Path(os.environ["MPLCONFIGDIR"]))
        assert seen[-1].is_dir() and seen[-1] != Path.home()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setenv("MPLCONFIGDIR", "")
    assert main(["web", "--state-dir", str(tmp_path)]) == 0
    assert len(seen) == 1 and not seen[0].exists()  # removed at exit
    assert os.environ["MPLCONFIGDIR"] == ""
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mine"))
    assert main(["web", "--state-dir", str(tmp_path)]) == 0
    assert seen[1] == tmp_path / "mine"  # a set one is used as it is


def test_nirpad_web_warns_at_start_when_no_password_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: None)
    monkeypatch.setenv("MPLCONFIGDIR", "")
    assert main(["web", "--state-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: no password is set, so the page serves only the local users" in err
    write_password_hash(tmp_path, hash_password(PASSWORD, n=1 << 10))
    assert main(["web", "--state-dir", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--state-dir", "--site-config"])
def test_nirpad_web_refuses_a_home_folder_of_no_user_so_systemd_does_not_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    args = ["web", "--state-dir", str(tmp_path), option, "~nosuchuser-nirpad/x"]
    assert main(args) == 2  # RestartPreventExitStatus=2 in nirpad-web.service
    err = capsys.readouterr().err
    assert err.startswith("nirpad: cannot use ~nosuchuser-nirpad/x:") and err.count("\n") == 1, err
