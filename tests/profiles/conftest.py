"""Shared fixtures for the profiles tests: built-in texts, key pairs, site files, a CLI."""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from profiles.shipped import BUILTIN_IDS as BUILTIN_NAMES
from profiles.shipped import builtin_text

__all__ = ["BUILTIN_NAMES", "builtin_text"]


@pytest.fixture
def base_text() -> str:
    """The 810 nm built-in: a valid single-channel profile to mutate."""
    return builtin_text("rls-810-standard")


@pytest.fixture
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def site_file(tmp_path: Path, private_key: Ed25519PrivateKey) -> Path:
    """A site configuration that requires signatures and trusts ``private_key`` as clinic-a."""
    path = tmp_path / "site.toml"
    path.write_text(
        "[signing]\nrequire_signed = true\n[signing.trusted_keys]\n"
        f'clinic-a = "{public_b64(private_key)}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str | bytes, str], Path]:
    def _write(content: str | bytes, name: str = "rx.toml") -> Path:
        path = tmp_path / name
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)
        return path

    return _write


def run_cli(argv: list[str]) -> int:
    """Parse ``nirpad profile ...`` with our own register() and run the handler."""
    from firmware_host.profile_commands import register

    parser = argparse.ArgumentParser(prog="nirpad")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["profile", *argv])
    return int(args.func(args))
