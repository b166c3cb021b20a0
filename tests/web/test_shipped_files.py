"""The files the page ships: htmx is the version docs/soup.md names, and the package
data rule takes every template and static file."""

from __future__ import annotations

import ast
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


DIRECT_INSTALL = frozenset(
    {
        "install_prescription",
        "validate_and_install",
        "_install_holding_state_dir",
        "_install_and_record",
        "install_atomic",
        "StateLock",
        "ensure_state_dir",
    }
)


def test_the_page_never_names_a_direct_install() -> None:
    """Import contracts see modules; this sees the names the page's code uses, so the
    install path of ``firmware_host.profile_commands`` (which the page imports for its
    checks) cannot be called from the page, and the page never makes the state
    directory (only ``nirpad web passwd`` may)."""
    used = {
        (path.name, node.id if isinstance(node, ast.Name) else node.attr)
        for path in (ROOT / "web").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Name | ast.Attribute)
    } | {
        (path.name, alias.name)
        for path in (ROOT / "web").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    named = sorted((f, n) for f, n in used if n in DIRECT_INSTALL)
    assert named == [("serve.py", "ensure_state_dir")]  # `nirpad web passwd` only
