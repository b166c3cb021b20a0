"""An install with no controller where the state directory may not be written (the
page under its unit, or a user outside the nirpad group): a caregiver's sentence."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from firmware_host import profile_commands
from firmware_host.paths import StateDirError
from profiles.store import installed_path

BUILTIN = Path(profile_commands.__file__).parent.parent / "profiles/builtin/rls-810-standard.toml"


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_state_dir_says_to_start_the_controller(
    tmp_path: Path, mocker: MockerFixture, code: int
) -> None:
    def refuse(state_dir: Path, purpose: str = "") -> None:
        cause = OSError(code, "no")
        raise StateDirError("cannot open the lock file", path=state_dir) from cause

    mocker.patch("firmware_host.state_lock.StateLock.acquire", side_effect=refuse)
    outcome = profile_commands.install_prescription(
        tmp_path, BUILTIN.read_bytes(), BUILTIN.name, None
    )
    assert not outcome.ok
    assert "the controller is not running" in outcome.message
    assert "systemctl start nirpad" in outcome.message
    assert not installed_path(tmp_path).exists()


def test_another_failure_names_its_cause(tmp_path: Path, mocker: MockerFixture) -> None:
    def broken(state_dir: Path, purpose: str = "") -> None:
        raise StateDirError("cannot open the lock file: disk gone", path=state_dir) from OSError(
            errno.EIO, "I/O error"
        )

    mocker.patch("firmware_host.state_lock.StateLock.acquire", side_effect=broken)
    outcome = profile_commands.install_prescription(
        tmp_path, BUILTIN.read_bytes(), BUILTIN.name, None
    )
    assert not outcome.ok
    assert "cannot be used" in outcome.message
    assert "disk gone" in outcome.message
