"""The demo's prescription: the built-in, dated from today, so ``nirpad demo`` runs on any
date (the shipped file expires like any prescription); a refusal says why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from pytest_mock import MockerFixture

from firmware_host import profile_commands
from firmware_host.demo import PROFILE_ID, DemoError, install_builtin
from profiles.shipped import builtin_text
from profiles.store import load_installed

AFTER_EXPIRY = dt.datetime(2028, 2, 1, 12, 0, tzinfo=dt.UTC)


def test_the_demo_installs_the_builtin_after_its_shipped_expiry(tmp_path: Path) -> None:
    assert "expires = 2028-01-01" in builtin_text(PROFILE_ID)  # shipped: expired by then
    with time_machine.travel(AFTER_EXPIRY, tick=False):
        message = install_builtin(tmp_path)
    assert message.startswith(f"Installed the built-in prescription {PROFILE_ID}")
    result = load_installed(tmp_path)
    assert result is not None and result.profile is not None
    assert result.profile.id == PROFILE_ID
    assert result.profile.is_valid_on(AFTER_EXPIRY.date())


def test_a_refused_demo_prescription_says_why(tmp_path: Path, mocker: MockerFixture) -> None:
    refused = profile_commands.InstallOutcome(
        False, 2, "rls-810-standard.toml was refused", ["expires = 2028-01-01: expired (line 18)"]
    )
    mocker.patch.object(profile_commands, "validate_and_install", return_value=refused)
    with pytest.raises(DemoError, match=r"refused: expires = 2028-01-01: expired \(line 18\)$"):
        install_builtin(tmp_path)
