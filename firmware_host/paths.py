"""Where nirpad keeps its files: the state directory and the names inside it.

Owns: the resolution order of the state directory (DESIGN.md §10) and of the site
configuration, and the names of the files the CLI, the control socket and the runner
share (``control.sock``, ``site.toml``). Does not own what is inside those files: the
ledger and the installed prescription belong to ``safety`` and ``profiles``.

A path a person gives (``~`` and ``~name`` expanded) is read by ``user_path``. A state
directory is resolved only if it is a folder or does not exist yet (``check_state_dir``):
something else of that name is refused before any command reads it as empty.

Order: ``--state-dir``, else ``NIRPAD_STATE_DIR``, else the platform user-data
directory (``$XDG_DATA_HOME/nirpad`` or ``~/.local/share/nirpad``). The systemd unit
passes ``--state-dir /var/lib/nirpad`` explicitly.

Only the standard library is imported here: ``nirpad status`` must start fast.
"""

from __future__ import annotations

import errno
import os
import stat
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


class StateDirNotAFolderError(PathNameError):
    """Something that is not a folder has the state directory's name. ``path`` names it."""

    def __init__(self, path: Path) -> None:
        super().__init__(_NOT_A_FOLDER.format(path))
        self.path = path


def home_expanded(text: str) -> str:
    """``text`` with a leading ``~`` or ``~name`` expanded as a shell does, the rest as
    given (a quoted ``'~/key.pem'``, ``--key=~/key.pem`` or a script reach us unexpanded).
    Raises ``PathNameError``, naming it, when that home folder is unknown (``~nouser/x``;
    ``~`` with no $HOME and no account)."""
    if not text.startswith("~"):
        return text
    try:
        return str(Path(text).expanduser())
    except RuntimeError as exc:  # pathlib: "Could not determine home directory."
        home = text.split("/", 1)[0]
        raise PathNameError(
            f"cannot use {text}: {home} names no home folder on this machine (no such "
            "user); give the path in full"
        ) from exc


def user_path(text: str) -> Path:
    """``text`` as an absolute path, ``~`` and ``~name`` expanded as a shell does.
    Raises ``PathNameError``, naming it, when the home folder it begins with is unknown
    (``home_expanded``), or when it is relative and the current folder is gone (removed,
    or its stick unplugged)."""
    try:
        return Path(home_expanded(text)).absolute()
    except FileNotFoundError as exc:  # os.getcwd(): the current folder was removed
        raise PathNameError(
            f"cannot use {text}: the current folder no longer exists (removed or "
            "unmounted); give the path in full, or change to another folder"
        ) from exc


def resolve_state_dir(arg: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Return the state directory: ``arg``, else $NIRPAD_STATE_DIR, else the user-data dir.

    The directory is not created here (``ensure_state_dir`` does that), so read-only
    commands such as ``nirpad status`` never leave a directory behind. Raises
    ``PathNameError`` for an empty ``arg`` (a script's unset variable: taking the
    default instead would write there unseen) or a path of no user's home, and
    ``StateDirNotAFolderError`` when something that is not a folder has its name
    (``check_state_dir``).
    """
    environ = os.environ if env is None else env
    from_env = environ.get(ENV_STATE_DIR, "")
    if arg is not None and not arg.strip():
        raise PathNameError(_EMPTY_OPTION.format(option="--state-dir", what="a folder"))
    if arg or from_env:
        return check_state_dir(user_path(arg or from_env))
    return check_state_dir(user_data_dir(environ) / "nirpad")


def check_state_dir(state_dir: Path) -> Path:
    """``state_dir`` if it is a folder (or a link to one) or nothing has its name yet.

    Raises ``StateDirNotAFolderError`` for a file, a named pipe, a device, a link to a
    file or to nothing, links in a loop, or a path through a file (``/etc/passwd/x``):
    read as an empty state directory, it would make a command say that nothing was
    recorded or installed there. A folder this user may not look into is returned as
    it is: the command that reads it says it cannot."""
    try:
        mode = os.stat(state_dir).st_mode
    except FileNotFoundError:
        if os.path.islink(state_dir):  # a link to nothing
            raise StateDirNotAFolderError(state_dir) from None
        return state_dir  # not there yet: created when first written
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            raise StateDirNotAFolderError(state_dir) from exc
        return state_dir  # no permission: its readers say so
    if not stat.S_ISDIR(mode):
        raise StateDirNotAFolderError(state_dir)
    return state_dir


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


_EMPTY_OPTION: Final = (
    "{option} is empty: give {what}, or leave {option} out (an unset variable in a script?)"
)
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
    if arg is not None and not arg.strip():
        raise PathNameError(_EMPTY_OPTION.format(option="--site-config", what="a file"))
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
