"""The control socket: permissions, peer credentials, JSON lines, commands on the loop."""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from firmware_host import control
from firmware_host.control import (
    ControlServer,
    ControlServerError,
    PeerCredentials,
    peer_allowed,
)
from firmware_host.control_client import ControlClientError, ControlReply, send

T = TypeVar("T")


@dataclass
class FakeController:
    """Records which thread ran each call, refuses what ``refusals`` names."""

    refusals: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    status_data: dict[str, Any] = field(default_factory=lambda: {"state": "ready"})

    def command(self, name: str, args: dict[str, Any] | None = None) -> ControlReply:
        self.calls.append((name, threading.current_thread().name))
        if name in self.refusals:
            return ControlReply(False, 3, self.refusals[name])
        return ControlReply(True, 0, f"{name} accepted")

    def status(self) -> dict[str, Any]:
        self.calls.append(("status", threading.current_thread().name))
        return self.status_data


class ThreadLoop:
    """Stands in for EventLoop.call_soon_threadsafe: runs callables on one 'loop' thread."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loop")

    def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
        return self.pool.submit(fn)


@pytest.fixture
def loop() -> Iterator[ThreadLoop]:
    fake = ThreadLoop()
    try:
        yield fake
    finally:
        fake.pool.shutdown(wait=True)


@pytest.fixture
def controller() -> FakeController:
    return FakeController(refusals={"pause": "nothing to pause: no session is running"})


@pytest.fixture
def server(tmp_path: Path, controller: FakeController, loop: ThreadLoop) -> Iterator[ControlServer]:
    srv = ControlServer(tmp_path, controller, loop)
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_socket_is_mode_0660_whatever_the_umask(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop, umask: int
) -> None:
    old = os.umask(umask)
    srv = ControlServer(tmp_path, controller, loop)
    try:
        srv.start()
        st = os.lstat(tmp_path / "control.sock")
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert [p.name for p in tmp_path.iterdir()] == ["control.sock"]  # no temp name left
    finally:
        os.umask(old)
        srv.close()
    assert not (tmp_path / "control.sock").exists()


def test_status_and_commands_run_on_the_loop_thread(
    server: ControlServer, controller: FakeController, tmp_path: Path
) -> None:
    reply = send(tmp_path, {"cmd": "status"})
    assert reply == {"ok": True, "exit_code": 0, "message": "", "data": {"state": "ready"}}
    assert send(tmp_path, {"cmd": "start"}) == {
        "ok": True,
        "exit_code": 0,
        "message": "start accepted",
        "data": None,
    }
    assert [name for name, _ in controller.calls] == ["status", "start"]
    assert all(thread.startswith("loop") for _, thread in controller.calls)


def test_refusal_carries_reason_and_exit_code(server: ControlServer, tmp_path: Path) -> None:
    reply = send(tmp_path, {"cmd": "pause"})
    assert reply is not None
    assert (reply["ok"], reply["exit_code"]) == (False, 3)
    assert "no session is running" in reply["message"]


@pytest.mark.parametrize("request_", [{"cmd": "reboot"}, {"cmd": "press_long"}, {"cmd": None}, {}])
def test_unknown_commands_are_usage_errors(
    server: ControlServer, controller: FakeController, tmp_path: Path, request_: dict[str, Any]
) -> None:
    reply = send(tmp_path, request_)
    assert reply is not None and reply["exit_code"] == 2 and not reply["ok"]
    assert controller.calls == []


def test_garbage_request_gets_an_answer_and_server_survives(
    server: ControlServer, tmp_path: Path
) -> None:
    for garbage in (b"not json\n", b"[1, 2]\n", b"\n"):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(tmp_path / "control.sock"))
            sock.sendall(garbage)
            answer = sock.makefile("rb").readline()
        assert b'"exit_code": 2' in answer
    assert send(tmp_path, {"cmd": "status"}) is not None


def test_foreign_uid_is_refused(
    server: ControlServer,
    controller: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    foreign = PeerCredentials(pid=1, uid=os.geteuid() + 4242, gid=os.getegid() + 4242)
    monkeypatch.setattr(control, "peer_credentials", lambda conn: foreign)
    monkeypatch.setattr(control, "peer_groups", lambda cred: frozenset({12345}))
    reply = send(tmp_path, {"cmd": "start"})
    assert reply is not None
    assert (reply["ok"], reply["exit_code"]) == (False, 3)
    assert str(foreign.uid) in reply["message"]
    assert controller.calls == []


@pytest.mark.parametrize("how", ["primary", "supplementary"])
def test_member_of_socket_group_is_allowed(
    server: ControlServer,
    controller: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    sock_gid = os.stat(tmp_path / "control.sock").st_gid
    gid = sock_gid if how == "primary" else sock_gid + 4242
    foreign = PeerCredentials(pid=1, uid=os.geteuid() + 4242, gid=gid)
    monkeypatch.setattr(control, "peer_credentials", lambda conn: foreign)
    monkeypatch.setattr(control, "peer_groups", lambda cred: frozenset({sock_gid}))
    reply = send(tmp_path, {"cmd": "start"})
    assert reply is not None and reply["ok"]
    assert [name for name, _ in controller.calls] == ["start"]


def test_peer_allowed_rules() -> None:
    me = os.geteuid()
    other = me + 1000
    assert peer_allowed(PeerCredentials(1, 0, 999), socket_gid=50, own_uid=me)  # root
    assert peer_allowed(PeerCredentials(1, me, 999), socket_gid=50, own_uid=me)
    assert peer_allowed(PeerCredentials(1, other, 50), socket_gid=50, own_uid=me)
    # pid 0 has no /proc entry: no supplementary groups, so refused.
    assert not peer_allowed(PeerCredentials(0, other, 999), socket_gid=50, own_uid=me)


def test_real_peer_credentials_are_ours(server: ControlServer, tmp_path: Path) -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        cred = control.peer_credentials(a)
    assert (cred.pid, cred.uid, cred.gid) == (os.getpid(), os.geteuid(), os.getegid())
    assert os.getegid() in control.peer_groups(cred) or cred.gid == os.getegid()


def test_no_controller_means_none(tmp_path: Path) -> None:
    assert send(tmp_path, {"cmd": "status"}) is None
    assert send(tmp_path / "missing-dir", {"cmd": "status"}) is None


def test_stale_socket_is_replaced(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(tmp_path / "control.sock"))
    assert send(tmp_path, {"cmd": "status"}) is None  # refused: nobody listens
    srv = ControlServer(tmp_path, controller, loop)
    srv.start()
    try:
        assert send(tmp_path, {"cmd": "status"}) is not None
    finally:
        srv.close()


def test_second_controller_on_same_state_dir_is_refused(
    server: ControlServer, tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    second = ControlServer(tmp_path, controller, loop)
    with pytest.raises(ControlServerError, match="already running"):
        second.start()
    second.close()
    assert send(tmp_path, {"cmd": "status"}) is not None  # the first one still serves


def test_regular_file_in_the_way_is_refused(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    (tmp_path / "control.sock").write_text("x")
    srv = ControlServer(tmp_path, controller, loop)
    with pytest.raises(ControlServerError, match="not a socket"):
        srv.start()
    srv.close()


def test_hung_loop_gives_an_error_reply(tmp_path: Path, controller: FakeController) -> None:
    class HungLoop:
        def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
            return Future()  # never completes

    srv = ControlServer(tmp_path, controller, HungLoop(), answer_timeout_s=0.05)
    srv.start()
    try:
        reply = send(tmp_path, {"cmd": "start"})
    finally:
        srv.close()
    assert reply is not None and reply["exit_code"] == 1
    assert "did not answer" in reply["message"]


def test_controller_exception_becomes_an_error_reply(
    server: ControlServer,
    controller: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(controller, "status", broken)
    reply = send(tmp_path, {"cmd": "status"})
    assert reply is not None and reply["exit_code"] == 1 and "boom" in reply["message"]


def test_install_validates_off_the_loop_and_hops_on_only_for_quick_steps(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    seen: list[tuple[str, str, str]] = []
    hops: list[str] = []

    def installer(name: str, data: str, on_loop: control.OnLoop) -> ControlReply:
        seen.append((name, data, threading.current_thread().name))
        hops.append(on_loop(lambda: threading.current_thread().name))
        hops.append(on_loop(lambda: threading.current_thread().name, even_late=True))
        return ControlReply(True, 0, "installed")

    srv = ControlServer(tmp_path, controller, loop, installer=installer)
    srv.start()
    try:
        ok = send(tmp_path, {"cmd": "install", "name": "rx.toml", "data": "id = 'x'\n"})
        bad = send(tmp_path, {"cmd": "install", "name": "rx.toml"})
    finally:
        srv.close()
    assert ok is not None and ok["ok"] and ok["message"] == "installed"
    assert bad is not None and bad["exit_code"] == 2
    assert len(seen) == 1 and seen[0][:2] == ("rx.toml", "id = 'x'\n")
    assert seen[0][2] == "nirpad-control-client"  # the connection's thread, not the loop's
    assert [h[:4] for h in hops] == ["loop", "loop"]


def test_install_without_installer_is_an_error(server: ControlServer, tmp_path: Path) -> None:
    reply = send(tmp_path, {"cmd": "install", "name": "a.toml", "data": ""})
    assert reply is not None and reply["exit_code"] == 1


def test_permission_denied_is_a_client_error(
    server: ControlServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user outside the socket's group gets EACCES from connect(). Tests run as root,
    which ignores file modes, so the kernel's answer is injected at the connect call."""
    real_socket = socket.socket

    class DeniedSocket(real_socket):  # type: ignore[misc,valid-type]
        def connect(self, address: Any) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("firmware_host.control_client.socket.socket", DeniedSocket)
    with pytest.raises(ControlClientError, match="permission denied"):
        send(tmp_path, {"cmd": "status"})


def test_silent_server_is_a_client_timeout(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(str(tmp_path / "control.sock"))
        mute.listen(1)
        with pytest.raises(ControlClientError, match="did not answer"):
            send(tmp_path, {"cmd": "status"}, timeout_s=0.05)


def test_dates_and_tuples_are_encoded(
    server: ControlServer, controller: FakeController, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    controller.status_data = {"next": datetime(2025, 1, 2, 3, 4, tzinfo=UTC), "t": (1, 2)}
    reply = send(tmp_path, {"cmd": "status"})
    assert reply is not None
    assert reply["data"] == {"next": "2025-01-02T03:04:00+00:00", "t": [1, 2]}


def test_close_does_not_wait_for_a_stopped_loop(tmp_path: Path, controller: FakeController) -> None:
    posted = threading.Event()

    class StoppedLoop:
        def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
            posted.set()
            return Future()  # the loop has exited: nobody will ever run it

    srv = ControlServer(tmp_path, controller, StoppedLoop(), answer_timeout_s=60.0)
    srv.start()
    replies: list[dict[str, Any] | None] = []
    client = threading.Thread(target=lambda: replies.append(send(tmp_path, {"cmd": "stop"}, 60)))
    client.start()
    try:
        assert posted.wait(10)
    finally:
        srv.close()  # must cancel the pending call rather than wait 60 s
        client.join(10)
    assert not client.is_alive()
    assert replies and replies[0] is not None and replies[0]["exit_code"] == 1
    assert controller.calls == []


def test_profile_install_on_the_cli_goes_through_a_running_controller(
    tmp_path: Path,
    controller: FakeController,
    loop: ThreadLoop,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a controller running, `nirpad profile install` hands the file to it, so it
    validates with its own configuration and reloads; the CLI prints its answer."""
    import argparse

    from firmware_host.profile_commands import cmd_install

    seen: list[str] = []

    def installer(name: str, data: str, on_loop: control.OnLoop) -> ControlReply:
        seen.append(data)
        return ControlReply(False, 2, f"{name} was refused", {"problems": ["id: bad (line 1)"]})

    rx = tmp_path / "rx.toml"
    rx.write_text("id = 'x'\n")
    srv = ControlServer(tmp_path, controller, loop, installer=installer)
    srv.start()
    try:
        args = argparse.Namespace(file=str(rx), state_dir=str(tmp_path), site_config=None)
        code = cmd_install(args)
    finally:
        srv.close()
    assert seen == ["id = 'x'\n"]
    assert code == 2
    err = capsys.readouterr().err
    assert "id: bad (line 1)" in err and "was refused" in err
    assert not (tmp_path / "prescription.toml").exists()  # the controller decides, not the CLI


def test_groups_come_from_the_group_database_when_proc_hides_the_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ProtectProc=invisible another user's /proc/<pid> is hidden: a caregiver
    added to the group with usermod -aG must still be let in."""
    seen: list[tuple[str, int]] = []

    def grouplist(name: str, gid: int) -> list[int]:
        seen.append((name, gid))
        return [gid, 4242]

    monkeypatch.setattr(control.os, "getgrouplist", grouplist)
    cred = PeerCredentials(pid=999_999, uid=0, gid=7)
    groups = control.peer_groups(cred, proc=tmp_path)  # an empty /proc: nothing visible
    assert groups == frozenset({7, 4242})
    assert seen == [("root", 7)]
    assert peer_allowed(PeerCredentials(999_999, 12_345, 7), socket_gid=4242, own_uid=1) is False


def test_a_user_unknown_to_the_group_database_has_no_groups(tmp_path: Path) -> None:
    cred = PeerCredentials(pid=999_999, uid=2_000_000_000, gid=7)
    assert control.peer_groups(cred, proc=tmp_path) == frozenset()


def test_groups_are_read_from_proc_when_visible(tmp_path: Path) -> None:
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "status").write_text("Name:\tx\nGroups:\t20 4242 \nUid:\t1\n")
    assert control.peer_groups(PeerCredentials(5, 12_345, 7), proc=tmp_path) == {20, 4242}


@pytest.mark.timeout(30)
def test_a_failing_accept_neither_spins_nor_floods_the_log(
    tmp_path: Path,
    controller: FakeController,
    loop: ThreadLoop,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Out of file descriptors (EMFILE), the waiting connection stays queued and the
    listener stays readable: the accept thread must back off, not retry and log in a
    tight loop, and it serves again once accept works."""
    srv = ControlServer(tmp_path, controller, loop)
    srv.start()
    real_accept = socket.socket.accept
    tries: list[float] = []

    def out_of_fds(self: socket.socket) -> tuple[socket.socket, Any]:
        tries.append(time.monotonic())
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    caplog.set_level("WARNING", logger="firmware_host.control")
    try:
        monkeypatch.setattr(socket.socket, "accept", out_of_fds)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as waiting:
            waiting.connect(str(tmp_path / "control.sock"))  # queued: the listener is readable
            time.sleep(1.0)
            monkeypatch.setattr(socket.socket, "accept", real_accept)
            reply = send(tmp_path, {"cmd": "status"}, timeout_s=10.0)
    finally:
        monkeypatch.setattr(socket.socket, "accept", real_accept)
        srv.close()
    warnings = [r for r in caplog.records if "accept failed" in r.getMessage()]
    assert len(tries) <= 20, f"{len(tries)} accept attempts in a second"
    assert 1 <= len(warnings) <= 2
    assert reply is not None and reply["ok"]
