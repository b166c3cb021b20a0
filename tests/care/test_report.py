"""The clinic report's content, from the six-week course and its diary in real stores."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from care.adherence import DEFAULT_RULE
from care.diary import Diary, StoredIrls, StoredNightly
from care.irls import Band
from care.report import (
    Device,
    Period,
    ReportData,
    ReportError,
    SignatureStatus,
    fault_words,
    gather_report,
)
from safety.faults import Outcome
from safety.ledger import Ledger
from safety.records import FaultRecord, Records, read_records
from tests.care.course_fixture import (
    BERLIN,
    DAY_1,
    SHA,
    SettableClock,
    course_profile,
    local,
    run_session,
)
from tests.care.report_fixture import DIARY_WRITTEN_AT, write_course_with_diary

DEVICE = Device("NP-0001", "0.1.0")


@dataclasses.dataclass(frozen=True)
class Stores:
    records: Records
    nightly: list[StoredNightly]
    irls: list[StoredIrls]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    state_dir = tmp_path_factory.mktemp("state")
    clock = write_course_with_diary(state_dir)
    with Diary.open(state_dir, wall_clock=clock) as diary:
        return Stores(read_records(state_dir, clock), diary.nightly(), diary.irls())


def report(stores: Stores, period: Period | None = None) -> ReportData:
    return gather_report(
        course_profile(),
        SignatureStatus.VERIFIED,
        stores.records,
        nightly=stores.nightly,
        irls=stores.irls,
        period=period,
        tz=BERLIN,
        zone_name="Europe/Berlin",
        rule=DEFAULT_RULE,
        device=DEVICE,
        generated_at=DIARY_WRITTEN_AT,
    )


def test_the_default_period_is_day_1_to_today(stores: Stores) -> None:
    data = report(stores)
    assert data.period == Period(DAY_1, date(2026, 12, 23))
    assert data.generated_at.tzinfo is not None and data.generated_at.hour == 13  # CET


def test_the_weeks_and_the_total_of_the_six_week_course(stores: Stores) -> None:
    data = report(stores)
    assert [w.figures.done for w in data.weeks] == [3, 3, 0, 3, 3, 3]
    assert [w.figures.missed for w in data.weeks] == [0, 0, 3, 0, 0, 0]
    assert data.total.done == 15 and data.total.prescribed == 18 and data.total.full == 14
    assert data.total.early_stops["stopped"] == 1 and data.total.outside_window == 1
    assert data.weeks_on_target == 4 and data.course.longest_run_on_target == 2


def test_a_four_week_period_holds_the_weeks_that_overlap_it(stores: Stores) -> None:
    data = report(stores, Period(DAY_1, date(2026, 11, 9)))
    assert [w.number for w in data.weeks] == [1, 2, 3, 4]
    assert data.total.done == 9 and data.total.missed == 3
    assert data.weeks[-1].status == "below target"  # its last day is the period's: over

    assert [e.kind for e in data.events] == ["early stop"]  # 10 Nov and 18 Nov are after it


def test_the_longest_run_on_target_is_of_the_periods_weeks(stores: Stores) -> None:
    """The table shows the weeks of the period, and its longest run is of those: weeks 3
    and 4, both below target, were shown with "Longest run of weeks on target: 2" (weeks
    1 and 2, outside the period); a period with no course week, "0 of 0 weeks on target"
    and a run of 2."""
    data = report(stores, Period(date(2026, 10, 27), date(2026, 11, 9)))
    assert [w.number for w in data.weeks] == [3, 4]
    assert data.weeks_on_target == 0 and data.longest_run_on_target == 0
    assert report(stores, Period(date(2026, 12, 1), date(2026, 12, 5))).longest_run_on_target == 0
    assert report(stores).longest_run_on_target == 2


def test_early_stops_faults_and_late_starts_in_plain_words(stores: Stores) -> None:
    events = report(stores).events
    assert [(e.at.strftime("%d %b %H:%M"), e.kind) for e in events] == [
        ("05 Nov 19:00", "early stop"),
        ("10 Nov 17:00", "outside window"),
        ("18 Nov 20:15", "fault"),
    ]
    assert events[0].text.startswith("stopped before the end")
    assert "50% of the planned fluence delivered" in events[0].text
    assert events[1].text == "started at 17:00; the evening window is 18:00-23:00"
    assert events[2].text == "The pad got too warm on the skin. The light is off."


def test_the_irls_baseline_is_kept_before_the_period_and_marked(stores: Stores) -> None:
    data = report(stores, Period(DAY_1, date(2026, 12, 22)))
    assert [(p.day, p.total, p.band, p.baseline) for p in data.irls] == [
        (date(2026, 10, 12), 24, Band.SEVERE, True),
        (date(2026, 10, 27), 20, Band.MODERATE, False),
        (date(2026, 11, 10), 16, Band.MODERATE, False),
        (date(2026, 12, 22), 12, Band.MODERATE, False),
    ]
    assert data.baseline is not None and data.baseline.total == 24
    assert data.latest_irls is not None and data.latest_irls.total == 12
    follow_up = data.checkpoints[-1]
    assert follow_up.symptoms.change == -12


def test_nightly_scores_and_side_effects_stay_within_the_period(stores: Stores) -> None:
    data = report(stores, Period(date(2026, 10, 14), date(2026, 10, 31)))
    assert [n.day.day for n in data.nightly] == [15, 17, 20, 22, 25]
    assert data.nightly[0].leg_symptoms == 8 and data.nightly[0].sleep_quality == 3
    assert data.side_effects == {"warmth": 1}  # 13 Oct is before the period


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ReportError, match=r"starts \(2026-11-02\) after it ends \(2026-11-01\)"):
        Period(date(2026, 11, 2), date(2026, 11, 1))


def test_a_period_ending_more_than_a_year_after_today_is_refused_in_words(
    stores: Stores,
) -> None:
    assert report(stores, Period(DAY_1, date(2027, 12, 24))).period.end == date(2027, 12, 24)
    with pytest.raises(ReportError, match="ends on 2027-12-25, more than a year after today"):
        report(stores, Period(DAY_1, date(2027, 12, 25)))
    with pytest.raises(ReportError, match=r"today \(2026-12-23\): end it by 2027-12-24"):
        report(stores, Period(date(9999, 12, 30), date.max))  # was an OverflowError


def test_a_period_far_in_the_past_is_reported_empty(stores: Stores) -> None:
    data = report(stores, Period(date.min, date(1, 1, 7)))
    assert (data.weeks, data.events, data.nightly, data.side_effects) == ((), (), (), {})


def test_before_any_session_the_period_starts_on_the_issue_date(tmp_path: Path) -> None:
    data = gather_report(
        course_profile(),
        SignatureStatus.UNSIGNED,
        Records(),
        nightly=[],
        irls=[],
        period=None,
        tz=BERLIN,
        zone_name="Europe/Berlin",
        rule=DEFAULT_RULE,
        device=DEVICE,
        generated_at=datetime(2026, 10, 5, 12, tzinfo=UTC),
    )
    assert data.period == Period(date(2026, 10, 1), date(2026, 10, 5))
    assert data.weeks == () and data.events == () and data.baseline is None
    assert data.signature.text == "not signed"


def test_a_session_ended_by_a_fault_is_told_once_with_the_fault_words(tmp_path: Path) -> None:
    rx = course_profile()
    clock = SettableClock(local(DAY_1, 19))
    with Ledger.open(tmp_path, clock) as ledger:
        planned = rx.planned_fluence_j_cm2
        sid = ledger.begin_session(rx.id, SHA, planned, planned_duration_s=rx.duration_s)
        clock.now += timedelta(minutes=6)
        ledger.record_fault("board_overtemp", "The pad's electronics got too hot. (71 °C)", sid)
        ledger.end_session(sid, Outcome.FAULT, {k: v / 5 for k, v in planned.items()}, "x")
    records = read_records(tmp_path, clock)
    data = dataclasses.replace(
        report(Stores(records, [], []), Period(DAY_1, DAY_1)), generated_at=clock()
    )
    assert [(e.kind, e.text) for e in data.events] == [
        (
            "early stop",
            "ended by a fault: the pad's electronics got too hot. The light is off; "
            "20% of the planned fluence delivered",
        )
    ]


def test_a_session_ended_by_a_fault_is_told_with_the_fault_that_ended_it(tmp_path: Path) -> None:
    """A later fault of the same session (light counted after its close) does not take
    the place of the one that ended it; it is told on its own line."""
    rx = course_profile()
    clock = SettableClock(local(DAY_1, 19))
    with Ledger.open(tmp_path, clock) as ledger:
        planned = rx.planned_fluence_j_cm2
        sid = ledger.begin_session(rx.id, SHA, planned, planned_duration_s=rx.duration_s)
        clock.now += timedelta(minutes=6)
        ledger.record_fault("board_overtemp", "The pad's electronics got too hot. (71 °C)", sid)
        ledger.end_session(sid, Outcome.FAULT, planned, "board_overtemp")
        clock.now += timedelta(seconds=1)
        ledger.record_fault("stuck_on", "output while commanded off", sid)
    records = read_records(tmp_path, clock)
    data = report(Stores(records, [], []), Period(DAY_1, DAY_1))
    assert [e.kind for e in data.events] == ["early stop", "fault"]
    assert "electronics got too hot" in data.events[0].text
    assert "emitted light" in data.events[1].text


@pytest.mark.parametrize(
    ("code", "message", "told"),
    [
        (
            "skin_overtemp",
            "skin 42.03 °C ≥ stop 41.0 °C",
            "The pad got too warm on the skin. The light is off.",
        ),
        ("telemetry_stale", "no frame for 612 ms", "The pad stopped reporting its state."),
        (
            "a_code_from_a_newer_version",
            "Something new happened. (detail 7)",
            "Something new happened.",
        ),
    ],
)
def test_a_fault_is_told_in_the_controllers_words_not_its_detail(
    code: str, message: str, told: str
) -> None:
    """The core records the technical detail as the fault's message; the report shows
    the caregiver's sentence for its code (unknown codes: the message without detail)."""
    fault = FaultRecord(
        id=1, at=datetime(2026, 10, 13, 18, tzinfo=UTC), code=code, message=message, session_id=1
    )
    assert fault_words(fault) == told


def test_the_change_since_baseline_takes_no_irls_from_before_the_course(stores: Stores) -> None:
    """An IRLS of 27 on 5 Oct (before the baseline of 24 on 12 Oct, not marked) and
    none after day 1: the report's "latest" must not be the older 27, or the PDF says
    "Change since baseline: +3" for a change that never happened. Its checkpoints
    (``care.course``) take only an IRLS after day 1."""
    from tests.care.report_fixture import irls_items

    def stored(entry_id: int, day: date, total: int, baseline: bool) -> StoredIrls:
        items = irls_items(total)
        return StoredIrls(entry_id, local(day, 21), None, None, day, baseline, items)

    irls = [stored(1, date(2026, 10, 5), 27, False), stored(2, date(2026, 10, 12), 24, True)]
    data = report(
        dataclasses.replace(stores, irls=irls), Period(date(2026, 10, 1), date(2026, 10, 20))
    )
    assert data.baseline is not None and data.baseline.total == 24
    assert data.latest_irls is None
    for checkpoint in data.checkpoints:
        assert checkpoint.symptoms.latest is None


def test_a_baseline_not_recorded_as_one_is_told_as_a_stand_in(stores: Stores) -> None:
    """No IRLS marked baseline: the checkpoints take the last one before day 1 in its
    place, and the report must not pass it off as the recorded baseline."""
    from care.report_pdf import irls_line
    from tests.care.report_fixture import irls_items

    unmarked = [
        StoredIrls(1, local(date(2026, 10, 12), 21), None, None, date(2026, 10, 12), False,
                   irls_items(24)),
        StoredIrls(2, local(date(2026, 10, 27), 21), None, None, date(2026, 10, 27), False,
                   irls_items(20)),
    ]  # fmt: skip
    data = report(dataclasses.replace(stores, irls=unmarked), Period(DAY_1, date(2026, 11, 9)))
    assert [(p.total, p.baseline, p.stand_in) for p in data.irls] == [
        (24, True, True),
        (20, False, False),
    ]
    assert irls_line(data).startswith(
        "IRLS totals: 12 Oct 24 severe (baseline: the last before day 1, not recorded as the "
        "baseline); 27 Oct 20 moderate."
    )
    marked = report(stores, Period(DAY_1, date(2026, 11, 9)))
    assert [(p.baseline, p.stand_in) for p in marked.irls] == [(True, False), (False, False)]
    assert "12 Oct 24 severe (baseline); " in irls_line(marked)


def test_a_week_not_over_by_today_is_in_progress_not_missed(tmp_path: Path) -> None:
    """A report made at noon on a week's last day (the default period ends today), or
    with a ``--to`` after today, must not count sessions as missed that tonight or a
    later evening can still give: the weeks stand as of today, as ``nirpad course``
    shows them. Was: week 1 "below target", 1 missed, and weeks 2-3 to come 3 missed each."""
    rx = course_profile()
    clock = SettableClock(local(DAY_1, 19))
    with Ledger.open(tmp_path, clock) as ledger:
        for day in (DAY_1, DAY_1 + timedelta(days=2)):
            run_session(ledger, clock, rx, local(day, 19))
    noon_of_the_last_day = local(DAY_1 + timedelta(days=6), 12)
    records = read_records(tmp_path, lambda: noon_of_the_last_day)

    def made(period: Period | None) -> ReportData:
        return gather_report(
            rx, SignatureStatus.UNSIGNED, records, nightly=[], irls=[], period=period,
            tz=BERLIN, zone_name="Europe/Berlin", rule=DEFAULT_RULE, device=DEVICE,
            generated_at=noon_of_the_last_day,
        )  # fmt: skip

    today = made(None)
    assert today.period.end == DAY_1 + timedelta(days=6)
    assert [(w.status, w.figures.missed) for w in today.weeks] == [("in progress", 0)]
    assert today.total.missed == 0
    ahead = made(Period(DAY_1, DAY_1 + timedelta(days=20)))
    assert [(w.status, w.figures.missed) for w in ahead.weeks] == [
        ("in progress", 0),
        ("to come", 0),
        ("to come", 0),
    ]
    assert [c.on > ahead.course.today for c in ahead.checkpoints] == [True, True, True]


def test_a_baseline_taken_after_the_period_is_not_in_it(stores: Stores) -> None:
    """A report of the days before the first session, ending before the baseline IRLS
    was taken (12 Oct), showed that later IRLS as the period's baseline, and its chart
    ran past the period to reach it; the CSV and FHIR files carried it too."""
    no_sessions = dataclasses.replace(stores, records=Records())
    data = report(no_sessions, Period(date(2026, 10, 1), date(2026, 10, 11)))
    assert data.irls == () and data.baseline is None
    on_the_day = report(no_sessions, Period(date(2026, 10, 1), date(2026, 10, 12)))
    assert on_the_day.baseline is not None and on_the_day.baseline.total == 24
