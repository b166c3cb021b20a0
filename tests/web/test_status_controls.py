"""The status page and the buttons, against a fake controller behind a real control socket."""

from __future__ import annotations

import re

import pytest

from firmware_host.control import ControlServer
from firmware_host.control_client import ControlClientError
from web import link
from web.pages_status import STALE_AFTER_S

from .conftest import FakeController, TestClient, csrf, element_text, outcome, reload

pytestmark = pytest.mark.usefixtures("control_server")


def test_the_status_page_shows_the_controllers_state_in_words(client: TestClient) -> None:
    html = client.get("/").text
    assert element_text(html, "state") == "Ready"
    assert 'data-state="ready"' in html
    assert element_text(html, "skin-temp") == "31.2 °C"  # rounded to the tenth shown
    assert element_text(html, "board-temp") == "27.5 °C"
    assert element_text(html, "contact") == "On the skin"
    assert element_text(html, "planned") == "71.4 J/cm²"
    assert 'hx-get="/status/live"' in html and 'hx-trigger="every 1s"' in html
    for button in ("start", "pause", "resume", "stop", "ack"):
        assert f'id="{button}"' in html


def test_the_live_part_shows_time_left_progress_and_the_dose(
    client: TestClient, controller: FakeController
) -> None:
    controller.status_data.update(
        state="treating", elapsed_s=600.0, remaining_s=1200.0, fluence_j_cm2=23.8
    )
    html = client.get("/status/live").text
    assert "<html" not in html  # a fragment, not a page
    assert element_text(html, "state") == "Treating"
    assert element_text(html, "time-left") == "20:00"
    assert 'id="progress" max="100" value="33"' in html
    assert element_text(html, "fluence") == "23.8 J/cm²"


def test_a_fault_shows_its_message_and_what_to_do(
    client: TestClient, controller: FakeController
) -> None:
    controller.status_data.update(
        state="fault",
        fault={"code": "skin_overtemp", "message": "The pad got too warm on the skin."},
    )
    html = client.get("/status/live").text
    assert element_text(html, "state") == "Fault"
    assert element_text(html, "fault-message") == "The pad got too warm on the skin."
    assert "let the skin cool" in (element_text(html, "fault-action") or "")


def test_a_fault_whose_cause_is_still_present_says_not_yet(
    client: TestClient, controller: FakeController
) -> None:
    """Held 2 s while the skin is still hot, the button does nothing: the page says why,
    not only "hold the button 2 s"."""
    controller.status_data.update(
        state="fault",
        fault={"code": "skin_overtemp", "message": "The pad got too warm on the skin.",
               "clear_refusal": "the cause is still present: skin_overtemp"},
    )  # fmt: skip
    html = client.get("/status/live").text
    assert element_text(html, "fault-not-yet") == "the cause is still present: skin_overtemp"
    controller.status_data["fault"]["clear_refusal"] = None
    assert 'id="fault-not-yet"' not in client.get("/status/live").text


def test_with_the_pad_unplugged_its_contact_is_not_known_not_off_the_skin(
    client: TestClient, controller: FakeController
) -> None:
    """The status document has no readings (null) and contact false while the pad's
    telemetry is not current: the page said "Not on the skin" of a pad lying on it."""
    controller.status_data.update(
        state="fault", skin_temp_c=None, board_temp_c=None, contact=False,
        irradiance_mw_cm2={},
        fault={"code": "board_disconnected", "message": "The pad is not answering."},
    )  # fmt: skip
    html = client.get("/status/live").text
    assert element_text(html, "contact") == "Not known"
    assert element_text(html, "skin-temp") == "not known"
    controller.status_data.update(skin_temp_c=31.0, board_temp_c=27.0)  # current again
    assert element_text(client.get("/status/live").text, "contact") == "Not on the skin"


def test_the_live_part_says_its_figures_are_old_once_it_stops_being_replaced(
    client: TestClient, controller: FakeController
) -> None:
    """htmx swaps nothing when a poll fails (the page's process restarted or gone, a 503):
    the last "Treating, 12:00 left" stood on a kiosk for ever. Every answer carries a
    notice the stylesheet shows only after ``STALE_AFTER_S`` without a new one (a CSS
    animation each swap starts anew; no script), with the time its figures are from."""
    for path in ("/", "/status/live"):
        html = client.get(path).text
        notice = element_text(html, "live-stale") or ""
        assert re.search(r"These figures are from \d\d:\d\d:\d\d", notice), notice
        assert 'class="stale"' in html
    css = client.get("/static/nirpad.css").text
    rule = re.search(r"\.stale \{([^}]*)\}", css)
    assert rule is not None and "visibility: hidden" in rule.group(1)
    assert f"stale-shown 0s {STALE_AFTER_S}s forwards" in rule.group(1)
    poll_s = float(re.findall(r'hx-trigger="every (\d+)s"', client.get("/").text)[0])
    assert 5 * poll_s <= STALE_AFTER_S  # a few slow answers do not show it


@pytest.mark.parametrize("message", ["", None])
def test_a_fault_without_words_still_shows_its_box_and_what_to_do(
    client: TestClient, controller: FakeController, message: str | None
) -> None:
    """A fault whose message came through empty (all of it technical detail the plain
    words leave out) showed "Fault" and nothing else: no box, no "What to do"."""
    controller.status_data.update(state="fault", fault={"code": "rail_lost", "message": message})
    html = client.get("/status/live").text
    assert 'id="fault"' in html and 'data-code="rail_lost"' in html
    assert element_text(html, "fault-message") == "The pad reports a fault (rail_lost)."
    assert "Do not use the pad" in (element_text(html, "fault-action") or "")


def test_an_unknown_fault_still_says_what_to_do(
    client: TestClient, controller: FakeController
) -> None:
    controller.status_data.update(state="fault", fault={"code": "new_kind", "message": "Odd."})
    assert "Acknowledge fault" in (element_text(client.get("/").text, "fault-action") or "")


def test_a_refused_start_shows_why_and_when_the_next_is_allowed(
    client: TestClient, controller: FakeController
) -> None:
    reason = "The next session is allowed at 2026-11-25 15:00 (20 h after the last one)."
    controller.refusals["start"] = reason
    controller.status_data.update(
        start_refusal=reason, next_start_allowed_at="2026-11-25T14:59:30+00:00"
    )
    response = client.post("/control/start", data={"csrf_token": csrf(client)})
    assert outcome(response) == "refused"
    assert element_text(response.text, "message") == reason
    assert 'class="refused"' in response.text
    assert reason in (element_text(response.text, "start-refusal") or "")
    assert "2026-11-25" in (element_text(response.text, "next-start") or "")
    assert controller.commands == ["start"]


@pytest.mark.parametrize("command", ["start", "pause", "resume", "ack"])
def test_each_button_sends_the_clis_request(
    client: TestClient, controller: FakeController, command: str
) -> None:
    response = client.post(f"/control/{command}", data={"csrf_token": csrf(client)})
    assert outcome(response) == "ok"
    assert element_text(response.text, "message") == f"ok: {command}"
    assert controller.commands == [command]


def test_stop_asks_first_and_only_a_confirmation_sends_it(
    client: TestClient, controller: FakeController
) -> None:
    token = csrf(client)
    response = client.post("/control/stop", data={"csrf_token": token})
    assert response.status_code == 200
    assert 'id="confirm-stop"' in response.text and 'name="confirm" value="yes"' in response.text
    assert controller.commands == []
    response = client.post("/control/stop", data={"csrf_token": token, "confirm": "yes"})
    assert element_text(response.text, "message") == "ok: stop"
    assert controller.commands == ["stop"]


def test_with_no_controller_the_pages_say_so(
    client: TestClient, control_server: ControlServer
) -> None:
    control_server.close()
    html = client.get("/").text
    assert "The controller is not running" in (element_text(html, "not-running") or "")
    response = client.post("/control/start", data={"csrf_token": csrf(client)})
    assert outcome(response) == "refused"
    assert "The controller is not running" in (element_text(response.text, "message") or "")


def test_a_controller_that_fails_to_answer_is_said_in_words(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise ControlClientError("the controller did not answer within 5 s")

    monkeypatch.setattr(link, "send", failing)
    html = client.get("/").text
    assert "could not talk to the controller" in (element_text(html, "link-trouble") or "")


@pytest.mark.parametrize(
    ("command", "fields"),
    [("start", {}), ("pause", {}), ("resume", {}), ("stop", {"confirm": "yes"}), ("ack", {})],
)
def test_a_reload_after_a_button_sends_nothing_again(
    client: TestClient, controller: FakeController, command: str, fields: dict[str, str]
) -> None:
    response = client.post(f"/control/{command}", data={"csrf_token": csrf(client), **fields})
    assert element_text(response.text, "message") == f"ok: {command}"
    again = reload(client, response)
    assert again.status_code == 200 and element_text(again.text, "message") is None
    assert controller.commands == [command]
