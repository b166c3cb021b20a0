"""``python -m hil.sim``: the simulated board on a pseudo-terminal (``nirpad sim`` execs it).

Owns: the command-line options, and the name its help and usage errors give the
command: ``$NIRPAD_SIM_PROG`` when set (``nirpad sim`` sets it), else ``python -m
hil.sim``. Everything else is in ``pty_runner``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from drivers.protocol import SIM_TIME_SCALE_MAX, SIM_TIME_SCALE_MIN
from hil.sim.board import RAIL_HOLD_S
from hil.sim.commands import check_ambient_c
from hil.sim.pty_runner import run_pty_sim

PROG_ENV = "NIRPAD_SIM_PROG"
"""Set by ``nirpad sim`` (``firmware_host.sim_process.SIM_PROG_ENV``, not imported here)."""


def _time_scale(text: str) -> float:
    value = float(text)
    if not SIM_TIME_SCALE_MIN <= value <= SIM_TIME_SCALE_MAX:
        raise argparse.ArgumentTypeError(
            f"the time scale must be between {SIM_TIME_SCALE_MIN:g} and {SIM_TIME_SCALE_MAX:g}"
        )
    return value


def _ambient_c(text: str) -> float:
    try:
        return check_ambient_c(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _claimed_scale(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 655.35:  # what INFO's u16 of hundredths can carry
        raise argparse.ArgumentTypeError("INFO can carry a time scale of 0 to 655.35")
    return value


def _hold_ms(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("the rail hold must be 0 (none) or positive ms")
    return value


def _baud(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("the baud rate must be positive")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=os.environ.get(PROG_ENV) or "python -m hil.sim",
        description="Simulated nirpad LED driver board on a pseudo-terminal. "
        "JSON-line commands on stdin, JSON-line events on stdout (see docs/hil.md).",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the unit error and noise")
    parser.add_argument(
        "--ambient-c", type=_ambient_c, default=22.0, help="room temperature, -20 to 60 °C"
    )
    parser.add_argument("--baud", type=_baud, default=115200, help="wire pacing, bits/s")
    parser.add_argument(
        "--time-scale", type=_time_scale, default=1.0, help="physics and on-time run K× faster"
    )
    parser.add_argument(
        "--rail-file", type=Path, default=None,
        help="the host's rail lines as a file: '<enable 0|1> <heartbeat count>' (docs/hil.md)",
    )  # fmt: skip
    parser.add_argument(
        "--rail-hold-ms", type=_hold_ms, default=round(RAIL_HOLD_S * 1000),
        help="with --rail-file: the HAT's hold circuit drops the rail this long after the "
        "last heartbeat, in real ms (0: no hold circuit, the enable alone rules)",
    )  # fmt: skip
    lie = parser.add_argument_group(
        "a board that claims what it should not (tests of the host's refusal)"
    )
    lie.add_argument(
        "--info-simulator", type=int, choices=(0, 1), default=None,
        help="the simulator flag INFO reports (default 1)",
    )  # fmt: skip
    lie.add_argument(
        "--info-time-scale", type=_claimed_scale, default=None,
        help="the time scale INFO reports (default: the one it runs at)",
    )  # fmt: skip
    return parser.parse_args(argv)


def info_claim(args: argparse.Namespace) -> tuple[bool, float] | None:
    """What INFO reports, when told to differ from the truth; None: the truth."""
    if args.info_simulator is None and args.info_time_scale is None:
        return None
    simulator = True if args.info_simulator is None else bool(args.info_simulator)
    scale = args.time_scale if args.info_time_scale is None else args.info_time_scale
    return simulator, scale


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return run_pty_sim(
        seed=args.seed,
        ambient_c=args.ambient_c,
        baud=args.baud,
        time_scale=args.time_scale,
        rail_file=args.rail_file,
        rail_hold_s=args.rail_hold_ms / 1000.0 if args.rail_hold_ms else None,
        info_claim=info_claim(args),
    )


if __name__ == "__main__":
    sys.exit(main())
