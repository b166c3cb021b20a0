"""The clinic report as a PDF: one A4 page for a four-week course, legible at a glance.

Owns: the layout (fpdf2, DejaVu Sans from matplotlib's own fonts: Latin, Greek,
Cyrillic, Hebrew and Arabic letters print; a character it has no letter for, such as
Chinese, prints as U+FFFD and a closing line says so) and the three charts
(matplotlib, drawn off-screen on an Agg canvas to PNG bytes in memory: no file is
written, no display is needed): sessions per course
week against the weekly target, the IRLS total over time on its severity bands with
the baseline marked, and the nightly leg-symptom and sleep scores. Every section says
whether its values are device-measured or patient-reported, and a legend says what
that means. A long period flows onto a second page.

Does not own what the report holds (``care.report``) or writing the file (the caller
gets bytes and writes them atomically).
"""

from __future__ import annotations

import io
from collections.abc import Container
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from care.diary import diary_damaged_text
from care.diary_entry import is_invisible
from care.irls import Band
from care.report import SOURCE_MEANING, IrlsPoint, ReportData, Source, clock_note

if TYPE_CHECKING:
    from fpdf import FPDF
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TITLE", "render_pdf"]

TITLE: Final = "Your leg pad treatment: a report for your clinic"
_EPOCH: Final = date(1970, 1, 1)
REPLACEMENT_CHARACTER: Final = "\ufffd"
BANDS_TEXT: Final = "0 none, 1-10 mild, 11-20 moderate, 21-30 severe, 31-40 very severe"
_MARGIN_MM: Final = 12.0
_LINE_MM: Final = 4.6
_PAGE_LABEL_MM: Final = 22.0
_MOST_WEEK_LABELS: Final = 13
"""The sessions chart labels at most this many weeks (a quarter's, one a week)."""
_INK: Final = (30, 30, 30)
_MUTED: Final = (100, 100, 100)
_DEVICE_RGB: Final = (31, 92, 153)
_PATIENT_RGB: Final = (176, 96, 16)
_STATUS_RGB: Final = {"on target": (25, 120, 50), "below target": (170, 30, 30)}
_BAND_SPANS: Final = (
    (Band.MILD, 0.5, 10.5, "#eef6ee"),
    (Band.MODERATE, 10.5, 20.5, "#fbf5dc"),
    (Band.SEVERE, 20.5, 30.5, "#fbe6d6"),
    (Band.VERY_SEVERE, 30.5, 40.0, "#f6d8d8"),
)
_TABLE_COLUMNS: Final = (
    ("Week", 10.0, "C"),
    ("Dates", 29.0, "L"),
    ("Done / prescribed", 25.0, "C"),
    ("Full", 10.0, "C"),
    ("Fluence", 14.0, "C"),
    ("Early stops", 19.0, "C"),
    ("Outside window", 24.0, "C"),
    ("Missed", 13.0, "C"),
    ("Status", 42.0, "L"),
)


def render_pdf(data: ReportData) -> bytes:
    """The report as PDF bytes."""
    unprintable: list[str] = []
    pdf = _new_pdf(data, unprintable)
    pdf.add_page()
    _header(pdf, data)
    _adherence(pdf, data)
    _charts(pdf, data)
    _nightly(pdf, data)
    _checkpoints(pdf, data)
    _events(pdf, data)
    if unprintable:
        _text(pdf, UNPRINTABLE_NOTE, size=7, rgb=_MUTED)
    return bytes(pdf.output())


UNPRINTABLE_NOTE: Final = (
    f"{REPLACEMENT_CHARACTER} marks a character this report cannot print (its font has no "
    "such letter); the CSV and FHIR files hold the text as it was recorded."
)


def printable_in(cmap: Container[int], text: str, unprintable: list[str]) -> str:
    """``text`` with each character the font (``cmap``: its code points) cannot draw
    as ``REPLACEMENT_CHARACTER``, noted in ``unprintable``; one that shows nothing
    anyway (``is_invisible``) is left out. A name in a script the font lacks would
    otherwise print as nothing: "Prescribed by , issued"."""
    if all(ord(ch) in cmap for ch in text):
        return text
    shown = []
    for ch in text:
        if ord(ch) in cmap or ch in "\r\n":
            shown.append(ch)
        elif not is_invisible(ch):
            unprintable.append(ch)
            shown.append(REPLACEMENT_CHARACTER)
    return "".join(shown)


def _new_pdf(data: ReportData, unprintable: list[str]) -> FPDF:
    import matplotlib
    from fpdf import FPDF

    footer_text = (
        f"nirpad {data.device.software_version} · device {data.device.serial} · "
        f"generated {data.generated_at:%Y-%m-%d %H:%M %Z}"
    )

    class _Report(FPDF):
        def normalize_text(self, text: str) -> str:
            cmap = getattr(self.current_font, "cmap", None)
            shown = text if cmap is None else printable_in(cmap, text, unprintable)
            return super().normalize_text(shown)

        def footer(self) -> None:
            # The page number keeps a column of its own: a long serial wraps the text
            # beside it upwards instead of running into it.
            self.set_font("DejaVu", size=7)
            self.set_text_color(*_MUTED)
            room = self.w - 2 * _MARGIN_MM - _PAGE_LABEL_MM
            lines = self.multi_cell(room, 4, footer_text, dry_run=True, output="LINES")
            assert isinstance(lines, list)
            top = self.h - 9 - 4 * (len(lines) - 1)
            self.set_xy(_MARGIN_MM, top)
            self.multi_cell(room, 4, footer_text, align="L")
            self.set_xy(self.w - _MARGIN_MM - _PAGE_LABEL_MM, top)
            self.cell(_PAGE_LABEL_MM, 4, f"page {self.page_no()} of {{nb}}", align="R")

    pdf = _Report(orientation="portrait", unit="mm", format="A4")
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=14)
    pdf.set_title(f"Treatment report {data.rx.id} {data.period.start} to {data.period.end}")
    pdf.set_author("nirpad")
    pdf.set_creator(f"nirpad {data.device.software_version}")
    pdf.set_creation_date(data.generated_at)
    return pdf


def _text(
    pdf: FPDF, text: str, *, size: float = 9, style: str = "", rgb: tuple[int, ...] = _INK
) -> None:
    pdf.set_font("DejaVu", style, size)
    pdf.set_text_color(*rgb)
    pdf.multi_cell(0, _LINE_MM, text, align="L", new_x="LMARGIN", new_y="NEXT")


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _header(pdf: FPDF, data: ReportData) -> None:
    rx, period = data.rx, data.period
    _text(pdf, TITLE, size=15, style="B")
    _text(
        pdf,
        f"Period {_day(period.start)} to {_day(period.end)} ({_count(period.days, 'day')}); "
        f"times are local ({data.zone})",
        size=10,
    )
    pdf.ln(1.5)
    window = "" if rx.window is None else f", evenings {rx.window.start}-{rx.window.end}"
    left = (
        f"Prescription: {rx.name} ({rx.id})",
        f"Prescribed by {rx.prescriber}, issued {rx.issued.isoformat()}",
        f"Signature: {data.signature.text}",
        f"Plan: {rx.sessions_per_week} a week for {rx.course_weeks} weeks, "
        f"{rx.duration_min} min{window}",
    )
    right = (
        f"Device serial: {data.device.serial}",
        f"Software version: nirpad {data.device.software_version}",
        f"Generated: {data.generated_at:%Y-%m-%d %H:%M %Z}",
        f"Planned fluence: {rx.planned_fluence_total_j_cm2:.1f} J/cm² per session",
    )
    top = bottom = pdf.get_y()
    pdf.set_font("DejaVu", "", 8.5)
    pdf.set_text_color(*_INK)
    # Each line wraps in its column: a name or prescriber may have 200 characters, a
    # serial 64; drawn on one line they ran over the other column and off the page.
    for x, lines, width in ((0.0, left, 116.0), (118.0, right, 68.0)):
        pdf.set_xy(_MARGIN_MM + x, top)
        for line in lines:
            pdf.set_x(_MARGIN_MM + x)
            pdf.multi_cell(width, 4.2, line, align="L", new_x="LEFT", new_y="NEXT")
        bottom = max(bottom, pdf.get_y())
    pdf.set_y(bottom + 1.5)
    _legend(pdf)


def _legend(pdf: FPDF) -> None:
    pdf.set_font("DejaVu", "", 8)
    x = _MARGIN_MM
    y = pdf.get_y()
    for source, rgb in ((Source.DEVICE, _DEVICE_RGB), (Source.PATIENT, _PATIENT_RGB)):
        pdf.set_fill_color(*rgb)
        pdf.rect(x, y + 1.0, 2.6, 2.6, style="F")
        pdf.set_xy(x + 3.6, y)
        pdf.set_text_color(*rgb)
        pdf.set_font("DejaVu", "B", 8)
        label = f"{source.value}:"
        pdf.cell(pdf.get_string_width(label) + 1, 4.6, label)
        pdf.set_font("DejaVu", "", 8)
        pdf.set_text_color(*_INK)
        meaning = SOURCE_MEANING[source]
        pdf.cell(pdf.get_string_width(meaning) + 4, 4.6, meaning)
        x = pdf.get_x() + 2
    pdf.set_xy(_MARGIN_MM, y + 6.5)


def _section(pdf: FPDF, title: str, source: Source | None, *, space_mm: float = 12) -> None:
    if pdf.get_y() + space_mm > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(1.2)
    pdf.set_font("DejaVu", "B", 10.5)
    pdf.set_text_color(*_INK)
    pdf.cell(pdf.get_string_width(title) + 2, 5.5, title)
    if source is not None:
        rgb = _DEVICE_RGB if source is Source.DEVICE else _PATIENT_RGB
        pdf.set_font("DejaVu", "B", 8)
        pdf.set_text_color(*rgb)
        pdf.cell(0, 5.5, f"({source.value})")
    pdf.ln(6.2)


def _adherence(pdf: FPDF, data: ReportData) -> None:
    _section(pdf, "Sessions and adherence per course week", Source.DEVICE, space_mm=30)
    pdf.set_font("DejaVu", "B", 7.4)
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(160, 160, 160)
    for title, width, align in _TABLE_COLUMNS:
        pdf.cell(width, 5.2, title, border="B", align=align)
    pdf.ln()
    rows = [(str(w.number), _dates(w.start, w.end), w.figures, w.status) for w in data.weeks]
    target = data.rule.weekly_target(data.rx.sessions_per_week)
    summary = f"{data.weeks_on_target} of {_count(len(data.weeks), 'week')} on target"
    for number, dates, figures, status in rows:
        _row(pdf, (number, dates), figures, status, bold=False)
    _row(pdf, ("All", _count(len(data.weeks), "week")), data.total, summary, bold=True)
    pdf.ln(1)
    longest = data.longest_run_on_target
    _text(
        pdf,
        f"Rule: {data.rule.describe()} Target: {target} full sessions a week. "
        f"Longest run of weeks on target: {longest}. Fluence: delivered over prescribed. "
        f"Missed: prescribed minus done, in weeks that are over.",
        size=7.4,
        rgb=_MUTED,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _dates(start: date, end: date) -> str:
    last = end - timedelta(days=1)
    return f"{start.day} {start:%b} - {last.day} {last:%b}"


def _row(pdf: FPDF, head: tuple[str, str], figures: object, status: str, *, bold: bool) -> None:
    from care.course import Figures

    assert isinstance(figures, Figures)
    stops = sum(figures.early_stops.values())
    cells = (
        *head,
        f"{figures.done} / {figures.prescribed}",
        str(figures.full),
        f"{figures.fluence_share:.0%}",
        str(stops),
        str(figures.outside_window),
        str(figures.missed),
        status,
    )
    border: Literal[0] | str = "T" if bold else 0
    for (_, width, align), text in zip(_TABLE_COLUMNS, cells, strict=True):
        pdf.set_font("DejaVu", "B" if bold else "", 8)
        pdf.set_text_color(*(_STATUS_RGB.get(text, _INK) if text == status else _INK))
        pdf.cell(width, 4.6, text, border=border, align=align)
    pdf.ln()


def _charts(pdf: FPDF, data: ReportData) -> None:
    height = 48.0
    _section(pdf, "Charts", None, space_mm=height + 14)
    top = pdf.get_y()
    half = (pdf.w - 2 * _MARGIN_MM - 4) / 2
    _caption(pdf, _MARGIN_MM, top, "Sessions per course week", Source.DEVICE)
    _caption(pdf, _MARGIN_MM + half + 4, top, "IRLS total (0-40)", Source.PATIENT)
    pdf.image(
        _png(_sessions_figure(data, half, height)), x=_MARGIN_MM, y=top + 4.5, w=half, h=height
    )
    pdf.image(
        _png(_irls_figure(data, half, height)),
        x=_MARGIN_MM + half + 4,
        y=top + 4.5,
        w=half,
        h=height,
    )
    pdf.set_y(top + 4.5 + height + 1)
    _text(pdf, irls_line(data), size=8)


def _caption(pdf: FPDF, x: float, y: float, title: str, source: Source) -> None:
    pdf.set_xy(x, y)
    pdf.set_font("DejaVu", "B", 8.5)
    pdf.set_text_color(*_INK)
    pdf.cell(pdf.get_string_width(title) + 1.5, 4.5, title)
    rgb = _DEVICE_RGB if source is Source.DEVICE else _PATIENT_RGB
    pdf.set_font("DejaVu", "B", 7.5)
    pdf.set_text_color(*rgb)
    pdf.cell(40, 4.5, f"({source.value})")


def irls_line(data: ReportData) -> str:
    """The report's IRLS sentence: each total with its band, the baseline told as
    recorded or as a stand-in, and the change since it."""
    if not data.irls:
        return "IRLS totals: none recorded in this period (nirpad irls)."
    parts = [f"{p.day.day} {p.day:%b} {p.total} {p.band.value}{_role(p)}" for p in data.irls]
    line = f"IRLS totals: {'; '.join(parts)}. Bands: {BANDS_TEXT}."
    baseline, latest = data.baseline, data.latest_irls
    if baseline is not None and latest is not None:
        change = latest.total - baseline.total
        line += f" Change since baseline: {change:+d} ({baseline.total} to {latest.total})."
    elif baseline is None:
        line += " No baseline IRLS (taken on or before day 1) was recorded."
    return line


def _role(point: IrlsPoint) -> str:
    if point.stand_in:
        return " (baseline: the last before day 1, not recorded as the baseline)"
    return " (baseline)" if point.baseline else ""


def _nightly(pdf: FPDF, data: ReportData) -> None:
    height = 26.0

    _section(pdf, "Nightly diary", Source.PATIENT, space_mm=height + 12)
    if data.diary_damaged_rows:
        _text(pdf, diary_damaged_text(data.diary_damaged_rows, "counted"), size=8, style="B")
    if not data.nightly:
        _text(pdf, "No nightly entries in this period (nirpad diary).", size=8)
        return
    width = pdf.w - 2 * _MARGIN_MM
    top = pdf.get_y()
    pdf.image(_png(_nightly_figure(data, width, height)), x=_MARGIN_MM, y=top, w=width, h=height)
    pdf.set_y(top + height + 0.5)
    nights = len(data.nightly)
    effects = (
        ", ".join(f"{name.replace('-', ' ')} on {n} night{'s' * (n != 1)}"
                  for name, n in data.side_effects.items())
        or "none"
    )  # fmt: skip
    _text(
        pdf,
        f"Leg symptoms 0 (none) to 10 (worst) and sleep quality 0 (worst) to 10 (best); "
        f"{nights} night{'s' * (nights != 1)} recorded. Side effects reported: {effects}.",
        size=8,
    )


def _checkpoints(pdf: FPDF, data: ReportData) -> None:
    if not data.checkpoints:
        return
    _section(pdf, "Checkpoints", None, space_mm=20)
    for checkpoint in data.checkpoints:
        figures, trend = checkpoint.figures, checkpoint.symptoms
        if checkpoint.on > data.course.today:  # after the period's next day, or today
            text = f"{checkpoint.name.capitalize()}: {_day(checkpoint.on)} (to come)"
        else:
            symptoms = (
                f"IRLS {trend.baseline[1]} to {trend.latest[1]} ({trend.change:+d})"
                if trend.baseline is not None
                and trend.latest is not None
                and trend.change is not None
                else "IRLS change: not enough entries"
            )
            text = (
                f"{checkpoint.name.capitalize()}, {_day(checkpoint.on)}: {figures.done} of "
                f"{figures.prescribed} sessions, {checkpoint.weeks_on_target} of "
                f"{checkpoint.weeks} weeks on target (device-measured); {symptoms} "
                f"(patient-reported)"
            )
        _text(pdf, text, size=8)


def _events(pdf: FPDF, data: ReportData) -> None:
    _section(pdf, "Early stops, faults and starts outside the window", Source.DEVICE)
    if not data.events:
        _text(pdf, "None in this period.", size=8)
    for event in data.events:
        _text(pdf, f"{event.at:%a %d %b %Y %H:%M}  {event.kind}: {event.text}", size=8)
    if data.damaged_rows:
        _text(
            pdf,
            f"{data.damaged_rows} damaged row(s) of the treatment record could not be read "
            f"and are not counted.",
            size=8,
            style="B",
        )
    later = clock_note(data)
    if later is not None:
        _text(pdf, later, size=8, style="B")


# --- charts ----------------------------------------------------------------------------


def _figure(width_mm: float, height_mm: float) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=200)
    figure.set_layout_engine("constrained", h_pad=0.02, w_pad=0.02)
    return figure


def _png(figure: Figure) -> io.BytesIO:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=200)
    buffer.seek(0)
    return buffer


def _style(axes: Axes) -> None:
    axes.tick_params(labelsize=6.5, length=2)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _sessions_figure(data: ReportData, width_mm: float, height_mm: float) -> Figure:
    figure = _figure(width_mm, height_mm)
    axes = figure.add_subplot()
    _style(axes)
    numbers = [w.number for w in data.weeks]
    full = [w.figures.full for w in data.weeks]
    short = [w.figures.done - w.figures.full for w in data.weeks]
    device = _hex(_DEVICE_RGB)
    axes.bar(numbers, full, color=device, width=0.6, label="full sessions")
    axes.bar(numbers, short, bottom=full, color="#9bbbd9", width=0.6, label="short of 90 %")
    target = data.rule.weekly_target(data.rx.sessions_per_week)
    axes.axhline(target, color="#333333", linestyle="--", linewidth=0.8, label="prescribed")
    # A long course (up to 52 weeks) would print its labels over each other: then a
    # tick every few weeks and no count above the bars (the table has them).
    every = max(1, -(-len(numbers) // _MOST_WEEK_LABELS))
    for week in data.weeks if every == 1 else ():
        label = str(week.figures.done) if week.status != "to come" else ""
        axes.text(
            week.number, week.figures.done + 0.1, label, ha="center", va="bottom", fontsize=6.5
        )
    ticks = numbers[::every]
    axes.set_xticks(ticks, [f"W{n}" for n in ticks])
    axes.set_xlim(0.4, max([*numbers, 4]) + 0.6)  # a lone week keeps a bar's width
    axes.set_ylim(0, max([target, *(w.figures.done for w in data.weeks)]) + 1.2)
    axes.set_ylabel("sessions", fontsize=6.5)
    axes.legend(fontsize=5.8, loc="upper left", ncols=3, frameon=False, handlelength=1.2)
    return figure


def _irls_figure(data: ReportData, width_mm: float, height_mm: float) -> Figure:
    figure = _figure(width_mm, height_mm)
    axes = figure.add_subplot()
    _style(axes)
    days = [p.day for p in data.irls]
    start = min([data.period.start, *days])
    end = max([data.period.end, *days])
    left, right = _num(start) - 1, _num(end) + 1
    for band, low, high, colour in _BAND_SPANS:
        axes.axhspan(low, high, color=colour, zorder=0, linewidth=0)
        axes.text(
            1.01, (low + high) / 2, band.value, fontsize=5.5, va="center", ha="left",
            color="#555555", transform=axes.get_yaxis_transform(), clip_on=False,
        )  # fmt: skip
    colour = _hex(_PATIENT_RGB)
    if data.irls:
        axes.plot([_num(d) for d in days], [p.total for p in data.irls], color=colour, marker="o",
                  markersize=3, linewidth=1.2)  # fmt: skip
        for point in data.irls:
            axes.annotate(str(point.total), (_num(point.day), point.total), fontsize=6,
                          xytext=(0, 4), textcoords="offset points", ha="center")  # fmt: skip
    baseline = data.baseline
    if baseline is not None:
        axes.plot([_num(baseline.day)], [baseline.total], marker="s", markersize=5,
                  color="#222222", linestyle="none", label="baseline")  # fmt: skip
        axes.legend(fontsize=5.8, loc="upper left", frameon=False)
    if data.course.first_day is not None:
        axes.axvline(_num(data.course.first_day), color="#777777", linewidth=0.6, linestyle=":")
    axes.set_xlim(left, right)
    axes.set_ylim(0, 40)
    axes.set_yticks([0, 10, 20, 30, 40])
    _date_ticks(axes, start, end, most=6)
    return figure


def _nightly_figure(data: ReportData, width_mm: float, height_mm: float) -> Figure:
    figure = _figure(width_mm, height_mm)
    axes = figure.add_subplot()
    _style(axes)
    for attribute, label, colour in (
        ("leg_symptoms", "leg symptoms (10 worst)", _hex(_PATIENT_RGB)),
        ("sleep_quality", "sleep quality (10 best)", "#4a6f8a"),
    ):
        points = [(p.day, getattr(p, attribute)) for p in data.nightly]
        shown = [(_num(d), v) for d, v in points if v is not None]
        if shown:
            xs, ys = zip(*shown, strict=True)
            axes.plot(xs, ys, marker="o", markersize=2.2, linewidth=1.0, label=label, color=colour)
    axes.set_xlim(_num(data.period.start) - 0.5, _num(data.period.end) + 0.5)
    axes.set_ylim(0, 10.5)
    axes.set_yticks([0, 5, 10])
    _date_ticks(axes, data.period.start, data.period.end, most=10)
    axes.legend(fontsize=6, loc="upper right", ncols=2, frameon=False)
    return figure


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _num(day: date) -> float:
    """A day as a chart coordinate: whole days since 1970-01-01 (matplotlib's epoch)."""
    return float((day - _EPOCH).days)


def _date_ticks(axes: Axes, start: date, end: date, *, most: int) -> None:
    """Ticks every whole number of weeks from ``start`` (at most ``most``), "13 Oct"."""
    weeks = max(1, -(-((end - start).days // 7 + 1) // most))
    ticks = [start + timedelta(weeks=weeks * n) for n in range(most + 1)]
    ticks = [t for t in ticks if t <= end]
    axes.set_xticks([_num(t) for t in ticks], [f"{t.day} {t:%b}" for t in ticks])
