"""The installed prescription: one file, ``prescription.toml``, in the state directory.

Owns: writing it atomically (temp file in the same directory, fsync, ``os.replace``,
fsync of the directory), so a crash or power cut at any point leaves either the old
prescription or the new one, never a mix; and reading it back through the loader.
Does not validate before writing (``firmware_host.profile_commands`` does, with the
safety limits and signatures), nor record installs (``safety.ledger``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from profiles.errors import StoreError
from profiles.loader import LoadResult, load_profile

log = logging.getLogger(__name__)

PRESCRIPTION_NAME: Final = "prescription.toml"
_TEMP_PREFIX: Final = ".prescription."
_TEMP_SUFFIX: Final = ".tmp"
FILE_MODE: Final = 0o640


def installed_path(state_dir: Path) -> Path:
    return Path(state_dir) / PRESCRIPTION_NAME


def install_atomic(state_dir: Path, data: bytes) -> Path:
    """Write ``data`` as the installed prescription, atomically; return its path.

    Raises StoreError when it cannot be written: the previous prescription untouched,
    unless only the folder's sync failed after the rename (``replaced``: the new file
    is in place, and the caller, who knows the previous one, puts it back).
    """
    state_dir = Path(state_dir)
    target = installed_path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(state_dir)
        fd, temp_name = tempfile.mkstemp(dir=state_dir, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    except OSError as exc:
        raise StoreError(
            f"cannot write in {state_dir}: {exc.strerror or exc}", path=str(target)
        ) from exc
    try:
        _write_synced(fd, data)
        os.replace(temp_name, target)
    except OSError as exc:
        _unlink_quietly(Path(temp_name))
        raise StoreError(
            f"cannot install {target}: {exc.strerror or exc}", path=str(target)
        ) from exc
    try:
        _fsync_dir(state_dir)
    except OSError as exc:
        raise StoreError(
            f"cannot install {target}: {exc.strerror or exc}", path=str(target), replaced=True
        ) from exc
    log.info("installed prescription %s (%d bytes)", target, len(data))
    return target


def _write_synced(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        os.fchmod(handle.fileno(), FILE_MODE)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_stale_temps(state_dir: Path) -> None:
    """Temp files left by an install that crashed before ``os.replace``."""
    for stale in state_dir.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
        log.warning("removing %s left by an interrupted install", stale)
        _unlink_quietly(stale)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        log.warning("could not remove %s", path)


def load_installed(state_dir: Path, **kwargs: Any) -> LoadResult | None:
    """Load the installed prescription (``kwargs`` go to ``load_profile``); None if none."""
    path = installed_path(state_dir)
    if not path.exists():
        return None
    return load_profile(path, **kwargs)
