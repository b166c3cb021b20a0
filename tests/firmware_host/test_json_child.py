"""JsonLinesChild: the one helper every JSON-line child process goes through."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from firmware_host.json_child import EventTimeout, JsonLinesChild

ECHO = (
    "import json, sys\n"
    "print('a log line, not JSON', flush=True)\n"
    "print(json.dumps([1, 2]), flush=True)\n"
    "print(json.dumps({'event': 'ready'}), flush=True)\n"
    "for line in sys.stdin:\n"
    "    cmd = json.loads(line)\n"
    "    if cmd.get('cmd') == 'quit':\n"
    "        sys.exit(0)\n"
    "    for i in range(cmd.get('n', 1)):\n"
    "        print(json.dumps({'event': 'echo', 'i': i}), flush=True)\n"
)


@contextmanager
def child(script: str = ECHO, **kwargs: object) -> Iterator[JsonLinesChild]:
    proc = JsonLinesChild([sys.executable, "-c", script], **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.close()


def test_only_json_objects_are_kept_in_order_and_passed_on() -> None:
    seen: list[dict[str, object]] = []
    with child(on_event=seen.append) as c:
        c.wait_for(lambda e: e.get("event") == "ready", 20)
        c.send({"cmd": "echo", "n": 3})
        c.wait_for(lambda e: e.get("i") == 2, 20)
        assert c.snapshot() == [{"event": "ready"}] + [{"event": "echo", "i": i} for i in range(3)]
        assert c.mark() == 4
    assert seen == c.snapshot()


def test_wait_for_after_a_mark_never_returns_an_earlier_event() -> None:
    with child() as c:
        c.send({"cmd": "echo", "n": 1})
        c.wait_for(lambda e: e.get("event") == "echo", 20)
        mark = c.mark()
        c.send({"cmd": "echo", "n": 2})
        index, event = c.wait_for_index(lambda e: e.get("event") == "echo", 20, after=mark)
        assert (index, event) == (mark, {"event": "echo", "i": 0})
        assert c.wait_for(lambda e: e.get("event") == "echo", 20, after=index + 1)["i"] == 1
        assert c.since(mark) == [{"event": "echo", "i": 0}, {"event": "echo", "i": 1}]


def test_keep_bounds_the_events_held_and_indices_stay_valid() -> None:
    with child(keep=10) as c:
        c.send({"cmd": "echo", "n": 50})
        c.wait_for(lambda e: e.get("i") == 49, 20)
        held = c.snapshot()
        assert 10 <= len(held) <= 20 and held[-1] == {"event": "echo", "i": 49}
        assert c.mark() == 51  # "ready" and 50 echoes, dropped ones included
        assert c.since(48) == [{"event": "echo", "i": 47}, {"event": "echo", "i": 48},
                               {"event": "echo", "i": 49}]  # fmt: skip
        assert c.wait_for(lambda e: e.get("event") == "echo", 20, after=0) == held[0]


def test_no_match_is_an_event_timeout_naming_the_last_events() -> None:
    with child() as c:
        c.wait_for(lambda e: e.get("event") == "ready", 20)
        with pytest.raises(EventTimeout, match=r"no matching event within 0\.2 s.*ready"):
            c.wait_for(lambda e: e.get("event") == "never", 0.2)


def test_a_child_whose_output_ended_fails_the_wait_at_once() -> None:
    with child('print(\'{"event": "bye"}\')') as c:
        with pytest.raises(EventTimeout, match="exit"):
            c.wait_for(lambda e: e.get("event") == "never", 600)
        assert c.snapshot() == [{"event": "bye"}]


def test_a_child_that_exits_on_its_own_is_reaped_without_close() -> None:
    """``nirpad run --sim`` holds its simulator for hours: one that died must not stay a
    zombie until the controller stops. ``returncode`` is set only by a wait."""
    with child('print(\'{"event": "bye"}\')') as c:
        deadline_s = time.monotonic() + 20.0
        while c.proc.returncode is None and time.monotonic() < deadline_s:
            time.sleep(0.01)
        assert c.proc.returncode == 0
        assert not Path(f"/proc/{c.pid}").exists()


def test_a_child_that_only_closed_its_output_is_left_running_until_close() -> None:
    with child("import os, time\nos.close(1)\ntime.sleep(60)") as c:
        with pytest.raises(EventTimeout):
            c.wait_for(lambda e: True, 20)
        assert c.proc.poll() is None
        assert c.close() == -signal.SIGTERM


def test_close_sends_the_quit_command_and_is_safe_twice() -> None:
    with child() as c:
        c.wait_for(lambda e: e.get("event") == "ready", 20)
        assert c.close(quit_command={"cmd": "quit"}) == 0
        assert c.close() == 0
        with pytest.raises(ValueError):
            c.send({"cmd": "echo"})  # stdin closed


@pytest.mark.slow
def test_close_terminates_a_child_that_ignores_quit_and_kills_one_that_ignores_sigterm() -> None:
    stubborn = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        'print(\'{"event": "ready"}\', flush=True)\n'
        "while True: time.sleep(1)\n"
    )
    with child(stubborn) as c:
        c.wait_for(lambda e: e.get("event") == "ready", 20)
        assert c.close(quit_command={"cmd": "quit"}, timeout_s=0.3) == -signal.SIGKILL
    with child() as c:
        assert c.close() == -signal.SIGTERM


def test_kill_is_a_power_cut() -> None:
    with child() as c:
        c.wait_for(lambda e: e.get("event") == "ready", 20)
        c.kill()
        assert c.proc.returncode == -signal.SIGKILL
        c.kill()  # already dead: no error
