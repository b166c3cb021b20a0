"""``python -m hil.sim``: the simulated board on a pseudo-terminal (``nirpad sim`` execs it).

Owns: the command-line options. Everything else is in ``pty_runner``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hil.sim.pty_runner import run_pty_sim


def _time_scale(text: str) -> float:
    value = float(text)
    if not 0.01 <= value <= 655.35:
        raise argparse.ArgumentTypeError("the time scale must be between 0.01 and 655.35")
    return value


def _baud(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("the baud rate must be positive")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hil.sim",
        description="Simulated nirpad LED driver board on a pseudo-terminal. "
        "JSON-line commands on stdin, JSON-line events on stdout (see docs/hil.md).",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the unit error and noise")
    parser.add_argument("--ambient-c", type=float, default=22.0, help="room temperature, °C")
    parser.add_argument("--baud", type=_baud, default=115200, help="wire pacing, bits/s")
    parser.add_argument(
        "--time-scale", type=_time_scale, default=1.0, help="physics and on-time run K× faster"
    )
    parser.add_argument(
        "--rail-file", type=Path, default=None, help="LED rail enabled only while it holds 1"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return run_pty_sim(
        seed=args.seed,
        ambient_c=args.ambient_c,
        baud=args.baud,
        time_scale=args.time_scale,
        rail_file=args.rail_file,
    )


if __name__ == "__main__":
    sys.exit(main())
