"""Figures measured in-process on the virtual clock: dose accuracy, speed, the ledger.

Owns: running whole sessions (CW, pulsed, and CW with a pause) through the real
``SafetyCore`` + ``Controller`` + ``EventLoop`` over the in-process simulated board,
and turning them into the dose-accuracy and virtual-time-speed figures; and timing the
ledger's schedule query over ten years of history (``hil.bench.ledger``'s builder).
Does not own the stack (``figures_stack``) or the table (``figures_common``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from hil.bench.figures_common import Figure, iqr_spread, median, tail_spread
from hil.bench.figures_stack import BenchSetupError, bench_command, bench_profile, stack
from hil.bench.ledger import HistoryStats, build_history
from safety.faults import Outcome
from safety.ledger import Ledger

DOSE_TARGET_PCT: Final = 0.5
SESSION_S: Final = 1800.0  # the unit of the speed figure: one 30-minute session
SESSION_TARGET_S: Final = 5.0


@dataclass(frozen=True)
class SessionRun:
    """One whole session on the virtual clock."""

    mode: str  # "cw", "pulsed", "paused"
    planned_j_cm2: float
    delivered_true_j_cm2: float  # board truth, unit optical error removed
    delivered_host_j_cm2: float  # what the host counted (status / ledger)
    virtual_s: float  # virtual time from start to complete
    wall_s: float  # wall time the run took

    @property
    def error_pct(self) -> float:
        return (self.delivered_true_j_cm2 - self.planned_j_cm2) / self.planned_j_cm2 * 100.0


def run_session(mode: str, duration_min: int, *, seed: int = 3) -> SessionRun:
    """Boot, start, (pause a while,) run to ``complete``; never longer than plan + 15 min."""
    pulse_hz = 10.0 if mode == "pulsed" else None
    rx = bench_profile(duration_min=duration_min, pulse_hz=pulse_hz)
    assert rx.profile is not None
    planned = rx.profile.planned_fluence_total_j_cm2
    duration_s = duration_min * 60.0
    with (
        tempfile.TemporaryDirectory(prefix="nirpad-bench-dose-") as tmp,
        stack(Path(tmp), rx, seed=seed) as s,
    ):
        started_wall = time.perf_counter()
        started_s = s.clock()
        bench_command(s, "start")
        if mode == "paused":  # a third in, pause for a tenth of the session
            s.run(duration_s / 3)
            bench_command(s, "pause")
            s.run(duration_s / 10)
            bench_command(s, "resume")
        deadline_s = started_s + duration_s + 900.0
        while str(s.controller.state) != "complete" and s.clock() < deadline_s:
            s.run(5.0)
        wall_s = time.perf_counter() - started_wall
        if str(s.controller.state) != "complete":
            raise BenchSetupError(f"{mode} session ended in {s.controller.state}")
        host = float(s.controller.status()["fluence_j_cm2"])
        return SessionRun(
            mode, planned, s.true_fluence_calibrated_j_cm2(), host, s.clock() - started_s, wall_s
        )


class SessionCache:
    """Dose and speed share their sessions: each mode runs once per report."""

    def __init__(self, duration_min: int) -> None:
        self.duration_min = duration_min
        self._runs: dict[str, SessionRun] = {}

    def measured(self) -> list[str]:
        return list(self._runs)

    def get(self, mode: str) -> SessionRun:
        if mode not in self._runs:
            self._runs[mode] = run_session(mode, self.duration_min)
        return self._runs[mode]


def dose_figures(cache: SessionCache) -> list[Figure]:
    runs = [cache.get(mode) for mode in ("cw", "pulsed", "paused")]
    errors = [r.error_pct for r in runs]
    worst = max(abs(e) for e in errors)
    per_mode = ", ".join(f"{r.mode} {r.error_pct:+.4f} %" for r in runs)
    host = ", ".join(
        f"{r.mode} {(r.delivered_host_j_cm2 - r.planned_j_cm2) / r.planned_j_cm2 * 100:+.4f} %"
        for r in runs
    )
    return [
        Figure(
            "dose.error",
            f"dose error, delivered vs planned ({cache.duration_min}-min sessions)",
            "%",
            median(errors),
            len(runs),
            {"max |error|": worst},
            target=f"|error| ≤ {DOSE_TARGET_PCT} %",
            met=worst <= DOSE_TARGET_PCT,
            note=f"board truth, unit optical error removed: {per_mode}; host counted: {host}",
            details={"runs": [r.__dict__ | {"error_pct": r.error_pct} for r in runs]},
        )
    ]


def _host_share(wall_s: float, floor_s: float) -> str:
    return (
        f"; floor = the simulated board alone, with a host of no logic: {floor_s:.1f} s,"
        f" so the host takes {wall_s - floor_s:.1f} s"
    )


def speed_figures(cache: SessionCache, floor_s: float | None = None) -> list[Figure]:
    """The wall time of a 30-minute session, beside ``floor_s``: the simulated board's
    own share of it (``hil.bench.session_floor``), measured in the same run."""
    runs = [cache.get("cw")]  # and any other session the dose figure already ran
    runs += [cache.get(m) for m in cache.measured() if m != "cw"]
    rates = [r.virtual_s / SESSION_S / r.wall_s for r in runs]
    wall_per_30min = [r.wall_s * SESSION_S / r.virtual_s for r in runs]
    whole = cache.duration_min * 60.0 >= SESSION_S
    modes = ", ".join(f"{r.mode} {w:.1f} s" for r, w in zip(runs, wall_per_30min, strict=True))
    return [
        Figure(
            "speed.session_wall_s",
            "a 30-min session on the virtual clock (byte-level wire), wall time",
            "s",
            median(wall_per_30min),
            len(runs),
            {"min": min(wall_per_30min), "max": max(wall_per_30min)},
            target=f"≤ {SESSION_TARGET_S:g} s",
            met=median(wall_per_30min) <= SESSION_TARGET_S,
            floor=floor_s,
            note=modes
            + ("" if whole else f" (scaled from {cache.duration_min}-min sessions)")
            + ("" if floor_s is None else _host_share(median(wall_per_30min), floor_s)),
            details={"wall_s_per_30min_session": wall_per_30min},
        ),
        Figure(
            "speed.sessions_per_s",
            "virtual-time speed: 30-min sessions simulated per second",
            "sessions/s",
            median(rates),
            len(runs),
            {"min": min(rates), "max": max(rates)},
            target="≥ 1 (a 30-min session in < 1 s)",
            met=median(rates) >= 1.0,
            note=f"wall time per 30-min session: median {median(wall_per_30min):.1f} s",
            details={"wall_s_per_30min_session": wall_per_30min},
        ),
    ]


# ---------------------------------------------------------------- the ledger


def ledger_figures(years: int, runs: int, writes: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="nirpad-bench-ledger-") as tmp:
        history = build_history(Path(tmp), years=years)
        query, next_start, write = _ledger_samples(Path(tmp), history, runs, writes)
    size = f"{history.sessions:,} sessions, {history.checkpoints:,} checkpoints"
    return [
        Figure(
            "ledger.schedule_query",
            f"ledger schedule query (schedule_refusal) at {years} y of history",
            "ms",
            median(query, 1e3),
            len(query),
            tail_spread(query, 1e3),
            target="< 2 ms (aim of hil.bench.ledger)",
            met=median(query, 1e3) < 2.0,
            note=size,
        ),
        Figure(
            "ledger.next_start",
            f"ledger next_start_allowed_at at {years} y of history",
            "ms",
            median(next_start, 1e3),
            len(next_start),
            tail_spread(next_start, 1e3),
            note=size,
        ),
        Figure(
            "ledger.checkpoint_write",
            "ledger checkpoint write (WAL, synchronous=FULL)",
            "ms",
            median(write, 1e3),
            len(write),
            iqr_spread(write, 1e3) | {"p99": tail_spread(write, 1e3)["p99"]},
            note="one every 5 s while treating",
        ),
    ]


def _ledger_samples(
    state_dir: Path, history: HistoryStats, runs: int, writes: int
) -> tuple[list[float], list[float], list[float]]:
    """Raw samples (s) of the three ledger timings; the same calls as ``hil.bench.ledger``."""
    now = history.end + timedelta(hours=1)
    query, next_start, write = [], [], []
    with Ledger.open(state_dir, lambda: now) as ledger:
        for _ in range(runs):
            t0 = time.perf_counter()
            ledger.schedule_refusal(20.0, 7)
            t1 = time.perf_counter()
            ledger.next_start_allowed_at(20.0, 7)
            next_start.append(time.perf_counter() - t1)
            query.append(t1 - t0)
        planned = {810: 44.25, 850: 44.25}
        sid = ledger.begin_session("bench", "cd" * 32, planned, planned_duration_s=1800)
        for k in range(1, writes + 1):
            t0 = time.perf_counter()
            ledger.checkpoint(sid, {810: k * 0.1, 850: k * 0.1}, k * 5.0)
            write.append(time.perf_counter() - t0)
        ledger.end_session(sid, Outcome.STOPPED, {810: writes * 0.1, 850: writes * 0.1})
    return query, next_start, write
