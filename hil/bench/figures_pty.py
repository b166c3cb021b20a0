"""Real-time figures: a real ``nirpad run`` against ``python -m hil.sim`` on a pty.

Owns: the fault→outputs-off latency (``skin_overtemp`` injected while treating), the
host SIGKILL→outputs-off latency, a stuck driver + host SIGKILL→rail-off latency (the
dead-man rail's hold circuit, simulated), the controller's CPU and RSS while treating, the
boot-to-``ready`` time, and the event loop's tick jitter (the real loop, in this process,
on the pty simulator in real time). Every latency is taken on the simulator's clock:
its ``injected`` event's ``"t"`` to its ``output`` off event's ``"t"``.

The interval rule (20 h between sessions) would allow one session per state
directory. Between injections the bench therefore *ages its own throwaway ledger*: it
shifts each finished session 8 days into the past, once (``age_ledger``), so the next
``start`` is allowed and the course (4 weeks from its first session) never runs out.
This touches only the temporary state directory the bench made; the controller's
guards run unchanged. SIGKILL runs use a fresh state directory each.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from hil.bench.cpu_floor import cpu_floor_pct, cpu_windows_pct
from hil.bench.figures_common import (
    TELEMETRY_PERIOD_S,
    Figure,
    fault_floor_s,
    iqr_spread,
    median,
    percentile,
    set_output_wire_s,
    tail_spread,
)
from hil.bench.figures_procs import (
    HostProcess,
    SimChild,
    install_prescription,
    pty_pair,
    rail_file,
)
from hil.bench.figures_stack import BenchSetupError
from safety.board_kind import BoardKind
from safety.interlock import DEFAULT_LEASE_MS
from safety.ledger import LEDGER_FILENAME
from safety.rail import RAIL_HOLD_S

AGE_S: Final = 8 * 24 * 3600.0
CPU_TARGET_MEDIAN_PCT: Final = 1.0
CPU_TARGET_P95_PCT: Final = 1.5
RSS_TARGET_MB: Final = 60.0


@dataclass
class RunContext:
    """What the real-time collectors share: the baud rate, and boot times as they come."""

    baud: int = 115200
    boot_s: list[float] = field(default_factory=list)


def is_output(on: bool) -> Callable[[dict[str, object]], bool]:
    return lambda e: e.get("event") == "output" and e.get("on") is on


def age_ledger(state_dir: Path, by_s: float = AGE_S) -> None:
    """Bench only: move the finished sessions of a throwaway ledger ``by_s`` into the past.

    A session already moved stays where it is: moving the first one again on every
    call would put it more than the course's 4 weeks back after a few injections.
    """
    cutoff_s = time.time() - by_s
    conn = sqlite3.connect(state_dir / LEDGER_FILENAME, timeout=10.0, isolation_level=None)
    try:
        conn.execute(
            "UPDATE sessions SET started_at_s = started_at_s - ?, ended_at_s = ended_at_s - ? "
            "WHERE ended_at_s IS NOT NULL AND ended_at_s > ?",
            (by_s, by_s, cutoff_s),
        )
    finally:
        conn.close()


@contextlib.contextmanager
def _rig(ctx: RunContext) -> Iterator[tuple[SimChild, Callable[[str], HostProcess], Path]]:
    with (
        tempfile.TemporaryDirectory(prefix="nirpad-bench-pty-") as tmp,
        pty_pair(Path(tmp), ctx.baud) as (sim, make_host),
    ):

        def host(name: str) -> HostProcess:
            started = make_host(name)
            ctx.boot_s.append(started.boot_s)
            return started

        yield sim, host, Path(tmp)


def _start_treating(sim: SimChild, host: HostProcess) -> None:
    sim.drain()
    reply = host.command("start")
    if not reply.get("ok"):
        raise BenchSetupError(f"start refused: {reply.get('message')}")
    sim.next_event(is_output(True), 5.0)


# ---------------------------------------------------------------- fault → off


def fault_latency_figures(ctx: RunContext, injections: int, seed: int = 1) -> list[Figure]:
    rng = random.Random(seed)
    samples: list[float] = []
    earlier: list[object] = []  # faults that turned the light off before the injection
    with _rig(ctx) as (sim, make_host, _):
        host = make_host("fault")
        for _ in range(injections):
            _start_treating(sim, host)
            treating = sim.mark()
            time.sleep(rng.uniform(0.05, 0.25))  # a random phase against the 20 ms frames
            sim.send({"cmd": "inject", "fault": "skin_overtemp"})
            injected = sim.next_event(lambda e: e.get("event") == "injected", 5.0)
            if _off_before_injection(sim.since(treating)):
                earlier.append(host.request({"cmd": "status"})["data"].get("fault"))
            else:
                off = sim.next_event(is_output(False), 5.0)
                samples.append(float(off["t"]) - float(injected["t"]))
            sim.send({"cmd": "clear"})
            _acknowledge(host)
            age_ledger(host.state_dir)
    floor_ms = fault_floor_s(ctx.baud) * 1e3
    p99 = tail_spread(samples, 1e3)["p99"]
    return [
        Figure(
            "fault_latency.skin_overtemp",
            "fault→outputs-off latency (skin_overtemp while treating, sim clock)",
            "ms",
            median(samples, 1e3),
            len(samples),
            tail_spread(samples, 1e3),
            target=f"p99 ≤ 1.25 × floor = {1.25 * floor_ms:.1f} ms",
            met=p99 <= 1.25 * floor_ms,
            floor=floor_ms,
            note=f"floor = {TELEMETRY_PERIOD_S * 1e3:g} ms telemetry period + TELEMETRY and "
            f"OUTPUT_OFF frames at {ctx.baud} baud; injected at a random phase"
            + (f"; {len(earlier)} runs dark before the injection (not counted)" if earlier else ""),
            details={"samples_ms": [s * 1e3 for s in samples], "dark_before": earlier},
        )
    ]


def _off_before_injection(events: list[dict[str, object]]) -> bool:
    """Whether the light went off (another fault: a host starved of CPU lets its
    telemetry go stale) after treating began but before the injection was made."""
    for event in events:
        if event.get("event") == "injected":
            return False
        if is_output(False)(event):
            return True
    return False


def _acknowledge(host: HostProcess, timeout_s: float = 10.0) -> None:
    """Acknowledge the fault once the controller accepts it (cause cleared), then ready."""
    host.wait_state("fault", timeout_s)
    deadline_s = time.monotonic() + timeout_s
    while not host.command("ack").get("ok"):
        if time.monotonic() > deadline_s:
            raise BenchSetupError(f"fault not acknowledged in {timeout_s:g} s")
        time.sleep(0.05)
    host.wait_state("ready", timeout_s)


# ---------------------------------------------------------------- SIGKILL → off


def sigkill_figures(ctx: RunContext, runs: int, seed: int = 2) -> list[Figure]:
    rng = random.Random(seed)
    samples: list[float] = []
    offsets: list[float] = []
    with _rig(ctx) as (sim, make_host, _):
        offset_s, _uncertainty_s = sim.clock_offset_s()
        offsets.append(offset_s)
        for run in range(runs):
            host = make_host(f"kill-{run}")
            _start_treating(sim, host)
            time.sleep(rng.uniform(0.2, 0.5))
            sim.drain()
            killed_s = time.monotonic()
            host.kill()
            off = sim.next_event(is_output(False), 5.0)
            samples.append(float(off["t"]) - (killed_s + offset_s))
            host.close()
    lease_ms = float(DEFAULT_LEASE_MS)
    floor_ms = lease_ms - TELEMETRY_PERIOD_S * 1e3 + set_output_wire_s(ctx.baud) * 1e3
    worst = max(samples) * 1e3
    return [
        Figure(
            "sigkill.latency",
            "host SIGKILL→outputs-off latency (lease expiry, sim clock)",
            "ms",
            median(samples, 1e3),
            len(samples),
            tail_spread(samples, 1e3),
            target=f"≤ lease + 25 ms = {lease_ms + 25:g} ms",
            met=worst <= lease_ms + 25,
            floor=floor_ms,
            note=f"lease {lease_ms:g} ms, renewed every 20 ms tick; floor = lease − one tick "
            f"+ SET_OUTPUT on the wire; sim clock − ours = {offsets[0] * 1e3:+.1f} ms",
            details={"samples_ms": [s * 1e3 for s in samples]},
        )
    ]


def stuck_sigkill_figures(ctx: RunContext, runs: int, seed: int = 3) -> list[Figure]:
    """A stuck LED driver, then the host SIGKILLed: only the rail's hold circuit ends
    the light (docs/hardware.md). Measured to the simulator's ``output`` off event."""
    rng = random.Random(seed)
    samples: list[float] = []
    causes: list[object] = []
    with _rig(ctx) as (sim, make_host, _):
        offset_s, _uncertainty_s = sim.clock_offset_s()
        for run in range(runs):
            host = make_host(f"stuck-{run}")
            _start_treating(sim, host)
            time.sleep(rng.uniform(0.2, 0.5))
            sim.send({"cmd": "inject", "fault": "stuck_on"})
            sim.next_event(lambda e: e.get("event") == "injected", 5.0)
            sim.drain()
            killed_s = time.monotonic()
            host.kill()
            rail = sim.next_event(lambda e: e.get("event") == "rail", 5.0)
            off = sim.next_event(is_output(False), 5.0)
            causes.append(rail.get("cause"))
            samples.append(float(off["t"]) - (killed_s + offset_s))
            host.close()
            sim.send({"cmd": "clear"})
    hold_ms = RAIL_HOLD_S * 1e3
    floor_ms = hold_ms - TELEMETRY_PERIOD_S * 1e3
    worst = max(samples) * 1e3
    return [
        Figure(
            "sigkill.stuck_rail_off",
            "stuck driver + host SIGKILL→rail off (hold circuit, sim clock)",
            "ms",
            median(samples, 1e3),
            len(samples),
            tail_spread(samples, 1e3),
            target=f"≤ hold + 25 ms = {hold_ms + 25:g} ms",
            met=worst <= hold_ms + 25 and all(c == "heartbeat_lost" for c in causes),
            floor=floor_ms,
            note=f"hold {hold_ms:g} ms from the last heartbeat (one per 20 ms tick, seen "
            "through the rail file, polled every 10 ms); floor = hold − one tick; the lease "
            "cannot end a stuck driver's light",
            details={"samples_ms": [s * 1e3 for s in samples], "causes": causes},
        )
    ]


# ---------------------------------------------------------------- CPU and RSS


def cpu_time_s(pid: int) -> float:
    """CPU time of ``pid`` so far: /proc schedstat (ns), else utime + stime (clock ticks)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise BenchSetupError(f"no VmRSS for pid {pid}")


def resource_figures(ctx: RunContext, duration_s: float, window_s: float = 1.0) -> list[Figure]:
    rss_mb: list[float] = []
    with _rig(ctx) as (sim, make_host, _):
        host = make_host("resources")
        _start_treating(sim, host)
        pid = host.pid
        cpu_pct = cpu_windows_pct(
            pid, duration_s, cpu_time_s, window_s, lambda: rss_mb.append(_rss_mb(pid))
        )
        if host.state() != "treating":
            raise BenchSetupError(f"the session stopped while measured: {host.state()}")
    note = f"/proc of the nirpad run process, {window_s:g} s windows over {duration_s:g} s treating"
    cpu_median, cpu_p95 = median(cpu_pct), percentile(cpu_pct, 95)
    floor_pct = median(cpu_floor_pct(min(duration_s, 10.0), cpu_time_s))
    return [
        Figure(
            "resources.cpu",
            "controller CPU while treating (% of one core)",
            "%",
            cpu_median,
            len(cpu_pct),
            iqr_spread(cpu_pct) | {"p95": cpu_p95, "max": max(cpu_pct)},
            target=f"median ≤ {CPU_TARGET_MEDIAN_PCT:g} %, p95 ≤ {CPU_TARGET_P95_PCT:g} %",
            met=cpu_median <= CPU_TARGET_MEDIAN_PCT and cpu_p95 <= CPU_TARGET_P95_PCT,
            floor=floor_pct,
            note=note + " (CPU time from /proc/PID/schedstat); floor = the same wire traffic "
            "and rail heartbeat with no logic (hil.bench.cpu_floor)",
        ),
        Figure(
            "resources.rss",
            "controller RSS while treating",
            "MB",
            median(rss_mb),
            len(rss_mb),
            {"max": max(rss_mb)},
            target=f"< {RSS_TARGET_MB:g} MB",
            met=max(rss_mb) < RSS_TARGET_MB,
            note=note,
        ),
    ]


# ---------------------------------------------------------------- tick jitter


def jitter_figures(ctx: RunContext, duration_s: float) -> list[Figure]:
    """The real ``EventLoop`` in this process, real time, treating on the pty simulator."""
    from firmware_host.runner import build_app

    with (
        tempfile.TemporaryDirectory(prefix="nirpad-bench-jitter-") as tmp,
        rail_file() as rail,
    ):
        state_dir = Path(tmp) / "state"
        install_prescription(state_dir)
        sim = SimChild(rail, ctx.baud)
        try:
            with contextlib.ExitStack() as stack:
                app = build_app(
                    stack, state_dir=state_dir, port_url=sim.port, rail_pin=None,
                    rail_file=rail, site_config=None, board=BoardKind.simulated(1.0),
                )  # fmt: skip
                if str(app.controller.boot()) != "ready":
                    raise BenchSetupError(f"boot ended in {app.controller.state}")
                reply = app.controller.command("start")
                if not reply.ok:
                    raise BenchSetupError(f"start refused: {reply.message}")
                app.loop.run(stop=threading.Event(), until_s=time.monotonic() + duration_s)
                samples = list(app.loop.tick_jitter_s)
                treating = str(app.controller.state)
        finally:
            sim.close()
    return [
        Figure(
            "jitter.tick",
            "event-loop tick lateness (20 ms tick, real time)",
            "ms",
            median(samples, 1e3),
            len(samples),
            tail_spread(samples, 1e3),
            target="— (reported; p99 is the figure)",
            note=f"EventLoop.tick_jitter_s, in-process loop on the pty simulator, "
            f"{duration_s:g} s {treating}",
        )
    ]


# ---------------------------------------------------------------- start-up


def boot_figures(ctx: RunContext, extra_boots: int) -> list[Figure]:
    """Boot-to-``ready`` of every ``nirpad run`` started so far, plus ``extra_boots`` more."""
    if extra_boots > 0:
        with _rig(ctx) as (_, make_host, _):
            for run in range(extra_boots):
                make_host(f"boot-{run}").close()
    samples = ctx.boot_s
    return [
        Figure(
            "startup.boot_to_ready",
            "boot to ready (nirpad run start → READY=1, state ready)",
            "s",
            median(samples),
            len(samples),
            iqr_spread(samples) | {"max": max(samples)},
            note="process start to sd_notify READY: imports, ledger, handshake, self-test",
        )
    ]


def help_figures(runs: int) -> list[Figure]:
    import subprocess
    import sys

    nirpad = Path(sys.executable).with_name("nirpad")
    argv = [str(nirpad)] if nirpad.exists() else [sys.executable, "-m", "firmware_host"]
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*argv, "--help"], check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return [
        Figure(
            "startup.help",
            "`nirpad --help` start-up (subprocess)",
            "s",
            median(samples),
            len(samples),
            iqr_spread(samples) | {"max": max(samples)},
            note=f"{Path(argv[0]).name} {' '.join(argv[1:])}".strip(),
        )
    ]
