"""The options of ``nirpad diary``, ``nirpad diary show`` and ``nirpad irls``.

Owns: argparse definitions only (standard library), so ``nirpad --help`` stays fast,
and ``NO_ANSWER``, the value that is no answer (the command reads it too);
what the commands do is ``firmware_host.diary_commands`` (imported when one runs).
"""

from __future__ import annotations

import argparse
from typing import Final

from firmware_host.arg_types import Handler, Subcommands, whole_number

SIDE_EFFECTS: Final = ("warmth", "redness", "skin-irritation", "headache", "other")
NO_ANSWER: Final = "-"
"""Given for an answer (a score, ``--side-effect``, ``--note``): no answer, which in a
correction clears the corrected entry's answer; ``nirpad diary show`` prints it so."""
NIGHTLY_OPTIONS: Final = (
    ("--legs", "leg_symptoms", "leg symptoms tonight, 0 (none) to 10 (worst)"),
    ("--sleep", "sleep_quality", "sleep quality last night, 0 (worst) to 10 (best)"),
    ("--minutes-to-sleep", "minutes_to_sleep", "minutes to fall asleep last night, 0-600"),
    ("--awakenings", "awakenings", "times you woke up last night, 0-50"),
    (
        "--onset",
        "onset",
        "when symptoms started today: 0 none, 1 at bedtime, 2 evening from 6 pm, "
        "3 afternoon before 6 pm",
    ),
)


CORRECTS_NIGHTLY_HELP: Final = (
    "correct entry ID: the answers given replace its answers, the others are kept "
    "(entry ID stays in the history)"
)


def score_answer(text: str) -> int | str:
    """A score option's value: a whole number, or ``NO_ANSWER``."""
    return NO_ANSWER if text.strip() == NO_ANSWER else whole_number(text)


def register(
    sub: Subcommands, common: argparse.ArgumentParser, diary: Handler, irls: Handler
) -> None:
    """Add ``diary`` (with ``show``) and ``irls`` to the sub-command parsers."""
    parser = sub.add_parser(
        "diary",
        parents=[common, _entry_options(CORRECTS_NIGHTLY_HELP)],
        help="tonight's symptom diary (asks when run in a terminal)",
        description="Record tonight's diary entry; in a terminal without options it asks. "
        "A score given as - is no answer: in a correction, it clears that answer.",
    )
    for flag, dest, text in NIGHTLY_OPTIONS:
        parser.add_argument(flag, dest=dest, metavar="N", type=score_answer, help=text)
    parser.add_argument(
        "--side-effect",
        dest="side_effects",
        action="append",
        choices=(*SIDE_EFFECTS, NO_ANSWER),
        help="a side effect you noticed (repeat for several; - for none)",
    )
    parser.add_argument("--note", help="a short note, at most 500 characters (- or '' for none)")
    parser.set_defaults(func=diary, diary_action=None)
    actions = parser.add_subparsers(dest="diary_action", metavar="[ACTION]")  # none: record
    show = actions.add_parser("show", parents=[common], help="list the diary entries")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--history", action="store_true", help="include corrected entries")
    show.add_argument("--site-config", metavar="FILE", help="site configuration (IRLS wording)")
    irls_parser = sub.add_parser(
        "irls",
        parents=[common, _entry_options("this IRLS replaces IRLS ID (kept in the history)")],
        help="the weekly IRLS scores (asks when run in a terminal)",
        description="Record the ten IRLS item scores (0-4 each).",
    )
    irls_parser.add_argument(
        "--items", metavar="S1,...,S10", help="the ten item scores in order, comma-separated"
    )
    irls_parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        help="the baseline, before the first session (a correction keeps the mark of the "
        "IRLS it corrects; --no-baseline removes it)",
    )
    irls_parser.add_argument(
        "--site-config", metavar="FILE", help="site configuration (IRLS wording)"
    )
    irls_parser.set_defaults(func=irls)


def _entry_options(corrects_help: str) -> argparse.ArgumentParser:
    """The options ``diary`` and ``irls`` share: the day, the entry corrected, the zone."""
    entry = argparse.ArgumentParser(add_help=False)
    entry.add_argument(
        "--date",
        metavar="YYYY-MM-DD",
        help="the day (default: today; with --corrects, the corrected entry's day)",
    )
    entry.add_argument("--corrects", metavar="ID", type=whole_number, help=corrects_help)
    entry.add_argument(
        "--tz", metavar="ZONE", help="the patient's time zone, like Europe/Berlin (default: local)"
    )
    return entry
