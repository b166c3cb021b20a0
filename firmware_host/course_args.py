"""The options of ``nirpad course``, ``nirpad remind`` and ``nirpad calendar``.

Owns: argparse only (``nirpad --help`` must stay fast); the commands themselves are
``firmware_host.course_commands``, imported when one of them runs.
"""

from __future__ import annotations

import argparse

from firmware_host.arg_types import Handler, Subcommands


def register(sub: Subcommands, common: argparse.ArgumentParser, handler: Handler) -> None:
    """Add the three sub-commands to ``sub``; each runs ``handler``."""
    shared = argparse.ArgumentParser(add_help=False, parents=[common])
    shared.add_argument("--site-config", metavar="FILE", help="site configuration ([course])")
    shared.add_argument(
        "--tz", metavar="ZONE", help="the patient's time zone, like Europe/Berlin (default: local)"
    )
    course = sub.add_parser(
        "course", parents=[shared], help="adherence per week, the next checkpoint, tonight"
    )
    course.add_argument("--json", action="store_true", help="print JSON")
    course.set_defaults(func=handler)
    remind = sub.add_parser(
        "remind", parents=[shared], help="exit 0 when a session is due now (for a timer)"
    )
    remind.add_argument(
        "--run-hook", action="store_true", help="when due, run [remind] hook of the site file"
    )
    remind.set_defaults(func=handler)
    calendar = sub.add_parser(
        "calendar", parents=[shared], help="the course's planned evenings as an .ics file"
    )
    calendar.add_argument("-o", "--output", metavar="FILE", required=True, help="the .ics file")
    calendar.add_argument(
        "--from",
        dest="from_day",
        metavar="YYYY-MM-DD",
        help="day 1 before the first session (default: today)",
    )
    calendar.set_defaults(func=handler)
