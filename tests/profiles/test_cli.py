"""``nirpad profile install/show/schema/sign/keygen`` and ``validate_and_install``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_host import profile_commands
from firmware_host.cli import main
from firmware_host.control_client import ControlClientError
from firmware_host.paths import resolve_site_config
from firmware_host.profile_commands import validate_and_install
from profiles.signing import sign_profile
from profiles.store import installed_path
from safety.errors import LedgerError
from safety.faults import Outcome
from safety.ledger import Ledger
from tests.profiles.conftest import builtin_text, run_cli

# The shipped built-ins carry fixed dates: read them on a day they are valid.
pytestmark = pytest.mark.usefixtures("builtin_wall_clock")

DUAL = builtin_text("rls-dual").encode()


@pytest.fixture(autouse=True)
def _no_controller(mocker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    return mocker.patch("firmware_host.control_client.send", return_value=None)


def _installs(state_dir: Path) -> list[tuple[str, str]]:
    with Ledger.open(state_dir, lambda: dt.datetime.now(dt.UTC)) as ledger:
        return [(r.profile_id, r.sha256) for r in ledger.installs()]


def test_install_writes_and_records(
    tmp_path: Path, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    path = write(DUAL)
    assert run_cli(["install", str(path), "--state-dir", str(state_dir)]) == 0
    assert "installed rls-dual" in capsys.readouterr().out
    assert installed_path(state_dir).read_bytes() == DUAL
    assert _installs(state_dir) == [("rls-dual", hashlib.sha256(DUAL).hexdigest())]


def test_invalid_profile_not_installed(
    tmp_path: Path, base_text: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    bad = write(base_text.replace("wavelength_nm = 810", "wavelength_nm = 940"))
    assert run_cli(["install", str(bad), "--state-dir", str(state_dir)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        f"nirpad: {bad} was refused:",
        "  channels[0].wavelength_nm = 940: must be 810 or 850 nm (line 27)",
    ]
    assert not installed_path(state_dir).exists()


@pytest.mark.parametrize("state", ["treating", "paused"])
def test_refused_while_session_runs(
    tmp_path: Path, _no_controller: Any, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_controller.return_value = {
        "ok": True,
        "exit_code": 0,
        "message": "",
        "data": {"state": state},
    }
    outcome = validate_and_install(tmp_path, DUAL, "rx.toml", None)
    assert (outcome.ok, outcome.exit_code) == (False, 3)
    assert outcome.message == f"a session is {state}; stop it before installing a new prescription"
    assert not installed_path(tmp_path).exists()


def test_allowed_when_controller_idle(tmp_path: Path, _no_controller: Any) -> None:
    _no_controller.return_value = {
        "ok": True,
        "exit_code": 0,
        "message": "",
        "data": {"state": "ready"},
    }
    assert validate_and_install(tmp_path, DUAL, "rx.toml", None).ok


def test_refused_when_controller_cannot_be_asked(tmp_path: Path, _no_controller: Any) -> None:
    _no_controller.side_effect = ControlClientError("permission denied")
    outcome = validate_and_install(tmp_path, DUAL, "rx.toml", None)
    assert outcome.exit_code == 3 and "permission denied" in outcome.message
    assert not installed_path(tmp_path).exists()


def test_in_controller_session_state_hook(tmp_path: Path, _no_controller: Any) -> None:
    outcome = validate_and_install(tmp_path, DUAL, "rx", None, session_state=lambda: "treating")
    assert outcome.exit_code == 3
    _no_controller.assert_not_called()


def test_ledger_failure_rolls_back(tmp_path: Path, mocker: Any) -> None:
    old = builtin_text("rls-810-standard").encode()
    assert validate_and_install(tmp_path, old, "old.toml", None).ok
    mocker.patch.object(Ledger, "record_install", side_effect=LedgerError("disk full", path="x"))
    outcome = validate_and_install(tmp_path, DUAL, "new.toml", None)
    assert (outcome.ok, outcome.exit_code) == (False, 1)
    assert "could not be recorded" in outcome.message
    assert installed_path(tmp_path).read_bytes() == old


@pytest.mark.parametrize("had_one", [True, False])
def test_a_failed_sync_of_the_folder_after_the_rename_keeps_what_was_installed(
    tmp_path: Path, mocker: Any, had_one: bool
) -> None:
    """The new file is in place once renamed; if syncing the folder then fails (EIO, or
    a file system that refuses to sync a folder), the caregiver is told "cannot install"
    and nothing is recorded: the pad must then keep the prescription it had, not run one
    it was told did not install and whose install the record does not hold."""
    old = builtin_text("rls-810-standard").encode()
    if had_one:
        assert validate_and_install(tmp_path, old, "old.toml", None).ok
    mocker.patch("profiles.store._fsync_dir", side_effect=OSError(5, "Input/output error"))
    outcome = validate_and_install(tmp_path, DUAL, "new.toml", None)
    assert (outcome.ok, outcome.exit_code) == (False, 1)
    assert "cannot install" in outcome.message
    if had_one:
        assert installed_path(tmp_path).read_bytes() == old
    else:
        assert not installed_path(tmp_path).exists()
    assert [sha for _, sha in _installs(tmp_path)] == (
        [hashlib.sha256(old).hexdigest()] if had_one else []
    )


def test_ledger_unopenable_installs_nothing(tmp_path: Path, mocker: Any) -> None:
    mocker.patch.object(Ledger, "open", side_effect=LedgerError("locked", path="x"))
    outcome = validate_and_install(tmp_path, DUAL, "rx.toml", None)
    assert outcome.exit_code == 1 and not installed_path(tmp_path).exists()


def test_site_requires_signature(
    tmp_path: Path, site_file: Path, private_key: Ed25519PrivateKey
) -> None:
    outcome = validate_and_install(tmp_path / "s", DUAL, "rx.toml", site_file)
    assert outcome.exit_code == 2
    assert outcome.problems == ["signature: is missing: this site only accepts signed profiles"]
    signed = sign_profile(DUAL.decode(), private_key, "clinic-a").encode()
    assert validate_and_install(tmp_path / "s", signed, "rx.toml", site_file).ok


def test_site_limits_tighten(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[limits]\nirradiance_max_mw_cm2 = 16.5\n")  # less ±10 %: 15
    outcome = validate_and_install(tmp_path / "s", DUAL, "rx.toml", site)
    assert outcome.exit_code == 2
    assert (
        "channels[0].irradiance_mw_cm2 = 20: must be between 10 and 15 mW/cm² "
        "(16.5 mW/cm² less the ±10 % output tolerance) (line 30)"
    ) in outcome.problems


def test_unusable_site_config(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[limits]\nirradiance_max_mw_cm2 = 500\n")
    outcome = validate_and_install(tmp_path / "s", DUAL, "rx.toml", site)
    assert outcome.exit_code == 1 and "site configuration" in outcome.message


def test_site_config_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_site_config(tmp_path, None) is None
    (tmp_path / "site.toml").write_text("")
    assert resolve_site_config(tmp_path, None) == tmp_path / "site.toml"
    monkeypatch.setenv("NIRPAD_SITE_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_site_config(tmp_path, None) == tmp_path / "env.toml"
    assert resolve_site_config(tmp_path, "/x/arg.toml") == Path("/x/arg.toml")


def test_show_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 3
    assert "none installed" in capsys.readouterr().err
    assert validate_and_install(tmp_path, DUAL, "rx.toml", None).ok
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "RLS standard, 810 + 850 nm (rls-dual)" in out
    assert "next session allowed: now" in out
    assert run_cli(["show", "--state-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"]["id"] == "rls-dual"
    assert report["expires"] == "2028-01-01"
    assert report["planned_fluence_j_cm2"] == {"810": 35.7, "850": 35.7}
    assert report["next_start_allowed_at"] is None


def test_show_next_start_from_ledger(
    tmp_path: Path, mocker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The controller's rule for this prescription (20 h apart, 3 a week), read-only."""
    assert validate_and_install(tmp_path, DUAL, "rx.toml", None).ok
    last = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    with Ledger.open(tmp_path, lambda: last) as ledger:
        sid = ledger.begin_session("rls-dual", "ab" * 32, {810: 45.0, 850: 45.0})
        ledger.end_session(sid, Outcome.COMPLETED, {810: 45.0, 850: 45.0})
    with Ledger.open(tmp_path, lambda: dt.datetime.now(dt.UTC)) as ledger:
        when = ledger.next_start_allowed_at(20, 3)
        assert when is not None and when != ledger.next_start_allowed_at(24, 3)
    mocker.patch.object(Ledger, "open", side_effect=AssertionError("opened for writing"))
    assert run_cli(["show", "--state-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["next_start_allowed_at"] == when.isoformat()


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Profile"


def test_keygen_sign_check_round_trip(
    tmp_path: Path, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "clinic-a"
    assert run_cli(["keygen", "--out", str(prefix)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "clinic-a.key").stat().st_mode & 0o777 == 0o600
    assert run_cli(["keygen", "--out", str(prefix)]) == 1  # never overwrites a key
    assert "already exists" in capsys.readouterr().err
    site = tmp_path / "site.toml"
    site.write_text("[signing]\nrequire_signed = true\n" + out.split("site.toml:\n", 1)[1])
    signed = tmp_path / "signed.toml"
    rx = write(DUAL)
    key = str(prefix) + ".key"
    assert run_cli(["sign", str(rx), "--key", key, "--key-id", "clinic-a", "-o", str(signed)]) == 0
    assert run_cli(["check", str(signed), "--site-config", str(site)]) == 0
    assert "signature: signed (clinic-a)" in capsys.readouterr().out


def test_a_path_given_with_a_tilde_is_found_in_the_home_folder(
    tmp_path: Path, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quoted, after ``--key=`` or from a script, ``~`` reaches nirpad unexpanded."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write(DUAL)
    assert run_cli(["keygen", "--out", "~/clinic-a"]) == 0
    assert (tmp_path / "clinic-a.key").is_file()
    sign = ["sign", "~/rx.toml", "--key", "~/clinic-a.key", "--key-id", "a", "-o", "~/s.toml"]
    assert run_cli(sign) == 0
    assert "[signature]" in (tmp_path / "s.toml").read_text()
    assert run_cli(["check", "~/s.toml"]) == 0
    assert run_cli(["install", "~/s.toml", "--state-dir", str(tmp_path / "state")]) == 0
    assert installed_path(tmp_path / "state").read_bytes() == (tmp_path / "s.toml").read_bytes()


@pytest.mark.parametrize(
    "action", [["check"], ["install"], ["sign", "--key", "k", "--key-id", "k"]]
)
def test_a_path_in_the_home_of_no_user_is_refused_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    argv = ["profile", action[0], "~no-such-nirpad-user/rx.toml", *action[1:]]
    assert main([*argv, "--state-dir", str(tmp_path)] if action == ["install"] else argv) == 2
    assert capsys.readouterr().err == (
        "nirpad: cannot use ~no-such-nirpad-user/rx.toml: ~no-such-nirpad-user names no home "
        "folder on this machine (no such user); give the path in full\n"
    )


def test_sign_refuses_invalid_profile(
    tmp_path: Path, base_text: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(["keygen", "--out", str(tmp_path / "k")])
    bad = write(base_text.replace("ramp_s = 30", "ramp_s = -5"))
    assert run_cli(["sign", str(bad), "--key", str(tmp_path / "k.key"), "--key-id", "k"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"nirpad: cannot sign {bad}:",
        "  ramp_s = -5: must be at least 0 s (line 21)",
    ]
    assert run_cli(["sign", str(bad), "--key", str(tmp_path / "none.key"), "--key-id", "k"]) == 1


def test_check_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["check", str(tmp_path / "missing.toml")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_outcome_fits_control_reply(tmp_path: Path) -> None:
    outcome = validate_and_install(tmp_path, DUAL, "rx.toml", None)
    assert outcome.data["profile_id"] == "rls-dual"
    assert outcome.data["sha256"] == hashlib.sha256(DUAL).hexdigest()
    assert profile_commands.EXIT_INVALID == 2


ERRORS = {
    "check, not TOML": ["check", "{d}/bad.toml"],
    "check, no such file": ["check", "{d}/missing.toml"],
    "check, no such site file": ["check", "{d}/bad.toml", "--site-config", "{d}/none.toml"],
    "install, not TOML": ["install", "{d}/bad.toml", "--state-dir", "{d}/state"],
    "install, no such file": ["install", "{d}/missing.toml", "--state-dir", "{d}/state"],
    "show, none installed": ["show", "--state-dir", "{d}/state"],
    "show, no such site file": ["show", "--state-dir", "{d}/s", "--site-config", "{d}/none.toml"],
    "sign, no such key": ["sign", "{d}/bad.toml", "--key", "{d}/none.key", "--key-id", "k"],
    "sign, not TOML": ["sign", "{d}/bad.toml", "--key", "{d}/k.key", "--key-id", "k"],
    "keygen, no such folder": ["keygen", "--out", "{d}/missing/k"],
}


@pytest.mark.parametrize("argv", ERRORS.values(), ids=ERRORS.keys())
def test_an_error_is_said_as_the_rest_of_the_cli_says_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """One line starting ``nirpad: `` on stderr; a file's problems, if any, indented
    below it."""
    (tmp_path / "bad.toml").write_text("x y\n")
    assert run_cli(["keygen", "--out", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    assert run_cli([word.format(d=tmp_path) for word in argv]) != 0
    head, *rest = capsys.readouterr().err.splitlines()
    assert head.startswith("nirpad: ") and not head.startswith("nirpad: nirpad")
    assert all(line.startswith("  ") for line in rest)


def test_a_refused_install_says_what_was_refused_then_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("x y\n")
    assert run_cli(["install", str(bad), "--state-dir", str(tmp_path / "state")]) == 2
    assert capsys.readouterr().err == (
        f'nirpad: {bad} was refused:\n  file: not valid TOML: expected "=" after the key (line 1)\n'
    )
    assert not installed_path(tmp_path / "state").exists()


def test_show_with_none_installed_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 3
    assert capsys.readouterr().err == (
        f"nirpad: no usable prescription in {tmp_path}: none installed\n"
    )


def test_show_of_a_folder_it_may_not_read_names_the_file_not_the_site_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = tmp_path / "prescription.toml"

    def unreadable(*_args: object) -> None:
        raise PermissionError(13, "Permission denied", str(rx))

    monkeypatch.setattr(profile_commands, "load_installed_as_controller", unreadable)
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"nirpad: cannot read {rx}: Permission denied\n"
