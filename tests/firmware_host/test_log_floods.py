"""No log floods, for the whole stack (core, controller, loop) on the in-process simulator.

Each test holds a lasting condition for a minute of virtual time and counts every log
record of that minute, at every level: a handful at most, where the old code wrote one
line per telemetry frame (50 a second) or two per tick.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.protocol import FrameDecoder, Message, Telemetry, encode_frame
from firmware_host.cli import format_status
from firmware_host.machine import State
from hil.rigs.harness import InProcessRig

MINUTE_S = 60.0
HANDFUL = 6


class _RewritingPort:
    """Re-encodes every frame the board sends, through ``rewrite`` and in ``version``."""

    def __init__(self, inner: Any, rewrite: Callable[[Message], Message], version: int = 1) -> None:
        self.inner, self.rewrite, self.version = inner, rewrite, version
        self._decoder = FrameDecoder()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self, size: int = 1) -> bytes:
        frames = self._decoder.feed(self.inner.read(size))
        return b"".join(encode_frame(self.rewrite(f.message), f.seq, self.version) for f in frames)


def _build(tmp_path: Path, rewrite: Callable[[Message], Message], version: int = 1) -> InProcessRig:
    def wrap(port: Any) -> Any:
        return _RewritingPort(port, rewrite, version)

    return InProcessRig.build(tmp_path / "state", wrap_port=wrap)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[InProcessRig]:
    the_rig = InProcessRig.build(tmp_path / "state")
    try:
        yield the_rig
    finally:
        the_rig.close()


def _a_minute(rig: InProcessRig, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    rig.run(MINUTE_S)
    return [record.getMessage() for record in caplog.records]


@pytest.mark.slow
def test_a_minute_in_fault_while_the_board_reports_its_own_fault(
    rig: InProcessRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.boot()
    rig.start()
    rig.run(2.0)
    rig.inject("ntc_open", sensor="skin_b")
    rig.run(0.5)
    rig.board.clear_injections()  # the sensor is back; the board's own latch is not
    rig.run(0.5)
    assert rig.in_state(State.FAULT)
    assert "sensor_fault" in str(rig.truth()["faults"])
    lines = _a_minute(rig, caplog)
    assert len(lines) <= HANDFUL, lines
    assert rig.status()["fault_also_seen"]["board_fault"] >= 0.9 * MINUTE_S / 0.02


@pytest.mark.slow
def test_a_minute_with_a_board_of_another_protocol_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = _build(tmp_path, lambda message: message, version=2)
    try:
        rig.boot(expect=State.FAULT)
        lines = _a_minute(rig, caplog)
        status = rig.status()
    finally:
        rig.close()
    assert len(lines) <= HANDFUL, lines
    assert status["fault"]["code"] == "protocol_version"
    assert status["link"]["version_errors"] >= 0.9 * MINUTE_S / 0.02
    assert "link_errors" in [w["code"] for w in status["warnings"]]


def _skin_at_the_warning_level(message: Message) -> Message:
    """Skin readings either side of the 40 °C warning level, frame after frame."""
    if not isinstance(message, Telemetry):
        return message
    skin_c = 40.01 if message.uptime_ms // 20 % 2 else 39.99
    return dataclasses.replace(message, skin_a_c=skin_c, skin_b_c=skin_c)


@pytest.mark.slow
def test_a_minute_of_a_warning_that_comes_and_goes_every_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = _build(tmp_path, _skin_at_the_warning_level)
    try:
        rig.boot()
        lines = _a_minute(rig, caplog)
    finally:
        rig.close()
    assert len(lines) <= HANDFUL, lines
    assert any("skin_temp_warn" in line for line in lines)


def test_the_human_status_shows_the_link_and_the_warnings(tmp_path: Path) -> None:
    rig = _build(tmp_path, lambda message: message, version=2)
    try:
        rig.boot(expect=State.FAULT)
        rig.run(2.0)
        text = format_status(rig.status())
    finally:
        rig.close()
    link_line = next(line for line in text.splitlines() if line.startswith("Link:"))
    assert "0 frames" in link_line and " dropped (" in link_line and "NAKs: none" in link_line
    warnings_line = next(line for line in text.splitlines() if line.startswith("Warnings:"))
    assert "(link_errors)" in warnings_line
    assert "Also seen:" in text and "telemetry_stale" in text


def test_a_flood_of_refused_commands_logs_a_line_per_kind(
    rig: InProcessRig, caplog: pytest.LogCaptureFixture
) -> None:
    """A script that repeats commands the controller refuses (hundreds a second, over
    the control socket) gets each refusal in its reply, and the log a line per kind."""
    rig.boot()
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    refusals = 0
    for _ in range(200):  # 2 s of virtual time, 500 commands a second
        for name in ("pause", "resume", "stop", "ack", "press_long"):
            refusals += not rig.command(name).ok
        rig.run(0.01)
    lines = [record.getMessage() for record in caplog.records]
    assert refusals == 1000
    assert rig.in_state(State.READY) and not rig.outputs_on()
    assert len(lines) <= HANDFUL, lines
