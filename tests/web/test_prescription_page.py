"""The prescription page: upload, check (signature included) in the CLI's words, install
only on confirmation, and only by the running controller: with none, nothing."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from httpx import Response

from firmware_host.cli import main
from firmware_host.control import ControlServer, OnLoop
from firmware_host.control_client import ControlReply
from firmware_host.profile_commands import InstallOutcome, validate_and_install
from profiles.signing import sign_profile
from profiles.store import installed_path
from safety.ledger import LEDGER_FILENAME

from .conftest import (
    BASE_URL,
    FakeController,
    TestClient,
    ThreadLoop,
    csrf,
    csrf_of,
    element_text,
    outcome,
    reload,
)

# The shipped built-ins carry fixed dates: read them on a day they are valid.
pytestmark = pytest.mark.usefixtures("builtin_wall_clock")

RX = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_bytes()
TOO_STRONG = RX.replace(b"irradiance_mw_cm2 = 40", b"irradiance_mw_cm2 = 80")
assert TOO_STRONG != RX


def _check(client: TestClient, data: bytes, name: str = "rx.toml") -> tuple[int, str]:
    token = csrf(client, "/prescription")
    response = client.post(
        "/prescription/check",
        data={"csrf_token": token},
        files={"file": (name, data, "application/toml")},
    )
    return response.status_code, response.text


def _problems(html: str) -> list[str]:
    block = re.search(r'<ul id="problems">(.*?)</ul>', html, re.DOTALL)
    assert block is not None, "no problems listed"
    return [re.sub(r"&#3[49];", lambda m: {"&#34;": '"', "&#39;": "'"}[m.group(0)], p)
            for p in re.findall(r"<li>(.*?)</li>", block.group(1))]  # fmt: skip


def _cli_check(
    tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str], *extra: str
) -> list[str]:
    """The problems ``nirpad profile check`` lists, below its line naming the file."""
    path = tmp_path / "rx.toml"
    path.write_bytes(data)
    capsys.readouterr()
    assert main(["profile", "check", str(path), *extra]) == 2
    head, *problems = capsys.readouterr().err.splitlines()
    assert head == f"nirpad: {path} cannot be used on this pad:"
    assert all(line.startswith("  ") for line in problems)
    return [line.removeprefix("  ") for line in problems]


def _install_checked(client: TestClient, html: str) -> Response:
    """Press Install on the page ``html`` of a checked file (its own sha256)."""
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', html)
    assert sha256 is not None
    return client.post(
        "/prescription/install", data={"csrf_token": csrf_of(html), "sha256": sha256.group(1)}
    )


def test_with_none_installed_the_page_says_so(client: TestClient) -> None:
    html = client.get("/prescription").text
    assert "none installed" in (element_text(html, "none-installed") or "")
    assert 'id="file"' in html and 'enctype="multipart/form-data"' in html


def test_a_good_file_is_summarised_and_not_yet_installed(
    client: TestClient, state_dir: Path
) -> None:
    status, html = _check(client, RX)
    assert status == 200
    assert "rls-810-standard" in (element_text(html, "summary") or "")
    assert 'id="install"' in html
    assert not installed_path(state_dir).exists()  # only a confirmation installs


def test_with_no_controller_running_the_page_installs_nothing(
    client: TestClient, state_dir: Path
) -> None:
    _, html = _check(client, RX)
    response = _install_checked(client, html)
    assert outcome(response) == "refused"
    message = element_text(response.text, "message") or ""
    assert message.startswith("The controller is not running, so nothing was installed.")
    assert "nirpad run --sim" in message
    assert not installed_path(state_dir).exists()
    assert not (state_dir / LEDGER_FILENAME).exists()  # no record written
    assert sorted(p.name for p in state_dir.iterdir()) == []  # no lock, nothing at all


@pytest.mark.usefixtures("control_server")
def test_install_goes_to_the_running_controller(
    client: TestClient, controller: FakeController, state_dir: Path
) -> None:
    _, html = _check(client, RX, "clinic.toml")
    response = _install_checked(client, html)
    assert outcome(response) == "ok"
    assert controller.installs == [("clinic.toml", RX.decode())]
    assert not installed_path(state_dir).exists()  # the controller does it, not the page


def test_install_without_a_check_or_of_another_file_is_refused(
    client: TestClient, state_dir: Path
) -> None:
    token = csrf(client, "/prescription")
    response = client.post("/prescription/install", data={"csrf_token": token, "sha256": "0" * 64})
    assert outcome(response) == "refused"
    assert _check(client, RX)[0] == 200  # a checked file waits, but not this one
    response = client.post("/prescription/install", data={"csrf_token": token, "sha256": "0" * 64})
    assert outcome(response) == "refused" and "nothing was installed" in response.text
    assert not installed_path(state_dir).exists()


def test_a_bad_file_replaces_a_pending_good_one(client: TestClient, state_dir: Path) -> None:
    _, html = _check(client, RX)
    good = re.search(r'name="sha256" value="([0-9a-f]{64})"', html)
    assert good is not None
    status, _ = _check(client, b"not toml at all [")
    assert status == 422
    response = client.post(
        "/prescription/install", data={"csrf_token": csrf_of(html), "sha256": good.group(1)}
    )
    assert outcome(response) == "refused"
    assert not installed_path(state_dir).exists()


@pytest.mark.parametrize(
    "data", [b"not toml at all [", TOO_STRONG, RX.replace(b"duration_min = 30", b"")]
)
def test_a_malformed_file_shows_the_same_words_as_profile_check(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    status, html = _check(client, data)
    assert status == 422
    assert 'id="install"' not in html
    assert _problems(html) == _cli_check(tmp_path, data, capsys)


def test_an_unsigned_file_is_refused_where_the_site_requires_signatures(
    make_client: Callable[..., TestClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    site = tmp_path / "site.toml"
    site.write_text(
        "[signing]\nrequire_signed = true\n[signing.trusted_keys]\n"
        f'clinic-a = "{base64.b64encode(raw).decode()}"\n'
    )
    client = make_client(site_config=site)
    status, html = _check(client, RX)
    assert status == 422
    assert _problems(html) == ["signature: is missing: this site only accepts signed profiles"]
    assert _problems(html) == _cli_check(tmp_path, RX, capsys, "--site-config", str(site))
    signed = sign_profile(RX.decode(), key, "clinic-a").encode()
    status, html = _check(client, signed)
    assert status == 200 and "signed (clinic-a)" in html


def test_an_upload_over_the_cap_is_refused(
    make_client: Callable[..., TestClient], state_dir: Path
) -> None:
    client = make_client(max_upload_bytes=4096)
    status, html = _check(client, RX + b"#" * 5000)
    assert status == 413
    assert "larger than the page accepts (4 KiB)" in html


def test_a_check_without_a_file_is_plain_words(client: TestClient) -> None:
    token = csrf(client, "/prescription")
    response = client.post("/prescription/check", data={"csrf_token": token})
    assert response.status_code == 400 and "Choose a prescription file" in response.text


def test_an_unusable_site_configuration_is_said_in_words(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[signing]\nrequire_signed = 3\n")
    client = make_client(site_config=site)
    html = client.get("/prescription").text
    assert "site configuration cannot be used" in (element_text(html, "none-installed") or "")
    status, html = _check(client, RX)
    assert status == 422 and "site configuration cannot be used" in _problems(html)[0]


def test_a_second_confirmation_while_the_first_installs_installs_nothing(
    make_client: Callable[..., TestClient], state_dir: Path
) -> None:
    """A double click: the second install request arrives while the first one waits for
    the controller; the checked upload was taken by the first, so it is installed once.
    The browser shows the answer to the second: it is the first's (it said "Upload and
    check the prescription again; nothing was installed" of an installed prescription)."""
    entered, release = threading.Event(), threading.Event()
    installs: list[str] = []

    def slow_install(name: str, data: str, on_loop: OnLoop) -> ControlReply:
        installs.append(name)
        if len(installs) == 1:
            entered.set()
            release.wait(5.0)
        return ControlReply(True, 0, f"installed {name}", {"problems": []})

    loop = ThreadLoop()
    server = ControlServer(state_dir, FakeController(), loop, installer=slow_install)
    server.start()
    client = make_client()
    try:
        _, html = _check(client, RX)
        sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', html)
        assert sha256 is not None
        form = {"csrf_token": csrf_of(html), "sha256": sha256.group(1)}
        first, second = asyncio.run(_install_twice(client, form, entered, release))
        said = [
            element_text(client.get(r.headers["location"]).text, "message") for r in (first, second)
        ]
    finally:
        release.set()
        server.close()
        loop.pool.shutdown(wait=True)
    assert (first.status_code, second.status_code) == (303, 303)
    assert said == ["Installed. Installed rx.toml.", "Installed. Installed rx.toml."]
    assert installs == ["rx.toml"]


async def _install_twice(
    client: TestClient, form: dict[str, str], entered: threading.Event, release: threading.Event
) -> tuple[httpx.Response, httpx.Response]:
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, cookies=dict(client.cookies)
    ) as browser:
        first = asyncio.create_task(browser.post("/prescription/install", data=form))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        second = asyncio.create_task(browser.post("/prescription/install", data=form))
        for _ in range(20):  # let it reach the page while the first waits (it waits too)
            await asyncio.sleep(0.01)
        release.set()
        return await first, await second


@pytest.mark.usefixtures("control_server")
def test_a_reload_after_an_install_installs_nothing_and_says_nothing(
    client: TestClient, controller: FakeController
) -> None:
    _, html = _check(client, RX)
    response = _install_checked(client, html)
    assert (element_text(response.text, "message") or "").startswith("Installed.")
    again = reload(client, response)
    assert again.status_code == 200, element_text(again.text, "error-text")
    assert element_text(again.text, "message") is None
    assert len(controller.installs) == 1


def test_the_page_shows_a_refused_install_in_the_cli_s_words_without_its_prefix(
    make_client: Callable[..., TestClient],
    state_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The controller refuses with its own site limits (the page's check had none): the
    page lists the problems ``nirpad profile install`` prints, without the command
    line's ``nirpad: ``, and says what was refused in its own sentence."""
    site = tmp_path / "controller-site.toml"
    site.write_text("[limits]\nirradiance_max_mw_cm2 = 33\n")  # less ±10 %: 30

    def installer(name: str, data: str, on_loop: OnLoop) -> InstallOutcome:
        return validate_and_install(
            state_dir, data.encode(), name, site, session_state=lambda: "ready"
        )

    loop = ThreadLoop()
    server = ControlServer(state_dir, FakeController(), loop, installer=installer)
    server.start()
    try:
        client = make_client()
        _, html = _check(client, RX)
        response = _install_checked(client, html)
    finally:
        server.close()
        loop.pool.shutdown(wait=True)
    assert outcome(response) == "refused"
    assert element_text(response.text, "message") == "Not installed: rx.toml was refused."
    assert "nirpad:" not in response.text
    (tmp_path / "rx.toml").write_bytes(RX)
    cli = ["profile", "install", str(tmp_path / "rx.toml"), "--site-config", str(site)]
    capsys.readouterr()
    assert main([*cli, "--state-dir", str(tmp_path / "elsewhere")]) == 2
    head, *problems = capsys.readouterr().err.splitlines()
    assert head == f"nirpad: {tmp_path / 'rx.toml'} was refused:" and problems
    assert _problems(response.text) == [line.removeprefix("  ") for line in problems]
    assert not installed_path(state_dir).exists()
