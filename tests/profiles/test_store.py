"""Atomic install: a crash at any point leaves the previous prescription intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from profiles.errors import StoreError
from profiles.store import PRESCRIPTION_NAME, install_atomic, installed_path, load_installed
from tests.profiles.conftest import builtin_text

OLD = builtin_text("rls-810-standard").encode()
NEW = builtin_text("rls-dual").encode()


def _leftovers(state_dir: Path) -> list[str]:
    return sorted(p.name for p in state_dir.iterdir() if p.name != PRESCRIPTION_NAME)


def test_install_then_load(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    assert load_installed(state_dir) is None
    path = install_atomic(state_dir, OLD)
    assert path == installed_path(state_dir) and path.read_bytes() == OLD
    result = load_installed(state_dir)
    assert result is not None and result.ok
    assert result.profile is not None and result.profile.id == "rls-810-standard"
    install_atomic(state_dir, NEW)
    assert path.read_bytes() == NEW
    assert _leftovers(state_dir) == []


@pytest.mark.parametrize("target", ["os.replace", "os.fsync"])
def test_failure_before_replace_keeps_previous(tmp_path: Path, mocker: Any, target: str) -> None:
    install_atomic(tmp_path, OLD)
    mocker.patch(target, side_effect=OSError(28, "No space left on device"))
    with pytest.raises(StoreError) as caught:
        install_atomic(tmp_path, NEW)
    assert "No space left on device" in str(caught.value)
    assert caught.value.path == str(installed_path(tmp_path))
    assert installed_path(tmp_path).read_bytes() == OLD
    assert _leftovers(tmp_path) == []


def test_write_failure_keeps_previous(tmp_path: Path, mocker: Any) -> None:
    install_atomic(tmp_path, OLD)
    mocker.patch("profiles.store._write_synced", side_effect=OSError(5, "Input/output error"))
    with pytest.raises(StoreError):
        install_atomic(tmp_path, NEW)
    assert installed_path(tmp_path).read_bytes() == OLD
    assert _leftovers(tmp_path) == []


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        install_atomic(blocker / "state", OLD)


KILL_BEFORE_REPLACE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import profiles.store as store

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    os.replace = die  # the new file is written and synced; the process dies here
    store.install_atomic(Path(sys.argv[1]), Path(sys.argv[2]).read_bytes())
    """
)


@pytest.mark.slow
def test_killed_between_write_and_replace(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    install_atomic(state_dir, OLD)
    new_file = tmp_path / "new.toml"
    new_file.write_bytes(NEW)
    proc = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_REPLACE, str(state_dir), str(new_file)],
        cwd=Path(__file__).resolve().parents[2],
        timeout=30,
        check=False,
        capture_output=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert installed_path(state_dir).read_bytes() == OLD
    assert len(_leftovers(state_dir)) == 1  # the orphaned temp file
    result = load_installed(state_dir)
    assert result is not None and result.ok
    install_atomic(state_dir, NEW)  # the next install cleans up the orphan
    assert installed_path(state_dir).read_bytes() == NEW
    assert _leftovers(state_dir) == []


def test_installed_file_mode(tmp_path: Path) -> None:
    path = install_atomic(tmp_path, OLD)
    assert os.stat(path).st_mode & 0o777 == 0o640
