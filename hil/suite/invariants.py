"""Judging a ``hil.rigs.harness.InProcessRig`` run against the simulator's truth and the ledger.

Owns: ``TruthMonitor``, a tick watcher that, every 20 ms of a run (and every telemetry
period while the host is down), compares what the board really emits with what the
host is allowed to emit, attributes the delivered light to the ledger's sessions and
counts lease expiries; and ``ledger_findings``, the checks on the ledger's rows (dose
counted ≥ dose delivered, delivered ≤ plan, interval and weekly rules). Each check
returns or records readable findings; callers (the stateful test, the soak) decide
whether a finding fails. Does not own the stack or any safety decision.

Tolerances (docs/reliability.md, "Stateful property test and soak"):

* Light may outlast the last moment the controller was ``treating`` with skin contact
  by ``TRANSITION_S`` = one maximum lease (500 ms) + two ticks (40 ms) + the largest link
  delay injected so far: the host stops renewing at once, and the board's lease (or the
  OFF command, or the rail cut) ends the light within that.
* Irradiance may exceed a limit by ``IRRADIANCE_EPS_MW_CM2`` per channel (a margin for
  the 0.1 mA current quantisation; the host rounds down).
* Irradiance limits are judged on the calibrated value (truth ÷ the board's hidden
  residual factor, ≤ 0.25 %, which the ±10 % accuracy check covers). Dose is judged on
  the raw truth: the host counts with the calibration uncertainty bound
  (``safety.limits.CALIBRATION_UNCERTAINTY_FRACTION``), which must cover it.
* Per session, truth may exceed the plan by one telemetry period of light at the hard
  maximum irradiance (``PLAN_SLACK_J_CM2``), plus one maximum lease of it when the
  session was cut by a power cut (the board keeps its lease after the host died).
* The ledger may not count less than the truth, up to ``COUNT_EPS_J_CM2`` of float noise.
  (``strict_dose=False`` still tolerates ``OFF_EDGE_UNDERCOUNT_S`` of light per
  switch-off, the size of finding 2 in docs/reliability.md before it was fixed.)
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from firmware_host.machine import State
from safety.ledger import LEDGER_FILENAME
from safety.ledger_rules import WEEK_S
from safety.limits import HARD, LEASE_MAX_MS, Limits

if TYPE_CHECKING:
    from hil.rigs.harness import InProcessRig

__all__ = [
    "COUNT_EPS_J_CM2",
    "PLAN_SLACK_J_CM2",
    "TRANSITION_S",
    "LedgerView",
    "SessionTruth",
    "TruthMonitor",
    "ledger_findings",
]

TELEMETRY_PERIOD_S: Final = 0.02
LEASE_MAX_S: Final = LEASE_MAX_MS / 1000.0
TRANSITION_S: Final = LEASE_MAX_S + 2 * TELEMETRY_PERIOD_S
IRRADIANCE_EPS_MW_CM2: Final = 0.01
"""Margin per channel for drive-current quantisation (0.1 mA, about 0.005 mW/cm² at the
steepest calibration slope). The host rounds the current down, so what it sends never
exceeds what it checked; before that fix a 25 + 25 plan emitted 50.007 mW/cm²."""
PLAN_SLACK_J_CM2: Final = HARD.irradiance_max_mw_cm2 * TELEMETRY_PERIOD_S / 1000.0
POWER_CUT_SLACK_J_CM2: Final = HARD.irradiance_max_mw_cm2 * LEASE_MAX_S / 1000.0
COUNT_EPS_J_CM2: Final = 1e-9
OFF_EDGE_UNDERCOUNT_S: Final = TELEMETRY_PERIOD_S + 0.005  # a period + the OFF frame's transit
WAVELENGTH_BY_CHANNEL: Final = (810, 850)
LINK_FAULTS: Final = frozenset(
    {"link_drop", "link_corrupt", "link_delay", "link_duplicate", "disconnect", "brownout"}
)


@dataclass
class SessionTruth:
    """What the board really delivered while a session was the newest in the ledger."""

    fluence_j_cm2: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    first_light_truth_s: float | None = None
    last_light_truth_s: float | None = None
    power_cut: bool = False
    off_edges: int = 0


class LedgerView:
    """A read-only SQLite connection onto the ledger (WAL readers never block writers)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LEDGER_FILENAME
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def newest_session_id(self) -> int | None:
        if not self.path.exists():
            return None
        row = self._db().execute("SELECT max(id) FROM sessions").fetchone()
        return None if row[0] is None else int(row[0])

    def sessions(self) -> list[sqlite3.Row]:
        return list(self._db().execute("SELECT * FROM sessions ORDER BY id"))

    def fault_codes(self) -> list[str]:
        return [str(r[0]) for r in self._db().execute("SELECT code FROM faults ORDER BY id")]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TruthMonitor:
    """Tick watcher: light only in ``treating`` with contact, within limits; attribution."""

    def __init__(self, ledger: LedgerView, limits: Limits = HARD) -> None:
        self.ledger = ledger
        self.limits = limits
        self.findings: list[str] = []
        self.sessions: dict[int, SessionTruth] = defaultdict(SessionTruth)
        self.lease_expiries = 0
        self.missed_renewals = 0
        self.max_link_delay_s = 0.0
        self.ticks = 0
        self._last_ok_s: float | None = None
        self._last_fluence: list[float] | None = None
        self._host_wanted_light = False
        self._was_emitting = False
        self._events_seen = 0

    def __call__(self, stack: InProcessRig) -> None:
        self.ticks += 1
        board = stack.board
        board.advance_to(stack.clock())  # the board runs on even when nobody reads it
        state = board.state()
        now_s = float(state["t"])  # type: ignore[arg-type]
        events = stack.events_after(self._events_seen)
        self._events_seen += len(events)
        self._events(stack, events)
        host_state = stack.state
        if host_state is State.TREATING and state["contact"]:
            self._last_ok_s = now_s
        # limits hold on the calibrated value (the residual is inside the ±10 % accuracy
        # check); the dose below is judged on the raw truth, which the count must cover
        factors = board.optics.unit_factor
        irradiance = [
            float(v) / k
            for v, k in zip(state["irradiance_mw_cm2"], factors, strict=True)  # type: ignore[call-overload]
        ]
        emitting = any(v > 0 for v in irradiance)
        if emitting:
            self._judge_light(stack, now_s, irradiance, host_state, bool(state["contact"]))
        fluence = [float(v) for v in state["delivered_fluence_j_cm2"]]  # type: ignore[attr-defined]
        self._attribute(stack, fluence)
        if self._was_emitting and not emitting:
            newest = self.ledger.newest_session_id()
            if newest is not None:
                self.sessions[newest].off_edges += 1
        self._was_emitting = emitting
        self._host_wanted_light = host_state is State.TREATING

    def _judge_light(
        self,
        stack: InProcessRig,
        now_s: float,
        irradiance: list[float],
        host: State | None,
        contact: bool,
    ) -> None:
        per_max = self.limits.irradiance_max_mw_cm2 + IRRADIANCE_EPS_MW_CM2
        combined_max = self.limits.combined_irradiance_max_mw_cm2 + 2 * IRRADIANCE_EPS_MW_CM2
        if max(irradiance) > per_max or sum(irradiance) > combined_max:
            self._find(stack, f"irradiance {irradiance} mW/cm² over the limits")
        allowed_s = TRANSITION_S + self.max_link_delay_s
        if self._last_ok_s is None or now_s - self._last_ok_s > allowed_s:
            since = "never" if self._last_ok_s is None else f"{now_s - self._last_ok_s:.3f} s ago"
            self._find(
                stack,
                f"light {irradiance} mW/cm² in state {host} (contact {contact}); the host was "
                f"last treating with contact {since} (allowed {allowed_s:.3f} s)",
            )

    def _attribute(self, stack: InProcessRig, fluence: list[float]) -> None:
        last, self._last_fluence = self._last_fluence, fluence
        if last is None:
            return
        delta = [now - before for now, before in zip(fluence, last, strict=True)]
        if not any(d > 0 for d in delta):
            return
        session_id = self.ledger.newest_session_id()
        if session_id is None:
            self._find(stack, f"light delivered ({delta} J/cm²) with no session in the ledger")
            return
        truth = self.sessions[session_id]
        for channel, d in enumerate(delta):
            truth.fluence_j_cm2[channel] += d
        now_s = stack.wall.uptime_s()
        if truth.first_light_truth_s is None:
            truth.first_light_truth_s = now_s
        truth.last_light_truth_s = now_s
        if not stack.running:
            truth.power_cut = True

    def _events(self, stack: InProcessRig, events: list[dict[str, object]]) -> None:
        for event in events:
            kind = event.get("event")
            if kind == "injected" and event.get("fault") == "link_delay":
                params = event.get("params")
                delay_ms = params.get("delay_ms", 0.0) if isinstance(params, dict) else 0.0
                self.max_link_delay_s = max(self.max_link_delay_s, float(delay_ms) / 1000.0)
            elif kind == "lease_expired":
                self.lease_expiries += 1
                link_faulty = any(
                    inj["fault"] in LINK_FAULTS for inj in stack.board.injections.describe()
                )
                if self._host_wanted_light and stack.running and not link_faulty:
                    self.missed_renewals += 1

    def _find(self, stack: InProcessRig, message: str) -> None:
        self.findings.append(f"t={stack.clock():.3f} s: {message}")


def ledger_findings(
    view: LedgerView,
    truths: dict[int, SessionTruth],
    schedule_of: dict[str, tuple[float, int]],
    limits: Limits = HARD,
    *,
    strict_dose: bool = True,
) -> list[str]:
    """Every ledger row against the truth and the schedule rules; readable findings.

    ``schedule_of`` maps a profile's sha256 to its (min_interval_h, sessions_per_week)."""
    findings: list[str] = []
    rows = view.sessions()
    counted: list[sqlite3.Row] = []
    previous_start_s: float | None = None
    light_sessions: list[tuple[int, SessionTruth]] = []
    for row in rows:
        sid = int(row["id"])
        truth = truths.get(sid)
        if previous_start_s is not None and row["started_at_s"] < previous_start_s:
            findings.append(f"session {sid} starts before the session before it")
        previous_start_s = row["started_at_s"]
        interval_h, per_week = _rule(schedule_of, str(row["profile_sha256"]), limits)
        if row["delivered_total_j_cm2"] > 0 or row["ended_at_s"] is None:
            findings += _schedule_findings(row, counted, interval_h, per_week)
            counted.append(row)
        if truth is None:
            continue
        findings += _dose_findings(row, truth, strict_dose)
        if truth.first_light_truth_s is not None:
            if light_sessions:
                findings += _truth_interval(light_sessions[-1], (sid, truth), interval_h)
            light_sessions.append((sid, truth))
    return findings


def _rule(schedule_of: dict[str, tuple[float, int]], sha: str, limits: Limits) -> tuple[float, int]:
    interval_h, per_week = schedule_of.get(sha, (limits.min_interval_h, 1))
    return max(interval_h, limits.min_interval_h), min(per_week, limits.sessions_per_week_max)


def _schedule_findings(
    row: sqlite3.Row, counted: list[sqlite3.Row], interval_h: float, per_week: int
) -> list[str]:
    found: list[str] = []
    start_s = float(row["started_at_s"])
    ends = [float(r["ended_at_s"]) for r in counted if r["ended_at_s"] is not None]
    if any(r["ended_at_s"] is None for r in counted):
        found.append(f"session {row['id']} started while session(s) were still open")
    if ends and start_s - max(ends) < interval_h * 3600.0 - 1e-6:
        gap_h = (start_s - max(ends)) / 3600.0
        found.append(f"session {row['id']} started {gap_h:.3f} h after the last (< {interval_h} h)")
    in_week = [r for r in counted if float(r["started_at_s"]) > start_s - WEEK_S]
    if len(in_week) >= per_week:
        found.append(
            f"session {row['id']} is the {len(in_week) + 1}th in 7 days (at most {per_week})"
        )
    return found


def _dose_findings(row: sqlite3.Row, truth: SessionTruth, strict: bool) -> list[str]:
    found: list[str] = []
    edge_j = HARD.irradiance_max_mw_cm2 * OFF_EDGE_UNDERCOUNT_S / 1000.0
    under_ok = COUNT_EPS_J_CM2 + (0.0 if strict else truth.off_edges * edge_j)
    sid = row["id"]
    planned = {int(k): float(v) for k, v in json.loads(row["planned_j_cm2"]).items()}
    delivered = {int(k): float(v) for k, v in json.loads(row["delivered_j_cm2"]).items()}
    slack = PLAN_SLACK_J_CM2 + (POWER_CUT_SLACK_J_CM2 if truth.power_cut else 0.0)
    for channel, true_j in truth.fluence_j_cm2.items():
        wavelength = WAVELENGTH_BY_CHANNEL[channel]
        plan_j = planned.get(wavelength, 0.0)
        if true_j > plan_j + slack:
            found.append(
                f"session {sid} {wavelength} nm: delivered {true_j:.6f} J/cm² > plan "
                f"{plan_j:.6f} + {slack:.6f}"
            )
        if row["ended_at_s"] is not None and delivered.get(wavelength, 0.0) < true_j - under_ok:
            found.append(
                f"session {sid} {wavelength} nm: ledger counts {delivered.get(wavelength, 0.0):.6f}"
                f" J/cm² < delivered {true_j:.6f} (under by "
                f"{true_j - delivered.get(wavelength, 0.0):.6f}; outcome {row['outcome']})"
            )
    return found


def _truth_interval(
    before: tuple[int, SessionTruth], after: tuple[int, SessionTruth], interval_h: float
) -> list[str]:
    (sid_a, a), (sid_b, b) = before, after
    assert a.last_light_truth_s is not None and b.first_light_truth_s is not None
    gap_s = b.first_light_truth_s - a.last_light_truth_s
    if gap_s < interval_h * 3600.0 - TRANSITION_S:
        return [f"light of session {sid_b} came {gap_s / 3600.0:.3f} h after session {sid_a}'s"]
    return []
