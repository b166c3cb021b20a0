"""The page's password (scrypt, salted, a 0640 file) and its sessions and login limit."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

import pytest

from firmware_host.cli import main
from hil.rigs.clock import VirtualClock
from web import passwords
from web.passwords import (
    PasswordError,
    check_new_password,
    hash_password,
    password_path,
    read_password_hash,
    verify_password,
    write_password_hash,
)
from web.sessions import (
    FIRST_WAIT_S,
    FREE_FAILURES,
    IDLE_TIMEOUT_S,
    LoginLimiter,
    SessionStore,
)

FAST_N = 1 << 10  # tests hash with a small cost; the product's default is 2^15


def test_a_password_verifies_and_another_does_not() -> None:
    stored = hash_password("correct horse battery", n=FAST_N)
    assert stored.startswith(f"scrypt${FAST_N}$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert "correct horse" not in stored


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("same password!", n=FAST_N) != hash_password("same password!", n=FAST_N)


def test_the_default_cost_is_memory_hard() -> None:
    stored = hash_password("correct horse battery")
    assert stored.split("$")[1:4] == [str(1 << 15), "8", "1"]  # 32 MiB per try
    assert verify_password("correct horse battery", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "scrypt$1024$8$1$abc",
        "bcrypt$1024$8$1$c2FsdA$aGFzaA",
        "scrypt$1000$8$1$c2FsdA$" + "A" * 43,  # N not a power of two
        "scrypt$1024$8$2$c2FsdA$" + "A" * 43,  # parallelism other than 1
        "scrypt$1024$64$1$c2FsdA$" + "A" * 43,  # a block size out of range
        f"scrypt${1 << 30}$8$1$c2FsdA$" + "A" * 43,  # a cost that would take minutes
        "scrypt$1024$8$1$!!!$aGFzaA",
    ],
)
def test_a_malformed_or_too_costly_hash_never_verifies(stored: str) -> None:
    assert not verify_password("anything at all", stored)


@pytest.mark.parametrize(
    "stored",
    [
        f"scrypt${1 << 30}$8$1$c2FsdA$" + "A" * 43,
        "scrypt$1000$8$1$c2FsdA$" + "A" * 43,
        "scrypt$1024$4096$1$c2FsdA$" + "A" * 43,
        "scrypt$1024$8$64$c2FsdA$" + "A" * 43,
    ],
)
def test_a_cost_out_of_range_is_refused_before_any_hashing(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        "web.passwords._scrypt", lambda pw, salt, n, r, p: calls.append((n, r, p)) or b""
    )
    assert not verify_password("anything at all", stored)
    assert calls == []


def test_the_password_file_is_0640_and_read_back(tmp_path: Path) -> None:
    assert read_password_hash(tmp_path) is None
    stored = hash_password("correct horse battery", n=FAST_N)
    path = write_password_hash(tmp_path, stored)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert read_password_hash(tmp_path) == stored


def test_a_foreign_password_file_is_refused(tmp_path: Path) -> None:
    password_path(tmp_path).write_text("hunter2\n")
    with pytest.raises(PasswordError, match="not a nirpad password file"):
        read_password_hash(tmp_path)


def test_a_short_password_is_refused() -> None:
    with pytest.raises(PasswordError, match="at least 10 characters"):
        check_new_password("short")


def test_nirpad_web_passwd_stores_only_a_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long caregiver password\n"))
    assert main(["web", "passwd", "--state-dir", str(tmp_path)]) == 0
    stored = password_path(tmp_path).read_text()
    assert "caregiver" not in stored
    assert verify_password("a long caregiver password", stored)
    assert "password set" in capsys.readouterr().out


def test_nirpad_web_passwd_refuses_a_short_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["web", "passwd", "--state-dir", str(tmp_path)]) == 2
    assert not password_path(tmp_path).exists()
    assert "at least 10 characters" in capsys.readouterr().err


def test_five_wrong_passwords_are_free_then_the_wait_doubles() -> None:
    clock = VirtualClock()
    limiter = LoginLimiter(clock)
    for _ in range(FREE_FAILURES - 1):
        limiter.failed()
        assert limiter.wait_s() == 0
    limiter.failed()
    assert limiter.wait_s() == FIRST_WAIT_S
    clock.advance(FIRST_WAIT_S)
    assert limiter.wait_s() == 0
    limiter.failed()
    assert limiter.wait_s() == 2 * FIRST_WAIT_S
    clock.advance(2 * FIRST_WAIT_S)
    limiter.failed()
    assert limiter.wait_s() == 4 * FIRST_WAIT_S
    limiter.succeeded()
    assert limiter.wait_s() == 0 and limiter.failures == 0


def test_the_wait_is_capped_at_an_hour() -> None:
    clock = VirtualClock()
    limiter = LoginLimiter(clock)
    for _ in range(60):
        limiter.failed()
    assert limiter.wait_s() == 3600.0


def test_an_idle_session_expires_and_tokens_are_random() -> None:
    clock = VirtualClock()
    store = SessionStore(clock, idle_timeout_s=60.0)
    first, second = store.new(), store.new()
    assert first.token != second.token and first.csrf_token != first.token
    clock.advance(59.0)
    assert store.get(first.token) is first
    clock.advance(61.0)
    assert store.get(first.token) is None
    assert store.get("made-up") is None and store.get(None) is None


def test_a_poll_every_second_does_not_keep_a_session_alive() -> None:
    clock = VirtualClock()
    store = SessionStore(clock)
    session = store.new(logged_in=True)
    seen = []
    for _ in range(31 * 60):
        clock.advance(1.0)
        seen.append(store.get(session.token, touch=False))
    assert seen[: int(IDLE_TIMEOUT_S)] == [session] * int(IDLE_TIMEOUT_S)  # served while live
    assert seen[-1] is None and session.revoked
    assert store.get(session.token) is None  # a page request now finds it gone too


def test_a_request_within_the_idle_time_keeps_a_polled_session_alive() -> None:
    clock = VirtualClock()
    store = SessionStore(clock)
    session = store.new(logged_in=True)
    for minute in range(1, 61):
        clock.advance(60.0)
        assert store.get(session.token, touch=False) is session, minute
        if minute % 29 == 0:
            assert store.get(session.token) is session  # the caregiver's request


def test_a_full_store_drops_the_least_recently_seen() -> None:
    clock = VirtualClock()
    store = SessionStore(clock, max_sessions=2)
    old = store.new()
    clock.advance(1.0)
    kept = store.new()
    clock.advance(1.0)
    store.new()
    assert store.get(old.token) is None and store.get(kept.token) is kept
    assert len(store) == 2


def test_csrf_check_is_exact() -> None:
    session = SessionStore(VirtualClock()).new()
    assert session.csrf_ok(session.csrf_token)
    assert not session.csrf_ok(session.csrf_token[:-1])
    assert not session.csrf_ok("")
    assert not session.csrf_ok(None)


def test_an_anonymous_session_is_stored_nowhere_and_keeps_its_csrf_token() -> None:
    store = SessionStore(VirtualClock())
    first = store.anonymous(None, logged_in=False)
    again = store.anonymous(first.token, logged_in=False)
    assert len(store) == 0 and not first.stored
    assert again.token == first.token and again.csrf_token == first.csrf_token
    assert store.anonymous("not-one-of-ours", logged_in=False).token != "not-one-of-ours"
    other = SessionStore(VirtualClock()).anonymous(first.token, logged_in=False)
    assert other.csrf_token != first.csrf_token  # a key of its own per page process


def test_a_full_store_drops_a_session_without_login_before_a_logged_in_one() -> None:
    clock = VirtualClock()
    store = SessionStore(clock, max_sessions=2)
    caregiver = store.new(logged_in=True)
    clock.advance(1.0)
    store.keep(store.anonymous(None, logged_in=False))
    clock.advance(1.0)
    store.keep(store.anonymous(None, logged_in=False))
    assert store.get(caregiver.token) is caregiver and len(store) == 2


def test_a_login_attempt_is_counted_before_its_password_is_tried() -> None:
    limiter = LoginLimiter(VirtualClock())
    for _ in range(FREE_FAILURES):
        assert limiter.begin() == 0.0
    assert limiter.begin() == FIRST_WAIT_S  # no result of the five was needed
    limiter.succeeded()
    assert limiter.begin() == 0.0 and limiter.failures == 1


def test_a_password_file_others_may_change_is_refused(tmp_path: Path) -> None:
    path = write_password_hash(tmp_path, hash_password("a long caregiver password", n=1 << 10))
    path.chmod(0o660)
    with pytest.raises(PasswordError, match=r"may be changed by others \(mode 0660\)"):
        read_password_hash(tmp_path)


def test_a_password_file_anyone_may_read_is_refused(tmp_path: Path) -> None:
    """Its scrypt hash lets anyone with an account on the pad guess at the password
    offline, at their own pace, past the login's rate limit (a copy restored 0644)."""
    path = write_password_hash(tmp_path, hash_password("a long caregiver password", n=1 << 10))
    path.chmod(0o644)
    with pytest.raises(PasswordError) as refused:
        read_password_hash(tmp_path)
    assert str(refused.value) == (
        f"the password file {path} may be read by anyone on this machine (mode 0644); "
        "set the password again with `nirpad web passwd` (it writes mode 0640)"
    )


def test_an_unreadable_password_file_says_to_set_it_as_the_nirpad_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_password_hash(tmp_path, hash_password("a long caregiver password", n=1 << 10))

    def refuse(self: Path, encoding: str) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(PasswordError, match=r"cannot be read by this user.*sudo -u nirpad"):
        read_password_hash(tmp_path)


def test_nirpad_web_passwd_refuses_bytes_that_are_not_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    piped = b"\xff\xfea long caregiver password\n".decode("utf-8", "surrogateescape")
    monkeypatch.setattr("sys.stdin", io.StringIO(piped))  # as Python reads a pipe
    assert main(["web", "passwd", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "nirpad: the password is not readable text (it must be UTF-8); "
        "the password was not changed\n"
    )
    assert not password_path(tmp_path).exists()


class EndlessInput(io.StringIO):
    """Input with no line end that never runs out (``< /dev/zero``), counting reads."""

    def __init__(self) -> None:
        super().__init__()
        self.read_chars = 0

    def isatty(self) -> bool:
        return False

    def readline(self, size: int | None = -1, /) -> str:
        if size is None or size < 0:
            raise MemoryError("read without a bound")
        self.read_chars += size
        return "\0" * size


def test_nirpad_web_passwd_reads_a_bounded_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endless = EndlessInput()
    monkeypatch.setattr("sys.stdin", endless)
    assert main(["web", "passwd", "--state-dir", str(tmp_path)]) == 2
    assert "at most 1024 characters; the password was not changed" in capsys.readouterr().err
    assert endless.read_chars == 1025
    assert not password_path(tmp_path).exists()


def test_nirpad_web_passwd_on_a_full_disk_keeps_the_old_password_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_password_hash(tmp_path, hash_password("the old caregiver password", n=1 << 10))
    before = old.read_text()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(passwords.os, "fsync", full)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long caregiver password\n"))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["web", "passwd", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"nirpad: cannot write the password file {old}: the disk is full; "
        "the password was not changed\n"
    )
    assert old.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [old.name]


def test_nirpad_web_passwd_names_a_state_directory_that_is_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    state_dir.write_text("a file")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long caregiver password\n"))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["web", "passwd", "--state-dir", str(state_dir)]) == 2  # before it asks
    assert capsys.readouterr().err == (
        f"nirpad: the state directory {state_dir} is not a folder: give the folder that "
        "holds the treatment record (--state-dir, $NIRPAD_STATE_DIR)\n"
    )
    assert state_dir.read_text() == "a file"


def test_the_password_file_takes_the_state_directorys_group(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root may give the directory any group: make it a foreign one
        os.chown(tmp_path, -1, 65534)
    path = write_password_hash(tmp_path, hash_password("a long caregiver password", n=1 << 10))
    assert path.stat().st_gid == tmp_path.stat().st_gid


def test_nirpad_web_passwd_as_root_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long caregiver password\n"))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert main(["web", "passwd", "--state-dir", str(tmp_path)]) == 0
    assert "run as root" in capsys.readouterr().err


def test_a_logged_out_session_is_never_stored_again() -> None:
    store = SessionStore(VirtualClock())
    caregiver = store.new(logged_in=True)  # an upload check is running with it
    store.drop(caregiver.token)  # a logout in another tab meanwhile
    store.keep(caregiver)  # the check ends and keeps "its" session
    assert store.get(caregiver.token) is None and len(store) == 0


def test_a_pushed_out_or_idle_session_is_never_stored_again() -> None:
    clock = VirtualClock()
    store = SessionStore(clock, idle_timeout_s=60.0, max_sessions=1)
    pushed_out = store.new()
    clock.advance(1.0)
    idle = store.new()
    clock.advance(61.0)
    assert store.get(idle.token) is None
    for session in (pushed_out, idle):
        store.keep(session)
        assert store.get(session.token) is None, session
    assert len(store) == 0


def test_a_token_this_page_did_not_make_is_treated_as_absent() -> None:
    store = SessionStore(VirtualClock())
    ours = store.anonymous(None, logged_in=False).token
    assert store.anonymous(ours, logged_in=False).token == ours
    other_page = SessionStore(VirtualClock()).anonymous(None, logged_in=False).token
    flipped = ("B" if ours[0] == "A" else "A") + ours[1:]
    for planted in ("A" * 43, other_page, flipped, ours + "A", ours[:-1], "é" * 64):
        assert store.anonymous(planted, logged_in=False).token not in (planted, ours), planted


def test_a_password_file_path_through_a_file_is_refused_in_plain_words(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "state"
    not_a_folder.write_text("a file where the state directory should be")
    with pytest.raises(PasswordError) as refused:
        read_password_hash(not_a_folder)
    assert str(refused.value) == (
        f"the password file {not_a_folder}/web-password cannot be read: Not a directory"
    )


def test_a_password_file_of_bytes_that_are_not_text_is_not_a_password_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "web-password").write_bytes(b"scrypt$\xff\xfe")
    os.chmod(tmp_path / "web-password", 0o640)
    with pytest.raises(PasswordError, match="is not a nirpad password file"):
        read_password_hash(tmp_path)


@pytest.mark.parametrize(
    "stored",
    [
        "scrypt$garbage",
        "scrypt$1024$8$1$abc",  # its hash cut off
        "scrypt$1024$99$1$c2FsdA$" + "A" * 43,  # a block size out of range
        f"scrypt${1 << 30}$8$1$c2FsdA$" + "A" * 43,  # a cost no login would finish
        "scrypt$1024$8$1$c2FsdA$" + "A" * 43 + "\nscrypt$1024$8$1$c2FsdA$" + "A" * 43,
    ],
)
def test_a_damaged_password_file_is_refused_at_start_not_at_every_login(
    tmp_path: Path, stored: str
) -> None:
    """No password would ever match it: the page started, and every login said "That
    password is not right" and counted towards the lock-out."""
    password_path(tmp_path).write_text(stored + "\n")
    os.chmod(password_path(tmp_path), 0o640)
    with pytest.raises(PasswordError) as refused:
        read_password_hash(tmp_path)
    assert "set the password again with `nirpad web passwd`" in str(refused.value)
