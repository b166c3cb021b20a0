"""Make the sample clinic report shown in docs/course.md, so the picture stays true.

A four-week course (three sessions a week, 30 minutes, 18:00-23:00, Europe/Berlin,
day 1 Monday 2 March 2026) is written through the real ledger API, with the clock
set to each session's time: week 1 complete; week 2 with a session stopped at 60 %;
week 3 with one session missed and one ended by a fault; week 4 complete, with one
start at 17:10, before the window. The diary is written through the real diary store:
a baseline IRLS of 24 the day before day 1, then 19, 16 and 13 at the end of weeks
1, 2 and 4, and a nightly entry on every session evening. The prescription is
installed as a file, and the report is made by ``nirpad report`` itself (its clock
set to 30 March 2026, 09:00 UTC). Page 1 of the PDF is then drawn as a PNG with
``pdftoppm`` (poppler-utils; ``apt-get install poppler-utils``).

    python docs/make_sample_report.py            # docs/img/sample-report.png
    python docs/make_sample_report.py --out DIR  # DIR/sample-report.pdf and .png

A tool for the documentation: no product code imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
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
from profiles.store import install_atomic  # noqa: E402
from safety.faults import FAULT_MESSAGES, FaultCode, Outcome  # noqa: E402
from safety.ledger import Ledger  # noqa: E402

ZONE: Final = ZoneInfo("Europe/Berlin")
DAY_1: Final = date(2026, 3, 2)
NOW: Final = datetime(2026, 3, 30, 9, tzinfo=UTC)
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
SESSIONS: Final = (
    # (day of the course from 0, local hour, minute, share delivered, outcome)
    (0, 19, 30, 1.0, Outcome.COMPLETED),
    (2, 20, 0, 1.0, Outcome.COMPLETED),
    (4, 19, 45, 1.0, Outcome.COMPLETED),
    (7, 19, 30, 1.0, Outcome.COMPLETED),
    (9, 21, 0, 0.6, Outcome.STOPPED),
    (11, 19, 30, 1.0, Outcome.COMPLETED),
    (14, 19, 30, 1.0, Outcome.COMPLETED),
    (18, 20, 15, 0.4, Outcome.FAULT),
    (21, 19, 30, 1.0, Outcome.COMPLETED),
    (23, 17, 10, 1.0, Outcome.COMPLETED),
    (25, 19, 30, 1.0, Outcome.COMPLETED),
)
IRLS: Final = ((-1, 24, True), (6, 19, False), (13, 16, False), (27, 13, False))
NIGHTS: Final = (7, 7, 6, 6, 6, 5, 5, 5, 4, 4, 3)
SLEEP: Final = (3, 4, 4, 5, 4, 5, 6, 5, 6, 7, 7)


def _at(day: int, hour: int, minute: int) -> datetime:
    local = DAY_1 + timedelta(days=day)
    return datetime(local.year, local.month, local.day, hour, minute, tzinfo=ZONE)


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _items(total: int) -> dict[int, int]:
    items = dict.fromkeys(range(1, 11), 0)
    for k in range(total):
        items[k % 10 + 1] += 1
    return items


def write_course(state_dir: Path) -> None:
    """The prescription, the site file, the ledger and the diary of the sample."""
    install_atomic(state_dir, PRESCRIPTION)
    (state_dir / "site.toml").write_text(SITE, encoding="utf-8")
    from profiles.loader import load_profile_bytes

    rx = load_profile_bytes(PRESCRIPTION, "sample").profile
    assert rx is not None
    sha = hashlib.sha256(PRESCRIPTION).hexdigest()
    clock = _Clock()
    with Ledger.open(state_dir, clock) as ledger:
        ledger.record_install(rx.id, sha, str(state_dir / "prescription.toml"))
        for day, hour, minute, share, outcome in SESSIONS:
            clock.now = _at(day, hour, minute).astimezone(UTC)
            planned = rx.planned_fluence_j_cm2
            sid = ledger.begin_session(rx.id, sha, planned, planned_duration_s=rx.duration_s)
            clock.now += timedelta(seconds=rx.duration_s * share)
            fault = FaultCode.SKIN_OVERTEMP if outcome is Outcome.FAULT else None
            if fault is not None:
                ledger.record_fault(fault, f"{FAULT_MESSAGES[fault]} (41.4 °C)", sid)
            delivered = {ch: j * share for ch, j in planned.items()}
            ledger.end_session(sid, outcome, delivered, None if fault is None else str(fault))
        ledger.flush_backups()
    with Diary.open(state_dir, wall_clock=lambda: NOW, tz=ZONE) as diary:
        for day, total, baseline in IRLS:
            diary.add_irls(DAY_1 + timedelta(days=day), _items(total), baseline=baseline)
        for (day, *_), legs, sleep in zip(SESSIONS, NIGHTS, SLEEP, strict=True):
            effects = frozenset({SideEffect.WARMTH}) if day in (0, 2) else frozenset()
            entry = NightlyEntry(
                DAY_1 + timedelta(days=day),
                leg_symptoms=legs,
                sleep_quality=sleep,
                side_effects=effects,
            )
            diary.add_nightly(entry)


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
