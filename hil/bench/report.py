"""``python -m hil.bench [report]``: the performance report.

Owns: choosing which figures to collect (``--only``, ``--quick``), running each
collector so that one failure becomes a row that says why instead of a crash, and
writing ``bench-results.json`` and ``bench-results.md`` (the Markdown table, also
printed, with an earlier run's medians beside this run's: ``--before``). Does not own
measuring (the ``figures_*`` modules) or the table layout (``figures_common``). The
report states figures against targets; it never fails on them: the exit code is 0
unless the arguments are wrong.

docs/performance.md says what each figure means and how to read it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hil.bench.figures_common import Figure, missing, render_markdown
from hil.tools.arg_types import at_least
from hil.tools.report_out import print_report

log = logging.getLogger(__name__)

JSON_NAME: Final = "bench-results.json"
BEFORE_DEFAULT: Final = Path(__file__).resolve().parents[2] / "docs" / "bench-before.json"
"""The report of the code before the hot-path work (docs/performance.md), shown beside."""
MD_NAME: Final = "bench-results.md"
PROG: Final = "python -m hil.bench report"


@dataclass(frozen=True)
class Sizes:
    """How much of each figure to collect; ``QUICK`` is a smoke run of every collector."""

    injections: int = 200
    kill_runs: int = 5
    jitter_s: float = 10.0
    resources_s: float = 30.0
    session_min: int = 30
    help_runs: int = 10
    boots: int = 5
    ledger_years: int = 10
    ledger_runs: int = 200
    ledger_writes: int = 100
    frames: int = 3000
    course_sessions: int = 12  # of ``session_min`` minutes each


FULL: Final = Sizes()
FLOOR_VIRTUAL_MAX_S: Final = 600.0  # the speed figure's floor: 10 min, scaled to 30
QUICK: Final = Sizes(
    injections=5, kill_runs=1, jitter_s=2.0, resources_s=2.0, session_min=1, help_runs=2,
    boots=1, ledger_years=1, ledger_runs=20, ledger_writes=10, frames=300, course_sessions=2,
)  # fmt: skip


class Run:
    """One report run: the sizes, and what collectors share (boot times, sessions)."""

    def __init__(self, sizes: Sizes, baud: int) -> None:
        from hil.bench.figures_inprocess import SessionCache
        from hil.bench.figures_pty import RunContext

        self.sizes = sizes
        self.pty = RunContext(baud=baud)
        self.sessions = SessionCache(sizes.session_min)
        self._floor_s: float | None = None

    def session_floor_s(self) -> float:
        """The simulated board's own wall time for a 30-minute session (measured once a
        run; the speed and course figures read theirs against it)."""
        from hil.bench.figures_inprocess import SESSION_S
        from hil.bench.session_floor import session_floor_s

        if self._floor_s is None:
            virtual_s = min(60.0 * self.sizes.session_min, FLOOR_VIRTUAL_MAX_S)
            self._floor_s = session_floor_s(virtual_s) * SESSION_S / virtual_s
        return self._floor_s


def _fault_latency(run: Run) -> list[Figure]:
    from hil.bench.figures_pty import fault_latency_figures

    return fault_latency_figures(run.pty, run.sizes.injections)


def _sigkill(run: Run) -> list[Figure]:
    from hil.bench.figures_pty import sigkill_figures

    return sigkill_figures(run.pty, run.sizes.kill_runs)


def _sigkill_stuck(run: Run) -> list[Figure]:
    from hil.bench.figures_pty import stuck_sigkill_figures

    return stuck_sigkill_figures(run.pty, run.sizes.kill_runs)


def _resources(run: Run) -> list[Figure]:
    from hil.bench.figures_pty import resource_figures

    return resource_figures(run.pty, run.sizes.resources_s)


def _jitter(run: Run) -> list[Figure]:
    from hil.bench.figures_pty import jitter_figures

    return jitter_figures(run.pty, run.sizes.jitter_s)


def _startup(run: Run) -> list[Figure]:
    from hil.bench.figures_pty import boot_figures, help_figures

    extra = max(0, run.sizes.boots - len(run.pty.boot_s))
    return help_figures(run.sizes.help_runs) + boot_figures(run.pty, extra)


def _dose(run: Run) -> list[Figure]:
    from hil.bench.figures_inprocess import dose_figures

    return dose_figures(run.sessions)


def _speed(run: Run) -> list[Figure]:
    from hil.bench.figures_inprocess import speed_figures

    return speed_figures(run.sessions, run.session_floor_s())


def _frame_path(run: Run) -> list[Figure]:
    from hil.bench.figures_frame import frame_path_figures

    return frame_path_figures(run.sizes.frames)


def _course(run: Run) -> list[Figure]:
    from hil.bench.figures_course import course_figures

    sizes = run.sizes
    floor_s = run.session_floor_s() * sizes.session_min / 30.0 * sizes.course_sessions
    return course_figures(sizes.course_sessions, sizes.session_min, floor_s)


def _ledger(run: Run) -> list[Figure]:
    from hil.bench.figures_inprocess import ledger_figures

    s = run.sizes
    return ledger_figures(s.ledger_years, s.ledger_runs, s.ledger_writes)


Collector = Callable[[Run], list[Figure]]
# In running order: the real-time ones first (their controllers' boots feed "startup").
COLLECTORS: Final[dict[str, tuple[str, Collector, bool]]] = {
    "fault_latency": ("fault→outputs-off latency", _fault_latency, True),
    "sigkill": ("host SIGKILL→outputs-off latency", _sigkill, True),
    "sigkill_stuck": ("stuck driver + host SIGKILL→rail-off latency", _sigkill_stuck, True),
    "resources": ("controller CPU and RSS while treating", _resources, True),
    "startup": ("nirpad --help and boot-to-ready", _startup, True),
    "jitter": ("event-loop tick jitter", _jitter, True),
    "dose": ("dose accuracy", _dose, False),
    "speed": ("virtual-time speed", _speed, False),
    "frame_path": ("per-frame host path (micro-benchmark)", _frame_path, False),
    "course": ("a 12-session course on the virtual clock", _course, False),
    "ledger": ("ledger query at 10 years", _ledger, False),
}


def sim_process_available() -> bool:
    return importlib.util.find_spec("hil.sim.__main__") is not None


def collect(names: list[str], run: Run) -> list[Figure]:
    """Run the named collectors in order; a failure becomes a row saying why."""
    figures: list[Figure] = []
    for name in names:
        title, collector, needs_sim = COLLECTORS[name]
        if needs_sim and not sim_process_available():
            figures.append(missing(name, title, "—", "python -m hil.sim does not exist yet"))
            continue
        started = time.perf_counter()
        print(f"[bench] {name}: {title} …", file=sys.stderr, flush=True)
        try:
            figures += collector(run)
        except Exception as exc:  # a benchmark reports; it does not crash the report
            log.debug("collector %s failed", name, exc_info=True)
            traceback.print_exc(file=sys.stderr)
            figures.append(missing(name, title, "—", f"{type(exc).__name__}: {exc}"))
        print(f"[bench] {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return figures


def environment(quick: bool, baud: int) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "baud": baud,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
    }


def read_before(path: Path | None) -> dict[str, float | None] | None:
    """Figure name → median of an earlier run's ``bench-results.json`` (None: no file)."""
    if path is None or not path.is_file():
        return None
    document = json.loads(path.read_text())
    return {f["name"]: f["median"] for f in document["figures"]}


def write_results(
    out_dir: Path,
    env: dict[str, Any],
    figures: list[Figure],
    before: dict[str, float | None] | None = None,
) -> str:
    """Write the JSON and the Markdown (a ``before`` column if given); return the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {**env, "figures": [f.as_json() for f in figures]}
    (out_dir / JSON_NAME).write_text(json.dumps(document, indent=2, default=str) + "\n")
    markdown = header_and_table(env, figures, before)
    (out_dir / MD_NAME).write_text(markdown)
    return markdown


def header_and_table(
    env: dict[str, Any], figures: list[Figure], before: dict[str, float | None] | None
) -> str:
    """The Markdown report: the run's circumstances, then the table."""
    load = ", ".join(f"{x:.2f}" for x in env["load_average_1_5_15"])
    header = (
        f"# nirpad performance report{' (quick)' if env['quick'] else ''}\n\n"
        f"{env['generated_at']} · Python {env['python']} · {env['cpus']} CPUs · "
        f"load average {load} · {env['baud']} baud\n\n"
    )
    if before is not None:
        header += f"before: {env.get('before', 'an earlier run')}\n\n"
    return header + render_markdown(figures, before)


def parse_only(values: list[str] | None) -> list[str]:
    """``--only a,b --only c`` → the known names in running order; unknown → ValueError."""
    if not values:
        return list(COLLECTORS)
    wanted = {name.strip() for value in values for name in value.split(",") if name.strip()}
    if not wanted:
        raise ValueError(f"--only names no figure; choose from {', '.join(COLLECTORS)}")
    unknown = wanted - COLLECTORS.keys()
    if unknown:
        raise ValueError(
            f"unknown figure {', '.join(sorted(unknown))}; choose from {', '.join(COLLECTORS)}"
        )
    return [name for name in COLLECTORS if name in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure nirpad's performance figures; write bench-results.json and .md.",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every figure")
    parser.add_argument("--only", action="append", metavar="NAME", help=", ".join(COLLECTORS))
    parser.add_argument("--out-dir", type=Path, default=Path.cwd(), help="where to write")
    parser.add_argument("--baud", type=at_least(1), default=115200, help="simulated link baud rate")
    parser.add_argument(
        "--injections", type=at_least(1), help="fault injections (default 200, quick 5)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the stack's log lines")
    parser.add_argument(
        "--before", type=Path, default=BEFORE_DEFAULT, metavar="JSON",
        help="an earlier bench-results.json whose medians go beside these (default: "
        f"{BEFORE_DEFAULT.relative_to(BEFORE_DEFAULT.parents[1])}, if there); 'none': no column",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        names = parse_only(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    sizes = QUICK if args.quick else FULL
    if args.injections is not None:
        sizes = Sizes(**{**sizes.__dict__, "injections": args.injections})
    # Both are checked before the minutes of measuring, not found wrong after them.
    before_path = None if str(args.before) == "none" else args.before
    try:
        explicit = before_path is not None and before_path != BEFORE_DEFAULT
        if explicit and before_path is not None and not before_path.is_file():
            raise FileNotFoundError("no such file")  # a folder, or a slip in the name
        before = read_before(before_path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"--before {before_path}: not a bench-results.json ({exc})")
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=args.out_dir).close()
    except OSError as exc:
        parser.error(f"--out-dir {args.out_dir}: not a folder that can be written ({exc})")
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)  # faults are expected
    try:
        figures = collect(names, Run(sizes, args.baud))
    finally:
        root.setLevel(previous_level)
    env = environment(args.quick, args.baud)
    if before is not None:
        env["before"] = str(before_path)
    try:
        markdown = write_results(args.out_dir, env, figures, before)
    except OSError as exc:  # a full disk: the figures are not lost, they go to stdout
        print_report(header_and_table(env, figures, before), PROG)
        print(f"{PROG}: the results could not be written to {args.out_dir}: {exc}", file=sys.stderr)
        return 1
    return 0 if print_report(markdown.rstrip("\n"), PROG) else 1
