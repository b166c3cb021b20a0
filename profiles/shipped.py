"""The built-in prescriptions shipped in ``profiles/builtin``: their text, and a copy of
it dated from a given day.

Owns: reading a built-in by id, and re-dating its text for what runs on any date (the
demo, and the rigs and tests that run on the real wall clock). The shipped files carry
fixed dates and expire like any prescription: a caregiver who installs one after its
expiry is refused. Nothing here signs or validates; the loader does.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from typing import Final

__all__ = ["BUILTIN_IDS", "DATED_VALID_DAYS", "builtin_text", "dated_from"]

BUILTIN_IDS: Final = ("rls-810-standard", "rls-850-standard", "rls-dual")
DATED_VALID_DAYS: Final = 365
"""How long a dated copy is valid: a year, well inside the two-year rule."""

_DATE_LINE: Final = r"^{key} = \d{{4}}-\d{{2}}-\d{{2}}$"


def builtin_text(profile_id: str) -> str:
    """The TOML of the built-in ``profile_id`` as shipped (``ValueError`` if unknown)."""
    if profile_id not in BUILTIN_IDS:
        raise ValueError(f"no built-in profile {profile_id!r}; there are {', '.join(BUILTIN_IDS)}")
    path = resources.files("profiles").joinpath("builtin", f"{profile_id}.toml")
    return path.read_text(encoding="utf-8")


def dated_from(text: str, today: dt.date, *, valid_days: int = DATED_VALID_DAYS) -> str:
    """``text`` issued the day before ``today`` (valid on ``today`` in any time zone's
    reading) and expiring ``valid_days`` later. ``ValueError`` when ``text`` lacks one
    ``issued`` or ``expires`` line of a plain date."""
    issued = today - dt.timedelta(days=1)
    expires = issued + dt.timedelta(days=valid_days)
    for key, day in (("issued", issued), ("expires", expires)):
        text, found = re.subn(
            _DATE_LINE.format(key=key), f"{key} = {day.isoformat()}", text, flags=re.M
        )
        if found != 1:
            raise ValueError(f"expected one '{key} = YYYY-MM-DD' line, found {found}")
    return text
