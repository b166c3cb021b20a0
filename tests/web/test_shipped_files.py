"""The files the page ships: htmx is the version docs/soup.md names, and the package
data rule takes every template and static file."""

from __future__ import annotations

import hashlib
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_htmx_is_the_one_the_soup_list_names() -> None:
    soup = (ROOT / "docs" / "soup.md").read_text()
    row = next(line for line in soup.splitlines() if line.startswith("| htmx "))
    named = re.search(r"sha256 `([0-9a-f]{64})`", row)
    assert named is not None
    shipped = (ROOT / "web" / "static" / "htmx.min.js").read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == named.group(1)
    assert f"{len(shipped):,}".replace(",", " ") in row


def test_package_data_takes_every_template_and_static_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["web"]
    files = [
        p.relative_to(ROOT / "web").as_posix()
        for folder in ("templates", "static")
        for p in (ROOT / "web" / folder).iterdir()
    ]
    assert files
    assert [f for f in files if not any(fnmatch(f, pat) for pat in patterns)] == []
