"""``firmware_host.output_files``: what a target may be before anything is written."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from firmware_host import output_files
from firmware_host.output_files import OutputRefused, write_atomically


def test_a_named_pipe_in_the_targets_place_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    pipe = tmp_path / "report.pdf"
    os.mkfifo(pipe)
    other = tmp_path / "report.csv"
    with pytest.raises(OutputRefused) as refused:
        write_atomically([(other, b"csv"), (pipe, b"%PDF")])
    assert str(refused.value) == (
        f"cannot write {pipe}: it is not a regular file (a named pipe); nothing was written"
    )
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]


def test_a_socket_in_the_targets_place_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(target))
        with pytest.raises(OutputRefused, match=r"it is not a regular file \(a socket\)"):
            write_atomically([(target, b"x")])
    assert stat.S_ISSOCK(target.lstat().st_mode)


def test_a_link_to_a_device_is_refused_the_device_kept(tmp_path: Path) -> None:
    link = tmp_path / "out.ics"
    link.symlink_to(os.devnull)
    with pytest.raises(OutputRefused, match=r"it is not a regular file \(a device\)"):
        write_atomically([(link, b"x")])
    assert link.is_symlink() and stat.S_ISCHR(Path(os.devnull).stat().st_mode)


def test_a_regular_file_is_replaced(tmp_path: Path) -> None:
    old = tmp_path / "old.pdf"
    old.write_bytes(b"last month")
    write_atomically([(old, b"new"), (tmp_path / "new.csv", b"csv")])
    assert old.read_bytes() == b"new" and (tmp_path / "new.csv").read_bytes() == b"csv"


@pytest.mark.parametrize("points_to", ["file", "dangling", "standard output"])
def test_a_link_is_refused_and_kept(tmp_path: Path, points_to: str) -> None:
    """A rename replaces the link, not what it points to. ``/dev/stdout`` links to
    ``/proc/self/fd/1``, which names a regular file when the output goes to one: the
    report would replace ``/dev/stdout`` itself, for every program on the machine."""
    file = tmp_path / "elsewhere.pdf"
    if points_to == "file":
        file.write_bytes(b"kept")
    stdout_file = tmp_path / "stdout.txt"
    target = tmp_path / "report.pdf"
    with stdout_file.open("wb") as out:
        pointee = f"/proc/self/fd/{out.fileno()}" if points_to == "standard output" else file
        target.symlink_to(pointee)
        with pytest.raises(OutputRefused) as refused:
            write_atomically([(tmp_path / "report.csv", b"csv"), (target, b"%PDF")])
    assert str(refused.value) == (
        f"cannot write {target}: it is a link (to {pointee}); writing would replace the link, "
        "not the file it points to: give the file's own name; nothing was written"
    )
    assert target.is_symlink() and os.readlink(target) == str(pointee)
    assert stdout_file.read_bytes() == b""
    assert not (tmp_path / "report.csv").exists()


def test_a_target_in_the_state_directory_or_below_it_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    (state_dir / "diary").mkdir(parents=True)
    (tmp_path / "link").symlink_to(state_dir)
    for target in (state_dir / "a.pdf", state_dir / "diary" / "b.pdf", tmp_path / "link" / "c"):
        with pytest.raises(OutputRefused, match="it is in the state directory"):
            write_atomically([(target, b"x")], state_dir=state_dir)
    write_atomically([(tmp_path / "report.pdf", b"x")], state_dir=state_dir)
    assert sorted(p.name for p in state_dir.rglob("*")) == ["diary"]


def test_ctrl_c_while_a_file_is_synced_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "report.pdf"
    old.write_bytes(b"last month")
    real_fsync, synced = os.fsync, []

    def interrupted(fd: int) -> None:
        synced.append(fd)
        if len(synced) == 2:  # the second file: the first one's temporary is written
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(output_files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically([(old, b"new"), (tmp_path / "report.csv", b"csv")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]
    assert old.read_bytes() == b"last month"
