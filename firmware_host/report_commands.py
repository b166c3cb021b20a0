"""``nirpad report``: the clinic report as a PDF, and the same records as CSV and FHIR.

Owns: gathering the inputs read-only (the installed prescription and whether its
signature was verified, the site configuration, the patient's time zone, the ledger's
records, the diary's current entries when there is a diary: none is created), the
period from ``--from``/``--to`` (a ``--from`` before the first day with a record starts
on that day, said in a note), the device's serial number and the software version,
and writing the files atomically: every target is checked first (not a folder, its
folder there and writable), every file is written to a temporary file beside it and
synced, and only when all are written are they renamed into place, so a full disk, a
missing folder or a folder named as a file leaves no partial file and no old one
half-replaced. Should a rename still fail after another succeeded, the message names
the files written and those not.

Exit codes: 0 written; 1 nothing to report (no usable prescription), the treatment
record or the diary unreadable, or a file that cannot be written; 2 a bad date,
period, time zone, site setting or file name. A user never sees a traceback.

The device serial is the site configuration's ``[device] serial`` when set, else the
Raspberry Pi's own serial number, else "not set".

Does not own the report's content or its forms (``care.report``, ``care.report_pdf``,
``care.report_csv``, ``care.report_fhir``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Final

from care.adherence import SiteConfigError, read_site_table, rule_from_site
from care.course import first_day_of
from care.diary import Diary, StoredIrls, StoredNightly, diary_damaged_text, diary_exists
from care.diary_entry import calendar_date
from care.diary_schema import DiaryStorageError
from care.report import (
    Device,
    Period,
    ReportData,
    ReportError,
    SignatureStatus,
    clock_note,
    gather_report,
)
from firmware_host.course_inputs import CourseInputError, zone_named
from firmware_host.output_files import OutputRefused, write_atomically
from firmware_host.paths import PathNameError, resolve_site_config, resolve_state_dir, user_path
from firmware_host.stdout_guard import done
from profiles.errors import TrustStoreError
from profiles.locator import printable
from profiles.schema import Profile
from profiles.signing import TrustStore, signature_checked
from profiles.store import load_installed
from safety.errors import SafetyError
from safety.records import Records, SessionRecord, read_records

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
"""The report holds health data: the owner and the caregiver's group only."""
SERIAL_MAX_CHARS: Final = 64
PI_SERIAL_FILES: Final = (
    Path("/sys/firmware/devicetree/base/serial-number"),
    Path("/proc/device-tree/serial-number"),
)
NOT_SET: Final = "not set"
NO_SERIAL_NOTE: Final = (
    "nirpad: note: this pad has no serial ([device] serial in site.toml), so the FHIR "
    "bundle names no patient or device identifier; the clinic must attach it to the "
    "patient by hand"
)


def wall_clock() -> datetime:
    """Now, aware (tests replace it)."""
    return datetime.now(UTC)


class _Refused(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def main(args: argparse.Namespace) -> int:
    try:
        outputs = _outputs(args)
        data, sessions, nightly, irls = _gather(args)
        files = _render(data, outputs, sessions, nightly, irls)
        write_atomically(files, state_dir=resolve_state_dir(args.state_dir))
    except (_Refused, OutputRefused) as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return exc.code
    period = data.period
    written = "".join(f"\n  {path}" for path, _ in files)
    done(f"Report for {period.start.isoformat()} to {period.end.isoformat()} written:{written}")
    asked = _day(args.from_day, "--from")
    if asked is not None and asked < period.start:  # moved to the first day with a record
        print(
            f"nirpad: note: nothing is recorded before {period.start.isoformat()}: the "
            f"period starts then, not on --from {asked.isoformat()}",
            file=sys.stderr,
        )
    later = clock_note(data)
    if later is not None:
        print(f"nirpad: note: {later}", file=sys.stderr)
    if data.diary_damaged_rows:
        print(f"nirpad: {diary_damaged_text(data.diary_damaged_rows, 'counted')}", file=sys.stderr)
    if "fhir" in outputs and data.device.serial == NOT_SET:
        print(NO_SERIAL_NOTE, file=sys.stderr)
    return EXIT_OK


REPORT_FILE_NAMES: Final = {"pdf": "report.pdf", "csv": "report.csv", "fhir": "report.fhir.json"}


def report_files(
    state_dir: Path,
    site_config: str | None,
    tz: str | None,
    from_day: str | None = None,
    to_day: str | None = None,
) -> dict[str, bytes] | str:
    """The PDF, CSV and FHIR files in memory, exactly as ``nirpad report`` writes them
    (the caregiver's page offers them for download), keyed ``pdf``, ``csv``, ``fhir``;
    or the sentence that says why there is no report."""
    args = argparse.Namespace(state_dir=str(state_dir), site_config=site_config, tz=tz,
                              from_day=from_day, to_day=to_day)  # fmt: skip
    names = {kind: Path(name) for kind, name in REPORT_FILE_NAMES.items()}
    try:
        data, sessions, nightly, irls = _gather(args)
        files = dict(_render(data, names, sessions, nightly, irls))
    except (_Refused, PathNameError) as exc:  # PathNameError: the folder became a file
        return str(exc)
    return {kind: files[path] for kind, path in names.items()}


def _outputs(args: argparse.Namespace) -> dict[str, Path]:
    chosen = {"pdf": args.output, "csv": args.csv, "fhir": args.fhir}
    for option, name in (("-o", args.output), ("--csv", args.csv), ("--fhir", args.fhir)):
        if name is not None and not name.strip():  # an unset variable: never "no file"
            raise _Refused(f"{option} needs a file name; it was empty", EXIT_USAGE)
    outputs = {kind: user_path(name) for kind, name in chosen.items() if name is not None}
    if len({path.resolve() for path in outputs.values()}) != len(outputs):  # links, ../
        raise _Refused("-o, --csv and --fhir must name different files", EXIT_USAGE)
    return outputs


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return calendar_date(text)
    except ValueError:
        raise _Refused(
            f"{option} '{printable(text)}' is not a date: write it as YYYY-MM-DD (like 2026-11-03)",
            EXIT_USAGE,
        ) from None


def _gather(
    args: argparse.Namespace,
) -> tuple[ReportData, list[SessionRecord], list[StoredNightly], list[StoredIrls]]:
    state_dir = resolve_state_dir(args.state_dir)
    site = resolve_site_config(state_dir, args.site_config)
    start, end = _day(args.from_day, "--from"), _day(args.to_day, "--to")
    try:
        zone = zone_named(args.tz)
    except CourseInputError as exc:
        raise _Refused(str(exc), EXIT_USAGE) from exc
    now = wall_clock()
    today = now.astimezone(zone).date()
    try:
        rule = rule_from_site(site)
        trust = TrustStore.from_site_file(site)
        serial = device_serial(site)
    except (SiteConfigError, TrustStoreError) as exc:
        raise _Refused(f"the site configuration is unusable: {exc}", EXIT_USAGE) from exc
    rx, signature = _prescription(state_dir, trust)
    try:
        records = read_records(state_dir, lambda: now)
    except SafetyError as exc:
        raise _Refused(str(exc), EXIT_ERROR) from exc
    nightly, irls, diary_damaged = _diary(state_dir)
    diary_days = [n.entry.entry_date for n in nightly] + [i.entry_date for i in irls]
    first_record = _first_record_day(rx, records, diary_days, zone)
    try:
        period = (
            None
            if start is None and end is None
            else _period(start, end or today, rx, records.sessions, zone, first_record)
        )
        data = gather_report(
            rx,
            signature,
            records,
            nightly=nightly,
            irls=irls,
            period=period,
            tz=zone,
            zone_name=str(zone),
            rule=rule,
            device=Device(serial, software_version()),
            generated_at=now,
            diary_damaged_rows=diary_damaged,
        )
    except ReportError as exc:
        raise _Refused(str(exc), EXIT_USAGE) from exc
    return data, *_in_period(data, records, nightly, irls, zone)


def _period(
    start: date | None,
    end: date,
    rx: Profile,
    sessions: Sequence[SessionRecord],
    zone: tzinfo,
    first_record: date,
) -> Period:
    """``--from`` to ``--to``; without ``--from``, day 1 of the course (the issue date
    before any session), or the end if that is earlier. A ``--from`` before
    ``first_record`` starts the period on that day (when it ends after it): the days
    before hold nothing, and ``--from 0001-01-01`` made a period of 739,956 days."""
    if start is None:
        start = min(first_day_of(rx, sessions, zone) or rx.issued, end)
    elif start < first_record <= end:
        start = first_record
    return Period(start, end)


def _first_record_day(
    rx: Profile, records: Records, diary_days: Sequence[date], zone: tzinfo
) -> date:
    """The first day anything of the report is recorded on, in the patient's zone: the
    prescription's issue date, or an earlier session (of any prescription), fault or
    diary entry."""
    times = [*(s.started_at for s in records.sessions), *(f.at for f in records.faults)]
    return min([rx.issued, *diary_days, *(t.astimezone(zone).date() for t in times)])


def _prescription(state_dir: Path, trust: TrustStore) -> tuple[Profile, SignatureStatus]:
    loaded = load_installed(state_dir, trust=trust)
    if loaded is None or loaded.profile is None:
        why = "" if loaded is None else f" ({'; '.join(map(str, loaded.problems))})"
        raise _Refused(f"no usable prescription is installed in {state_dir}{why}", EXIT_ERROR)
    rx = loaded.profile
    if rx.signature is None:
        return rx, SignatureStatus.UNSIGNED
    verified = signature_checked(trust)
    return rx, SignatureStatus.VERIFIED if verified else SignatureStatus.NOT_CHECKED


def _diary(state_dir: Path) -> tuple[list[StoredNightly], list[StoredIrls], int]:
    """The diary's current entries and how many damaged rows were left out; none when
    there is no diary (none is created). A night whose current entry answers nothing (a
    correction cleared it) is no night recorded for the clinic."""
    if not diary_exists(state_dir):
        return [], [], 0
    try:
        with Diary.open_to_read(state_dir) as diary:
            nights = [night for night in diary.nightly() if night.entry.holds_answer]
            return nights, diary.irls(), diary.damaged_rows
    except DiaryStorageError as exc:
        raise _Refused(f"{exc} No report was written.", EXIT_ERROR) from exc


def _in_period(
    data: ReportData,
    records: Records,
    nightly: Sequence[StoredNightly],
    irls: Sequence[StoredIrls],
    zone: tzinfo,
) -> tuple[list[SessionRecord], list[StoredNightly], list[StoredIrls]]:
    """What the CSV and FHIR files hold: every session started in the period (any
    prescription), the nightly entries in it, and the IRLS in it plus the baseline."""
    period = data.period
    baseline = data.baseline
    return (
        [s for s in records.sessions if period.holds(s.started_at.astimezone(zone).date())],
        [n for n in nightly if period.holds(n.entry.entry_date)],
        [
            i
            for i in irls
            if period.holds(i.entry_date) or (baseline is not None and i.entry_date == baseline.day)
        ],
    )


def _render(
    data: ReportData,
    outputs: dict[str, Path],
    sessions: list[SessionRecord],
    nightly: list[StoredNightly],
    irls: list[StoredIrls],
) -> list[tuple[Path, bytes]]:
    from care.report_pdf import render_pdf

    files = [(outputs["pdf"], render_pdf(data))]
    zone = data.generated_at.tzinfo
    assert zone is not None
    if "csv" in outputs:
        from care.report_csv import csv_text

        text = csv_text(sessions, nightly, irls, zone=zone)
        files.append((outputs["csv"], text.encode("utf-8")))
    if "fhir" in outputs:
        from care.report_fhir import fhir_bundle_json

        bundle = fhir_bundle_json(
            sessions,
            nightly,
            irls,
            rx=data.rx,
            device_serial=None if data.device.serial == NOT_SET else data.device.serial,
            software_version=data.device.software_version,
            generated_at=data.generated_at,
            zone=zone,
            signature=str(data.signature),
        )
        files.append((outputs["fhir"], bundle.encode("utf-8")))
    return files


def device_serial(site: Path | None) -> str:
    """The site's ``[device] serial``, else the Raspberry Pi's serial number, else
    "not set". Raises ``SiteConfigError`` for a serial that is not short text."""
    table = read_site_table(site, "device")
    if "serial" in table:
        value = table["serial"]
        if (
            not isinstance(value, str)
            or not 1 <= len(value.strip()) <= SERIAL_MAX_CHARS
            or not value.isprintable()
        ):
            raise SiteConfigError(
                f"In {site}, [device] serial must be text of 1 to {SERIAL_MAX_CHARS} "
                "printable characters."
            )
        return value.strip()
    for source in PI_SERIAL_FILES:
        try:
            text = source.read_bytes().rstrip(b"\0").decode("ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text and text.isprintable() and len(text) <= SERIAL_MAX_CHARS:
            return text
    return NOT_SET


def software_version() -> str:
    """nirpad's installed version, or "unknown" (a source tree that is not installed)."""
    try:
        return importlib.metadata.version("nirpad")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
