"""The bounded, non-blocking reader the loader, the key files and site.toml share."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from profiles import regular_file
from profiles.regular_file import (
    FileTooLargeError,
    NotRegularFileError,
    file_kind,
    read_regular_file,
)


def test_a_regular_file_is_read_with_its_fstat(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 10)
    data, info = read_regular_file(path, 10)
    assert data == b"x" * 10
    assert stat.S_ISREG(info.st_mode) and info.st_size == 10


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError) as caught:
        read_regular_file(fifo, 10)
    assert caught.value.kind == "a named pipe"


def test_a_file_over_the_bound_is_refused_from_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 11)
    with pytest.raises(FileTooLargeError) as caught:
        read_regular_file(path, 10)
    assert (caught.value.size_bytes, caught.value.size_words) == (11, "11 bytes")


def test_a_file_that_grew_after_the_check_is_refused_reading_one_byte_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 100)
    real_stat, real_fstat = os.stat, os.fstat

    def as_checked(info: os.stat_result) -> os.stat_result:
        fields = list(info)
        fields[stat.ST_SIZE] = 5  # its size when it was checked
        return os.stat_result(fields)

    monkeypatch.setattr(regular_file.os, "stat", lambda path: as_checked(real_stat(path)))
    monkeypatch.setattr(regular_file.os, "fstat", lambda fd: as_checked(real_fstat(fd)))
    with pytest.raises(FileTooLargeError) as caught:
        read_regular_file(path, 10)
    assert caught.value.size_bytes is None
    assert caught.value.size_words == "more than 10 bytes"


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "absent", 10)


def test_the_kind_of_a_file_in_words(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        assert file_kind(os.stat(tmp_path / "s").st_mode) == "a socket"
    assert file_kind(os.stat(tmp_path).st_mode) == "a directory"
    assert file_kind(os.stat("/dev/null").st_mode) == "a device"
    assert file_kind(stat.S_IFLNK) == "not a file"
    assert str(NotRegularFileError(stat.S_IFDIR)) == "not a regular file (a directory)"
