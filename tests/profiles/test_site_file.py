"""The one reader of site.toml: what it refuses, in words naming the file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from profiles import regular_file
from profiles.errors import SiteFileError, SiteFileFault
from profiles.site_file import MAX_SITE_FILE_BYTES, read_site_file
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file

SITE = "[signing]\nrequire_signed = true\n[limits]\nsession_max_min = 20\n"


def _site(tmp_path: Path, content: str | bytes, mode: int = 0o644) -> Path:
    path = tmp_path / "site.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    path.chmod(mode)
    return path


def _refusal(path: Path) -> SiteFileError:
    with pytest.raises(SiteFileError) as caught:
        read_site_file(path)
    assert caught.value.path == path
    return caught.value


def test_a_site_file_is_read_as_its_toml_document(tmp_path: Path) -> None:
    document = read_site_file(_site(tmp_path, SITE))
    assert document == {"signing": {"require_signed": True}, "limits": {"session_max_min": 20}}


@pytest.mark.parametrize("mode", [0o664, 0o660, 0o620, 0o640, 0o600, 0o444])
def test_group_writable_and_private_files_are_read(tmp_path: Path, mode: int) -> None:
    """With umask 002 every file is created 0664: group write is not refused."""
    assert read_site_file(_site(tmp_path, SITE, mode))["limits"] == {"session_max_min": 20}


@pytest.mark.parametrize("mode", [0o666, 0o646, 0o602, 0o777])
def test_a_file_others_may_write_is_refused_saying_how_to_fix_it(tmp_path: Path, mode: int) -> None:
    path = _site(tmp_path, SITE, mode)
    refusal = _refusal(path)
    assert refusal.fault is SiteFileFault.UNREADABLE
    assert str(refusal) == (
        f"Cannot read the site configuration {path}: others may write it "
        f"(mode {mode:04o}; run chmod o-w {path}), so anyone on this device could change "
        "what the pad trusts, shows or runs."
    )
    path.chmod(mode & ~0o002)  # the fix the message gives
    assert read_site_file(path)["signing"] == {"require_signed": True}


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    path, words = refused_site_file(tmp_path, "fifo")
    refusal = _refusal(path)
    assert (refusal.fault, refusal.reason) == (SiteFileFault.UNREADABLE, words)
    assert str(refusal) == f"Cannot read the site configuration {path}: {words}."


@pytest.mark.timeout(10)
def test_a_file_replaced_by_a_fifo_after_the_stat_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open never blocks, so the check once open can still refuse it."""
    path = _site(tmp_path, SITE)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    real_open = os.open
    monkeypatch.setattr(regular_file.os, "open", lambda _, flags: real_open(fifo, flags))
    assert _refusal(path).reason == "it is a named pipe, not a regular file"


def test_a_directory_and_a_device_are_refused(tmp_path: Path) -> None:
    path, words = refused_site_file(tmp_path, "directory")
    assert _refusal(path).reason == words == "it is a directory, not a regular file"
    assert _refusal(Path("/dev/zero")).reason == "it is a device, not a regular file"


def test_a_file_over_the_bound_is_refused_from_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MAX_SITE_FILE_BYTES == 64 * 1024
    padded = SITE + "#" * (MAX_SITE_FILE_BYTES - len(SITE))
    assert read_site_file(_site(tmp_path, padded))["limits"] == {"session_max_min": 20}
    path, words = refused_site_file(tmp_path, "oversize")

    def never(*args: object) -> int:
        raise AssertionError("opened")

    monkeypatch.setattr(regular_file.os, "open", never)
    refusal = _refusal(path)
    assert refusal.fault is SiteFileFault.UNREADABLE
    assert refusal.reason == f"{words}; a site configuration is a few kB"


def test_a_missing_file_is_its_own_fault(tmp_path: Path) -> None:
    for absent in (tmp_path / "absent.toml", _site(tmp_path, SITE) / "below-a-file.toml"):
        refusal = _refusal(absent)
        assert refusal.fault is SiteFileFault.MISSING
    assert str(refusal) == (
        f"Cannot read the site configuration {absent}: Not a directory."  # ENOTDIR
    )


def test_a_file_that_cannot_be_opened_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _site(tmp_path, SITE)

    def denied(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(regular_file.os, "open", denied)  # as chmod 000 would (not for root)
    refusal = _refusal(path)
    assert (refusal.fault, refusal.reason) == (SiteFileFault.UNREADABLE, "Permission denied")


def test_text_that_is_not_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = _site(tmp_path, b'[remind]\nhook = ["caf\xe9"]\n')
    refusal = _refusal(path)
    assert (refusal.fault, refusal.line) == (SiteFileFault.NOT_TOML, 2)
    assert str(refusal) == (
        f"The site configuration {path} is not valid TOML: "
        "not UTF-8 text at line 2 (save it as UTF-8)."
    )


def test_toml_that_does_not_parse_is_refused_naming_the_line(tmp_path: Path) -> None:
    refusal = _refusal(_site(tmp_path, "[limits]\nsession_max_min = \n"))
    assert (refusal.fault, refusal.line) == (SiteFileFault.NOT_TOML, 2)
    assert refusal.reason.startswith("Invalid value (at line 2, column")


def test_nesting_too_deep_for_the_parser_is_refused(tmp_path: Path) -> None:
    refusal = _refusal(_site(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n"))
    assert (refusal.fault, refusal.line) == (SiteFileFault.NOT_TOML, None)
    assert refusal.reason == "lists or tables are nested too deeply"


def test_a_number_too_long_to_read_is_refused_naming_key_and_line(tmp_path: Path) -> None:
    path = _site(tmp_path, f"[limits]\nsession_max_min = 20\n[ledger]\nx = {'7' * 5000}\n")
    refusal = _refusal(path)
    assert (refusal.fault, refusal.key, refusal.line) == (SiteFileFault.NUMBER_TOO_LONG, "x", 4)
    assert str(refusal) == f"In {path}, x (line 4) is a number with far too many digits."
    assert refusal.sentence("the site limits file") == str(refusal)


def test_each_reader_names_the_file_its_own_way(tmp_path: Path) -> None:
    path = _site(tmp_path, "[limits\n")
    assert (
        _refusal(path)
        .sentence("the site limits file")
        .startswith(f"The site limits file {path} is not valid TOML: ")
    )
    path.unlink()
    assert _refusal(path).sentence("the site limits file") == (
        f"Cannot read the site limits file {path}: No such file or directory."
    )


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_the_shared_refusals_name_the_file(tmp_path: Path, kind: str) -> None:
    path, words = refused_site_file(tmp_path, kind)
    assert str(_refusal(path)).startswith(f"Cannot read the site configuration {path}: {words}")


def test_a_site_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = _site(tmp_path, b"\xef\xbb\xbf" + SITE.encode())
    assert read_site_file(path)["limits"] == {"session_max_min": 20}


@pytest.mark.timeout(10)  # tomllib takes time quadratic in a key's parts: ~17 s for this one
def test_a_key_of_thousands_of_dotted_parts_is_refused_before_parsing(tmp_path: Path) -> None:
    key = ".".join(["a"] * 30_000)
    path = _site(tmp_path, f"[limits]\nsession_max_min = 20\n{key} = 1\n")
    refusal = _refusal(path)
    assert (refusal.fault, refusal.line) == (SiteFileFault.NOT_TOML, 3)
    assert refusal.reason == "a key has more than 8 dotted parts (line 3)"


def test_the_deepest_real_key_is_read(tmp_path: Path) -> None:
    path = _site(tmp_path, '[signing.trusted_keys]\n"clinic.a.2026" = "AAAA"\n')
    assert read_site_file(path)["signing"]["trusted_keys"] == {"clinic.a.2026": "AAAA"}
