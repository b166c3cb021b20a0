"""Crash recovery: an unfinished session is counted high, never low."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from safety.faults import Outcome
from safety.ledger import LEDGER_FILENAME, Ledger
from safety.ledger_rules import UNKNOWN_RATE_J_CM2_S, power_lost_dose

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
EXTRA_S = 5.0 + 0.5  # one checkpoint interval plus one maximum lease


class WallClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def test_nothing_to_reconcile(tmp_path: Path) -> None:
    with Ledger.open(tmp_path, WallClock()) as ledger:
        sid = ledger.begin_session("p", "h", {810: 1.0})
        ledger.end_session(sid, Outcome.COMPLETED, {810: 1.0})
        assert ledger.reconcile_after_crash() == []
        assert ledger.sessions()[0].outcome == Outcome.COMPLETED


def test_an_unfinished_session_counts_one_interval_past_its_last_checkpoint(
    tmp_path: Path,
) -> None:
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 45.0, 850: 9.0}, planned_duration_s=1800)
        for k in range(1, 4):
            clock.advance(seconds=5)
            ledger.checkpoint(sid, {810: 0.125 * k, 850: 0.025 * k}, 5.0 * k)
    clock.advance(hours=2)  # the reboot
    with Ledger.open(tmp_path, clock) as ledger:
        assert ledger.reconcile_after_crash() == [sid]
        (record,) = ledger.sessions()
    assert record.outcome == Outcome.POWER_LOST
    assert record.fault_code is None
    assert record.delivered_fluence_j_cm2 == pytest.approx(
        {810: 0.375 + 0.025 * EXTRA_S, 850: 0.075 + 0.005 * EXTRA_S}
    )
    assert record.ended_at == T0 + timedelta(seconds=15 + EXTRA_S)


def test_without_a_checkpoint_one_interval_is_counted(tmp_path: Path) -> None:
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 36.0}, planned_duration_s=1200)
        clock.advance(seconds=1)  # rebooted at once: the end is now, not in the future
        assert ledger.reconcile_after_crash(checkpoint_interval_s=10.0) == [sid]
        (record,) = ledger.sessions()
    assert record.delivered_fluence_j_cm2 == pytest.approx({810: 0.03 * 10.5})
    assert record.ended_at == T0 + timedelta(seconds=1)


def test_the_count_is_capped_at_the_plan_but_never_below_a_checkpoint(tmp_path: Path) -> None:
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 1.0, 850: 1.0}, planned_duration_s=60)
        ledger.checkpoint(sid, {810: 0.99, 850: 1.02, 0: 0.5}, 59.0)
        ledger.reconcile_after_crash()
        (record,) = ledger.sessions()
    assert record.delivered_fluence_j_cm2 == {810: 1.0, 850: 1.02, 0: 0.5}


def test_without_a_planned_duration_the_hard_maximum_rate_is_assumed(tmp_path: Path) -> None:
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 45.0})
        ledger.checkpoint(sid, {810: 1.0}, 40.0)
        ledger.reconcile_after_crash()
        (record,) = ledger.sessions()
    assert record.delivered_fluence_j_cm2 == pytest.approx({810: 1.0 + 0.05 * EXTRA_S})
    assert UNKNOWN_RATE_J_CM2_S == 0.05


def test_a_clock_behind_at_reboot_does_not_move_the_end_backwards(tmp_path: Path) -> None:
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 45.0}, planned_duration_s=1800)
        clock.advance(seconds=30)
        ledger.checkpoint(sid, {810: 0.75}, 30.0)
        clock.now = datetime(2000, 1, 1, tzinfo=UTC)  # a Pi without its RTC
        ledger.reconcile_after_crash()
        assert ledger.sessions()[0].ended_at == T0 + timedelta(seconds=30)


def test_a_clock_set_back_mid_session_never_ends_it_before_a_checkpoint(tmp_path: Path) -> None:
    """As a session closed in the normal way: its end is never before anything recorded
    of it, however the clock moved between its checkpoints."""
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 45.0}, planned_duration_s=1800)
        for k in range(1, 3):
            clock.advance(seconds=5)
            ledger.checkpoint(sid, {810: 0.125 * k}, 5.0 * k)
        clock.advance(hours=-1)  # set back: the last two checkpoints are before the start
        for k in range(3, 5):
            clock.advance(seconds=5)
            ledger.checkpoint(sid, {810: 0.125 * k}, 5.0 * k)
    clock.now = T0 + timedelta(hours=2)  # the reboot
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.reconcile_after_crash()
        assert ledger.sessions()[0].ended_at == T0 + timedelta(seconds=10 + EXTRA_S)


def test_power_lost_dose_uses_the_faster_of_plan_and_observation() -> None:
    planned = {810: 18.0}  # 0.01 J/cm² per second on average
    checkpoints = [(10.0, {810: 0.5}), (5.0, {810: 0.25})]  # 0.05 J/cm² per second observed
    assert power_lost_dose(planned, 1800.0, checkpoints, 5.0) == pytest.approx({810: 0.75})
    slower = [(10.0, {810: 0.5}), (5.0, {810: 0.49})]
    assert power_lost_dose(planned, 1800.0, slower, 5.0) == pytest.approx({810: 0.55})
    same_elapsed = [(10.0, {810: 0.5}), (10.0, {810: 0.25})]  # paused: no rate to observe
    assert power_lost_dose(planned, 1800.0, same_elapsed, 5.0) == pytest.approx({810: 0.55})


@pytest.mark.parametrize("interval_s", [0.0, -5.0, float("nan")])
def test_a_bad_interval_is_a_programming_error(tmp_path: Path, interval_s: float) -> None:
    with Ledger.open(tmp_path, WallClock()) as ledger, pytest.raises(ValueError):
        ledger.reconcile_after_crash(interval_s)


def test_a_copy_taken_mid_session_reconciles_to_at_least_the_last_checkpoint(
    tmp_path: Path,
) -> None:
    """A power cut freezes the files as they are: copy them while the session is open."""
    clock = WallClock()
    live, frozen = tmp_path / "live", tmp_path / "frozen"
    with Ledger.open(live, clock) as ledger:
        sid = ledger.begin_session("p", "h", {810: 45.0}, planned_duration_s=1800)
        for k in range(1, 8):
            clock.advance(seconds=5)
            ledger.checkpoint(sid, {810: 0.125 * k}, 5.0 * k)
        frozen.mkdir()
        for name in (LEDGER_FILENAME, LEDGER_FILENAME + "-wal"):
            shutil.copyfile(live / name, frozen / name)
        ledger.end_session(sid, Outcome.COMPLETED, {810: 0.875})
    with Ledger.open(frozen, clock) as copy:
        assert copy.reconcile_after_crash() == [sid]
        (record,) = copy.sessions()
    assert record.outcome == Outcome.POWER_LOST
    assert record.delivered_fluence_j_cm2[810] >= 0.875 + 0.125


CHILD = textwrap.dedent(
    """
    import itertools, os, random, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from safety.ledger import Ledger

    state_dir, truth_path, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    # Odd seeds exit at a random step, before or after its checkpoint; even ones run
    # until the parent kills them (SIGKILL can land inside a commit).
    exit_k = rng.randrange(1, 60) if seed % 2 else None
    exit_after_checkpoint = rng.random() < 0.5
    step = 0.125  # 45 J/cm² over 1800 s, per 5 s checkpoint interval
    wall_clock = lambda: datetime.now(UTC)
    with Ledger.open(state_dir, wall_clock) as ledger, open(truth_path, "a") as truth:
        sid = ledger.begin_session("p", "h", {810: 45.0}, planned_duration_s=1800)
        print("ready", flush=True)
        for k in itertools.count(1):
            delivered = min(45.0, k * step)
            # The light is on: this much has truly reached the skin before the checkpoint.
            truth.write(f"{delivered}\\n")
            truth.flush()
            if k == exit_k and not exit_after_checkpoint:
                os._exit(1)
            ledger.checkpoint(sid, {810: delivered}, 5.0 * k)
            if k == exit_k:
                os._exit(1)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_a_process_cut_off_at_a_random_point_never_under_counts(tmp_path: Path, seed: int) -> None:
    truth_path = tmp_path / "truth.txt"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "state"), str(truth_path), str(seed)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline() == "ready\n"
        if seed % 2 == 0:
            time.sleep(random.Random(seed).uniform(0.0, 0.15))
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode != 0  # it was cut off, it did not finish
    lines = truth_path.read_text().split()
    true_j_cm2 = float(lines[-1]) if lines else 0.0
    with Ledger.open(tmp_path / "state", lambda: datetime.now(UTC)) as ledger:
        (sid,) = ledger.reconcile_after_crash()
        (record,) = ledger.sessions()
        checkpoints = ledger.checkpoints(sid)
    assert record.outcome == Outcome.POWER_LOST
    assert record.delivered_fluence_j_cm2[810] >= true_j_cm2
    assert record.delivered_fluence_j_cm2[810] <= 45.0
    last_checkpoint = checkpoints[-1].delivered_fluence_j_cm2[810] if checkpoints else 0.0
    assert record.delivered_fluence_j_cm2[810] >= last_checkpoint
