"""The rigs' clinic: its site file trusts its key, and what it signs verifies there only."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from hil.rigs.clinic import RIG_KEY_ID, sign, trust_rig_clinic
from profiles.loader import load_profile_bytes
from profiles.signing import TrustStore, signature_checked

RX = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_bytes()


def test_a_signed_prescription_verifies_with_the_rig_site_only(tmp_path: Path) -> None:
    site = trust_rig_clinic(tmp_path)
    trust = TrustStore.from_site_file(site)
    assert signature_checked(trust) and RIG_KEY_ID in trust.keys and not trust.require_signed
    signed = sign(RX)
    assert f'key_id = "{RIG_KEY_ID}"' in signed.decode()
    assert load_profile_bytes(signed, "rx", trust=trust).ok
    tampered = signed.replace(b"sessions_per_week = 3", b"sessions_per_week = 7")
    problems = load_profile_bytes(tampered, "rx", trust=trust).problems
    assert [p.field for p in problems] == ["signature.value"]
    other = TrustStore.from_mapping({"trusted_keys": {"someone-else": _other_key()}})
    assert [p.field for p in load_profile_bytes(signed, "rx", trust=other).problems] == [
        "signature.key_id"
    ]


def test_the_site_file_is_written_once_and_never_replaced(tmp_path: Path) -> None:
    site = trust_rig_clinic(tmp_path / "state")
    text = site.read_text()
    assert trust_rig_clinic(tmp_path / "state") == site and site.read_text() == text
    site.write_text("[limits]\n")
    with pytest.raises(ValueError, match="not a rig's site configuration"):
        trust_rig_clinic(tmp_path / "state")
    assert site.read_text() == "[limits]\n"


@pytest.mark.parametrize("data", [b"\x00\xff not toml", b"a = nan\n", b"= broken"])
def test_what_cannot_be_signed_goes_in_as_it_is(data: bytes) -> None:
    assert sign(data) == data


def _other_key() -> str:
    from profiles.signing import generate_keypair

    return generate_keypair()[1]
