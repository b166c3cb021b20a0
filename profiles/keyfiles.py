"""Key and signed-profile files for clinics: ``nirpad profile keygen`` and ``sign``.

Owns: writing a new key pair to disk (private key mode 0600, never overwritten) and
signing a profile file with a key file, refusing a profile the schema refuses. Does
not own the signature format (``signing``) or the device limits (``safety``).
"""

from __future__ import annotations

import os
from pathlib import Path

from profiles.errors import Problem, SigningError
from profiles.loader import load_profile_bytes
from profiles.signing import generate_keypair, load_private_key, sign_profile

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


def write_keypair(prefix: Path) -> tuple[Path, Path, str]:
    """Create ``PREFIX.key`` (PEM, 0600) and ``PREFIX.pub`` (base64); return both and the key.

    Raises SigningError if either file exists or cannot be written.
    """
    private_path = prefix.with_name(prefix.name + PRIVATE_SUFFIX)
    public_path = prefix.with_name(prefix.name + PUBLIC_SUFFIX)
    pem, public_b64 = generate_keypair()
    try:
        for existing in (private_path, public_path):
            if existing.exists():
                raise FileExistsError(17, "exists", str(existing))
        files = ((private_path, pem, 0o600), (public_path, public_b64.encode() + b"\n", 0o644))
        for path, content, mode in files:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
    except FileExistsError as exc:
        raise SigningError(f"{exc.filename} already exists; not overwritten", field="out") from exc
    except OSError as exc:
        raise SigningError(f"cannot write {exc.filename}: {exc.strerror}", field="out") from exc
    return private_path, public_path, public_b64


def sign_file(profile_path: Path, key_path: Path, key_id: str) -> tuple[str, list[Problem]]:
    """The signed TOML text of ``profile_path``, and the schema's problems with it.

    The text is only meaningful when the problem list is empty. Raises SigningError
    when a file cannot be read or the key is unusable.
    """
    try:
        raw = profile_path.read_bytes()
        pem = key_path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read {exc.filename}: {exc.strerror}", field="file") from exc
    checked = load_profile_bytes(raw, str(profile_path))
    unsigned_problems = [p for p in checked.problems if not p.field.startswith("signature")]
    if unsigned_problems:
        return "", unsigned_problems
    signed = sign_profile(raw.decode("utf-8").removeprefix("\ufeff"), load_private_key(pem), key_id)
    recheck = load_profile_bytes(signed.encode("utf-8"), str(profile_path))
    return signed, recheck.problems


def write_keypair_report(prefix: Path) -> list[str]:
    """``write_keypair`` and the lines telling the clinic what to do with the keys."""
    private_path, public_path, public_b64 = write_keypair(prefix)
    return [
        f"private key: {private_path} (keep it secret; it signs prescriptions)",
        f"public key:  {public_path}",
        "Sites trust it with these lines in their site.toml:",
        "[signing.trusted_keys]",
        f'{prefix.name} = "{public_b64}"',
    ]
