"""The ``nirpad`` command line: argument parsing and dispatch, nothing heavier.

Owns: the sub-commands, their options, exit codes and the one-line error messages.
Exit codes: 0 accepted, 1 error, 2 usage or validation (a path given that names no
folder too: a state directory that is not one, ``~name`` of no user, a relative path in
a removed current folder, a state directory that does not exist for ``clock confirm``
and ``ledger reset``; a date and time ``clock confirm`` cannot read), 3 refused (reason
on stderr), 4 no controller running for the state directory, 130 interrupted, 141 the
reader of the output left the pipe (``| head -1``). Output that could not be written (stdout
closed, a full disk) is an error, 1, said on stderr (``stdout_guard``). The commands
that ask the controller wait ``$NIRPAD_TIMEOUT_S`` seconds for its answer (default 6).

Does not own what the commands do: ``runner`` (``nirpad run``), ``demo``, ``history``,
``control_client`` (status and the button commands), ``profile_commands`` (the
profiles engineer's ``nirpad profile ...``) and ``hil.sim`` (``nirpad sim``, exec'd by
module name, never imported). Everything past argparse is imported lazily, so
``nirpad --help`` and ``nirpad status`` start without pydantic, transitions,
gpiozero, rich or pyserial. A user never sees a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from firmware_host.console import EXIT_INTERRUPTED
from firmware_host.control_client import (
    EXIT_ERROR,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
)
from firmware_host.paths import PathNameError, resolve_state_dir
from firmware_host.service import error_line
from firmware_host.stdout_guard import done, guarded_stdout

BUTTON_COMMANDS: Final = {
    "start": "start a session (same as a short press when ready)",
    "pause": "pause the running session",
    "resume": "resume a paused session",
    "stop": "stop the session (same as a long press)",
    "ack": "acknowledge a fault once its cause has cleared",
}
ENV_TIMEOUT: Final = "NIRPAD_TIMEOUT_S"
DEFAULT_TIMEOUT_S: Final = 6.0
MAX_TIMEOUT_S: Final = 3600.0
PROFILE_HELP: Final = "check, install and show prescriptions (nirpad profile --help)"
Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nirpad`` console script; returns the exit code. A command
    whose output could not be written runs to its end, then fails (``stdout_guard``)."""
    with guarded_stdout() as output:
        return output.exit_code(_main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "profile":  # only now pay for pydantic and the safety limits
            parser = build_parser(with_profile_commands=True)
            args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return _exit_code(exc)
    except KeyboardInterrupt:  # Ctrl-C while the profile commands load (seconds on a Pi)
        _err("interrupted")
        return EXIT_INTERRUPTED
    if args.command == "sim":
        return _exec_sim(extra)
    if extra:
        return _usage(parser, f"unrecognized arguments: {' '.join(extra)}")
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return _run_handler(func, args)


def _run_handler(func: Handler, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        return _exit_code(exc)
    except PathNameError as exc:  # a path given that names no folder: the caller's to fix
        _err(str(exc))
        return EXIT_USAGE
    except Exception as exc:  # last resort: one readable line, never a traceback
        if os.environ.get("NIRPAD_DEBUG"):
            raise
        _err(f"{exc}" if str(exc) else type(exc).__name__)
        return EXIT_ERROR


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    _err(message)
    return EXIT_USAGE


def _err(message: str) -> None:
    print(error_line(message), file=sys.stderr)


def build_parser(with_profile_commands: bool = False) -> argparse.ArgumentParser:
    """The parser; without ``with_profile_commands`` it imports nothing beyond argparse
    (``profile`` is then a placeholder that ``main`` replaces when it is used)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        metavar="DIR",
        help="state directory (default: $NIRPAD_STATE_DIR, else ~/.local/share/nirpad)",
    )
    parser = argparse.ArgumentParser(
        prog="nirpad", description="Controller of the nirpad near-infrared leg pad."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub, common)
    sub.add_parser(
        "sim",
        add_help=False,
        help="run the simulated driver board on a pseudo-terminal (nirpad sim --help)",
    )
    demo = sub.add_parser("demo", help="a 30-second simulated session, for newcomers")
    demo.set_defaults(func=_cmd_demo)
    status = sub.add_parser("status", parents=[common], help="show the controller's state")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=_cmd_status)
    for name, text in BUTTON_COMMANDS.items():
        sub.add_parser(name, parents=[common], help=text).set_defaults(func=_cmd_button)
    _add_repairs(sub, common)
    history = sub.add_parser("history", parents=[common], help="list the recorded sessions")
    fmt = history.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    fmt.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=_cmd_history)
    from firmware_host.diary_args import register as register_diary  # argparse only

    register_diary(sub, common, _cmd_diary, _cmd_irls)
    from firmware_host.course_args import register as register_course  # argparse only

    register_course(sub, common, _cmd_course)
    from web.args import register as register_web  # argparse only

    register_web(sub, common, _cmd_web)
    from firmware_host.report_args import register as register_report  # argparse only

    register_report(sub, common, _cmd_report)
    if with_profile_commands:
        _register_profile_commands(sub)
    else:
        sub.add_parser("profile", add_help=False, help=PROFILE_HELP)
    return parser


def _add_repairs(sub: Any, common: argparse.ArgumentParser) -> None:
    """``nirpad clock confirm`` and ``nirpad ledger reset`` (a caregiver's; see
    ``record_repair``): each makes the next session wait one full interval."""
    clock = sub.add_parser("clock", help="confirm the date and time after it was wrong")
    clock_sub = clock.add_subparsers(dest="action", metavar="ACTION", required=True)
    confirm = clock_sub.add_parser(
        "confirm", parents=[common], help="the clock is right now (next session: one interval)"
    )
    confirm.add_argument(
        "when", metavar="'YYYY-MM-DD HH:MM'", help="the date and time on a clock you trust"
    )
    confirm.set_defaults(func=lambda a: _cmd_repair(a, "clock_confirm"))
    ledger = sub.add_parser("ledger", help="the treatment record's maintenance")
    ledger_sub = ledger.add_subparsers(dest="action", metavar="ACTION", required=True)
    ledger_sub.add_parser(
        "reset", parents=[common], help="start a new record after it was lost, with no backup"
    ).set_defaults(func=lambda a: _cmd_repair(a, "ledger_reset"))


def _cmd_repair(args: argparse.Namespace, command: str) -> int:
    from firmware_host.record_repair import main as repair_main

    return repair_main(args, command)


def _add_run(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="run the controller in the foreground")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--port", metavar="URL", help="the driver board's serial port or URL")
    source.add_argument("--sim", action="store_true", help="start a simulated board and use it")
    run.add_argument("--site-config", metavar="FILE", help="site limits (tighten only)")
    run.add_argument("--rail-pin", metavar="N", help="GPIO pin enabling the LED power rail")
    run.add_argument("--button-pin", metavar="N", help="GPIO pin of the pad's button")
    run.add_argument("--rail-file", metavar="FILE", help="rail line as a file (simulator)")
    run.add_argument(
        "--simulated-board",
        action="store_true",
        help="the --port is a simulator started by `nirpad sim` (refused otherwise)",
    )
    run.add_argument(
        "--time-scale",
        metavar="K",
        type=float,
        default=1.0,
        help="simulated time speed-up, 1-600 (only with --sim or --simulated-board)",
    )
    run.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    run.set_defaults(func=_cmd_run)


def _register_profile_commands(sub: Any) -> None:
    """Add ``nirpad profile ...`` (the profiles engineer's module; heavy imports)."""
    from firmware_host import profile_commands

    profile_commands.register(sub)


def _exec_sim(extra: list[str]) -> int:
    """Replace this process with ``python -m hil.sim``: no parent left, signals reach it.
    Its help and usage errors say ``nirpad sim``, the command typed (``SIM_PROG_ENV``)."""
    from firmware_host.sim_process import SIM_PROG_ENV, sim_argv

    argv = sim_argv(extra)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, {**os.environ, SIM_PROG_ENV: "nirpad sim"})
    except OSError as exc:
        _err(f"cannot start the simulator: {exc}")
    return EXIT_ERROR


def _cmd_run(args: argparse.Namespace) -> int:
    from firmware_host.runner import main as runner_main

    return runner_main(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from firmware_host.demo import main as demo_main

    return demo_main(args)


def _cmd_diary(args: argparse.Namespace) -> int:
    from firmware_host.diary_commands import main_diary

    return main_diary(args)


def _cmd_irls(args: argparse.Namespace) -> int:
    from firmware_host.diary_commands import main_irls

    return main_irls(args)


def _cmd_course(args: argparse.Namespace) -> int:
    from firmware_host.course_commands import main as course_main

    return course_main(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from firmware_host.report_commands import main as report_main

    return report_main(args)


def _cmd_web(args: argparse.Namespace) -> int:
    from web.serve import main as web_main

    return web_main(args)


def _cmd_history(args: argparse.Namespace) -> int:
    from firmware_host.history import main as history_main

    return history_main(args)


def _send(args: argparse.Namespace, request: dict[str, Any]) -> dict[str, Any] | None:
    from firmware_host.control_client import send

    state_dir = resolve_state_dir(args.state_dir)
    reply = send(state_dir, request, timeout_s=_answer_timeout_s())
    if reply is None:
        _err(f"no controller is running for {state_dir}")
    return reply


def _answer_timeout_s() -> float:
    """How long to wait for the controller's answer: ``$NIRPAD_TIMEOUT_S``, else 6 s. A
    value that is not a number of seconds in range is a usage error (exit 2)."""
    text = os.environ.get(ENV_TIMEOUT, "")
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        timeout_s = float(text)
    except ValueError:
        timeout_s = math.nan
    if not 0 < timeout_s <= MAX_TIMEOUT_S:  # NaN too
        from profiles.locator import printable

        _err(
            f"${ENV_TIMEOUT} must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT_S:.0f}, not '{printable(text)}'; unset it to wait "
            f"{DEFAULT_TIMEOUT_S:.0f} s"
        )
        raise SystemExit(EXIT_USAGE)
    return timeout_s


def _cmd_status(args: argparse.Namespace) -> int:
    reply = _send(args, {"cmd": "status"})
    if reply is None:
        return EXIT_NOT_RUNNING
    if not reply.get("ok"):
        return _refused(reply)
    data = reply.get("data") or {}
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(format_status(data))
    return EXIT_OK


def _cmd_button(args: argparse.Namespace) -> int:
    reply = _send(args, {"cmd": args.command})
    if reply is None:
        return EXIT_NOT_RUNNING
    if not reply.get("ok"):
        return _refused(reply)
    if reply.get("message"):
        done(str(reply["message"]))
    return EXIT_OK


def _refused(reply: dict[str, Any]) -> int:
    _err(str(reply.get("message") or "refused"))
    code = reply.get("exit_code")
    return (
        code if isinstance(code, int) and code not in (EXIT_OK, EXIT_NOT_RUNNING) else EXIT_REFUSED
    )


_STATUS_LINES: Final = (
    ("state", "State"),
    ("state_reason", "Why"),
    ("profile_id", "Profile"),
    ("elapsed_s", "Elapsed"),
    ("remaining_s", "Remaining"),
    ("fluence_j_cm2", "Fluence (J/cm²)"),
    ("planned_fluence_j_cm2", "Planned (J/cm²)"),
    ("irradiance_mw_cm2", "Irradiance (mW/cm²)"),
    ("skin_temp_c", "Skin (°C)"),
    ("board_temp_c", "Board (°C)"),
    ("contact", "Contact"),
    ("fault", "Fault"),
    ("fault_also_seen", "Also seen"),
    ("start_refusal", "Start refused"),
    ("next_start_allowed_at", "Next start at"),
    ("warnings", "Warnings"),
    ("link", "Link"),
)


def format_status(data: dict[str, Any]) -> str:
    """The human form of the status JSON: one aligned ``label: value`` line per key."""
    width = max(len(label) for _, label in _STATUS_LINES)
    running = data.get("state") in _RUNNING_STATES
    lines = []
    for key, label in _STATUS_LINES:
        if key in data and (running or key not in _SESSION_ONLY_KEYS) and _says(key, data):
            lines.append(f"{label + ':':<{width + 1}} {_human(key, data[key])}")
        if key == "fault" and isinstance(data.get(key), dict) and data[key].get("clear_refusal"):
            lines.append(f"{'Acknowledge:':<{width + 1}} not yet: {data[key]['clear_refusal']}")
    return "\n".join(lines)


def _says(key: str, data: dict[str, Any]) -> bool:
    """The reason for the state is shown when there is one, and not in a fault: the
    ``Fault`` line says it, with its code."""
    return key != "state_reason" or (data[key] is not None and data.get("state") != "fault")


_RUNNING_STATES: Final = frozenset({"treating", "paused"})
_EMPTY_IS_NONE: Final = frozenset({"fault_also_seen", "warnings", "irradiance_mw_cm2"})
_SESSION_ONLY_KEYS: Final = frozenset({"elapsed_s", "remaining_s"})  # nothing runs: not shown


def local_time(iso: str) -> str:
    """An ISO 8601 time as local time to the second (``2026-11-24 20:00:00 CET``)."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    local = when.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()


def _human(key: str, value: Any) -> str:
    if value is None or (key in _EMPTY_IS_NONE and not value):
        return "-"
    if key == "link" and isinstance(value, dict):
        return _link_line(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_at") and isinstance(value, str):
        return local_time(value)
    if key.endswith("_s") and isinstance(value, int | float):
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}:{seconds:02d}"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        if "message" in value:
            return f"{value['message']} ({value.get('code', '?')})"
        return ", ".join(f"{k}: {_human('', v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_human("", v) for v in value)
    return str(value)


_DROPPED_KEYS: Final = ("framing_errors", "crc_errors", "decode_errors", "version_errors")


def _link_line(link: dict[str, Any]) -> str:
    """The link's counters on one line: frames, dropped (last minute), retries, NAKs."""
    dropped = sum(int(link.get(k, 0)) for k in _DROPPED_KEYS)
    naks = link.get("naks") or {}
    nak_text = ", ".join(f"{code} {n}" for code, n in naks.items()) if naks else "none"
    return (
        f"{link.get('frames_ok', 0)} frames, {dropped} dropped "
        f"({link.get('dropped_last_min', 0)} of {link.get('frames_last_min', 0)} "
        f"in the last minute), {link.get('sequence_gaps', 0)} gaps, "
        f"{link.get('command_retries', 0)} retries, NAKs: {nak_text}"
    )
