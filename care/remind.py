"""The reminder's site settings: an optional hook command run when a session is due.

Owns: reading ``[remind]`` from the site configuration: ``hook`` (a command as a list
of strings, run without a shell, e.g. ``["/usr/local/bin/buzz", "3"]``) and
``hook_timeout_s`` (1–60 s, default 10). Anything else, or a malformed value, is
refused with a sentence. Does not run the hook (``firmware_host.course_commands``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from care.adherence import SiteConfigError, read_site_table

__all__ = ["RemindSettings", "remind_settings"]

HOOK_TIMEOUT_S: Final = 10.0
_TIMEOUT_RANGE_S: Final = (1.0, 60.0)
_KEYS: Final = ("hook", "hook_timeout_s")


@dataclass(frozen=True, slots=True)
class RemindSettings:
    hook: tuple[str, ...] = ()
    hook_timeout_s: float = HOOK_TIMEOUT_S


def remind_settings(site_config: Path | None) -> RemindSettings:
    """The ``[remind]`` settings (no file or no table: no hook)."""
    table = read_site_table(site_config, "remind")
    where = f"In {site_config}, [remind]"
    unknown = [key for key in table if key not in _KEYS]
    if unknown:
        raise SiteConfigError(f"{where} has an unknown setting '{unknown[0]}' (known: hook, "
                              "hook_timeout_s).")  # fmt: skip
    hook = table.get("hook", [])
    if not (isinstance(hook, list) and all(isinstance(part, str) and part for part in hook)):
        raise SiteConfigError(
            f'{where} hook must be a list of words, like ["/usr/local/bin/buzz", "3"] '
            "(it runs without a shell)."
        )
    if "hook" in table and not hook:
        raise SiteConfigError(f"{where} hook is empty: remove it, or name a command.")
    timeout = table.get("hook_timeout_s", HOOK_TIMEOUT_S)
    low, high = _TIMEOUT_RANGE_S
    # The range alone: NaN and inf fail it, and it compares an integer of hundreds of
    # digits exactly, where math.isfinite would raise OverflowError.
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not low <= timeout <= high
    ):
        raise SiteConfigError(
            f"{where} hook_timeout_s = {timeout!r}: must be a number of seconds from "
            f"{low:g} to {high:g}."
        )
    return RemindSettings(tuple(hook), float(timeout))
