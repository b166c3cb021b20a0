"""``nirpad profile ...``: check, install, show, schema, sign and keygen.

Owns: where the profiles package meets the safety layer — a profile is checked against
the schema (``profiles``), the hard and site limits (``safety.limits.check_profile``),
its signature (the site's ``[signing]`` table) and its dates; then installed atomically
(``profiles.store``) and recorded in the ledger (``safety.ledger``).
``validate_and_install`` is the one path used by the CLI and by the control socket.
Does not own the rules themselves, the file format, or the controller's state.
Exit codes (``firmware_host.control_client``): 0 ok, 1 error, 2 invalid, 3 refused.
Errors go to stderr as the rest of the CLI says them: one line starting ``nirpad: ``;
a refused file is named once on that line, its problems indented below it, in the
words the caregiver's page lists them in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import logging
import math
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from firmware_host.arg_types import Subcommands
from firmware_host.control_client import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from firmware_host.output_files import OutputRefused, write_atomically
from firmware_host.paths import (
    PathNameError,
    ensure_state_dir,
    home_expanded,
    resolve_site_config,
    resolve_state_dir,
)
from firmware_host.stdout_guard import done
from profiles.clinic_commands import cmd_keygen, cmd_schema
from profiles.errors import Problem, ProfileError, StoreError
from profiles.file_errors import os_error_text
from profiles.keyfiles import sign_file
from profiles.loader import ExtraChecks, Finding, LoadResult, load_profile_bytes, read_profile_file
from profiles.locator import printable
from profiles.schema import Profile
from profiles.signing import TrustStore, signature_checked
from profiles.store import install_atomic, installed_path, load_installed
from profiles.summary import describe, describe_json
from safety.calibration import Calibration, CalibrationError
from safety.errors import SafetyError, StartRefusedError
from safety.ledger_guard import open_guarded
from safety.ledger_rules import format_time
from safety.limits import (
    CHANNEL_WAVELENGTHS_NM,
    Limits,
    check_profile,
    load_site_limits,
)
from safety.plan import plan_from_profile
from safety.records import read_records, schedule_rule

log = logging.getLogger(__name__)

EXIT_INVALID: Final = EXIT_USAGE  # 2: the profile (or the command line) is wrong
SESSION_STATES: Final = frozenset({"treating", "paused"})
SessionState = Callable[[], str | None]


@dataclass(frozen=True)
class InstallOutcome:
    """What an install did; fits the control socket's reply (ok, exit_code, message, data)."""

    ok: bool
    exit_code: int
    message: str
    problems: list[str] = field(default_factory=list)
    path: Path | None = None
    sha256: str = ""
    profile_id: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        where = None if self.path is None else str(self.path)
        return {"problems": self.problems, "path": where, "sha256": self.sha256,
                "profile_id": self.profile_id}  # fmt: skip


class NominalPad(Calibration):
    """The pad as designed, for a check away from the pad: 810 nm on channel 0 and
    850 nm on channel 1 (``CHANNEL_WAVELENGTHS_NM``). It has no calibration table: the
    pad's own table is read from the board and checked when a session starts."""

    def __init__(self) -> None:
        super().__init__(())

    def channel_for_wavelength(self, wavelength_nm: int) -> int:
        if wavelength_nm not in CHANNEL_WAVELENGTHS_NM:
            raise CalibrationError(
                f"the pad has no {wavelength_nm} nm channel", channel=-1, value=wavelength_nm
            )
        return CHANNEL_WAVELENGTHS_NM.index(wavelength_nm)


def start_rules(limits: Limits, calibration: Calibration | None = None) -> ExtraChecks:
    """The controller's own rules for a prescription, as the loader's ``extra_checks``:
    the limits (hard and site) and the session plan for the pad's calibration
    (``NominalPad`` when it is not known), as in ``safety.start_guards``."""
    pad = calibration or NominalPad()

    def rules(profile: Profile) -> list[Finding]:
        found: list[Finding] = list(check_profile(profile, limits))
        try:
            plan_from_profile(profile, pad)
        except StartRefusedError as exc:
            found.append(("file", None, exc.reason))
        return found

    return rules


def load_installed_as_controller(
    state_dir: Path, site_config: Path | None
) -> tuple[LoadResult | None, TrustStore]:
    """The installed prescription judged as ``nirpad run`` judges it (its limits and
    trusted keys from ``site_config``, the signature checked again); raises
    SafetyError/ProfileError when the site configuration is unusable."""
    limits = load_site_limits(site_config)
    trust = TrustStore.from_site_file(site_config)
    return load_installed(state_dir, extra_checks=start_rules(limits), trust=trust), trust


def utc_today() -> dt.date:
    """The day the prescription's dates are read on: the wall clock's UTC date, as the
    start guard reads it (``safety.start_guards``), not the host's local calendar."""
    return dt.datetime.now(dt.UTC).date()


def check_bytes(
    data: bytes, name: str, site_config: Path | None, today: dt.date | None = None
) -> LoadResult:
    """Would this prescription start on this pad: schema, limits (hard + site), the
    session plan on a nominal pad, signature and dates. Raises SafetyError/ProfileError
    when the site configuration itself is unusable."""
    limits = load_site_limits(site_config)
    trust = TrustStore.from_site_file(site_config)
    return load_profile_bytes(
        data,
        name,
        extra_checks=start_rules(limits),
        trust=trust,
        today=today or utc_today(),
    )


def validate_and_install(
    state_dir: Path,
    data: bytes,
    name: str,
    site_config: Path | None,
    *,
    session_state: SessionState | None = None,
    wall_clock: Callable[[], dt.datetime] | None = None,
) -> InstallOutcome:
    """Check ``data`` fully, refuse during a session, install atomically, record in the ledger.

    ``session_state`` tells the controller's state when called from inside the
    controller (the control socket); by default the running controller is asked.
    Nothing is changed unless every step can succeed; never raises.
    """
    busy = _session_refusal(state_dir, session_state)  # first: no check runs during a session
    if busy is not None:
        return InstallOutcome(False, EXIT_REFUSED, busy)
    clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
    try:  # the day as the start guard reads it: the wall clock's (UTC) date
        result = check_bytes(data, name, site_config, today=clock().date())
    except (SafetyError, ProfileError, OSError) as exc:
        return InstallOutcome(False, EXIT_ERROR, f"the site configuration is unusable: {exc}")
    if not result.ok or result.profile is None:
        lines = [str(p) for p in result.problems]
        return InstallOutcome(
            False, EXIT_INVALID, f"{name} was refused", lines, sha256=result.sha256
        )
    return _install_and_record(state_dir, data, result.profile.id, result.sha256, clock)


def _session_refusal(state_dir: Path, session_state: SessionState | None) -> str | None:
    try:
        state = session_state() if session_state else _ask_controller(state_dir)
    except Exception as exc:  # cannot tell whether a session runs: refuse (fail closed)
        return f"cannot ask the controller whether a session is running: {exc}"
    if state in SESSION_STATES:
        return f"a session is {state}; stop it before installing a new prescription"
    return None


def _ask_controller(state_dir: Path) -> str | None:
    from firmware_host.control_client import send

    reply = send(state_dir, {"cmd": "status"})
    if reply is None:
        return None  # no controller runs for this state directory
    payload = reply.get("data")
    state = payload.get("state") if isinstance(payload, dict) else reply.get("state")
    return None if state is None else str(state)


def _install_and_record(
    state_dir: Path, data: bytes, profile_id: str, sha256: str, clock: Callable[[], dt.datetime]
) -> InstallOutcome:
    try:
        ensure_state_dir(state_dir)
        # before writing: no audit trail, no install; a lost or damaged record is
        # restored from its backup first, and a record found lost refuses the install
        ledger = open_guarded(state_dir, clock)
    except (OSError, sqlite3.Error, SafetyError) as exc:
        return InstallOutcome(False, EXIT_ERROR, str(exc))
    lost = ledger.lost_refusal()
    if lost is not None:
        ledger.close()
        return InstallOutcome(False, EXIT_REFUSED, lost)
    target = installed_path(state_dir)
    with ledger:
        try:
            previous = target.read_bytes() if target.is_file() else None
            path = install_atomic(state_dir, data)
        except (OSError, ProfileError) as exc:
            if isinstance(exc, StoreError) and exc.replaced:  # in place, but not for sure
                _roll_back(state_dir, previous)
            return InstallOutcome(False, EXIT_ERROR, f"cannot install: {exc}")
        try:
            ledger.record_install(profile_id, sha256, str(path))
        except SafetyError as exc:
            _roll_back(state_dir, previous)
            return InstallOutcome(False, EXIT_ERROR, f"the install could not be recorded: {exc}")
    message = f"installed {profile_id} (sha256 {sha256[:12]}…) as {path}"
    return InstallOutcome(True, EXIT_OK, message, path=path, sha256=sha256, profile_id=profile_id)


def _roll_back(state_dir: Path, previous: bytes | None) -> None:
    """Put the previous prescription back after a failed ledger record."""
    try:
        if previous is None:
            installed_path(state_dir).unlink(missing_ok=True)
        else:
            install_atomic(state_dir, previous)
    except StoreError as exc:
        if not exc.replaced:  # replaced: it is back in place, only not synced
            log.error("could not restore the previous prescription in %s", state_dir)
    except (OSError, ProfileError):
        log.error("could not restore the previous prescription in %s", state_dir)


def register(subparsers: Subcommands) -> None:
    """Add ``profile`` and its sub-commands to the ``nirpad`` parser; handlers set ``func``."""
    profile = subparsers.add_parser("profile", help="check, install and show prescriptions")
    sub = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="check a profile file; exit 2 with the problems")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--site-config", metavar="FILE", help="site limits and trusted keys")
    check.set_defaults(func=_home_expanding(cmd_check, "file"))
    install = sub.add_parser("install", help="check and install a prescription")
    install.add_argument("file", metavar="FILE")
    install.add_argument("--state-dir", metavar="DIR", help="default: $NIRPAD_STATE_DIR, …")
    install.add_argument("--site-config", metavar="FILE", help="site limits and trusted keys")
    install.set_defaults(func=_home_expanding(cmd_install, "file"))
    show = sub.add_parser("show", help="show the installed prescription")
    show.add_argument("--state-dir", metavar="DIR", help="default: $NIRPAD_STATE_DIR, …")
    show.add_argument("--site-config", metavar="FILE", help="site limits and trusted keys")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_show)
    sub.add_parser("schema", help="print the JSON Schema").set_defaults(func=cmd_schema)
    sign = sub.add_parser("sign", help="sign a profile (for clinics)")
    sign.add_argument("file", metavar="FILE")
    sign.add_argument("--key", required=True, metavar="KEYFILE", help="PEM private key")
    sign.add_argument("--key-id", required=True, metavar="ID", help="id sites trust it under")
    sign.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    sign.set_defaults(func=_home_expanding(cmd_sign, "file", "key", "output"))
    keygen = sub.add_parser("keygen", help="make a signing key pair (for clinics)")
    keygen.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.key/.pub")
    keygen.set_defaults(func=_home_expanding(lambda args: cmd_keygen(args, done), "out"))


def _home_expanding(
    handler: Callable[[argparse.Namespace], int], *names: str
) -> Callable[[argparse.Namespace], int]:
    """``handler`` with a leading ``~`` in each named path argument expanded first, as the
    other commands do (``firmware_host.paths``); an unknown user is ``PathNameError``
    (exit 2)."""

    def run(args: argparse.Namespace) -> int:
        for name in names:
            value = getattr(args, name)
            if value is not None:
                setattr(args, name, home_expanded(value))
        return handler(args)

    return run


def _err(message: str) -> None:
    print(f"nirpad: {message}", file=sys.stderr)


def _refused(what: str, problems: Sequence[str]) -> None:
    """``what`` (naming the file) on the error line, then each problem indented below it."""
    _err(f"{what}:" if problems else what)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _read(path: str) -> bytes | None:
    """The file's bytes; a FIFO, device, oversized or unreadable file is refused at once."""
    data = read_profile_file(path)
    if isinstance(data, Problem):
        _err(f"{printable(path)}: {data.rule}")
        return None
    return data


def _own_state_dir() -> Path | None:
    """This machine's state directory, for ``sign -o`` to keep out of; None when none
    can be named (no home folder, a ``~name`` of no user): there is none to protect."""
    try:
        return resolve_state_dir(None)
    except (PathNameError, RuntimeError):  # pathlib: "Could not determine home directory."
        return None


def cmd_sign(args: argparse.Namespace) -> int:
    """Sign a profile with the clinic's key; to stdout, or atomically to ``-o`` (never
    over the key itself: a typo must not destroy the clinic's signing key; never into
    this machine's state directory, where it would replace the installed prescription
    without the install's checks and record)."""
    key = Path(args.key)
    if args.output and _same_file(Path(args.output), key):
        _err(f"cannot sign: {printable(args.output)} is the private key; nothing was written")
        return EXIT_ERROR
    try:
        signed, problems = sign_file(Path(args.file), key, args.key_id)
    except (ProfileError, OSError) as exc:
        _err(f"cannot sign: {exc}")
        return EXIT_ERROR
    if problems:
        _refused(f"cannot sign {printable(args.file)}", [str(p) for p in problems])
        return EXIT_INVALID
    if not args.output:
        sys.stdout.write(signed)
        return EXIT_OK
    try:  # never into the pad's record: install a prescription with `profile install`
        write_atomically([(Path(args.output), signed.encode("utf-8"))], state_dir=_own_state_dir())
    except OutputRefused as exc:
        _err(f"cannot sign: {exc}")
        return exc.code
    return EXIT_OK


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:  # either is missing (or unreadable): not the same existing file
        return False


def cmd_check(args: argparse.Namespace) -> int:
    data = _read(args.file)
    if data is None:
        return EXIT_INVALID
    site = resolve_site_config(None, args.site_config)
    try:
        result = check_bytes(data, args.file, site)
        checked = signature_checked(TrustStore.from_site_file(site))
    except (SafetyError, ProfileError, OSError) as exc:
        _err(f"the site configuration is unusable: {exc}")
        return EXIT_ERROR
    if not result.ok or result.profile is None:
        problems = [str(p) for p in result.problems]
        _refused(f"{printable(args.file)} cannot be used on this pad", problems)
        return EXIT_INVALID
    print(f"{printable(args.file)}: OK, it would start on this pad")
    for line in describe(result.profile, signature_checked=checked):
        print(f"  {line}")
    print(f"  judged by: {_judged_by(site)}")
    return EXIT_OK


def _judged_by(site: Path | None) -> str:
    limits = "the hard limits" if site is None else f"the limits of {printable(str(site))}"
    return (
        f"{limits}, today's date, and a nominal pad (810 nm on channel 0, 850 nm on "
        f"channel 1; the pad's own calibration is checked at the start). The interval, "
        f"weekly and course rules depend on the treatment record: see `nirpad profile show`"
    )


def cmd_install(args: argparse.Namespace) -> int:
    data = _read(args.file)
    if data is None:
        return EXIT_INVALID
    outcome = install_prescription(resolve_state_dir(args.state_dir), data, args.file,
                                   args.site_config)  # fmt: skip
    if outcome.ok:
        done(outcome.message)
    else:  # "rx.toml was refused" and why, or why nothing could be installed
        _refused(outcome.message, outcome.problems)
    return outcome.exit_code


def install_prescription(
    state_dir: Path, data: bytes, name: str, site_config_arg: str | None
) -> InstallOutcome:
    """Install as ``nirpad profile install`` does (the CLI and the caregiver's page): by
    the running controller, which checks it with its own site configuration, or, with
    none running, checked and installed here holding the state directory's lock."""
    outcome = _install_through_controller(state_dir, data, name)
    if outcome is None:  # no controller runs here: validate and install directly
        site = resolve_site_config(state_dir, site_config_arg)
        outcome = _install_holding_state_dir(state_dir, data, name, site)
    return outcome


def _install_holding_state_dir(
    state_dir: Path, data: bytes, name: str, site: Path | None
) -> InstallOutcome:
    """Install with no controller: hold the state directory's lock while writing."""
    from firmware_host.state_lock import StateDirBusy, StateLock

    try:
        lock = StateLock.acquire(ensure_state_dir(state_dir), "install")
    except StateDirBusy as exc:  # a controller is starting (or another install runs)
        return InstallOutcome(False, EXIT_REFUSED, str(exc))
    except OSError as exc:
        return InstallOutcome(False, EXIT_ERROR, _cannot_write(state_dir, exc))
    with lock:
        return validate_and_install(state_dir, data, name, site)


def _cannot_write(state_dir: Path, exc: OSError) -> str:
    """Why an install with no controller could not start, in a caregiver's words."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if cause.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"Nothing was installed: the controller is not running, and this program may "
            f"not write the state directory {state_dir} itself. Start the controller "
            f"(systemctl start nirpad) and install again, or run `nirpad profile install` "
            f"as the nirpad user."
        )
    return f"Nothing was installed: the state directory {state_dir} cannot be used ({exc})."


def _install_through_controller(state_dir: Path, data: bytes, name: str) -> InstallOutcome | None:
    """Hand the install to the running controller, which validates it the same way
    (with its own site configuration) and reloads; None when no controller runs."""
    from firmware_host.control_client import ControlClientError, send

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the direct path refuses it with the line of the bad byte
    try:
        reply = send(state_dir, {"cmd": "install", "name": name, "data": text}, timeout_s=10.0)
    except ControlClientError as exc:
        return InstallOutcome(False, EXIT_ERROR, f"cannot reach the running controller: {exc}")
    if reply is None:
        return None
    extra = reply.get("data")
    problems = extra.get("problems", []) if isinstance(extra, dict) else []
    return InstallOutcome(
        bool(reply.get("ok")),
        int(reply.get("exit_code", EXIT_ERROR)),
        str(reply.get("message", "")),
        [str(p) for p in problems],
    )


def cmd_show(args: argparse.Namespace) -> int:
    """The installed prescription as the controller judges it (limits, signature, plan)."""
    state_dir = resolve_state_dir(args.state_dir)
    site = resolve_site_config(state_dir, args.site_config)
    try:
        shown = installed_report(state_dir, site)
    except OSError as exc:  # the state directory or a file in it, or the site file
        _err(f"cannot read {printable(str(exc.filename or state_dir))}: {os_error_text(exc)}")
        return EXIT_ERROR
    except (SafetyError, ProfileError) as exc:
        _err(f"the site configuration is unusable: {exc}")
        return EXIT_ERROR
    if isinstance(shown, str):
        if args.json:
            print(json.dumps({"installed": False, "reason": shown}))
        else:
            _err(f"no usable prescription in {printable(str(state_dir))}: {shown}")
        return EXIT_REFUSED
    report, profile = shown
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return EXIT_OK
    _print_show(report, profile, report["sha256"])
    return EXIT_OK


def installed_report(state_dir: Path, site: Path | None) -> tuple[dict[str, Any], Profile] | str:
    """The installed prescription as ``nirpad profile show`` reports it (the caregiver's
    page too), with its profile; or why there is none usable. Raises SafetyError,
    ProfileError or OSError when the site configuration is unusable."""
    result, trust = load_installed_as_controller(state_dir, site)
    limits = load_site_limits(site)
    if result is None or result.profile is None:
        return "none installed" if result is None else "; ".join(map(str, result.problems))
    return _show_report(state_dir, result, limits, signature_checked(trust)), result.profile


def _print_show(report: dict[str, Any], profile: Profile, sha256: str) -> None:
    print(f"installed: {printable(report['path'])} (sha256 {sha256})")
    for line in describe(profile, signature_checked=report["signature_checked"]):
        print(f"  {line}")
    status = report["validity_problem"] or report["course_problem"] or "valid today"
    print(f"  status: {status}")
    print(f"  course: {report['course']}")
    print(f"  next session allowed: {report['next_start_local'] or 'now'}")


def _show_report(
    state_dir: Path, result: LoadResult, limits: Limits, checked: bool
) -> dict[str, Any]:
    assert result.profile is not None
    profile, today = result.profile, utc_today()
    report = describe_json(profile, result.sha256, today)
    report["path"] = str(installed_path(state_dir))
    report["signature_checked"] = checked
    when, first, record_problem = _from_ledger(state_dir, profile, limits)
    first_day = None if first is None else first.astimezone().date()  # the patient's day
    report["course_first_session"] = None if first_day is None else first_day.isoformat()
    report["course_problem"] = profile.course_problem_at(first, dt.datetime.now(dt.UTC))
    report["course"] = _course_line(profile, first_day)
    # in the start guards' order: the prescription, the record, the course
    refused = report["validity_problem"] or record_problem or report["course_problem"]
    if refused is not None:  # the schedule's time would promise a start that will not come
        when = f"none until this is resolved: {refused}"
    report["next_start_allowed_at"] = when if isinstance(when, str | None) else _iso(when)
    report["next_start_local"] = when if isinstance(when, str | None) else _local(when)
    return report


def _course_line(profile: Profile, first_day: dt.date | None) -> str:
    weeks = f"{profile.course_weeks} week{'' if profile.course_weeks == 1 else 's'}"
    if first_day is None:
        return f"{weeks} from the first session (none yet)"
    end = profile.course_end(first_day)
    return f"{weeks} from {first_day.isoformat()}, until the day before {end.isoformat()}"


def _iso(when: dt.datetime) -> str:
    """UTC, whole seconds, rounded up (never earlier than the rule allows)."""
    return dt.datetime.fromtimestamp(math.ceil(when.timestamp()), dt.UTC).isoformat()


def _local(when: dt.datetime) -> str:
    """Local time to the minute, rounded up, as the controller shows it."""
    return format_time(when.timestamp(), None)


def _from_ledger(
    state_dir: Path, profile: Profile, limits: Limits
) -> tuple[dt.datetime | str | None, dt.datetime | None, str | None]:
    """From the ledger, read-only, with the controller's rules: the schedule's next
    allowed start (None: now; text: unknown, why), the course's first session, and why
    the record itself refuses any start (lost, a clock jump not confirmed, the clock
    behind it) or None. Nothing is created, migrated or written."""
    rule = schedule_rule(profile, limits)
    try:
        records = read_records(state_dir, lambda: dt.datetime.now(dt.UTC), rule, profile)
    except SafetyError as exc:
        return f"unknown ({exc})", None, None
    return records.next_start_allowed_at, records.course_first_start, records.record_problem
