"""The course page: adherence per week, tonight, the diary forms (the CLI's checks and
corrections) and the clinic report's three files, on the six-week course of tests/care."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest

from care.diary import DIARY_FILENAME, Diary
from care.diary_schema import OLD_DIARY_FILENAME, DiaryStorageError
from firmware_host import course_commands, report_commands
from firmware_host.cli import main
from firmware_host.report_commands import report_files
from hil.rigs.clock import VirtualClock
from profiles.store import install_atomic
from tests.care.course_fixture import RX_TOML, local, write_six_weeks
from web.repeats import REPEAT_S

from .conftest import TestClient, csrf, element_text, outcome, reload

DUE = local(date(2026, 11, 21), 19, 30)
TZ = "Europe/Berlin"


@pytest.fixture
def course_client(
    state_dir: Path, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    write_six_weeks(state_dir, until=date(2026, 11, 19))
    install_atomic(state_dir, RX_TOML)
    _set_clock(monkeypatch, DUE)
    return make_client(tz=TZ)


def _set_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    for module in (course_commands, report_commands):
        monkeypatch.setattr(module, "wall_clock", lambda: now)
    monkeypatch.setattr("web.pages_course._now", lambda: now)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _diary(client: TestClient, path: str, **fields: str | list[str]) -> tuple[str | None, str]:
    token = csrf(client, "/course")
    response = client.post(path, data={"csrf_token": token, **fields})
    return outcome(response), response.text


def test_with_no_prescription_the_course_page_says_so(client: TestClient) -> None:
    html = client.get("/course").text
    assert "no usable prescription is installed" in (element_text(html, "no-course") or "")
    assert 'action="/diary/nightly"' in html and 'action="/diary/irls"' in html


def test_the_course_shows_weeks_tonight_and_the_next_checkpoint(course_client: TestClient) -> None:
    html = course_client.get("/course").text
    weeks = re.findall(r'<tr class="week">(.*?)</tr>', html, re.DOTALL)
    assert [re.findall(r"<td>(\d+) of", w)[0] for w in weeks] == ["3", "3", "0", "3", "3", "2"]
    assert element_text(html, "tonight-text") == "session due tonight between 18:00 and 23:00"
    assert "follow-up, 4 weeks after the course" in (element_text(html, "next-checkpoint") or "")


def test_the_course_shows_the_warnings_nirpad_course_prints_in_one_log_line(
    course_client: TestClient,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert 'id="course-warnings"' not in course_client.get("/course").text
    with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json' WHERE id = 2")
    conn.close()
    (state_dir / DIARY_FILENAME).parent.mkdir()
    (state_dir / DIARY_FILENAME).write_bytes(b"not a database" * 100)
    assert main(["course", "--state-dir", str(state_dir), "--tz", TZ]) == 0
    printed = [line.removeprefix("nirpad: ") for line in capsys.readouterr().err.splitlines()]
    assert len(printed) == 2 and printed[0].startswith("1 damaged row(s)"), printed
    caplog.set_level(logging.INFO)
    html = course_client.get("/course").text
    warnings = html.split('id="course-warnings"')[1].split("</ul>")[0]
    shown = [unescape(item) for item in re.findall(r"<li>(.*?)</li>", warnings)]
    assert shown == [line[:1].upper() + line[1:] for line in printed]
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("web", "firmware_host")]
    assert len(ours) == 1, [r.getMessage() for r in ours]


def test_tonights_entry_is_recorded_and_a_second_corrects_it(
    course_client: TestClient, state_dir: Path
) -> None:
    status, html = _diary(
        course_client, "/diary/nightly",
        leg_symptoms="6", sleep_quality="4", side_effects=["warmth", "redness"], note="ok",
    )  # fmt: skip
    assert status == "ok", html
    assert element_text(html, "message") == "Tonight's diary entry is recorded."
    corrects = re.search(r'name="corrects" value="(\d+)"', html)
    assert corrects is not None
    status, html = _diary(
        course_client, "/diary/nightly", leg_symptoms="3", corrects=corrects.group(1)
    )
    assert status == "ok", html
    with Diary.open(state_dir) as diary:
        current = diary.nightly()
        assert len(diary.nightly(history=True)) == 2
    assert [(n.entry.entry_date, n.entry.leg_symptoms) for n in current] == [
        (date(2026, 11, 21), 3)
    ]


@pytest.mark.parametrize("twice", ["leg_symptoms", "csrf_token", "note"])
def test_a_field_sent_twice_is_refused_and_nothing_recorded(
    course_client: TestClient, state_dir: Path, twice: str
) -> None:
    """Which of two values a parser takes is its choice, not the sender's: a forged
    ``leg_symptoms=4&leg_symptoms=7`` recorded 7 without a word."""
    token = csrf(course_client, "/course")
    fields = {"csrf_token": token, "leg_symptoms": "4", "note": "a"}
    body = [*fields.items(), (twice, fields[twice] if twice == "csrf_token" else "7")]
    response = course_client.post("/diary/nightly", content=urlencode(body), headers=FORM)
    assert response.status_code == 400
    assert "The form could not be read; nothing was done." in response.text
    assert not (state_dir / DIARY_FILENAME).exists()
    ticked = [("side_effects", "warmth"), ("side_effects", "redness")]  # check boxes: allowed
    response = course_client.post(
        "/diary/nightly", content=urlencode([*fields.items(), *ticked]), headers=FORM
    )
    assert outcome(response) == "ok", response.text


def test_tonights_entry_is_shown_where_the_diary_cannot_be_written(
    course_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full or read-only disk: shown as ``nirpad diary show`` shows it, not an error."""
    assert _diary(course_client, "/diary/nightly", leg_symptoms="6")[0] == "ok"

    def cannot_write(cls: type[Diary], state_dir: Path, **_: object) -> Diary:
        raise DiaryStorageError("The symptom diary cannot be opened: the disk is full",
                                path=state_dir / DIARY_FILENAME)  # fmt: skip

    monkeypatch.setattr(Diary, "open", classmethod(cannot_write))
    html = course_client.get("/course").text
    assert re.search(r'name="corrects" value="\d+"', html) is not None, "tonight's entry not shown"
    assert "the disk is full" not in html


def test_a_diary_still_in_its_old_place_shows_tonights_entry(
    client: TestClient, state_dir: Path
) -> None:
    """No prescription: nothing else on the page opens (and so moves) the diary."""
    assert _diary(client, "/diary/nightly", leg_symptoms="6")[0] == "ok"
    (state_dir / DIARY_FILENAME).rename(state_dir / OLD_DIARY_FILENAME)  # as before the move
    html = client.get("/course").text
    assert re.search(r'name="corrects" value="\d+"', html) is not None, "tonight's entry not shown"


def test_a_second_entry_without_correcting_is_refused_in_the_diarys_words(
    course_client: TestClient,
) -> None:
    assert _diary(course_client, "/diary/nightly", leg_symptoms="6")[0] == "ok"
    status, html = _diary(course_client, "/diary/nightly", leg_symptoms="2")
    assert status == "refused"
    assert (element_text(html, "message") or "").startswith("Not recorded:")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"leg_symptoms": "11"}, "must be a whole number from 0 to 10"),
        ({"leg_symptoms": "six"}, "is not a whole number"),
        ({"leg_symptoms": "1_0"}, "is not a whole number"),  # int() would read 10
        ({"note": "x" * 501}, "500"),
        ({"side_effects": ["warmth", "nausea"]}, "Unknown side effect 'nausea'"),  # not dropped
        ({"leg_symptoms": "", "note": " \u200b"}, "Nothing to record"),  # a night of nothing
    ],
)
def test_a_bad_diary_value_is_refused_and_nothing_written(
    course_client: TestClient, state_dir: Path, fields: dict[str, str | list[str]], words: str
) -> None:
    status, html = _diary(course_client, "/diary/nightly", **fields)
    assert status == "refused"
    assert words in (element_text(html, "message") or "")
    if (state_dir / DIARY_FILENAME).exists():
        with Diary.open(state_dir) as diary:
            assert diary.nightly() == []


def test_the_weekly_irls_is_recorded_with_its_total_and_band(course_client: TestClient) -> None:
    items = {f"item_{n}": "2" for n in range(1, 11)}
    status, html = _diary(course_client, "/diary/irls", **items)
    assert status == "ok", html
    assert element_text(html, "message") == "The IRLS is recorded: total 20 of 40, moderate."
    assert "Latest: 20 of 40 (moderate)" in html


def test_an_irls_missing_an_item_is_refused(course_client: TestClient) -> None:
    items = {f"item_{n}": "2" for n in range(1, 10)}
    status, html = _diary(course_client, "/diary/irls", **items)
    assert status == "refused" and "Not recorded" in html


@pytest.mark.slow
def test_the_report_files_are_the_clis(course_client: TestClient, state_dir: Path) -> None:
    expected = report_files(state_dir, None, TZ)
    assert not isinstance(expected, str)
    pdf = course_client.get("/report/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    csv_file = course_client.get("/report/csv")
    assert csv_file.content == expected["csv"]
    fhir = course_client.get("/report/fhir")
    assert fhir.headers["content-type"] == "application/fhir+json"
    assert json.loads(fhir.content)["resourceType"] == "Bundle"


def test_no_report_without_a_prescription_is_plain_words(client: TestClient) -> None:
    response = client.get("/report/pdf")
    assert response.status_code == 409
    assert "No report: no usable prescription is installed" in response.text
    assert client.get("/report/docx").status_code == 404


def test_the_page_never_makes_the_state_directory(
    tmp_path: Path, make_client: Callable[..., TestClient]
) -> None:
    missing = tmp_path / "not-yet"
    client = make_client(state_dir=missing)
    assert client.get("/course").status_code == 200
    status, html = _diary(client, "/diary/nightly", leg_symptoms="3")
    assert status == "refused" and "start the controller once" in (
        element_text(html, "message") or ""
    )
    assert not missing.exists()


def _nightly_form(html: str) -> str:
    return html.split('action="/diary/nightly"')[1].split("</form>")[0]


def _input(form: str, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}"[^>]*>', form)
    assert found is not None, name
    return found.group(0)


def test_a_note_that_is_not_utf8_is_refused_in_the_clis_words(
    course_client: TestClient, state_dir: Path
) -> None:
    token = csrf(course_client, "/course")
    response = course_client.post(
        "/diary/nightly",
        content=f"csrf_token={token}&leg_symptoms=3&note=%FF%FE".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert outcome(response) == "refused"
    assert element_text(response.text, "message") == (
        "Not recorded: The note is not readable text (it must be UTF-8)."
    )
    with Diary.open(state_dir) as diary:
        assert diary.nightly(history=True) == []


def test_the_correcting_nightly_form_holds_tonights_answers(course_client: TestClient) -> None:
    _diary(
        course_client, "/diary/nightly",
        leg_symptoms="7", awakenings="2", side_effects=["redness"], note="tingling <late>",
    )  # fmt: skip
    form = _nightly_form(course_client.get("/course").text)
    assert 'value="7"' in _input(form, "leg_symptoms")
    assert 'value="2"' in _input(form, "awakenings")
    assert "value=" not in _input(form, "sleep_quality")  # not answered: stays empty
    assert 'value="redness" checked' in form and 'value="warmth" checked' not in form
    assert 'value="tingling &lt;late&gt;"' in form


def test_a_note_that_shows_nothing_is_recorded_as_no_note(
    course_client: TestClient, state_dir: Path
) -> None:
    status, html = _diary(course_client, "/diary/nightly", leg_symptoms="3", note="\u200b \ufeff")
    assert status == "ok", html
    with Diary.open(state_dir) as diary:
        [stored] = diary.nightly()
    assert (stored.entry.leg_symptoms, stored.entry.note) == (3, "")
    assert "value=" not in _input(_nightly_form(course_client.get("/course").text), "note")


@pytest.mark.parametrize("three", ["\u0663", "\uff13", "+3", " 3 "])
def test_a_score_in_other_digits_is_stored_and_shown_as_3(
    course_client: TestClient, state_dir: Path, three: str
) -> None:
    """Arabic-Indic, fullwidth, signed or spaced: the patient means 3."""
    status, html = _diary(course_client, "/diary/nightly", leg_symptoms=three)
    assert status == "ok", html
    with Diary.open(state_dir) as diary:
        [stored] = diary.nightly()
    assert stored.entry.leg_symptoms == 3 and type(stored.entry.leg_symptoms) is int
    form = _nightly_form(course_client.get("/course").text)
    assert 'value="3"' in _input(form, "leg_symptoms")
    items = {f"item_{n}": three for n in range(1, 11)}
    status, html = _diary(course_client, "/diary/irls", **items)
    assert element_text(html, "message") == "The IRLS is recorded: total 30 of 40, severe."
    assert re.search(r'name="item_4"[^>]*value="3"', html.split('id="irls"')[1])


def test_an_irls_of_today_is_corrected_from_the_page(
    course_client: TestClient, state_dir: Path
) -> None:
    assert (
        _diary(course_client, "/diary/irls", **{f"item_{n}": "2" for n in range(1, 11)})[0] == "ok"
    )
    html = course_client.get("/course").text.split('id="irls"')[1]
    corrects = re.search(r'name="corrects" value="(\d+)"', html)
    assert corrects is not None and 'name="item_4" type="number"' in html
    assert re.search(r'name="item_4"[^>]*value="2"', html)
    status, page_html = _diary(
        course_client, "/diary/irls", corrects=corrects.group(1),
        **{f"item_{n}": "3" for n in range(1, 11)},
    )  # fmt: skip
    assert status == "ok", element_text(page_html, "message")
    with Diary.open(state_dir) as diary:
        assert [i.total for i in diary.irls()] == [30]
        assert len(diary.irls(history=True)) == 2


def test_a_far_report_end_and_a_huge_correction_are_refused_in_words(
    course_client: TestClient,
) -> None:
    far = course_client.get("/report/csv?to=9999-12-31")
    assert far.status_code == 409 and "No report:" in (element_text(far.text, "error-text") or "")
    status, html = _diary(course_client, "/diary/nightly", leg_symptoms="3", corrects="9" * 30)
    assert status == "refused" and "There is no nightly entry" in (
        element_text(html, "message") or ""
    )


def test_the_irls_form_shows_the_clinics_wording_as_the_cli_does(
    course_client: TestClient, state_dir: Path
) -> None:
    (state_dir / "irls.toml").write_text('[items]\n1 = "Clinic <wording> one"\n', "utf-8")
    (state_dir / "site.toml").write_text('[course]\nirls_wording = "irls.toml"\n', "utf-8")
    form = course_client.get("/course").text.split('id="irls"')[1]
    assert '<label for="item_1">1. Clinic &lt;wording&gt; one (0-4)</label>' in form
    assert '<label for="item_2">Item 2 of 10, 0-4</label>' in form


def test_an_unusable_wording_file_is_named_and_the_form_still_works(
    course_client: TestClient, state_dir: Path
) -> None:
    (state_dir / "site.toml").write_text('[course]\nirls_wording = "gone.toml"\n', "utf-8")
    html = course_client.get("/course").text
    assert "IRLS wording cannot be used: Cannot read the IRLS wording file" in html
    assert '<label for="item_1">Item 1 of 10, 0-4</label>' in html


def test_a_missed_day_is_entered_with_its_date_and_tonight_is_not_replaced(
    course_client: TestClient, state_dir: Path
) -> None:
    _, html = _diary(course_client, "/diary/nightly", leg_symptoms="6")
    corrects = re.search(r'name="corrects" value="(\d+)"', html)
    assert corrects is not None
    status, html = _diary(
        course_client, "/diary/nightly",
        leg_symptoms="2", date="2026-11-20", corrects=corrects.group(1),
    )  # fmt: skip
    assert status == "ok", element_text(html, "message")
    assert element_text(html, "message") == "The diary entry for 2026-11-20 is recorded."
    with Diary.open(state_dir) as diary:
        entries = sorted((n.entry.entry_date, n.entry.leg_symptoms) for n in diary.nightly())
    assert entries == [(date(2026, 11, 20), 2), (date(2026, 11, 21), 6)]


@pytest.mark.parametrize(
    ("day", "words"), [("2026-11-22", "future"), ("20.11.2026", "is not a date")]
)
def test_a_bad_or_future_date_is_refused_in_the_diarys_words(
    course_client: TestClient, day: str, words: str
) -> None:
    status, html = _diary(course_client, "/diary/nightly", leg_symptoms="2", date=day)
    assert status == "refused" and words in (element_text(html, "message") or ""), html[-800:]


@pytest.mark.parametrize(
    ("path", "fields", "what"),
    [
        ("/diary/nightly", {"leg_symptoms": "6"}, "tonight's entry"),
        ("/diary/irls", {f"item_{n}": "2" for n in range(1, 11)}, "today's IRLS"),
    ],
)
def test_a_form_of_tonight_sent_after_midnight_corrects_nothing(
    course_client: TestClient,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    fields: dict[str, str],
    what: str,
) -> None:
    """Loaded before midnight with tonight's entry in it, sent after: yesterday's entry
    is not moved to today, and nothing is written."""
    _set_clock(monkeypatch, local(date(2026, 11, 21), 23, 50))
    status, html = _diary(course_client, path, **fields)
    assert status == "ok", element_text(html, "message")
    corrects = re.search(r'name="corrects" value="(\d+)"', html.split(f'action="{path}"')[1])
    assert corrects is not None
    with Diary.open(state_dir) as diary:
        before = (diary.nightly(history=True), diary.irls(history=True))
    _set_clock(monkeypatch, local(date(2026, 11, 22), 0, 5))
    changed = dict.fromkeys(fields, "3")
    status, html = _diary(course_client, path, corrects=corrects.group(1), **changed)
    assert status == "refused"
    assert element_text(html, "message") == (
        "Not recorded: This form was for 2026-11-21; the day has changed. "
        f"Reload the page and enter {what}."
    )
    with Diary.open(state_dir) as diary:
        assert (diary.nightly(history=True), diary.irls(history=True)) == before


@pytest.mark.parametrize(
    ("path", "fields", "said"),
    [
        ("/diary/nightly", {"leg_symptoms": "6"}, "Tonight's diary entry is recorded."),
        ("/diary/nightly", {"leg_symptoms": "6", "date": "2026-11-20"}, "for 2026-11-20"),
        ("/diary/irls", {f"item_{n}": "2" for n in range(1, 11)}, "The IRLS is recorded"),
    ],
)
def test_a_reload_after_a_diary_form_writes_nothing_and_says_nothing(
    course_client: TestClient, state_dir: Path, path: str, fields: dict[str, str], said: str
) -> None:
    token = csrf(course_client, "/course")
    response = course_client.post(path, data={"csrf_token": token, **fields})
    assert said in (element_text(response.text, "message") or "")
    with Diary.open(state_dir) as diary:
        before = (diary.nightly(history=True), diary.irls(history=True))
    again = reload(course_client, response)
    assert again.status_code == 200 and element_text(again.text, "message") is None
    with Diary.open(state_dir) as diary:
        assert (diary.nightly(history=True), diary.irls(history=True)) == before


def test_a_reload_after_a_correction_corrects_nothing_again(
    course_client: TestClient, state_dir: Path
) -> None:
    _diary(course_client, "/diary/nightly", leg_symptoms="6")
    html = course_client.get("/course").text
    corrects = re.search(r'name="corrects" value="(\d+)"', html)
    assert corrects is not None
    response = course_client.post(
        "/diary/nightly",
        data={"csrf_token": csrf(course_client, "/course"), "leg_symptoms": "3",
              "corrects": corrects.group(1)},
    )  # fmt: skip
    assert element_text(response.text, "message") == "Tonight's diary entry is recorded."
    again = reload(course_client, response)
    assert again.status_code == 200 and element_text(again.text, "message") is None
    with Diary.open(state_dir) as diary:
        assert len(diary.nightly(history=True)) == 2


def test_a_state_directory_gone_to_a_link_to_nothing_is_said_in_words(
    tmp_path: Path, make_client: Callable[..., TestClient]
) -> None:
    """A state directory on storage that went away (its link now leads nowhere) or
    replaced by a file: the course, the report and the diary say so; no page fails."""
    gone = tmp_path / "state-link"
    gone.symlink_to(tmp_path / "unmounted" / "nirpad")
    client = make_client(state_dir=gone)
    html = client.get("/course").text
    assert "is not a folder" in (element_text(html, "no-course") or "")
    response = client.get("/report/csv")
    assert response.status_code == 409 and "is not a folder" in response.text
    status, html = _diary(client, "/diary/nightly", leg_symptoms="3")
    assert status == "refused" and "is not a folder" in (element_text(html, "message") or "")
    assert not (tmp_path / "unmounted").exists()


@pytest.mark.parametrize("field", ["leg_symptoms", "note", "corrects", "date"])
def test_a_file_sent_for_a_diary_answer_is_refused_and_nothing_recorded(
    course_client: TestClient, state_dir: Path, field: str
) -> None:
    """A forged multipart form with a file where the form has a text field: the file was
    read as no answer, and an entry recorded without it (or a correction taken for a new
    entry) without a word. Only the prescription's upload takes a file."""
    token = csrf(course_client, "/course")
    fields = {"csrf_token": token, "leg_symptoms": "4", "note": "a"}
    fields.pop(field, None)
    response = course_client.post(
        "/diary/nightly", data=fields, files={field: ("x.txt", b"7", "text/plain")}
    )
    assert response.status_code == 400
    assert "The form could not be read; nothing was done." in response.text
    assert not (state_dir / DIARY_FILENAME).exists()


def test_a_diary_form_sent_twice_at_once_is_recorded_once_and_said_recorded(
    course_client: TestClient, state_dir: Path, clock: VirtualClock
) -> None:
    """A double click on "Save": the browser shows the answer to the second request,
    which said "Not recorded: There is already a nightly entry…" of a recorded entry."""
    token = csrf(course_client, "/course")
    form = {"csrf_token": token, "leg_symptoms": "6", "note": "twice"}
    said = [
        element_text(course_client.post("/diary/nightly", data=form).text, "message")
        for _ in range(2)
    ]
    assert said == ["Tonight's diary entry is recorded."] * 2
    with Diary.open(state_dir) as diary:
        assert len(diary.nightly(history=True)) == 1
    clock.advance(REPEAT_S + 1)  # no longer at once: sent again, and the diary refuses it
    assert outcome(course_client.post("/diary/nightly", data=form)) == "refused"


def test_the_same_diary_form_after_another_form_is_sent_again(
    course_client: TestClient,
) -> None:
    """Only a repeat of the session's last form is a double click."""
    token = csrf(course_client, "/course")
    form = {"csrf_token": token, "leg_symptoms": "6"}
    assert outcome(course_client.post("/diary/nightly", data=form)) == "ok"
    irls = {"csrf_token": token, **{f"item_{n}": "1" for n in range(1, 11)}}
    assert outcome(course_client.post("/diary/irls", data=irls)) == "ok"
    response = course_client.post("/diary/nightly", data=form)
    assert outcome(response) == "refused"
    assert "There is already a nightly entry" in (element_text(response.text, "message") or "")
