"""Soak runs: many sessions on the virtual clock, or real time against the processes.

Owns: the two long-run commands (docs/reliability.md) and their figures (RSS growth, ledger size,
missed lease renewals, sessions completed / faulted, invariant findings).

    python -m hil.tools.soak --sessions 1000 --seed N [--session-min 2] [--fault-rate 0.3]
    python -m hil.tools.soak --realtime --minutes 60

Virtual: one ``hil.rigs.harness.InProcessRig`` (one process, one ledger) runs back-to-back sessions;
between sessions 20–30 h of idle time pass on the wall clock (not simulated). Each
session may get a random simulator fault (then cleared and acknowledged), a power cut
or a contact loss. ``hil.suite.invariants`` judges every tick and the whole ledger.
Real time: ``python -m hil.sim`` on a pty and ``nirpad run --port`` as two processes;
one session is started over the control socket, then the run idles to the end. The
simulator's ``lease_expired`` events while ``nirpad status`` says ``treating`` are
missed renewals. Does not own any safety decision or the stack itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from firmware_host.machine import State
from firmware_host.state_lock import LOCK_FILE_NAME, StateDirBusy, StateLock
from hil.rigs.clinic import has_rig_site, profile_toml, reissued_today, sign, trust_rig_clinic
from hil.rigs.controller_child import ControllerNotReadyError
from hil.rigs.harness import InProcessRig
from hil.suite.invariants import LedgerView, TruthMonitor, ledger_findings
from hil.tools.arg_types import at_least, positive, probability
from hil.tools.report_out import print_report
from hil.tools.stall_monitor import StallMonitor
from profiles.shipped import BUILTIN_IDS

HOUR_S: Final = 3600.0
INTERRUPTED_EXIT: Final = 130  # the shell's code for SIGINT
FAULTS: Final[tuple[tuple[str, dict[str, object]], ...]] = (
    ("skin_overtemp", {}), ("ntc_open", {"sensor": "skin_b"}), ("ntc_short", {}),
    ("ntc_drift", {"rate_c_per_min": 30.0}), ("led_open", {"channel": 0}),
    ("led_short", {"channel": 1}), ("stuck_on", {}), ("board_overtemp", {}),
    ("contact_lost", {}), ("link_drop", {"duration_ms": 300.0}),
    ("link_corrupt", {"rate": 0.05}), ("link_delay", {"delay_ms": 30.0}),
    ("link_duplicate", {}), ("brownout", {}), ("disconnect", {}), ("button_stuck", {}),
    ("button_bounce", {}),
)  # fmt: skip


def rss_kib() -> int:
    """This process's resident set size now (not the peak), in KiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def ledger_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("ledger.sqlite3*"))


def _one_session(
    stack: InProcessRig, rng: random.Random, fault_rate: float, session_s: float
) -> None:
    stack.skip_idle(rng.uniform(20.5, 30.0) * HOUR_S)
    stack.run(1.5)
    if stack.state is State.COMPLETE:
        stack.press("short")
        stack.run(1.0)
    stack.press("short")
    stack.run(1.0 + rng.uniform(0.0, session_s))
    roll = rng.random()
    if roll < fault_rate:
        kind, params = FAULTS[rng.randrange(len(FAULTS))]
        stack.inject(kind, **params)
        stack.run(rng.choice((0.1, 1.0, 5.0)))
        stack.clear_injections()
        stack.run(1.0)
    elif roll < fault_rate + 0.05:
        stack.restart(rng.choice((0.0, 0.3, 2.0)))
    elif roll < fault_rate + 0.10:
        stack.set_contact(False)
        stack.run(2.0)
        stack.set_contact(True)
        stack.press("short")  # resume
        stack.run(1.0)
    stack.run(session_s + 5.0)
    _settle(stack)


def _settle(stack: InProcessRig) -> None:
    """Leave the pad ready for the next session: acknowledge, restart if it must."""
    for _ in range(3):
        state = stack.state
        if state is State.FAULT:
            stack.press("long")
            stack.run(4.0)
        elif state in (State.TREATING, State.PAUSED):
            stack.command("stop")
            stack.run(0.5)
        else:
            break
    if stack.state is State.FAULT:  # a fault that needs a restart (disconnect, version)
        stack.close()
        stack.start_host()
        stack.controller.boot()
        stack.run(1.0)


def run_virtual(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="nirpad-soak-") as tmp:
        state_dir = Path(args.state_dir) if args.state_dir else Path(tmp)
        view = LedgerView(state_dir)
        monitor = TruthMonitor(view)
        stack = InProcessRig.build(state_dir, profile_id=None, seed=args.seed)
        stack.controller.boot()
        stack.tick_watchers.append(monitor)
        rx = profile_toml(
            profile_id="soak", irradiance_mw_cm2=(22.5, 22.5), duration_min=args.session_min,
            ramp_s=10.0, sessions_per_week=7, min_interval_h=20.0, expires="2028-01-01",
        )  # fmt: skip
        outcome = stack.install(rx)
        assert outcome.ok, outcome
        schedule = {outcome.sha256: (20.0, 7)}
        started = time.perf_counter()
        rss_start = rss_end = rss_kib()
        findings: list[str] = []
        try:
            for n in range(args.sessions):
                _one_session(stack, rng, args.fault_rate, args.session_min * 60.0)
                if n == min(9, args.sessions - 1):
                    rss_start = rss_kib()  # after warm-up (imports, caches)
                if (n + 1) % 50 == 0 or n + 1 == args.sessions:
                    findings = monitor.findings + ledger_findings(view, monitor.sessions, schedule)
                    _progress(n + 1, started, stack, findings)
            rss_end = rss_kib()
        finally:
            stack.close()
            rows = view.sessions() if view.path.exists() else []
            view.close()
        outcomes: dict[str, int] = {}
        for row in rows:
            outcomes[str(row["outcome"])] = outcomes.get(str(row["outcome"]), 0) + 1
        return {
            "mode": "virtual",
            "sessions_attempted": args.sessions,
            "session_min": args.session_min,
            "seed": args.seed,
            "wall_s": round(time.perf_counter() - started, 1),
            "virtual_s": round(stack.clock() - 1000.0, 1),
            "sessions_in_ledger": len(rows),
            "outcomes": outcomes,
            "power_cuts": stack.power_cuts,
            "rss_growth_kib": rss_end - rss_start,
            "ledger_bytes": ledger_bytes(state_dir) if args.state_dir else None,
            "lease_expiries": monitor.lease_expiries,
            "missed_lease_renewals": monitor.missed_renewals,
            "findings": findings[:20],
            "findings_count": len(findings),
        }


def _progress(n: int, started: float, stack: InProcessRig, findings: list[str]) -> None:
    rate = n / max(1e-9, time.perf_counter() - started)
    print(f"{n} sessions, {rate:.2f}/s, rss {rss_kib()} KiB, findings {len(findings)}",
          file=sys.stderr, flush=True)  # fmt: skip


def _fault_of(data: object) -> object:
    return data.get("fault") if isinstance(data, dict) else None


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_realtime(args: argparse.Namespace) -> dict[str, Any]:
    from firmware_host.control_client import send
    from firmware_host.sim_process import RECENT_EVENTS
    from hil.rigs.controller_child import ControllerChild, sim_board_args
    from hil.rigs.sim_child import SimChild

    events: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nirpad-soak-rt-") as tmp:
        state_dir = Path(args.state_dir) if args.state_dir else Path(tmp)
        state_dir.mkdir(parents=True, exist_ok=True)
        rail = state_dir / "sim-rail"
        sim = SimChild("--rail-file", str(rail), "--seed", str(args.seed), keep=RECENT_EVENTS,
                       on_event=events.append)  # fmt: skip
        trust_rig_clinic(state_dir)  # as the in-process rig's site: the rigs' clinic signs
        (state_dir / "rx.toml").write_bytes(sign(reissued_today(args.profile)))
        subprocess.run(
            [sys.executable, "-m", "firmware_host", "profile", "install", "--state-dir",
             str(state_dir), str(state_dir / "rx.toml")], capture_output=True, check=True,
        )  # fmt: skip
        try:
            host = ControllerChild(
                sim_board_args(sim.port, rail_file=rail, state_dir=state_dir),
                log_path=state_dir / "controller.log", notify_path=state_dir / "notify",
            )  # fmt: skip
        except BaseException:
            sim.close()
            raise
        try:
            with StallMonitor() as stalls:
                report = _realtime_loop(args, state_dir, host.proc, events, send)
            return {**report, "machine_stalls": stalls.report()}
        finally:
            host.stop()
            sim.close()


def _realtime_loop(
    args: argparse.Namespace,
    state_dir: Path,
    host: subprocess.Popen[bytes],
    events: list[dict[str, Any]],
    send: Any,
) -> dict[str, Any]:
    began = time.monotonic()
    deadline = began + args.minutes * 60.0
    time.sleep(3.0)
    rss_first = _proc_rss_kib(host.pid)
    start = send(state_dir, {"cmd": "start"})
    rss: list[int] = []
    states: dict[str, int] = {}
    missed = seen = 0
    interrupted = False
    first_fault: tuple[str, object] | None = None
    try:
        while time.monotonic() < deadline and host.poll() is None:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            reply = send(state_dir, {"cmd": "status"}) or {}
            data = reply.get("data")
            state = str((data if isinstance(data, dict) else reply).get("state"))
            states[state] = states.get(state, 0) + 1
            if state == "fault" and first_fault is None:
                first_fault = (
                    _utc_now_iso(),
                    data.get("fault") if isinstance(data, dict) else None,
                )
            new, seen = events[seen:], len(events)
            if state == "treating":
                missed += sum(1 for e in new if e.get("event") == "lease_expired")
            rss.append(_proc_rss_kib(host.pid))
    except KeyboardInterrupt:
        interrupted = True  # Ctrl-C: report what was measured so far
    view = LedgerView(state_dir)
    try:
        rows = view.sessions()
    finally:
        view.close()
    return {
        "mode": "realtime",
        "minutes": args.minutes,
        "interrupted": interrupted,
        "minutes_run": round((time.monotonic() - began) / 60.0, 1),
        "start_reply": start,
        "host_alive": host.poll() is None,
        "rss_first_kib": rss_first,
        "rss_growth_kib": (rss[-1] - rss[min(len(rss) - 1, 2)]) if rss else None,
        "rss_max_kib": max(rss) if rss else None,
        "rss_per_minute_kib": rss[::12],  # one sample of every 12 (5 s apart)
        "ledger_bytes": ledger_bytes(state_dir),
        "sessions": [(r["outcome"], round(r["delivered_total_j_cm2"], 3)) for r in rows],
        "status_samples_by_state": states,
        "lease_expired_events": sum(1 for e in events if e.get("event") == "lease_expired"),
        "missed_lease_renewals": missed,
        "first_fault_seen": first_fault,
        "controller_log": str(state_dir / "controller.log"),
    }


def _setup_failure(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        said = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        return f"installing the soak's prescription failed (exit {exc.returncode}): {said}"
    return str(exc)


def state_dir_problem(state_dir: Path) -> str | None:
    """Why a soak must not use ``state_dir``, checked before it writes anything there: a
    soak trusts the rig clinic's test key in its ``site.toml`` and installs its own
    prescription, so only an empty folder or one a rig made will do, and never one a
    running controller holds."""
    held = [p for p in state_dir.iterdir() if p.name != LOCK_FILE_NAME]
    if held and not has_rig_site(state_dir):
        return (
            "it holds files but not a rig's site.toml (a pad's state directory?); "
            "a soak writes its own test key and prescription there: give an empty folder"
        )
    try:
        StateLock.acquire(state_dir, purpose="soak").release()
    except StateDirBusy as exc:
        return str(exc)
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.tools.soak", description=__doc__)
    parser.add_argument("--sessions", type=at_least(1), default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--session-min", type=at_least(1), default=2, help="each session's length")
    parser.add_argument("--fault-rate", type=probability, default=0.3)
    parser.add_argument("--state-dir", help="keep the ledger here (default: a temporary one)")
    parser.add_argument("--realtime", action="store_true", help="processes, real time")
    parser.add_argument("--minutes", type=positive, default=60.0)
    parser.add_argument(
        "--profile", default="rls-dual", choices=BUILTIN_IDS, help="built-in profile (realtime)"
    )
    args = parser.parse_args(argv)
    if args.state_dir is not None:
        try:
            Path(args.state_dir).mkdir(parents=True, exist_ok=True)
            problem = state_dir_problem(Path(args.state_dir))
        except OSError as exc:
            parser.error(f"--state-dir {args.state_dir}: not a folder that can be used ({exc})")
        if problem is not None:
            parser.error(f"--state-dir {args.state_dir}: {problem}")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends it as Ctrl-C does
    try:
        report = run_realtime(args) if args.realtime else run_virtual(args)
    except KeyboardInterrupt:
        print("hil.tools.soak: interrupted; the stack was closed, no report", file=sys.stderr)
        return INTERRUPTED_EXIT
    except (ControllerNotReadyError, subprocess.CalledProcessError) as exc:  # real time
        print(f"python -m hil.tools.soak: {_setup_failure(exc)}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not print_report(json.dumps(report, indent=2, default=str), "python -m hil.tools.soak"):
        return 1
    if report.get("interrupted"):
        return INTERRUPTED_EXIT
    bad = report.get("findings_count", 0) or report.get("missed_lease_renewals", 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
