"""What the people see: no pyserial or errno text, no sentence said twice, no hint to
acknowledge a fault that acknowledging cannot clear, no ``Elapsed`` when nothing runs,
and times in local time to the second."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from firmware_host.cli import format_status, local_time
from firmware_host.machine import State as S
from firmware_host.plain_text import PORT_TROUBLE, plain
from firmware_host.session import RESTART_FAULTS
from safety.core import NEEDS_RESTART
from safety.core_events import FaultLatched
from safety.faults import FaultCode

from .conftest import ControllerFactory, FakeCore

VANISHED = (
    "The pad is disconnected. (device reports readiness to read but returned no data "
    "(device disconnected or multiple access on port?))"
)
READ_FAILED = (  # the pty of `nirpad run --sim` gone: a plain word before the details
    "The pad is disconnected. (read failed: device reports readiness to read but returned "
    "no data (device disconnected?) (port=/dev/pts/1, code=disconnected))"
)
NO_PORT = (
    "The pad is disconnected. (cannot open port NO_SUCH_PORT: [Errno 2] No such file or "
    "directory: 'NO_SUCH_PORT' (port=NO_SUCH_PORT, code=open_failed))"
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (VANISHED, f"The pad is disconnected. {PORT_TROUBLE}"),
        (NO_PORT, f"The pad is disconnected. {PORT_TROUBLE}"),
        ("The pad is disconnected. ([Errno 5] Input/output error)",
         f"The pad is disconnected. {PORT_TROUBLE}"),
        ("The treatment record cannot be opened: The treatment record cannot be opened "
         "(missing folder or no permission).",
         "The treatment record cannot be opened (missing folder or no permission)."),
        ("The pad is disconnected. The pad is disconnected.", "The pad is disconnected."),
        ("The skin is 43.2 °C (limit 43.0 °C).", "The skin is 43.2 °C (limit 43.0 °C)."),
        ("cannot start: a session is already running",
         "cannot start: a session is already running"),
        (READ_FAILED, f"The pad is disconnected. {PORT_TROUBLE}"),
        ("Stopped (the pad (810 nm) was (briefly) unplugged).",
         "Stopped (the pad (810 nm) was (briefly) unplugged)."),
    ],
    ids=["vanished-port", "no-port", "errno", "wrapped-twice", "said-twice", "plain", "short",
         "read-failed-nested", "nested-plain"],
)  # fmt: skip
def test_plain_drops_technical_text_and_repeats(text: str, shown: str) -> None:
    assert plain(text) == shown


def test_plain_keeps_nothing_as_nothing() -> None:
    assert plain(None) is None and plain("") == ""


def test_the_restart_faults_are_the_ones_the_safety_core_will_not_acknowledge() -> None:
    assert {str(code) for code in NEEDS_RESTART} == RESTART_FAULTS


def test_a_vanished_port_reads_plainly_in_status_and_start(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    core.latch(FaultCode.BOARD_DISCONNECTED, VANISHED)
    controller.handle_safety_events([FaultLatched(FaultCode.BOARD_DISCONNECTED, VANISHED)])
    assert controller.state is S.FAULT
    status = controller.status()
    reply = controller.command("start")
    shown = [status["fault"]["message"], status["state_reason"], status["start_refusal"]]
    for text in [*shown, reply.message]:
        assert "readiness" not in text and "Errno" not in text and "port?" not in text
    assert status["fault"]["message"] == f"The pad is disconnected. {PORT_TROUBLE}"
    assert "hold the button 2 s to acknowledge" not in reply.message
    assert "restart nirpad" in reply.message
    assert "restart nirpad" in status["start_refusal"]


def test_a_fault_that_can_be_acknowledged_still_says_how(
    make_controller: ControllerFactory, core: FakeCore
) -> None:
    controller = make_controller()
    core.latch(FaultCode.SKIN_OVERTEMP, "too warm")
    controller.handle_safety_events([FaultLatched(FaultCode.SKIN_OVERTEMP, "too warm")])
    reply = controller.command("start")
    assert "hold the button 2 s to acknowledge" in reply.message
    assert "restart nirpad" not in reply.message


def test_elapsed_is_shown_only_while_a_session_runs() -> None:
    idle = format_status({"state": "ready", "elapsed_s": 0.0, "remaining_s": 0.0})
    assert "Elapsed" not in idle and "Remaining" not in idle
    running = format_status({"state": "treating", "elapsed_s": 75.0, "remaining_s": 60.0})
    assert "Elapsed:" in running and "1:15" in running and "Remaining:" in running


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def test_times_are_local_and_to_the_second(berlin: None) -> None:
    iso = "2026-11-24T19:00:00.123456+00:00"
    assert local_time(iso) == "2026-11-24 20:00:00 CET"
    line = format_status({"state": "ready", "next_start_allowed_at": iso})
    assert "2026-11-24 20:00:00 CET" in line and ".123456" not in line and "+00:00" not in line
    assert local_time("not a time") == "not a time"
