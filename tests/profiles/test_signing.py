"""Signatures: the good case, and each kind of tampering or misconfiguration is refused."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from profiles.errors import SigningError, TrustStoreError
from profiles.loader import load_profile_bytes
from profiles.signing import (
    TrustStore,
    generate_keypair,
    load_private_key,
    sign_profile,
    strip_signature_table,
)
from tests.profiles.conftest import public_b64
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file

BAD_SIGNATURE = (
    "signature.value: does not match the profile: it was changed after signing, "
    "or signed with another key"
)


@pytest.fixture
def trust(private_key: Ed25519PrivateKey) -> TrustStore:
    return TrustStore.from_mapping(
        {"require_signed": True, "trusted_keys": {"clinic-a": public_b64(private_key)}}
    )


def _rules(text: str, trust: TrustStore | None, required: bool = False) -> list[str]:
    result = load_profile_bytes(text.encode(), "x", trust=trust, require_signature=required)
    return [re.sub(r" \(line \d+\)$", "", str(p)) for p in result.problems]


def test_signed_profile_verifies(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a")
    result = load_profile_bytes(signed.encode(), "x", trust=trust)
    assert result.ok and result.profile is not None
    assert result.profile.signature is not None
    assert result.profile.signature.key_id == "clinic-a"


def test_comments_and_layout_are_not_signed(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a")
    reformatted = signed.replace("# nirpad", "#   nirpad").replace("ramp_s = 30", "ramp_s   =   30")
    assert _rules(reformatted, trust) == []


VALUE_CHANGES = [
    ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 41"),
    ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 40.0"),
    ("wavelength_nm = 810", "wavelength_nm = 850"),
    ("duration_min = 30", "duration_min = 20"),
    ("sessions_per_week = 3", "sessions_per_week = 4"),
    ("expires = 2028-01-01", "expires = 2027-12-31"),
    ('name = "RLS standard, 810 nm"', 'name = "RLS standard, 810 nm "'),
    ('start = "18:00"', 'start = "18:01"'),
    ("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 39"),
    ('[window]\nstart = "18:00"\nend = "23:00"\n', ""),
]


@pytest.mark.parametrize(("old", "new"), VALUE_CHANGES)
def test_any_changed_value_is_refused(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore, old: str, new: str
) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a")
    assert old in signed
    assert _rules(signed.replace(old, new), trust) == [BAD_SIGNATURE]


def test_every_byte_of_the_signature_matters(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a")
    value = re.search(r'value = "([^"]+)"', signed)
    assert value is not None
    raw = bytearray(base64.b64decode(value.group(1)))
    for index in range(0, len(raw), 7):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        forged = signed.replace(value.group(1), base64.b64encode(bytes(flipped)).decode())
        assert _rules(forged, trust) == [BAD_SIGNATURE]


def test_unsigned_refused_when_required(base_text: str, trust: TrustStore) -> None:
    assert _rules(base_text, trust) == [
        "signature: is missing: this site only accepts signed profiles"
    ]
    assert _rules(base_text, None, required=True) == [
        "signature: is missing: this site only accepts signed profiles"
    ]


def test_unsigned_accepted_when_not_required(
    base_text: str, private_key: Ed25519PrivateKey
) -> None:
    relaxed = TrustStore.from_mapping({"trusted_keys": {"clinic-a": public_b64(private_key)}})
    assert _rules(base_text, relaxed) == []
    assert _rules(base_text, None) == []


def test_bad_signature_refused_even_when_not_required(
    base_text: str, private_key: Ed25519PrivateKey
) -> None:
    relaxed = TrustStore.from_mapping({"trusted_keys": {"clinic-a": public_b64(private_key)}})
    signed = sign_profile(base_text, private_key, "clinic-a").replace("= 40", "= 45")
    assert _rules(signed, relaxed) == [BAD_SIGNATURE]


def test_unknown_key_id(base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore) -> None:
    signed = sign_profile(base_text, private_key, "clinic-b")
    assert _rules(signed, trust) == [
        'signature.key_id = "clinic-b": is not a trusted prescriber key on this device'
    ]


def test_other_key_under_trusted_id(base_text: str, trust: TrustStore) -> None:
    signed = sign_profile(base_text, Ed25519PrivateKey.generate(), "clinic-a")
    assert _rules(signed, trust) == [BAD_SIGNATURE]


def test_wrong_algorithm(base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a").replace('"ed25519"', '"rsa"')
    assert _rules(signed, trust) == ['signature.algorithm = "rsa": must be "ed25519"']


def test_malformed_base64(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    signed = re.sub(
        r'value = "[^"]+"',
        'value = "not*base64!"',
        sign_profile(base_text, private_key, "clinic-a"),
    )
    assert _rules(signed, trust) == ["signature.value: is not valid base64"]


def test_signature_table_typos_reported_by_schema(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a").replace("key_id =", "keyid =")
    assert _rules(signed, trust) == [
        'signature.keyid: unknown field — did you mean "key_id"?',
    ]


def test_resigning_replaces_the_table(
    base_text: str, private_key: Ed25519PrivateKey, trust: TrustStore
) -> None:
    once = sign_profile(base_text, Ed25519PrivateKey.generate(), "old-key")
    twice = sign_profile(once, private_key, "clinic-a")
    assert twice.count("[signature]") == 1
    assert _rules(twice, trust) == []
    assert strip_signature_table(twice).rstrip("\n") == base_text.rstrip("\n")


def test_sign_refuses_inline_signature_and_bad_input(
    private_key: Ed25519PrivateKey, base_text: str
) -> None:
    with pytest.raises(SigningError):
        sign_profile('signature = { key_id = "a" }\n' + base_text, private_key, "k")
    with pytest.raises(SigningError):
        sign_profile("a = [", private_key, "k")
    with pytest.raises(SigningError):
        sign_profile(base_text, private_key, "bad id with spaces")
    with pytest.raises(SigningError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_generated_keypair_round_trips(base_text: str) -> None:
    pem, pub = generate_keypair()
    store = TrustStore.from_mapping({"require_signed": True, "trusted_keys": {"k1": pub}})
    assert _rules(sign_profile(base_text, pem, "k1"), store) == []


@pytest.mark.parametrize(
    "table",
    [
        "not a table",
        {"require_signed": "yes"},
        {"trusted_keys": "x"},
        {"trusted_keys": {"k": 5}},
        {"trusted_keys": {"k": "AAAA"}},
        {"trusted_keys": {"k": "***"}},
        {"requireSigned": True},
    ],
)
def test_trust_store_refuses_malformed_tables(table: object) -> None:
    with pytest.raises(TrustStoreError):
        TrustStore.from_mapping(table)


def test_trust_store_from_site_file(site_file: Path, tmp_path: Path) -> None:
    store = TrustStore.from_site_file(site_file)
    assert store.require_signed and set(store.keys) == {"clinic-a"}
    assert TrustStore.from_site_file(None) == TrustStore()
    broken = tmp_path / "broken.toml"
    broken.write_text("[signing\n")
    with pytest.raises(TrustStoreError):
        TrustStore.from_site_file(broken)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_trust_store_refuses_what_the_site_file_reader_refuses(tmp_path: Path, kind: str) -> None:
    """A FIFO, a directory, a file over 64 KiB or one others may write (and so add a
    trusted key to) is a TrustStoreError naming the file, never a hang."""
    site, words = refused_site_file(tmp_path, kind)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.from_site_file(site)
    assert str(caught.value).startswith(f"cannot read site configuration {site}: {words}")
    assert (caught.value.field, caught.value.line) == ("file", None)


def test_trust_store_still_refuses_a_missing_file_and_names_a_bad_line(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="No such file or directory"):
        TrustStore.from_site_file(tmp_path / "absent.toml")
    site = tmp_path / "site.toml"
    site.write_bytes(b"[signing]\nrequire_signed = \xff\n")
    with pytest.raises(TrustStoreError, match="not UTF-8 text at line 2") as caught:
        TrustStore.from_site_file(site)
    assert caught.value.line == 2


def test_trust_store_refuses_a_number_too_long_to_read(tmp_path: Path) -> None:
    """tomllib raises a bare ValueError for it (not a TOMLDecodeError); 1e999 and a
    400-digit integer are read, and belong to other tables."""
    site = tmp_path / "site.toml"
    site.write_text(f"[signing]\nrequire_signed = false\n[limits]\nlease_max_ms = {'1' * 5000}\n")
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.from_site_file(site)
    assert str(caught.value) == (
        f"cannot read site configuration {site}: "
        "lease_max_ms (line 4) is a number with far too many digits"
    )
    assert (caught.value.field, caught.value.line) == ("file", 4)
    site.write_text(f"[limits]\nlease_max_ms = {'1' * 400}\nsession_max_min = 1e999\n")
    assert TrustStore.from_site_file(site) == TrustStore()


_P = 2**255 - 19
_ORDER_8_Y = 2707385501144840649318225287225658788936804267575313519463743609750303402022
SMALL_ORDER_KEYS = {
    "identity": 1,
    "order-2": _P - 1,
    "order-4 (all zeros)": 0,
    "order-8": _ORDER_8_Y,
    "order-8, negated": _P - _ORDER_8_Y,
    "identity, non-canonical": _P + 1,
    "order-4, non-canonical": _P,
}


@pytest.mark.parametrize("sign_bit", [0, 1])
@pytest.mark.parametrize("name", list(SMALL_ORDER_KEYS))
def test_trust_store_refuses_a_key_of_small_order(name: str, sign_bit: int) -> None:
    """A public key in the group of order 8 (an all-zero placeholder is one) accepts
    signatures made without any private key: with the identity as the key, the
    signature R = identity, S = 0 verifies every profile (OpenSSL checks no order)."""
    raw = (SMALL_ORDER_KEYS[name] | sign_bit << 255).to_bytes(32, "little")
    table = {"trusted_keys": {"clinic-a": base64.b64encode(raw).decode()}}
    with pytest.raises(TrustStoreError, match="small order"):
        TrustStore.from_mapping(table)


def test_a_forged_signature_under_the_identity_key_is_never_accepted(base_text: str) -> None:
    identity = (1).to_bytes(32, "little")
    forged = base_text + (
        '\n[signature]\nkey_id = "clinic-a"\nalgorithm = "ed25519"\n'
        f'value = "{base64.b64encode(identity + bytes(32)).decode()}"\n'
    )
    table = {
        "require_signed": True,
        "trusted_keys": {"clinic-a": base64.b64encode(identity).decode()},
    }
    try:
        store = TrustStore.from_mapping(table)
    except TrustStoreError:
        return  # refused: no profile is ever checked against it
    assert _rules(forged, store) != []


@pytest.mark.parametrize(
    ("signing", "words"),
    [
        ('[signing.trusted_keys]\nclinic-a = "AAAA"\n',
         'signing.trusted_keys."clinic-a": is not a base64 Ed25519 public key (32 bytes)'),
        ('[signing.trusted_keys]\n"c\\u001b[2J" = 5\n',
         'signing.trusted_keys."c\\u001b[2J": must be a base64 text'),
        ("[signing]\nrequire_signed = 1\n", "signing.require_signed: must be true or false"),
        ("[signing]\nrevoked = []\n", "signing: unknown keys ['revoked']"),
        ('signing = "x"\n', "signing: must be a table"),
    ],
)  # fmt: skip
def test_a_malformed_signing_table_is_named_with_its_file_and_key(
    tmp_path: Path, signing: str, words: str
) -> None:
    """Which file, and which key in it: "is not a base64 Ed25519 public key" alone left
    the site's administrator to guess among its keys and files."""
    site = tmp_path / "site.toml"
    site.write_text(signing, encoding="utf-8")
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.from_site_file(site)
    assert str(caught.value) == f"in {site}: {words}"
