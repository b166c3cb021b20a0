"""A state directory that is not a folder is refused by every command that takes one:
one line on stderr, exit 2, never read as an empty state directory ("No sessions
recorded", "no usable prescription", "no controller is running")."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_host.cli import build_parser, main
from firmware_host.paths import StateDirNotAFolderError, check_state_dir
from profiles.shipped import builtin_text
from tests.firmware_host.locked_out import run_locked_out

ITEMS = ",".join(["1"] * 10)
COMMANDS = {
    "run": ["run", "--sim"],
    "status": ["status"],
    "start": ["start"],
    "pause": ["pause"],
    "resume": ["resume"],
    "stop": ["stop"],
    "ack": ["ack"],
    "clock confirm": ["clock", "confirm", "2026-01-01 10:00"],
    "ledger reset": ["ledger", "reset"],
    "history": ["history"],
    "diary": ["diary", "--legs", "3"],
    "diary show": ["diary", "show"],
    "irls": ["irls", "--items", ITEMS],
    "course": ["course"],
    "remind": ["remind"],
    "calendar": ["calendar", "-o", "{out}/course.ics"],
    "report": ["report", "-o", "{out}/report.pdf"],
    "profile install": ["profile", "install", "{out}/rx.toml"],
    "profile show": ["profile", "show"],
    "web": ["web"],
    "web passwd": ["web", "passwd"],
}


def _not_a_folder(path: Path) -> str:
    return (
        f"nirpad: the state directory {path} is not a folder: give the folder that holds "
        "the treatment record (--state-dir, $NIRPAD_STATE_DIR)\n"
    )


def _taking_state_dir(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[str]:
    """Each command line (``clock confirm``) whose parser has a ``--state-dir`` option."""
    for action in parser._actions:
        if "--state-dir" in action.option_strings:
            yield " ".join(words)
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _taking_state_dir(child, (*words, name))


def test_the_list_above_is_every_command_that_takes_a_state_directory() -> None:
    found = set(_taking_state_dir(build_parser(with_profile_commands=True)))
    assert found == set(COMMANDS) - {"web passwd"}  # passwd: an argument of web's parser


@pytest.mark.parametrize("argv", list(COMMANDS.values()), ids=list(COMMANDS))
def test_every_command_refuses_a_file_as_its_state_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    (tmp_path / "rx.toml").write_text(builtin_text("rls-dual"))
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0::/root:/bin/sh\n")
    args = [word.format(out=tmp_path) for word in argv]
    assert main([*args, "--state-dir", str(a_file)]) == 2
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == (_not_a_folder(a_file), "")
    assert a_file.read_text() == "root:x:0:0::/root:/bin/sh\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd", "rx.toml"]


def _make(kind: str, path: Path) -> Path:
    if kind == "named pipe":
        os.mkfifo(path)
    elif kind == "link to nothing":
        path.symlink_to(path.with_name("absent"))
    elif kind == "link to a file":
        path.with_name("target").write_text("x")
        path.symlink_to(path.with_name("target"))
    elif kind == "links in a loop":
        path.symlink_to(path)
    elif kind == "a path through a file":
        path.write_text("x")
        return path / "nirpad"
    return path


KINDS = [
    "named pipe",
    "link to nothing",
    "link to a file",
    "links in a loop",
    "a path through a file",
]


@pytest.mark.parametrize("kind", KINDS)
def test_history_refuses_what_is_not_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    state_dir = _make(kind, tmp_path / "state")
    assert main(["history", "--state-dir", str(state_dir)]) == 2
    assert capsys.readouterr().err == _not_a_folder(state_dir)


@pytest.mark.parametrize("kind", ["named pipe", "link to nothing"])
def test_the_environment_s_state_directory_is_checked_too(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    state_dir = _make(kind, tmp_path / "state")
    monkeypatch.setenv("NIRPAD_STATE_DIR", str(state_dir))
    assert main(["course"]) == 2
    assert capsys.readouterr().err == _not_a_folder(state_dir)
    assert not (tmp_path / "absent").exists()


def test_a_device_is_not_a_folder() -> None:
    with pytest.raises(StateDirNotAFolderError) as refused:
        check_state_dir(Path("/dev/null"))
    assert refused.value.path == Path("/dev/null")


def test_a_folder_a_link_to_one_and_none_yet_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "folder")
    for name in ("folder", "link", "not-yet"):
        assert main(["history", "--state-dir", str(tmp_path / name)]) == 0
        assert capsys.readouterr().out == f"No sessions recorded in {tmp_path / name}.\n"
    assert not (tmp_path / "not-yet").exists()


_RESOLVE = (
    "import sys; from firmware_host.paths import resolve_state_dir\n"
    "for arg in sys.argv[1:]: print(resolve_state_dir(arg, {}))"
)


def test_a_folder_this_user_may_not_look_into_is_left_to_its_readers(tmp_path: Path) -> None:
    """Whether the state directory is a folder cannot be told when its parent may not be
    searched: it is passed on, and the command that reads it says it cannot (as before),
    never "not a folder". A folder that may not be read is a folder."""
    locked = tmp_path / "locked"
    (locked / "state").mkdir(parents=True)
    paths = [str(locked / "state"), str(locked)]
    done = run_locked_out(locked, ["-P", "-c", _RESOLVE, *paths])
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == paths
