"""The page's password: hashed with scrypt (memory-hard, standard library), kept in a file.

Owns: the hash format (``scrypt$N$r$p$salt$hash``, base64 without padding), its cost
(N = 2^15, r = 8, p = 1: 32 MiB and about a tenth of a second per try), the random
16-byte salt, a constant-time comparison, and the file ``<state_dir>/web-password``
(written atomically, mode 0640, in the state directory's group: the page's own user
reads it through the group; a file others may change or anyone may read, or this user
cannot read, is refused at start with what to do).
A stored hash with a cost beyond ``MAX_N`` is refused, so a tampered file cannot make
each login try take minutes; a file whose hash no password can match (damaged, or
another program's) is refused at start, not by every login as a wrong password.
Does not own who may log in when (``web.sessions``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from profiles.file_errors import os_error_text

PASSWORD_FILENAME: Final = "web-password"
PASSWORD_FILE_MODE: Final = 0o640
SCRYPT_N: Final = 1 << 15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
MAX_N: Final = 1 << 18
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
MIN_PASSWORD_CHARS: Final = 10
MAX_PASSWORD_CHARS: Final = 1024


class PasswordError(ValueError):
    """A password that cannot be used, or a password file that cannot be read."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
        maxmem=2 * 128 * r * n + (1 << 20), dklen=HASH_BYTES,
    )  # fmt: skip


def check_new_password(password: str) -> None:
    """Refuse a password too short or too long to be a good one, or one that is not text
    (bytes that are not UTF-8, read from a pipe): a sentence says why."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PasswordError("the password is not readable text (it must be UTF-8)") from exc
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """The stored form of ``password`` with a new random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True)
class _StoredHash:
    n: int
    r: int
    p: int
    salt: bytes
    expected: bytes


def _parsed(stored: str) -> _StoredHash | None:
    """The parts of a stored hash; None for one no password can match (malformed,
    another scheme, a cost out of range), so it is refused before any hashing."""
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = stored.strip().split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, expected = _unb64(salt_text), _unb64(hash_text)
    except ValueError:
        return None
    if scheme != "scrypt" or not (2 <= n <= MAX_N) or n & (n - 1) or not (1 <= r <= 16):
        return None
    if p != 1 or len(expected) != HASH_BYTES:
        return None
    return _StoredHash(n, r, p, salt, expected)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time); False for a malformed one."""
    parsed = _parsed(stored)
    if parsed is None or len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        actual = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p)
    except (ValueError, MemoryError):  # parameters OpenSSL refuses: never a match
        return False
    return hmac.compare_digest(actual, parsed.expected)


def password_path(state_dir: Path) -> Path:
    return state_dir / PASSWORD_FILENAME


def read_password_hash(state_dir: Path) -> str | None:
    """The stored hash, or None when no password was set. A file this user cannot read,
    or one that anyone but its owner may change, is refused with what to do."""
    path = password_path(state_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise PasswordError(
            f"the password file {path} cannot be read by this user; set the password "
            f"again as the state directory's owner (sudo -u nirpad nirpad web passwd "
            f"--state-dir {state_dir}): it writes the file readable by group nirpad"
        ) from exc
    except OSError as exc:
        raise PasswordError(
            f"the password file {path} cannot be read: {os_error_text(exc)}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise PasswordError(f"{path} is not a nirpad password file") from exc
    if mode & 0o022:
        raise PasswordError(
            f"the password file {path} may be changed by others (mode {mode & 0o777:04o}); "
            f"set the password again with `nirpad web passwd` (it writes mode 0640)"
        )
    if _parsed(text) is None:  # no password could ever match it: every login refused
        raise PasswordError(
            f"{path} is not a nirpad password file, or it is damaged; "
            "set the password again with `nirpad web passwd`"
        )
    if mode & 0o004:  # the hash, guessed at offline past the login's rate limit
        raise PasswordError(
            f"the password file {path} may be read by anyone on this machine "
            f"(mode {mode & 0o777:04o}); set the password again with `nirpad web passwd` "
            "(it writes mode 0640)"
        )
    return text


def write_password_hash(state_dir: Path, stored: str) -> Path:
    """Write the hash atomically with mode 0640 (never readable by others, even briefly),
    in the state directory's group, so the page's user reads it through that group
    whoever wrote it (root included). Should that fail (a full disk), the temporary file
    is removed and the old password file is kept; raises ``OSError``."""
    target = password_path(state_dir)
    tmp = target.with_name(f".{PASSWORD_FILENAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PASSWORD_FILE_MODE)
    try:
        try:
            os.fchmod(fd, PASSWORD_FILE_MODE)  # whatever the umask said
            with contextlib.suppress(PermissionError):  # not a member: the file keeps ours
                os.fchown(fd, -1, state_dir.stat().st_gid)
            os.write(fd, (stored + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target
