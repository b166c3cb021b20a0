"""Ed25519 signatures on profiles: signing for clinics, verification for sites.

Owns: the trust store (the ``[signing]`` table of the site configuration), checking a
profile's ``[signature]`` table against it, signing a profile's TOML text, and making
key pairs. The signed bytes come from ``canonical``. Does not decide what else makes a
profile acceptable (``loader``, ``safety.limits``).

Site configuration::

    [signing]
    require_signed = true
    [signing.trusted_keys]
    clinic-a-2026 = "base64 of the 32-byte raw Ed25519 public key"
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from profiles.canonical import CanonicalizationError, canonical_bytes
from profiles.errors import Problem, SigningError, SiteFileError, TrustStoreError
from profiles.locator import format_path, printable, quoted
from profiles.site_file import read_site_file

ALGORITHM = "ed25519"
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SIGNATURE_HEADER = re.compile(r"^\s*\[\s*signature\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_FIELD_PRIME: Final = 2**255 - 19
_ORDER_8_Y: Final = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y: Final = frozenset({0, 1, _FIELD_PRIME - 1, _ORDER_8_Y, _FIELD_PRIME - _ORDER_8_Y})
"""The y coordinates of the 8 points of small order (1, 2, 4 and 8) on edwards25519, as
libsodium lists them. A public key among them verifies signatures made without any
private key (the identity verifies R = identity, S = 0 on every message), and OpenSSL,
under ``cryptography``, does not refuse them."""


@dataclass(frozen=True)
class TrustStore:
    """Trusted prescriber keys (key id → raw public key) and whether signing is required."""

    keys: Mapping[str, bytes] = field(default_factory=dict)
    require_signed: bool = False

    @classmethod
    def from_site_file(cls, path: Path | None) -> TrustStore:
        """Read the ``[signing]`` table of a site TOML file (``site_file``); none → an
        empty store, a missing or refused file → TrustStoreError."""
        if path is None:
            return cls()
        try:
            data = read_site_file(path)
        except SiteFileError as exc:
            raise TrustStoreError(
                f"cannot read site configuration {path}: {exc.reason}", field="file", line=exc.line
            ) from exc
        try:
            return cls.from_mapping(data.get("signing", {}))
        except TrustStoreError as exc:  # name the file: a site may keep more than one
            raise TrustStoreError(f"in {printable(str(path))}: {exc}", field=exc.field) from exc

    @classmethod
    def from_mapping(cls, table: object) -> TrustStore:
        """Build from the parsed ``[signing]`` table; malformed entries raise TrustStoreError."""
        if not isinstance(table, dict):
            raise _malformed(("signing",), "must be a table")
        unknown = set(table) - {"require_signed", "trusted_keys"}
        if unknown:
            raise _malformed(("signing",), f"unknown keys {sorted(unknown)}")
        require = table.get("require_signed", False)
        if not isinstance(require, bool):
            raise _malformed(("signing", "require_signed"), "must be true or false")
        raw_keys = table.get("trusted_keys", {})
        if not isinstance(raw_keys, dict):
            raise _malformed(("signing", "trusted_keys"), "must be a table")
        keys = {key_id: _decode_public_key(key_id, b64) for key_id, b64 in raw_keys.items()}
        return cls(keys=keys, require_signed=require)


def _malformed(loc: tuple[str, ...], rule: str) -> TrustStoreError:
    """``signing.trusted_keys."clinic-a": <rule>``: the key named as a problem line names
    it (``format_path``: quoted, a character a terminal acts on escaped)."""
    where = format_path(loc)
    return TrustStoreError(f"{where}: {rule}", field=where)


def _decode_public_key(key_id: str, b64: object) -> bytes:
    loc = ("signing", "trusted_keys", key_id)
    if not isinstance(b64, str):
        raise _malformed(loc, "must be a base64 text")
    try:
        raw = base64.b64decode(b64, validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(loc, "is not a base64 Ed25519 public key (32 bytes)") from exc
    if _has_small_order(raw):
        raise _malformed(
            loc,
            "is a key of small order (a placeholder such as all zeros?): anyone could sign "
            "for it; use the .pub that `nirpad profile keygen` wrote",
        )
    return raw


def _has_small_order(raw: bytes) -> bool:
    """Whether the encoded point is one of the 8 of small order, in any encoding (the
    sign bit of x set or not, y written as itself or, non-canonically, plus p)."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    return y % _FIELD_PRIME in _SMALL_ORDER_Y


def verify_data(data: Mapping[str, Any], trust: TrustStore | None, required: bool) -> list[Problem]:
    """Check the ``signature`` table of parsed profile data; [] when acceptable.

    A signature that is present is checked whenever the trust store lists keys, even if
    signing is not required: a signature that does not verify is refused. A device
    that trusts no keys cannot check a signature, so a signed profile is then taken
    as an unsigned one (``signature_checked`` says which), unless signing is required:
    then it is refused, saying that this device trusts no clinic keys.
    """
    required = required or (trust is not None and trust.require_signed)
    sig = data.get("signature")
    if sig is None:
        return (
            [_problem("signature", None, "is missing: this site only accepts signed profiles")]
            if required
            else []
        )
    if not isinstance(sig, dict) or (not signature_checked(trust) and not required):
        return []
    return _check_signature(data, sig, trust or TrustStore())


def signature_checked(trust: TrustStore | None) -> bool:
    """Whether a signature can be checked at all: only against trusted keys."""
    return trust is not None and bool(trust.keys)


def _check_signature(
    data: Mapping[str, Any], sig: dict[str, Any], trust: TrustStore
) -> list[Problem]:
    key_id, algorithm, value = sig.get("key_id"), sig.get("algorithm"), sig.get("value")
    if not (isinstance(key_id, str) and isinstance(algorithm, str) and isinstance(value, str)):
        return []  # the schema reports missing or mistyped signature fields
    if algorithm != ALGORITHM:
        return [_problem("signature.algorithm", algorithm, f'must be "{ALGORITHM}"')]
    if key_id not in trust.keys:
        rule = "is not a trusted prescriber key on this device" + (
            "" if trust.keys else " (it trusts no clinic keys: add them to [signing] in site.toml)"
        )
        return [_problem("signature.key_id", key_id, rule)]
    try:
        raw_sig = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return [_problem("signature.value", None, "is not valid base64")]
    try:
        content = canonical_bytes(data)
        Ed25519PublicKey.from_public_bytes(trust.keys[key_id]).verify(raw_sig, content)
    except (InvalidSignature, CanonicalizationError):
        return [
            _problem(
                "signature.value",
                None,
                "does not match the profile: it was changed after signing,"
                " or signed with another key",
            )
        ]
    return []


def _problem(where: str, value: str | None, rule: str) -> Problem:
    shown = None if value is None else quoted(value[:40])
    return Problem(field=where, value=shown, rule=rule)


def is_key_id(text: str) -> bool:
    """Whether ``text`` can name a key: letters, digits, ``-``, ``_`` or ``.``, at most
    64, starting with a letter or digit."""
    return _KEY_ID.fullmatch(text) is not None


def trust_line(key_id: str, public_b64: str) -> str:
    """The ``site.toml`` line under ``[signing.trusted_keys]`` that trusts a key: the id
    quoted (``"clinic.a" = …``), since a bare dotted key would be a table."""
    return f'"{key_id}" = "{public_b64}"'


def generate_keypair() -> tuple[bytes, str]:
    """A new Ed25519 key pair: (private key as unencrypted PKCS#8 PEM, public key base64)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_key_b64(private_key)


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode("ascii")


def load_private_key(pem: bytes, name: str = "the key") -> Ed25519PrivateKey:
    """Read an unencrypted PEM Ed25519 private key; anything else raises SigningError,
    whose message starts with ``name`` (``the key file clinic-a.key``)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:  # cryptography: the key needs a password
        raise SigningError(
            f"{name} is encrypted; use the unencrypted key that keygen writes", field="key"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{name} is not a PEM private key", field="key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{name} is not an Ed25519 private key", field="key")
    return key


def sign_profile(toml_text: str, private_key: Ed25519PrivateKey | bytes, key_id: str) -> str:
    """Return ``toml_text`` with its ``[signature]`` table replaced by a fresh signature.

    Raises SigningError when the text is not TOML, has an inline signature, or the key
    or key id is unusable.
    """
    key = load_private_key(private_key) if isinstance(private_key, bytes) else private_key
    if not is_key_id(key_id):
        raise SigningError(
            "the key id (--key-id, the public key's name in the site's "
            "[signing.trusted_keys]) must be letters, digits, '-', '_' or '.', at most 64",
            field="key_id",
        )
    body = strip_signature_table(toml_text)
    data = _parse_for_signing(body)
    try:
        signature = key.sign(canonical_bytes(data))
    except CanonicalizationError as exc:
        raise SigningError(f"cannot sign this content: {exc}", field="file") from exc
    table = (
        f'\n[signature]\nkey_id = "{key_id}"\nalgorithm = "{ALGORITHM}"\n'
        f'value = "{base64.b64encode(signature).decode("ascii")}"\n'
    )
    return body.rstrip("\n") + "\n" + table


def _parse_for_signing(body: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise SigningError(f"the profile is not valid TOML: {exc}", field="file") from exc
    if "signature" in data:
        raise SigningError(
            "write the signature as a [signature] table, not inline", field="signature"
        )
    return data


def strip_signature_table(toml_text: str) -> str:
    """The text without its ``[signature]`` table (header up to the next table or the end)."""
    kept: list[str] = []
    inside = False
    for line in toml_text.splitlines(keepends=True):
        if _SIGNATURE_HEADER.match(line):
            inside = True
            continue
        if inside and _ANY_HEADER.match(line):
            inside = False
        if not inside:
            kept.append(line)
    return "".join(kept)
