"""Make the sample clinic report shown in docs/course.md, so the picture stays true.

A four-week course (three evening sessions a week, 30 minutes, 18:00-23:00,
Europe/Berlin, day 1 Monday 2 March 2026) is run on the in-process simulated board
(``hil.rigs.harness.InProcessRig``: the real controller, safety core and treatment record on
a virtual clock, at 60 times real speed; the days between sessions pass without being
simulated). The prescription is installed by the rig as a caregiver would. Week 1 is
complete; in week 2 one session is stopped by a long press of the button at about
60 %; in week 3 one evening is missed and the simulator makes the skin too warm
during a session, which the safety core ends with a fault (acknowledged by a long
press once the skin has cooled); in week 4 one session starts at 17:10, before the
window. The diary is written through the real diary store: a baseline IRLS of 24 the
day before day 1, then 19, 16 and 13 at the end of weeks 1, 2 and 4, and a nightly
entry on every session evening. The report is made by ``nirpad report`` itself (its
clock set to 30 March 2026, 09:00 UTC). Page 1 of the PDF is then drawn as a PNG
with ``pdftoppm`` (poppler-utils; ``apt-get install poppler-utils``). Fixed dates and
a fixed simulator seed: the same course every run.

    python docs/make_sample_report.py            # docs/img/sample-report.png
    python docs/make_sample_report.py --out DIR  # DIR/sample-report.pdf and .png

A tool for the documentation: no product code imports it.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from care.diary import Diary  # noqa: E402
from care.diary_entry import NightlyEntry, SideEffect  # noqa: E402
from firmware_host import report_commands  # noqa: E402
from firmware_host.cli import main as nirpad  # noqa: E402
from firmware_host.machine import State  # noqa: E402
from firmware_host.profile_commands import check_bytes  # noqa: E402
from hil.rigs.harness import InProcessRig  # noqa: E402
from profiles.store import install_atomic  # noqa: E402
from safety.faults import FaultCode, Outcome  # noqa: E402
from safety.ledger import Ledger  # noqa: E402

ZONE: Final = ZoneInfo("Europe/Berlin")
DAY_1: Final = date(2026, 3, 2)
INSTALLED: Final = datetime(2026, 3, 1, 10, 0, tzinfo=ZONE)
NOW: Final = datetime(2026, 3, 30, 9, tzinfo=UTC)
SEED: Final = 17
TIME_SCALE: Final = 60.0
"""Virtual seconds are minutes of the session: 30 minutes take 30 s of the loop."""
PRESCRIPTION: Final = b"""schema_version = 1
id = "rls-810-evening"
name = "RLS 810 nm, evenings"
prescriber = "Dr Anna M\xc3\xbcller, Sleep Clinic"
issued = 2026-02-20
expires = 2026-08-20
duration_min = 30
ramp_s = 30.0
sessions_per_week = 3
min_interval_h = 20.0
course_weeks = 4

[[channels]]
wavelength_nm = 810
irradiance_mw_cm2 = 20.0

[mode]
kind = "cw"

[window]
start = "18:00"
end = "23:00"
"""
SITE: Final = '[device]\nserial = "NP-2026-00017"\n'


@dataclass(frozen=True)
class Evening:
    """One session: its local start, and whether (and when) it is cut short."""

    day: int  # of the course, from 0
    hour: int
    minute: int
    cut_at_share: float | None = None  # of the session's time, when the cut is made
    cut: str = ""  # "stop" (a long press) or "skin_overtemp" (the simulator's fault)


# Each start is more than 7 days after the start three sessions before it (at most 3
# sessions in 7 days) and 20 h after the last: the controller would refuse it otherwise.
EVENINGS: Final = (
    Evening(0, 19, 0),
    Evening(2, 20, 0),
    Evening(4, 19, 30),
    Evening(7, 19, 30),
    Evening(9, 21, 0, 0.55, "stop"),  # the press takes 2 s (2 min here)
    Evening(11, 19, 45),
    Evening(14, 19, 40),  # day 16 is missed
    Evening(18, 20, 15, 0.4, "skin_overtemp"),
    Evening(21, 19, 50),
    Evening(23, 17, 10),  # before the 18:00-23:00 window
    Evening(25, 20, 30),
)
IRLS: Final = ((-1, 24, True), (6, 19, False), (13, 16, False), (27, 13, False))
NIGHTS: Final = (7, 7, 6, 6, 6, 5, 5, 5, 4, 4, 3)
SLEEP: Final = (3, 4, 4, 5, 4, 5, 6, 5, 6, 7, 7)
SESSION_S: Final = 30 * 60 / TIME_SCALE


def _at(day: int, hour: int, minute: int) -> datetime:
    local = DAY_1 + timedelta(days=day)
    return datetime(local.year, local.month, local.day, hour, minute, tzinfo=ZONE)


def _items(total: int) -> dict[int, int]:
    items = dict.fromkeys(range(1, 11), 0)
    for k in range(total):
        items[k % 10 + 1] += 1
    return items


def _until(rig: InProcessRig, state: State, limit_s: float) -> None:
    rig.run_until(lambda: rig.in_state(state), limit_s, 0.5)


def _evening(rig: InProcessRig, evening: Evening) -> None:
    """Wait for the evening (idle days, not simulated), then run its session."""
    rig.wall.idle(_at(evening.day, evening.hour, evening.minute) - rig.wall())
    rig.run(1.5)  # the controller re-reads the prescription and its schedule each second
    rig.start()
    if evening.cut_at_share is not None:
        rig.run(SESSION_S * evening.cut_at_share)
    if evening.cut == "stop":  # a long press: the session ends early, the light off
        rig.board.press("long")
        _until(rig, State.COMPLETE, 5.0)
    elif evening.cut:  # the simulator's fault: the core ends the session, latched
        rig.inject(evening.cut)
        _until(rig, State.FAULT, 2.0)
        rig.run(5.0)  # five minutes later the skin is no longer too warm
        rig.board.clear_injections()
        rig.run(1.0)
        rig.board.press("long")  # acknowledged once the cause has gone
        _until(rig, State.READY, 10.0)
        return
    else:
        _until(rig, State.COMPLETE, SESSION_S + 10.0)
    if not rig.command("ack").ok:
        raise RuntimeError(f"the session of day {evening.day} could not be acknowledged")
    _until(rig, State.READY, 2.0)


def install(state_dir: Path) -> None:
    """Check the prescription as ``nirpad profile install`` does, on the day it is
    installed (that command checks the dates against today's real date, which would
    refuse a prescription of the sample's past), install it and record the install."""
    result = check_bytes(PRESCRIPTION, "prescription.toml", None, today=INSTALLED.date())
    if not result.ok or result.profile is None:
        raise RuntimeError(f"the sample's prescription is refused: {result.problems}")
    path = install_atomic(state_dir, PRESCRIPTION)
    with Ledger.open(state_dir, lambda: INSTALLED.astimezone(UTC)) as ledger:
        ledger.record_install(result.profile.id, result.sha256, str(path))


def run_course(state_dir: Path) -> None:
    """The sessions of the sample on the simulated board, into ``state_dir``'s record."""
    install(state_dir)
    rig = InProcessRig.build(
        state_dir,
        profile_id=None,  # installed above, on the sample's own date
        seed=SEED,
        time_scale=TIME_SCALE,
        wall_start=INSTALLED.astimezone(UTC),
    )
    try:
        rig.boot()
        for evening in EVENINGS:
            _evening(rig, evening)
    finally:
        rig.close()
    if rig.outputs_on():
        raise RuntimeError("the simulated board was left emitting")
    _check_record(rig)


def _check_record(rig: InProcessRig) -> None:
    """The record holds the evenings as planned, each ended as the sample says."""
    ends = {"": Outcome.COMPLETED, "stop": Outcome.STOPPED, "skin_overtemp": Outcome.FAULT}
    planned = [ends[evening.cut] for evening in EVENINGS]
    recorded = [record.outcome for record in reversed(rig.sessions())]
    if recorded != planned:
        raise RuntimeError(f"the simulated course ended {recorded}, not {planned}")
    if [fault.code for fault in rig.faults()] != [FaultCode.SKIN_OVERTEMP]:
        raise RuntimeError(f"the simulated course recorded the faults {rig.faults()}")


def write_diary(state_dir: Path) -> None:
    """The IRLS totals and a nightly entry on each session evening, via the diary store."""
    with Diary.open(state_dir, wall_clock=lambda: NOW, tz=ZONE) as diary:
        for day, total, baseline in IRLS:
            diary.add_irls(DAY_1 + timedelta(days=day), _items(total), baseline=baseline)
        for evening, legs, sleep in zip(EVENINGS, NIGHTS, SLEEP, strict=True):
            effects = frozenset({SideEffect.WARMTH}) if evening.day in (0, 2) else frozenset()
            entry = NightlyEntry(
                DAY_1 + timedelta(days=evening.day),
                leg_symptoms=legs,
                sleep_quality=sleep,
                side_effects=effects,
            )
            diary.add_nightly(entry)


def write_course(state_dir: Path) -> None:
    """The prescription, the treatment record, the site file and the diary of the sample."""
    run_course(state_dir)
    (state_dir / "site.toml").write_text(SITE, encoding="utf-8")
    write_diary(state_dir)


def make(out_dir: Path) -> Path:
    """Write the sample PDF in ``out_dir`` and draw its page 1 as sample-report.png."""
    report_commands.wall_clock = lambda: NOW
    pdf = out_dir / "sample-report.pdf"
    with tempfile.TemporaryDirectory(prefix="nirpad-sample-") as state:
        write_course(Path(state))
        code = nirpad(
            ["report", "--state-dir", state, "--tz", "Europe/Berlin", "--to", "2026-03-29",
             "-o", str(pdf)]
        )  # fmt: skip
    if code != 0:
        raise SystemExit(f"nirpad report failed with exit code {code}")
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise SystemExit("pdftoppm is not installed (apt-get install poppler-utils)")
    subprocess.run(
        [pdftoppm, "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile", str(pdf),
         str(out_dir / "sample-report")],
        check=True,
    )  # fmt: skip
    return out_dir / "sample-report.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", metavar="DIR", help="write the PDF and PNG here instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the fault and its log lines are planned
    if args.out:
        png = make(Path(args.out))
    else:
        with tempfile.TemporaryDirectory(prefix="nirpad-sample-out-") as out:
            made = make(Path(out))
            png = ROOT / "docs" / "img" / "sample-report.png"
            shutil.copyfile(made, png)
    print(f"sample report drawn to {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
