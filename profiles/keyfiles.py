"""Key and signed-profile files for clinics: ``nirpad profile keygen`` and ``sign``.

Owns: writing a new key pair to disk (private key mode 0600, never overwritten, synced;
a failure leaves neither file),
reading a private key file safely (``read_private_key_file``: a regular file of at most
``MAX_KEY_FILE_BYTES`` that only its owner may read or write, read through
``regular_file``, which never blocks on a FIFO)
and signing a profile file with it, the profile read as the loader reads one
(``read_profile_file``), refusing a profile the schema refuses. Does not own the
signature format (``signing``) or the device limits (``safety``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from profiles.errors import Problem, SigningError
from profiles.file_errors import os_error_text
from profiles.loader import load_profile_bytes, read_profile_file
from profiles.locator import printable, quoted
from profiles.regular_file import FileTooLargeError, NotRegularFileError, read_regular_file
from profiles.signing import (
    generate_keypair,
    is_key_id,
    load_private_key,
    sign_profile,
    trust_line,
)

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
MAX_KEY_FILE_BYTES: Final = 4 * 1024
"""An Ed25519 private key in PEM is 119 bytes; a key file larger than 4 KiB is not one."""
_PRIVATE_ONLY: Final = 0o077  # the mode bits of group and others: none may be set
_PUBLIC_MARKS: Final = (b"PUBLIC KEY-----", b"ssh-ed25519 ", b"ssh-rsa ", b"ecdsa-sha2-")


def write_keypair(prefix: Path) -> tuple[Path, Path, str]:
    """Create ``PREFIX.key`` (PEM, 0600) and ``PREFIX.pub`` (base64), each synced; return
    both and the key. A failure removes what this call wrote, so a retry is not refused.

    Raises SigningError if either file exists or cannot be written.
    """
    if prefix.name in ("", ".", ".."):  # "", ".", "/": a folder, no name to add to
        raise SigningError(
            "--out must end in a file name, like clinic-a-2026 (it writes "
            "clinic-a-2026.key and clinic-a-2026.pub)",
            field="out",
        )
    if not is_key_id(prefix.name):  # the id the trust line and `sign --key-id` use
        raise SigningError(
            f"the key id {quoted(prefix.name)} (the file name of --out, the key's name in "
            "the site's [signing.trusted_keys] and sign's --key-id) must be letters, "
            "digits, '-', '_' or '.', at most 64, starting with a letter or digit",
            field="out",
        )
    private_path = prefix.with_name(prefix.name + PRIVATE_SUFFIX)
    public_path = prefix.with_name(prefix.name + PUBLIC_SUFFIX)
    pem, public_b64 = generate_keypair()
    files = ((private_path, pem, 0o600), (public_path, public_b64.encode() + b"\n", 0o644))
    written: list[Path] = []
    path = private_path
    try:
        for existing in (private_path, public_path):
            if existing.exists():
                raise FileExistsError(17, "exists", str(existing))
        for path, content, mode in files:
            _write_new(path, content, mode, written)
    except FileExistsError as exc:
        _remove(written)
        raise SigningError(f"{exc.filename} already exists; not overwritten", field="out") from exc
    except OSError as exc:
        _remove(written)
        raise SigningError(
            f"cannot write {path}: {os_error_text(exc)}; nothing was written", field="out"
        ) from exc
    except BaseException:  # Ctrl-C: no key without its .pub left to block the retry
        _remove(written)
        raise
    return private_path, public_path, public_b64


def _write_new(path: Path, content: bytes, mode: int, written: list[Path]) -> None:
    """``content`` in a new file (never over one), synced; ``written`` gets its name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    written.append(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def sign_file(profile_path: Path, key_path: Path, key_id: str) -> tuple[str, list[Problem]]:
    """The signed TOML text of ``profile_path``, and the schema's problems with it.

    The text is only meaningful when the problem list is empty. Raises SigningError
    when a file cannot be read (the profile as ``read_profile_file`` refuses it) or the
    key is unusable (``read_private_key_file``).
    """
    raw = read_profile_file(profile_path)
    if isinstance(raw, Problem):
        raise SigningError(f"{printable(str(profile_path))}: {raw.rule}", field="file")
    key = read_private_key_file(key_path)
    checked = load_profile_bytes(raw, str(profile_path))
    unsigned_problems = [p for p in checked.problems if not p.field.startswith("signature")]
    if unsigned_problems:
        return "", unsigned_problems
    signed = sign_profile(raw.decode("utf-8").removeprefix("\ufeff"), key, key_id)
    recheck = load_profile_bytes(signed.encode("utf-8"), str(profile_path))
    return signed, recheck.problems


def read_private_key_file(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file at ``path``, as ``keygen`` writes it.

    Raises SigningError (``field="key"``), with a message naming the file, for anything
    but a regular file (the open never blocks, and the file is checked again once open),
    a file over ``MAX_KEY_FILE_BYTES`` (refused from its size; never more read), a
    public key, a file group or others may read or write (the key would no longer be
    the clinic's alone) and anything else that is not an unencrypted Ed25519 key.
    """
    name = f"the key file {printable(str(path))}"
    try:
        pem, info = read_regular_file(path, MAX_KEY_FILE_BYTES)
    except NotRegularFileError as exc:
        raise SigningError(
            f"{name} is not a regular file ({exc.kind}); refused", field="key"
        ) from exc
    except FileTooLargeError as exc:
        raise SigningError(
            f"{name} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB ({exc.size_words}); "
            f"an Ed25519 key file is about 120 bytes",
            field="key",
        ) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SigningError(f"cannot read {name}: {reason}", field="key") from exc
    if _is_public_key(pem):
        raise SigningError(
            f"{name} holds a public key; sign with the private key ({PRIVATE_SUFFIX})", field="key"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & _PRIVATE_ONLY:
        raise SigningError(
            f"{name} has mode {mode:04o}: group or others may read or write it; "
            f"run chmod 600 {printable(str(path))}",
            field="key",
        )
    return load_private_key(pem, name)


def _is_public_key(data: bytes) -> bool:
    """A PEM or OpenSSH public key, or the base64 line of a ``.pub`` that keygen writes."""
    if any(mark in data for mark in _PUBLIC_MARKS):
        return True
    try:
        return len(base64.b64decode(data.strip(), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def write_keypair_report(prefix: Path) -> list[str]:
    """``write_keypair`` and the lines telling the clinic what to do with the keys."""
    private_path, public_path, public_b64 = write_keypair(prefix)
    return [
        f"private key: {printable(str(private_path))} (keep it secret; it signs prescriptions)",
        f"public key:  {printable(str(public_path))}",
        "Sites trust it with these lines in their site.toml:",
        "[signing.trusted_keys]",
        trust_line(prefix.name, public_b64),
    ]
