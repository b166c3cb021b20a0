"""The site configuration file (``site.toml``): read in one place, safely, for every reader.

Owns: turning the file a site names (``firmware_host.paths.resolve_site_config``) into
its parsed TOML document, and refusing, with one ``SiteFileError`` naming the file
(and the line, where there is one): anything but a regular file (the open never blocks
on a FIFO; ``regular_file``), a file over ``MAX_SITE_FILE_BYTES`` (never more read), a
file others may write (``chmod o-w``), text that is not UTF-8 (a byte-order mark is
dropped), TOML that does not parse, a key of too many dotted parts, and a number too
long to read (``locator.number_too_long_at``). A file the site configuration names (the
IRLS wording) is read the same way.

Does not own any table in it, nor what a reader does with a missing file: ``[signing]``
(``profiles.signing``), ``[limits]`` (``safety.site_limits``), ``[ledger]``
(``safety.ledger_guard``), ``[course]``, ``[remind]`` and ``[device]`` (``care``).
"""

from __future__ import annotations

import errno
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Final

from profiles.errors import SiteFileError, SiteFileFault
from profiles.locator import deep_key_line, number_too_long_at, number_too_long_words, printable
from profiles.regular_file import FileTooLargeError, NotRegularFileError, read_regular_file

__all__ = ["MAX_SITE_FILE_BYTES", "read_site_file"]

MAX_SITE_FILE_BYTES: Final = 64 * 1024
"""A real site.toml, with a few trusted keys and comments, is well under 4 KiB."""
MAX_SITE_KEY_PARTS: Final = 8
"""Its deepest key has 3 parts (``signing.trusted_keys.ID``); a key of thousands of
dotted parts would take ``tomllib`` seconds to minutes (quadratic), in every reader."""
_WRITABLE_BY_OTHERS: Final = stat.S_IWOTH
"""Group-writable is allowed: with umask 002 every file is created 0664."""
_MISSING_ERRNOS: Final = frozenset({errno.ENOENT, errno.ENOTDIR})
_TOML_LINE: Final = re.compile(r"\(at line (\d+), column \d+\)")


def read_site_file(path: Path) -> dict[str, Any]:
    """The parsed TOML document of the site configuration at ``path``.

    Raises ``SiteFileError``: ``fault`` MISSING when there is no such file (the caller
    decides whether that means no configuration), otherwise a refusal in words.
    """
    text = _decode(path, _read_bytes(path))
    deep = deep_key_line(text, MAX_SITE_KEY_PARTS)
    if deep is not None:
        reason = f"a key has more than {MAX_SITE_KEY_PARTS} dotted parts (line {deep})"
        raise SiteFileError(SiteFileFault.NOT_TOML, path=path, reason=reason, line=deep)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) if found else None
        raise SiteFileError(SiteFileFault.NOT_TOML, path=path, reason=str(exc), line=line) from exc
    except RecursionError as exc:
        reason = "lists or tables are nested too deeply"
        raise SiteFileError(SiteFileFault.NOT_TOML, path=path, reason=reason) from exc
    except ValueError as exc:  # tomllib: an integer longer than Python converts
        key, where = number_too_long_at(text) or (None, None)
        raise SiteFileError(
            SiteFileFault.NUMBER_TOO_LONG,
            path=path,
            reason=number_too_long_words(text),
            line=where,
            key=key,
        ) from exc


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # as Windows Notepad saves it
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        reason = f"not UTF-8 text at line {line} (save it as UTF-8)"
        raise SiteFileError(SiteFileFault.NOT_TOML, path=path, reason=reason, line=line) from exc


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file no larger than the bound that others may not write."""
    try:
        data, info = read_regular_file(path, MAX_SITE_FILE_BYTES)
    except NotRegularFileError as exc:
        reason = f"it is {exc.kind}, not a regular file"
        raise SiteFileError(SiteFileFault.UNREADABLE, path=path, reason=reason) from exc
    except FileTooLargeError as exc:
        reason = (
            f"it is larger than {MAX_SITE_FILE_BYTES // 1024} KiB ({exc.size_words}); "
            "a site configuration is a few kB"
        )
        raise SiteFileError(SiteFileFault.UNREADABLE, path=path, reason=reason) from exc
    except OSError as exc:
        fault = SiteFileFault.MISSING if exc.errno in _MISSING_ERRNOS else SiteFileFault.UNREADABLE
        reason = exc.strerror or type(exc).__name__
        raise SiteFileError(fault, path=path, reason=reason) from exc
    mode = stat.S_IMODE(info.st_mode)
    if mode & _WRITABLE_BY_OTHERS:
        reason = (
            f"others may write it (mode {mode:04o}; run chmod o-w {printable(str(path))}), "
            "so anyone on this device could change what the pad trusts, shows or runs"
        )
        raise SiteFileError(SiteFileFault.UNREADABLE, path=path, reason=reason)
    return data
