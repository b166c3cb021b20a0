"""The canonical content of a profile: the exact bytes a signature covers.

Owns: turning parsed TOML data into deterministic bytes. The content is the parsed
profile without its ``signature`` table, as JSON with sorted keys, no spaces, UTF-8,
dates and times as ISO 8601 strings, prefixed by a domain tag. Comments, whitespace,
key order and number spelling (``40`` vs ``4_0``) are therefore not covered: they do
not change the treatment. Any change of a value is. Does not sign or verify
(``signing``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Final

DOMAIN_TAG: Final = b"nirpad-profile-v1\n"
SIGNATURE_KEY: Final = "signature"


class CanonicalizationError(ValueError):
    """The data holds a value that has no canonical form (nan, inf)."""


def _default(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_bytes(data: Mapping[str, Any]) -> bytes:
    """Deterministic bytes of ``data`` without its signature table.

    Raises CanonicalizationError for values with no canonical form (nan, inf).
    """
    unsigned = {k: v for k, v in data.items() if k != SIGNATURE_KEY}
    try:
        text = json.dumps(
            unsigned,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_default,
        ).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        raise CanonicalizationError(str(exc)) from exc
    return DOMAIN_TAG + text
