"""Where nirpad keeps its files: the state directory and the names inside it.

Owns: the resolution order of the state directory (DESIGN.md §10) and of the site
configuration, and the names of the files the CLI, the control socket and the runner
share (``control.sock``, ``site.toml``). Does not own what is inside those files: the
ledger and the installed prescription belong to ``safety`` and ``profiles``.

A path a person gives (``~`` and ``~name`` expanded) is read by ``user_path``.

Order: ``--state-dir``, else ``NIRPAD_STATE_DIR``, else the platform user-data
directory (``$XDG_DATA_HOME/nirpad`` or ``~/.local/share/nirpad``). The systemd unit
passes ``--state-dir /var/lib/nirpad`` explicitly.

Only the standard library is imported here: ``nirpad status`` must start fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

ENV_STATE_DIR: Final = "NIRPAD_STATE_DIR"
ENV_SITE_CONFIG: Final = "NIRPAD_SITE_CONFIG"
SYSTEM_STATE_DIR: Final = Path("/var/lib/nirpad")
CONTROL_SOCKET_NAME: Final = "control.sock"
SITE_CONFIG_NAME: Final = "site.toml"
STATE_DIR_MODE: Final = 0o750
# sun_path in struct sockaddr_un holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES: Final = 107


class StateDirError(OSError):
    """The state directory cannot be used. ``path`` names it."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class PathNameError(ValueError):
    """A path a person gave that names no folder: ``~name`` of no user on this machine."""


def user_path(text: str) -> Path:
    """``text`` as an absolute path, ``~`` and ``~name`` expanded as a shell does.
    Raises ``PathNameError``, naming it, when the home folder it begins with is unknown
    (``~nouser/report.pdf``; ``~`` with no $HOME and no account), or when it is relative
    and the current folder is gone (removed, or its stick unplugged)."""
    try:
        return Path(text).expanduser().absolute()
    except RuntimeError as exc:  # pathlib: "Could not determine home directory."
        home = text.split("/", 1)[0]
        raise PathNameError(
            f"cannot use {text}: {home} names no home folder on this machine (no such "
            "user); give the path in full"
        ) from exc
    except FileNotFoundError as exc:  # os.getcwd(): the current folder was removed
        raise PathNameError(
            f"cannot use {text}: the current folder no longer exists (removed or "
            "unmounted); give the path in full, or change to another folder"
        ) from exc


def resolve_state_dir(arg: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Return the state directory: ``arg``, else $NIRPAD_STATE_DIR, else the user-data dir.

    The directory is not created here (``ensure_state_dir`` does that), so read-only
    commands such as ``nirpad status`` never leave a directory behind.
    """
    environ = os.environ if env is None else env
    if arg:
        return user_path(arg)
    from_env = environ.get(ENV_STATE_DIR, "")
    if from_env:
        return user_path(from_env)
    return user_data_dir(environ) / "nirpad"


def user_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The XDG user-data directory: $XDG_DATA_HOME if absolute, else ~/.local/share."""
    environ = os.environ if env is None else env
    xdg = environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative $XDG_DATA_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    return Path.home() / ".local" / "share"


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory (mode 0750) if needed; raise StateDirError if unusable."""
    try:
        state_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file, or a link to none, of that name
        raise StateDirError(_NOT_A_FOLDER.format(state_dir), path=state_dir) from exc
    except OSError as exc:
        raise StateDirError(
            f"cannot create the state directory {state_dir}: {exc.strerror or exc}",
            path=state_dir,
        ) from exc
    if not state_dir.is_dir():
        raise StateDirError(_NOT_A_FOLDER.format(state_dir), path=state_dir)
    return state_dir


_NOT_A_FOLDER: Final = (
    "the state directory {0} is not a folder: give the folder that holds the treatment "
    "record (--state-dir, $NIRPAD_STATE_DIR)"
)


def resolve_site_config(
    state_dir: Path | None, arg: str | None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The site-limits file: ``--site-config`` if given, else $NIRPAD_SITE_CONFIG, else
    ``<state_dir>/site.toml`` if there is anything of that name, else None (the
    compiled-in hard limits apply unchanged). The controller and every command resolve
    it here, so a prescription is checked against the same limits and keys wherever it
    is checked. Something of that name that is not a regular file (a directory, a FIFO,
    a dangling link) is returned, not passed over, so that its readers
    (``profiles.site_file``) refuse it rather than run without the site's limits."""
    environ = os.environ if env is None else env
    chosen = arg or environ.get(ENV_SITE_CONFIG)
    if chosen:
        return user_path(chosen)
    if state_dir is None:
        return None
    candidate = state_dir / SITE_CONFIG_NAME
    return candidate if os.path.lexists(candidate) else None


def control_socket_path(state_dir: Path) -> Path:
    """The control socket of the controller that owns ``state_dir``."""
    return state_dir / CONTROL_SOCKET_NAME


def check_socket_path(path: Path) -> None:
    """Raise StateDirError when ``path`` is too long to be a Unix socket address."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise StateDirError(
            f"the control socket path {path} is longer than {MAX_SOCKET_PATH_BYTES} bytes; "
            "use a shorter --state-dir",
            path=path,
        )
