"""The options of ``nirpad report``.

Owns: argparse only (``nirpad --help`` must stay fast); the command itself is
``firmware_host.report_commands``, imported when it runs.
"""

from __future__ import annotations

import argparse

from firmware_host.arg_types import Handler, Subcommands


def register(sub: Subcommands, common: argparse.ArgumentParser, handler: Handler) -> None:
    """Add ``report`` to ``sub``; it runs ``handler``."""
    report = sub.add_parser(
        "report",
        parents=[common],
        help="the clinic report: a PDF of the course and the diary (optionally CSV, FHIR)",
    )
    report.add_argument(
        "--from",
        dest="from_day",
        metavar="YYYY-MM-DD",
        help="first day of the period (default: day 1 of the course)",
    )
    report.add_argument(
        "--to", dest="to_day", metavar="YYYY-MM-DD", help="last day of the period (default: today)"
    )
    report.add_argument("-o", "--output", metavar="FILE", required=True, help="the PDF to write")
    report.add_argument("--csv", metavar="FILE", help="also write the sessions and diary as CSV")
    report.add_argument(
        "--fhir", metavar="FILE", help="also write a FHIR R4 JSON bundle of the same records"
    )
    report.add_argument("--site-config", metavar="FILE", help="site configuration")
    report.add_argument(
        "--tz", metavar="ZONE", help="the patient's time zone, like Europe/Berlin (default: local)"
    )
    report.set_defaults(func=handler)
