"""The clinic report's PDF, read back with pypdf: its text carries the course figures."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from datetime import date, timedelta
from pathlib import Path

import pypdf
import pytest

from care.report import Period, ReportData, ReportEvent, SignatureStatus
from care.report_pdf import TITLE, render_pdf
from safety.records import Records
from tests.care.course_fixture import DAY_1, course_profile
from tests.care.test_report import Stores, report, stores  # noqa: F401  (the fixture)


def pdf_text(pdf: bytes) -> tuple[int, str]:
    """The page count and the text of every page, whitespace folded."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def six_weeks(stores: Stores) -> tuple[int, str]:  # noqa: F811
    return pdf_text(render_pdf(report(stores, Period(DAY_1, date(2026, 12, 22)))))


@pytest.mark.slow
def test_the_pdf_says_whose_what_and_when(six_weeks: tuple[int, str]) -> None:
    _, text = six_weeks
    assert TITLE in text
    assert "Period 13 Oct 2026 to 22 Dec 2026 (71 days)" in text
    assert "Prescription: RLS 810 nm evenings (rls-810)" in text
    assert "Prescribed by Dr Test, issued 2026-10-01" in text
    assert "Signature: verified against a trusted clinic key" in text
    assert "Device serial: NP-0001" in text and "Software version: nirpad 0.1.0" in text
    assert "Generated: 2026-12-23 13:00 CET" in text
    assert "device-measured: recorded by the pad" in text
    assert "patient-reported: entered by the patient" in text


@pytest.mark.slow
def test_the_adherence_table_has_each_week_and_the_total(six_weeks: tuple[int, str]) -> None:
    _, text = six_weeks
    rows = [
        "1 13 Oct - 19 Oct 3 / 3 3 100% 0 0 0 on target",
        "2 20 Oct - 26 Oct 3 / 3 3 100% 0 0 0 on target",
        "3 27 Oct - 2 Nov 0 / 3 0 0% 0 0 3 below target",  # the missed week
        "4 3 Nov - 9 Nov 3 / 3 2 83% 1 0 0 below target",  # the early stop
        "5 10 Nov - 16 Nov 3 / 3 3 100% 0 1 0 on target",  # the late start
        "6 17 Nov - 23 Nov 3 / 3 3 100% 0 0 0 on target",
        "All 6 weeks 15 / 18 14 81% 1 1 3 4 of 6 weeks on target",
    ]
    for row in rows:
        assert row in text
    assert "Rule: A week is on target when it has at least the prescribed number" in text
    assert "Longest run of weeks on target: 2" in text


@pytest.mark.slow
def test_the_irls_totals_bands_baseline_and_checkpoints(six_weeks: tuple[int, str]) -> None:
    _, text = six_weeks
    assert (
        "IRLS totals: 12 Oct 24 severe (baseline); 27 Oct 20 moderate; 10 Nov 16 moderate; "
        "22 Dec 12 moderate." in text
    )
    assert "Bands: 0 none, 1-10 mild, 11-20 moderate, 21-30 severe, 31-40 very severe" in text
    assert "Change since baseline: -12 (24 to 12)" in text
    assert "Week 2 review, 27 Oct 2026: 6 of 6 sessions, 2 of 2 weeks on target" in text
    assert "IRLS 24 to 16 (-8)" in text
    assert "15 nights recorded. Side effects reported: warmth on 2 nights." in text


@pytest.mark.slow
def test_early_stops_faults_and_late_starts_are_listed(six_weeks: tuple[int, str]) -> None:
    _, text = six_weeks
    assert "Thu 05 Nov 2026 19:00 early stop: stopped before the end" in text
    assert "50% of the planned fluence delivered" in text
    assert "Tue 10 Nov 2026 17:00 outside window: started at 17:00" in text
    assert "Wed 18 Nov 2026 20:15 fault: The pad got too warm on the skin." in text
    assert "41.6" not in text  # the technical detail stays in the record


@pytest.mark.slow
def test_a_four_week_period_is_one_page(stores: Stores) -> None:  # noqa: F811
    pages, text = pdf_text(render_pdf(report(stores, Period(DAY_1, date(2026, 11, 9)))))
    assert pages == 1
    assert "page 1 of 1" in text
    assert "All 4 weeks 9 / 12 8 71% 1 0 3 2 of 4 weeks on target" in text
    assert "10 Nov - 16 Nov" not in text


@pytest.mark.slow
def test_the_six_week_course_fits_on_one_page(six_weeks: tuple[int, str]) -> None:
    assert six_weeks[0] == 1


@pytest.mark.slow
def test_a_long_list_flows_onto_a_second_page_and_names_print_in_utf8(
    stores: Stores,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = report(stores, Period(DAY_1, date(2026, 11, 9)))
    late = [
        ReportEvent(base.generated_at - timedelta(days=n), f"late start number {n}", "test")
        for n in range(40)
    ]
    rx = course_profile(name="Łódź evenings", prescriber="Dr Zoë Ångström")
    data: ReportData = dataclasses.replace(
        base, rx=rx, events=tuple(late), signature=SignatureStatus.NOT_CHECKED
    )
    monkeypatch.chdir(tmp_path)
    pages, text = pdf_text(render_pdf(data))
    assert pages == 2 and "page 2 of 2" in text
    assert "late start number 39" in text
    assert "Prescription: Łódź evenings (rls-810)" in text
    assert "Prescribed by Dr Zoë Ångström" in text
    assert "Signature: signed, but not checked: this device trusts no clinic keys" in text
    assert list(tmp_path.iterdir()) == []  # the charts never touch the disk


def test_a_report_before_any_session_or_diary_entry_still_reads() -> None:
    empty = Stores(Records(), [], [])
    base = report(empty, Period(date(2026, 10, 1), date(2026, 10, 1)))
    pages, text = pdf_text(render_pdf(base))
    assert pages == 1
    assert "Period 1 Oct 2026 to 1 Oct 2026 (1 day)" in text
    assert "All 0 weeks 0 / 0 0 0% 0 0 0 0 of 0 weeks on target" in text
    assert "IRLS totals: none recorded in this period (nirpad irls)." in text
    assert "No nightly entries in this period (nirpad diary)." in text
    assert "None in this period." in text


_PT_PER_MM = 72 / 25.4


def text_runs(pdf: bytes) -> list[tuple[int, float, float, float, str]]:
    """Every run of text drawn: (page, x, y, width, text), in points; the width measured
    with the report's own font (DejaVu Sans, bold where the run is bold)."""
    import matplotlib
    from fpdf import FPDF

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    meter = FPDF(unit="pt")
    meter.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    meter.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    runs: list[tuple[int, float, float, float, str]] = []
    for number, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages, start=1):

        def seen(text: str, cm: object, tm: list[float], font: object, size: float) -> None:
            if text.strip() and isinstance(font, dict):
                bold = "Bold" in str(font.get("/BaseFont", ""))
                meter.set_font("DejaVu", "B" if bold else "", size)
                runs.append((number, tm[4], tm[5], meter.get_string_width(text), text))  # noqa: B023

        page.extract_text(visitor_text=seen)
    meter.add_page()
    meter.output()  # closes the font files it opened
    return runs


def assert_no_text_overprinted_or_cut(pdf: bytes) -> None:
    """No run of text runs into the next one on its line, or within 5 mm of the A4
    page's right edge (what a printer may not print)."""
    right = 595.28 - 5 * _PT_PER_MM
    runs = text_runs(pdf)
    for page, x, _, width, text in runs:
        assert x + width <= right, f"page {page}: {text!r} runs off the page"
    lines: dict[tuple[int, float], list[tuple[float, float, str]]] = {}
    for page, x, y, width, text in runs:
        lines.setdefault((page, round(y, 1)), []).append((x, width, text))
    for line in lines.values():
        line.sort()
        for (x, width, text), (next_x, _, next_text) in itertools.pairwise(line):
            assert x + width <= next_x + 0.5, f"{text!r} runs into {next_text!r}"


@pytest.mark.slow
def test_a_long_prescription_name_prescriber_and_serial_wrap_in_the_heading(
    stores: Stores,  # noqa: F811
) -> None:
    """The schema allows a name and a prescriber of 200 characters and the site a serial
    of 64: the heading wraps them in their column. They were drawn on one line, over
    the device serial beside them and off the page (the id with it)."""
    rx = course_profile(
        name=("Restless legs evening protocol, both calves, " * 5)[:200],
        prescriber=("Prof. Dr. med. Maria-Josefina Wittelsbach, Klinik für Neurologie " * 4)[:200],
    )
    base = report(stores, Period(DAY_1, date(2026, 11, 9)))
    device = dataclasses.replace(base.device, serial="N" * 64)
    data = dataclasses.replace(base, rx=rx, device=device)
    pdf = render_pdf(data)
    assert_no_text_overprinted_or_cut(pdf)
    _, text = pdf_text(pdf)
    assert "(rls-810)" in text and "Device serial: N" in text
    assert_no_text_overprinted_or_cut(render_pdf(base))


@pytest.mark.slow
def test_the_longest_run_printed_is_of_the_weeks_in_the_table(stores: Stores) -> None:  # noqa: F811
    _, text = pdf_text(render_pdf(report(stores, Period(date(2026, 10, 27), date(2026, 11, 9)))))
    assert "All 2 weeks 3 / 6 2 42% 1 0 3 0 of 2 weeks on target" in text
    assert "Longest run of weeks on target: 0." in text


def test_a_long_courses_week_labels_do_not_print_over_each_other() -> None:
    """A 52-week course drew 52 labels "W1" … "W52" and 52 counts in a chart 9 cm wide,
    one black smear; it now labels every fourth week and leaves the counts to the table."""
    from care.course import Figures, WeekFigures
    from care.report_pdf import _sessions_figure

    def weeks(count: int) -> tuple[WeekFigures, ...]:
        start = DAY_1
        return tuple(
            WeekFigures(n, start + timedelta(weeks=n - 1), start + timedelta(weeks=n),
                        Figures(prescribed=3, done=3, full=3), True, "on target")
            for n in range(1, count + 1)
        )  # fmt: skip

    base = report(Stores(Records(), [], []), Period(DAY_1, DAY_1))
    long = _sessions_figure(dataclasses.replace(base, weeks=weeks(52)), 90, 48)
    [axes] = long.axes
    assert [t.get_text() for t in axes.get_xticklabels()] == [f"W{n}" for n in range(1, 53, 4)]
    assert len(axes.texts) == 0
    six = _sessions_figure(dataclasses.replace(base, weeks=weeks(6)), 90, 48)
    assert [t.get_text() for t in six.axes[0].get_xticklabels()] == [f"W{n}" for n in range(1, 7)]
    assert [t.get_text() for t in six.axes[0].texts] == ["3"] * 6


def test_a_name_in_a_script_the_font_lacks_is_marked_not_left_blank(
    stores: Stores,  # noqa: F811
) -> None:
    """DejaVu Sans has no CJK glyphs: "Prescribed by 山田太郎" printed as "Prescribed by
    , issued…", a prescriber the clinic cannot see is missing. Each such character is
    now the replacement character, so the reader sees that something could not print.
    A line at the end says what the mark means."""
    base = report(stores, Period(DAY_1, date(2026, 11, 9)))
    rx = course_profile(name="夜 evenings", prescriber="Dr 山田太郎")
    _, text = pdf_text(render_pdf(dataclasses.replace(base, rx=rx)))
    assert "Prescription: \ufffd evenings (rls-810)" in text
    assert "Prescribed by Dr \ufffd\ufffd\ufffd\ufffd," in text
    assert "cannot print" in text
