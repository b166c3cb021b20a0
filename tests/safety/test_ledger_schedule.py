"""The schedule rules and the clock check, answered from the ledger (so reboots keep them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety.faults import Outcome
from safety.ledger import Ledger
from safety.ledger_events import EventKind
from safety.ledger_rules import WEEK_S, Counted, format_time, schedule_block

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
H = 3600.0


class WallClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: WallClock) -> Iterator[Ledger]:
    with Ledger.open(tmp_path, clock, display_tz=UTC) as opened:
        yield opened


def session(ledger: Ledger, clock: WallClock, *, minutes: float = 30, dose: float = 1.0) -> int:
    sid = ledger.begin_session("p", "h", {810: 45.0})
    clock.advance(minutes=minutes)
    ledger.end_session(sid, Outcome.COMPLETED if dose else Outcome.STOPPED, {810: dose})
    return sid


def test_an_empty_ledger_allows_a_start(ledger: Ledger) -> None:
    assert ledger.schedule_refusal(20, 7) is None
    assert ledger.next_start_allowed_at(20, 7) is None
    assert ledger.clock_refusal() is None


def test_the_interval_runs_from_the_end_of_the_last_session(
    ledger: Ledger, clock: WallClock
) -> None:
    session(ledger, clock)  # 19:00–19:30
    clock.advance(hours=19, minutes=59)
    assert ledger.schedule_refusal(20, 7) == (
        "The next session is allowed at 2026-11-25 15:30 (20 h after the last one)."
    )
    assert ledger.next_start_allowed_at(20, 7) == T0 + timedelta(hours=20, minutes=30)
    clock.advance(minutes=1)
    assert ledger.schedule_refusal(20, 7) is None
    assert ledger.next_start_allowed_at(20, 7) is None


@pytest.mark.parametrize(
    ("kind", "since"),
    [
        (EventKind.CLOCK_CONFIRMED, "the clock was confirmed"),
        (EventKind.LEDGER_RESET, "the record was reset"),
        (EventKind.LEDGER_RESTORED, "the record was restored from its backup"),
    ],
)
def test_an_interval_from_an_event_that_counts_as_a_session_names_it(
    ledger: Ledger, clock: WallClock, kind: EventKind, since: str
) -> None:
    """The session ended at 19:30; the event at 06:40 the next day makes the next one wait
    until 02:40: "20 h after the last one" would point at 19:30."""
    session(ledger, clock)  # 19:00–19:30
    clock.advance(hours=11, minutes=10)
    if kind is EventKind.CLOCK_CONFIRMED:
        ledger.confirm_clock("test")
    else:
        ledger.record_event(kind, "test")
    assert ledger.schedule_refusal(20, 7) == (
        f"The next session is allowed at 2026-11-26 02:40 (20 h after {since})."
    )


def test_a_session_after_an_event_is_the_last_one_again(ledger: Ledger, clock: WallClock) -> None:
    ledger.confirm_clock("test")
    clock.advance(hours=21)
    session(ledger, clock)  # 2026-11-25 16:00–16:30
    assert ledger.schedule_refusal(20, 7) == (
        "The next session is allowed at 2026-11-26 12:30 (20 h after the last one)."
    )


def test_a_session_a_confirmed_clock_moved_back_to_its_time_names_the_confirmation(
    ledger: Ledger, clock: WallClock
) -> None:
    """A session written while the clock ran a day ahead ends, for the rules, when the
    clock was confirmed: that is what the interval runs from."""
    clock.advance(days=1)
    session(ledger, clock)  # at 2026-11-25 19:30 by a clock a day ahead
    clock.advance(days=-1, hours=2)  # set right: 2026-11-24 21:30
    ledger.confirm_clock("test")
    assert ledger.schedule_refusal(20, 7) == (
        "The next session is allowed at 2026-11-25 17:30 (20 h after the clock was confirmed)."
    )


def test_a_session_that_delivered_nothing_does_not_count(ledger: Ledger, clock: WallClock) -> None:
    session(ledger, clock, minutes=1, dose=0.0)
    assert ledger.schedule_refusal(20, 1) is None


def test_an_unfinished_session_counts_as_ending_now(ledger: Ledger, clock: WallClock) -> None:
    ledger.begin_session("p", "h", {810: 45.0})
    clock.advance(hours=30)
    assert ledger.next_start_allowed_at(20, 7) == clock.now + timedelta(hours=20)


def test_a_power_lost_session_counts(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 45.0}, planned_duration_s=1800)
        clock.advance(seconds=5)
        ledger.checkpoint(sid, {810: 0.125}, 5.0)
    clock.advance(minutes=10)
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.reconcile_after_crash()
        assert ledger.next_start_allowed_at(20, 7) == T0 + timedelta(hours=20, seconds=10.5)


def test_the_rules_survive_a_reboot(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock, display_tz=UTC) as ledger:
        session(ledger, clock)
        before = ledger.schedule_refusal(20, 3)
    clock.advance(hours=1)
    with Ledger.open(tmp_path, clock, display_tz=UTC) as ledger:
        assert ledger.schedule_refusal(20, 3) == before is not None


def test_the_week_is_any_rolling_seven_days(ledger: Ledger, clock: WallClock) -> None:
    for _ in range(3):  # Tue, Wed, Thu at 19:00
        session(ledger, clock)
        clock.advance(hours=23, minutes=30)
    assert ledger.schedule_refusal(20, 3) == (
        "3 sessions in 7 days is the most allowed. The next session is allowed at 2026-12-01 19:00."
    )
    clock.now = T0 + timedelta(days=7) - timedelta(seconds=1)
    assert ledger.next_start_allowed_at(20, 3) == T0 + timedelta(days=7)
    clock.now = T0 + timedelta(days=7)
    assert ledger.schedule_refusal(20, 3) is None


def test_one_a_week_reads_in_the_singular(ledger: Ledger, clock: WallClock) -> None:
    session(ledger, clock)
    clock.advance(days=2)
    assert (ledger.schedule_refusal(20, 1) or "").startswith("1 session in 7 days")


def test_when_both_rules_block_the_later_time_is_given(ledger: Ledger, clock: WallClock) -> None:
    session(ledger, clock)
    clock.advance(hours=1)
    assert ledger.next_start_allowed_at(48, 1) == T0 + timedelta(days=7)
    assert ledger.next_start_allowed_at(200, 1) == T0 + timedelta(minutes=30, hours=200)


def test_answers_are_utc_and_daylight_saving_only_changes_the_display(tmp_path: Path) -> None:
    # Europe/Berlin leaves CET for CEST at 01:00 UTC on 2026-03-29.
    clock = WallClock(datetime(2026, 3, 28, 19, 30, tzinfo=UTC))
    with Ledger.open(tmp_path, clock, display_tz=ZoneInfo("Europe/Berlin")) as ledger:
        session(ledger, clock)  # ends 20:00 UTC (21:00 CET)
        allowed = ledger.next_start_allowed_at(20, 7)
        assert allowed == datetime(2026, 3, 29, 16, 0, tzinfo=UTC)
        assert allowed is not None and allowed.utcoffset() == timedelta(0)
        assert ledger.schedule_refusal(20, 7) == (
            "The next session is allowed at 2026-03-29 18:00 (20 h after the last one)."
        )


def test_bad_rule_arguments_are_programming_errors(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="min_interval_h"):
        ledger.schedule_refusal(float("nan"), 3)
    with pytest.raises(ValueError, match="min_interval_h"):
        ledger.schedule_refusal(-1, 3)
    with pytest.raises(ValueError, match="max_sessions_per_week"):
        ledger.next_start_allowed_at(20, 0)


def test_a_clock_behind_the_newest_record_is_refused(ledger: Ledger, clock: WallClock) -> None:
    ledger.record_fault("x", "y")
    assert ledger.clock_refusal() is None
    clock.now = T0 - timedelta(seconds=1)
    assert ledger.clock_refusal() == (
        "The clock reads 2026-11-24 18:59:59 which is before the last record "
        "(2026-11-24 19:00:00). Set the date and time, then try again."
    )


def test_the_clock_check_survives_a_reboot_to_1970(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock) as ledger:
        session(ledger, clock)
    clock.now = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
    with Ledger.open(tmp_path, clock, display_tz=UTC) as ledger:
        assert "before the last record (2026-11-24 19:30:00)" in (ledger.clock_refusal() or "")


def test_times_are_shown_rounded_up_to_the_minute() -> None:
    at_s = datetime(2026, 11, 25, 15, 30, 1, tzinfo=UTC).timestamp()
    assert format_time(at_s, UTC) == "2026-11-25 15:31"
    assert format_time(at_s, UTC, seconds=True) == "2026-11-25 15:30:01"


def allowed_by_brute_force(
    history: list[tuple[float, float]], t_s: float, interval_h: float, per_week: int
) -> bool:
    if any(end_s + interval_h * H > t_s for _, end_s in history):
        return False
    return sum(1 for start_s, _ in history if start_s > t_s - WEEK_S) < per_week


@settings(max_examples=150, deadline=None)
@given(
    gaps_h=st.lists(st.floats(min_value=0.6, max_value=60.0), min_size=0, max_size=12),
    since_h=st.floats(min_value=0.0, max_value=200.0),
    interval_h=st.sampled_from([0.0, 20.0, 24.0, 47.5]),
    per_week=st.integers(min_value=1, max_value=7),
)
def test_schedule_matches_a_brute_force_reading_of_the_rules(
    gaps_h: list[float], since_h: float, interval_h: float, per_week: int
) -> None:
    history: list[tuple[float, float]] = []
    start_s = 1.8e9
    for gap_h in gaps_h:
        history.append((start_s, start_s + 0.5 * H))
        start_s += gap_h * H
    now_s = (history[-1][1] if history else start_s) + since_h * H
    newest_first = sorted(history, reverse=True)[:per_week]
    blocked = schedule_block([Counted(s, e) for s, e in newest_first], now_s, interval_h, per_week)
    if blocked is None:
        assert allowed_by_brute_force(history, now_s, interval_h, per_week)
    else:
        assert not allowed_by_brute_force(history, now_s, interval_h, per_week)
        assert allowed_by_brute_force(history, blocked.at_s, interval_h, per_week)
        assert not allowed_by_brute_force(history, blocked.at_s - 1.0, interval_h, per_week)
