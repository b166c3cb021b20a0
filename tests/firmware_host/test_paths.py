"""State-directory resolution order (DESIGN §10) and the file names in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.paths import (
    PathNameError,
    StateDirError,
    check_socket_path,
    control_socket_path,
    ensure_state_dir,
    resolve_site_config,
    resolve_state_dir,
    user_path,
)
from profiles.store import install_atomic
from tests.care.course_fixture import RX_TOML


def test_argument_wins_over_environment(tmp_path: Path) -> None:
    env = {"NIRPAD_STATE_DIR": str(tmp_path / "env"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert resolve_state_dir(str(tmp_path / "arg"), env) == tmp_path / "arg"


def test_environment_wins_over_user_data_dir(tmp_path: Path) -> None:
    env = {"NIRPAD_STATE_DIR": str(tmp_path / "env"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert resolve_state_dir(None, env) == tmp_path / "env"


def test_xdg_data_home_is_used_last(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert resolve_state_dir(None, env) == tmp_path / "xdg" / "nirpad"


def test_home_fallback_ignores_relative_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for env in ({}, {"XDG_DATA_HOME": "relative/dir"}, {"NIRPAD_STATE_DIR": ""}):
        assert resolve_state_dir(None, env) == tmp_path / ".local" / "share" / "nirpad"


def test_process_environment_is_read_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NIRPAD_STATE_DIR", str(tmp_path / "from-env"))
    assert resolve_state_dir(None) == tmp_path / "from-env"
    with pytest.raises(PathNameError, match="--state-dir is empty"):
        resolve_state_dir("")  # a script's unset variable, not "the default"


def test_relative_argument_becomes_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_state_dir("state", {}) == tmp_path / "state"


def test_resolving_creates_nothing(tmp_path: Path) -> None:
    resolve_state_dir(str(tmp_path / "nope"), {})
    assert not (tmp_path / "nope").exists()


def test_ensure_state_dir_creates_private_directory(tmp_path: Path) -> None:
    state = ensure_state_dir(tmp_path / "a" / "b")
    assert state.is_dir()
    assert state.stat().st_mode & 0o007 == 0


def test_ensure_state_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StateDirError, match="file"):
        ensure_state_dir(tmp_path / "file")


def test_site_config_argument_else_environment_else_file_in_state_dir(tmp_path: Path) -> None:
    no_env: dict[str, str] = {}
    assert resolve_site_config(tmp_path, None, no_env) is None
    assert resolve_site_config(None, None, no_env) is None
    (tmp_path / "site.toml").write_text("")
    assert resolve_site_config(tmp_path, None, no_env) == tmp_path / "site.toml"
    env = {"NIRPAD_SITE_CONFIG": str(tmp_path / "env.toml")}
    assert resolve_site_config(tmp_path, None, env) == tmp_path / "env.toml"
    other = str(tmp_path / "other.toml")
    assert resolve_site_config(tmp_path, other, env) == tmp_path / "other.toml"


@pytest.mark.parametrize("make", ["directory", "fifo", "dangling-link"])
def test_a_site_config_in_state_dir_that_is_no_regular_file_is_not_passed_over(
    tmp_path: Path, make: str
) -> None:
    """Its readers refuse it (profiles.site_file); skipping it would run without the
    site's limits and trusted keys."""
    site = tmp_path / "site.toml"
    if make == "directory":
        site.mkdir()
    elif make == "fifo":
        os.mkfifo(site)
    else:
        site.symlink_to(tmp_path / "absent.toml")
    assert resolve_site_config(tmp_path, None, {}) == site


def test_control_socket_lives_in_state_dir(tmp_path: Path) -> None:
    assert control_socket_path(tmp_path) == tmp_path / "control.sock"


def test_too_long_socket_path_is_a_readable_error(tmp_path: Path) -> None:
    check_socket_path(tmp_path / "control.sock")
    with pytest.raises(StateDirError, match="shorter --state-dir"):
        check_socket_path(tmp_path / ("x" * 120) / "control.sock")


NO_USER = "~no-such-nirpad-user"


def test_a_path_in_the_home_of_no_user_is_refused_in_words(tmp_path: Path) -> None:
    message = (
        f"cannot use {NO_USER}/x: {NO_USER} names no home folder on this machine (no such "
        "user); give the path in full"
    )
    with pytest.raises(PathNameError) as refused:
        resolve_state_dir(f"{NO_USER}/x", env={})
    assert str(refused.value) == message
    with pytest.raises(PathNameError, match="names no home folder"):
        resolve_state_dir(None, env={"NIRPAD_STATE_DIR": NO_USER})
    with pytest.raises(PathNameError, match="names no home folder"):
        resolve_site_config(tmp_path, f"{NO_USER}/site.toml", env={})
    assert user_path("~") == Path.home()


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--state-dir", f"{NO_USER}/state"],
        ["calendar", "-o", f"{NO_USER}/course.ics"],
        ["report", "-o", f"{NO_USER}/report.pdf"],
    ],
)
def test_the_commands_name_a_path_in_the_home_of_no_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    install_atomic(tmp_path, RX_TOML)
    state = [] if "--state-dir" in argv else ["--state-dir", str(tmp_path)]
    assert main([*argv, *state]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nirpad: cannot use {NO_USER}/") and "no such user" in err
    assert "Could not determine" not in err


@pytest.mark.parametrize("kind", ["file", "link loop"])
def test_a_state_directory_that_is_not_a_folder_is_named_so(tmp_path: Path, kind: str) -> None:
    state_dir = tmp_path / "state"
    if kind == "file":
        state_dir.write_text("x")
    else:
        state_dir.symlink_to(state_dir)
    with pytest.raises(StateDirError) as refused:
        ensure_state_dir(state_dir)
    assert str(refused.value) == (
        f"the state directory {state_dir} is not a folder: give the folder that holds the "
        "treatment record (--state-dir, $NIRPAD_STATE_DIR)"
    )


@pytest.mark.parametrize("argv", [["history", "--state-dir", "state"], ["calendar", "-o", "c.ics"]])
def test_a_relative_path_in_a_removed_current_folder_is_refused_in_words(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    install_atomic(state_dir, RX_TOML)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the caregiver's shell is still in it
    state = [] if "--state-dir" in argv else ["--state-dir", str(state_dir)]
    assert main([*argv, *state]) == 2
    assert capsys.readouterr().err == (
        f"nirpad: cannot use {argv[-1]}: the current folder no longer exists (removed or "
        "unmounted); give the path in full, or change to another folder\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--state-dir", ""],
        ["diary", "--legs", "3", "--state-dir", " "],
        ["web", "--state-dir", ""],
        ["run", "--sim", "--state-dir", ""],
        ["profile", "show", "--state-dir", ""],
        ["status", "--state-dir", ""],
        ["course", "--site-config", ""],
    ],
)
def test_an_empty_state_dir_or_site_config_is_refused_not_taken_for_the_default(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """A script's unset ``$DIR`` must not write the diary or a prescription elsewhere."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("NIRPAD_STATE_DIR", str(tmp_path / "from-env"))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    option = "--site-config" if "--site-config" in argv else "--state-dir"
    what = "a file" if option == "--site-config" else "a folder"
    assert capsys.readouterr().err == (
        f"nirpad: {option} is empty: give {what}, or leave {option} out (an unset variable "
        "in a script?)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
