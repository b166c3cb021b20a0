"""One life of the host in an in-process rig: a power cut leaves nothing of the dead
host running into the next one's life."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hil.rigs.harness import InProcessRig
from safety import ledger_backup
from safety.ledger_backup import BACKUP_THREAD_NAME


def _backup_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == BACKUP_THREAD_NAME]


def test_a_power_cut_lets_a_backup_copy_in_flight_finish_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread cannot be killed: one left copying would write into the state directory
    under the next host, or while the directory is being removed."""
    copying = threading.Event()
    real_copy = ledger_backup.copy_ledger

    def slow_copy(source: Path, dest: Path) -> None:
        copying.set()
        time.sleep(0.3)  # a copy of a long history on an SD card
        real_copy(source, dest)

    monkeypatch.setattr(ledger_backup, "copy_ledger", slow_copy)
    rig = InProcessRig.build(tmp_path / "state")
    try:
        rig.boot()
        assert rig.command("start").ok
        rig.run(2.0)
        assert rig.command("stop").ok  # the session's end asks for a backup
        assert copying.wait(5.0)
        rig.power_cut()
        assert _backup_threads() == []
    finally:
        rig.close()
