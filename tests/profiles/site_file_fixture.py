"""Site configuration files that ``profiles.site_file`` refuses, for each reader's tests.

``refused_site_file(tmp_path, kind)`` makes one (a FIFO, a directory, a file over the
bound, a file others may write) and returns its path and the words the refusal must
contain. Every reader of ``site.toml`` must surface them through its own error type.
"""

from __future__ import annotations

import os
from pathlib import Path

from profiles.site_file import MAX_SITE_FILE_BYTES

REFUSED_KINDS = ("fifo", "directory", "oversize", "world-writable")


def refused_site_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A site file of ``kind`` (one of ``REFUSED_KINDS``) and the words refusing it."""
    path = tmp_path / "site.toml"
    if kind == "fifo":
        os.mkfifo(path)  # a plain open for reading would block until a writer comes
        return path, "it is a named pipe, not a regular file"
    if kind == "directory":
        path.mkdir()
        return path, "it is a directory, not a regular file"
    if kind == "oversize":
        path.write_text("[limits]\n")
        with path.open("r+b") as handle:
            handle.truncate(MAX_SITE_FILE_BYTES + 1)  # trailing NULs, never read
        return path, f"it is larger than 64 KiB ({MAX_SITE_FILE_BYTES + 1} bytes)"
    assert kind == "world-writable", kind
    path.write_text("[limits]\n")
    path.chmod(0o666)
    return path, f"others may write it (mode 0666; run chmod o-w {path})"
