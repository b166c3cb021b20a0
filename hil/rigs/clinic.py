"""The rigs' clinic: one prescriber key, trusted the way a site trusts a clinic.

Owns: the rig clinic's Ed25519 key (fixed, so every rig, every restart of a rig and the
``nirpad`` children it starts trust the same key), the site configuration that trusts
it (``[signing.trusted_keys]`` in ``<state_dir>/site.toml``: what a caregiver writes for
a clinic, docs/profiles.md, and where ``nirpad run`` and the CLI look for it), and
signing a prescription with it (``profiles.signing.sign_profile``, what ``nirpad profile
sign`` does). The controller then checks the signature of every prescription a rig
installs with the trust store it builds from the site configuration, as ``nirpad run``
does; a prescription changed after signing is refused. Also owns ``profile_toml``, a
prescription as the clinic writes one (any numbers, for the reliability runs), and
``reissued_today``, a built-in as the clinic would issue it today: a host in a child
process runs on the real wall clock, past which the shipped dates expire.

Signatures are trusted, not required (``require_signed = false``): scenarios about a
prescription file edited by hand still reach the limit and date checks. The key is a
test key: it is trusted only by the site files written here.

Does not own the trust store or the signature format (``profiles.signing``) nor
installing (``firmware_host.profile_commands``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_host.paths import SITE_CONFIG_NAME
from firmware_host.profile_commands import utc_today
from profiles.errors import SigningError
from profiles.shipped import builtin_text, dated_from
from profiles.signing import public_key_b64, sign_profile

__all__ = [
    "RIG_KEY_ID",
    "has_rig_site",
    "profile_toml",
    "reissued_today",
    "sign",
    "trust_rig_clinic",
]

RIG_KEY_ID: Final = "hil-rig-clinic"
_RIG_KEY: Final = Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"nirpad HIL rig clinic: a test key").digest()
)


def site_text() -> str:
    """The site configuration of a rig: it trusts the rig clinic's key."""
    return (
        "# The site of a HIL rig (hil/rigs/clinic.py): it trusts the rig clinic's key.\n"
        "[signing]\n"
        "require_signed = false\n"
        "[signing.trusted_keys]\n"
        f'{RIG_KEY_ID} = "{public_key_b64(_RIG_KEY)}"\n'
    )


def has_rig_site(state_dir: Path) -> bool:
    """True when ``<state_dir>/site.toml`` is a rig's own (``trust_rig_clinic`` wrote it)."""
    try:
        return (state_dir / SITE_CONFIG_NAME).read_bytes() == site_text().encode("utf-8")
    except OSError:
        return False


def trust_rig_clinic(state_dir: Path) -> Path:
    """Write ``<state_dir>/site.toml`` trusting the rig clinic (as a caregiver would);
    returns its path. A site file already there must be the rig's own."""
    path = state_dir / SITE_CONFIG_NAME
    if path.exists():
        if not has_rig_site(state_dir):
            raise ValueError(f"{path} is not a rig's site configuration; not replaced")
        return path
    text = site_text()
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sign(data: bytes) -> bytes:
    """``data`` signed by the rig clinic. What cannot be signed (not UTF-8 or TOML, a
    value with no canonical form) is returned as it is: installing it refuses it for
    its own reasons, as it would refuse it unsigned."""
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
        return sign_profile(text, _RIG_KEY, RIG_KEY_ID).encode("utf-8")
    except (UnicodeDecodeError, SigningError):
        return data


def reissued_today(profile_id: str = "rls-810-standard") -> bytes:
    """The built-in ``profile_id`` issued yesterday (UTC) for a year (``profiles.shipped``),
    unsigned: what a host on the real wall clock (a child process) can install on any
    date. In-process rigs run on ``WALL_START``, inside the shipped dates."""
    return dated_from(builtin_text(profile_id), utc_today()).encode()


def profile_toml(
    *,
    profile_id: str = "stack-test",
    irradiance_mw_cm2: tuple[float, ...] = (40.0,),
    duration_min: int = 2,
    ramp_s: float = 10.0,
    sessions_per_week: int = 3,
    min_interval_h: float = 20.0,
    pulsed: tuple[float, float] | None = None,
    expires: str = "2028-01-01",
    extra: str = "",
) -> bytes:
    """A prescription as a caregiver's TOML file; channel i is 810 nm, then 850 nm."""
    lines = [
        "schema_version = 1",
        f'id = "{profile_id}"',
        'name = "generated for a reliability run"',
        'prescriber = "Dr Stack"',
        "issued = 2026-01-01",
        f"expires = {expires}",
        f"duration_min = {duration_min}",
        f"ramp_s = {ramp_s!r}",
        f"sessions_per_week = {sessions_per_week}",
        f"min_interval_h = {min_interval_h!r}",
        "course_weeks = 4",
        extra,
    ]
    for wavelength_nm, irradiance in zip((810, 850), irradiance_mw_cm2, strict=False):
        lines += ["[[channels]]", f"wavelength_nm = {wavelength_nm}"]
        lines += [f"irradiance_mw_cm2 = {irradiance!r}"]
    if pulsed is None:
        lines += ["[mode]", 'kind = "cw"']
    else:
        lines += ["[mode]", 'kind = "pulsed"', f"pulse_hz = {pulsed[0]!r}"]
        lines += [f"duty_pct = {pulsed[1]!r}"]
    return ("\n".join(lines) + "\n").encode()
