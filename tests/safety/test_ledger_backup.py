"""The ledger's backup worker: never makes its caller wait, folds requests, and says so
when a copy hangs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from safety.ledger_backup import LedgerBackup


def test_requests_during_a_copy_fold_into_one_more_and_a_hung_copy_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    copies: list[Path] = []

    def slow_copy(source: Path, dest: Path) -> None:
        copies.append(dest)
        release.wait(10)

    monkeypatch.setattr("safety.ledger_backup.copy_ledger", slow_copy)
    monkeypatch.setattr("safety.ledger_backup._JOIN_TIMEOUT_S", 0.05)
    backup = LedgerBackup(tmp_path / "ledger", (tmp_path / "b1",))
    backup.request()  # returns at once: the copy runs on its own thread
    backup.request()
    backup.request()  # two more requests while it runs: one more copy
    backup.wait()  # gives up after the (shortened) join timeout
    assert "ledger backup still running" in caplog.text
    release.set()
    monkeypatch.setattr("safety.ledger_backup._JOIN_TIMEOUT_S", 10.0)
    backup.wait()
    assert copies == [tmp_path / "b1", tmp_path / "b1"]
