"""The LED power rail: off by default, cut and enable, the heartbeat line, the file mirror
(enable and heartbeat count), listener failures, no silent mock fallback."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from gpiozero import Device, OutputDevice
from gpiozero.exc import GPIOZeroError
from gpiozero.pins.mock import MockFactory

from safety.interlock import DEFAULT_LEASE_MS
from safety.limits import HARD
from safety.rail import (
    MOCK_HEARTBEAT_PIN,
    MOCK_RAIL_PIN,
    RAIL_HOLD_S,
    FileRailLine,
    PowerRail,
    RailError,
    make_rail,
)

from .conftest import FailingMirror


def test_mock_rail_starts_off_and_follows_enable_and_cut() -> None:
    seen: list[bool] = []
    rail = make_rail(None, None)
    rail.add_listener(seen.append)
    assert not rail.enabled
    rail.enable()
    assert rail.enabled
    rail.cut()
    assert not rail.enabled
    assert seen == [False, True, False]
    assert rail.pin_name == MOCK_RAIL_PIN
    rail.close()


def test_on_change_is_called_and_the_pin_level_is_real(mock_pin_factory: MockFactory) -> None:
    seen: list[bool] = []
    device = OutputDevice(17, active_high=True, initial_value=False)
    heartbeat = OutputDevice(18, active_high=True, initial_value=False)
    rail = PowerRail(device, heartbeat, on_change=seen.append)
    pin, beat = mock_pin_factory.pin(17), mock_pin_factory.pin(18)
    assert pin.state is False and beat.state is False
    rail.enable()
    assert pin.state is True and beat.state is True  # enable gives one heartbeat at once
    rail.close()
    assert pin.state is False
    assert seen == [True, False]
    assert (rail.pin_name, rail.heartbeat_pin_name) == ("GPIO17", "GPIO18")


def test_rail_file_mirrors_enable_and_heartbeat_count_atomically(tmp_path: Path) -> None:
    rail_file = tmp_path / "rail"
    rail_file.write_text("1 57\n")  # a stale value from an earlier run must not count
    rail = make_rail(None, rail_file)
    assert rail_file.read_text() == "0 0\n"
    rail.enable()
    assert rail_file.read_text() == "1 1\n"  # enable's own heartbeat
    rail.heartbeat()
    rail.heartbeat()
    assert rail_file.read_text() == "1 3\n"
    rail.cut()
    assert rail_file.read_text() == "0 3\n"
    rail.heartbeat()  # cut: no toggle, no count, no write
    assert rail_file.read_text() == "0 3\n"
    rail.close()
    assert [p.name for p in tmp_path.iterdir()] == ["rail"]  # no temporaries left


def test_only_enable_changes_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr("safety.rail.os.fsync", synced.append)
    rail = make_rail(None, tmp_path / "rail")
    rail.enable()
    before = len(synced)
    for _ in range(50):  # one second of ticks
        rail.heartbeat()
    assert len(synced) == before == 2  # "0 0" at creation, then the enable
    assert (tmp_path / "rail").read_text() == "1 51\n"
    rail.close()


def test_a_heartbeat_is_one_write_in_place_and_an_enable_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rail_file = tmp_path / "rail"
    rail = make_rail(None, rail_file)
    rail.enable()
    inode = rail_file.stat().st_ino
    writes: list[bytes] = []
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        writes.append(data)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr("safety.rail.os.pwrite", pwrite)
    for _ in range(9):
        rail.heartbeat()
    assert writes == [b"1 %d\n" % n for n in range(2, 11)]
    assert rail_file.stat().st_ino == inode and rail_file.read_text() == "1 10\n"
    rail.cut()  # a new file, atomically: a reader never sees a half-written cut
    assert rail_file.stat().st_ino != inode and rail_file.read_text() == "0 10\n"
    rail.enable()
    rail.heartbeat()  # into the new file
    assert rail_file.read_text() == "1 12\n"
    rail.close()
    assert rail_file.read_text() == "0 12\n"


def test_heartbeat_toggles_the_line_only_while_enabled(mock_pin_factory: MockFactory) -> None:
    counts: list[int] = []
    rail = make_rail(None, None, pin_factory=mock_pin_factory)
    rail.add_heartbeat_listener(counts.append)
    beat = mock_pin_factory.pin(MOCK_HEARTBEAT_PIN)
    rail.heartbeat()
    assert beat.state is False and counts == [] and rail.heartbeats == 0  # cut: silent
    rail.enable()
    levels = [beat.state]
    for _ in range(3):
        rail.heartbeat()
        levels.append(beat.state)
    assert levels == [True, False, True, False]
    assert counts == [1, 2, 3, 4] and rail.heartbeats == 4
    rail.cut()
    rail.heartbeat()
    assert beat.state is False and counts == [1, 2, 3, 4]
    rail.close()


def test_a_failing_heartbeat_listener_is_raised_after_the_toggle() -> None:
    rail = make_rail(None, None)
    rail.enable()

    mirror = FailingMirror()
    rail.add_heartbeat_listener(mirror)
    mirror.failing = True
    with pytest.raises(RailError, match="disk full") as info:
        rail.heartbeat()
    assert info.value.pin == MOCK_HEARTBEAT_PIN
    assert rail.heartbeats == 2 and rail.enabled
    mirror.failing = False
    rail.close()


def test_enable_is_undone_when_its_heartbeat_fails() -> None:
    seen: list[bool] = []
    rail = make_rail(None, None)
    rail.add_listener(seen.append)

    def broken(count: int) -> None:
        raise OSError("read-only file system")

    rail.add_heartbeat_listener(broken)
    with pytest.raises(RailError, match="read-only"):
        rail.enable()
    assert not rail.enabled and seen == [False, False]
    rail.close()


def test_a_heartbeat_line_that_cannot_toggle_is_a_rail_error() -> None:
    pins = MockFactory()
    rail = make_rail(None, None, pins)
    rail.enable()
    line = pins.pin(MOCK_HEARTBEAT_PIN)
    line.function = "input"  # the line was taken over as an input: it cannot be driven
    with pytest.raises(RailError, match="cannot set state of pin GPIO19"):
        rail.heartbeat()
    line.function = "output"
    rail.close()
    pins.close()


def test_the_log_names_what_the_rail_really_drives(
    tmp_path: Path, mock_pin_factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="safety.rail")
    for rail in (
        make_rail(None, tmp_path / "rail"),
        make_rail(None, None),
        make_rail(21, None, pin_factory=mock_pin_factory),
    ):
        rail.enable()
        rail.close()
    enabled = [r.getMessage() for r in caplog.records if "enabled" in r.getMessage()]
    assert enabled == [
        f"LED power rail enabled (rail file {tmp_path / 'rail'}; mock pins GPIO26, GPIO19: "
        "no hardware)",
        "LED power rail enabled (mock pins GPIO26, GPIO19: no hardware)",
        "LED power rail enabled (enable GPIO21, heartbeat GPIO19)",
    ]


def test_the_hold_time_lies_between_the_lease_and_the_lease_maximum() -> None:
    assert DEFAULT_LEASE_MS / 1000 < RAIL_HOLD_S < HARD.lease_max_ms / 1000


def test_file_line_cleans_up_its_temporary_when_replace_fails(tmp_path: Path) -> None:
    target = tmp_path / "a_directory"
    target.mkdir()
    (target / "x").write_text("keep")  # os.replace onto a non-empty directory fails
    with pytest.raises(OSError):
        FileRailLine(target)(True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_directory"]


def test_a_failing_listener_does_not_stop_a_cut_but_is_reported() -> None:
    rail = make_rail(None, None)
    rail.enable()

    mirror = FailingMirror()
    rail.add_listener(lambda enabled: None)
    rail.add_listener(mirror)
    mirror.failing = True
    with pytest.raises(RailError, match="disk full") as info:
        rail.cut()
    assert info.value.pin == MOCK_RAIL_PIN
    assert not rail.enabled
    mirror.failing = False
    rail.close()


def test_enable_is_undone_when_a_listener_fails() -> None:
    calls: list[bool] = []

    def fails_on_enable(enabled: bool) -> None:
        calls.append(enabled)
        if enabled:
            raise OSError("read-only file system")

    rail = make_rail(None, None)
    rail.add_listener(fails_on_enable)
    with pytest.raises(RailError, match="read-only"):
        rail.enable()
    assert not rail.enabled
    assert calls == [False, True, False]
    rail.close()


def test_mock_rail_on_a_given_factory_leaves_the_factory_open(
    mock_pin_factory: MockFactory,
) -> None:
    rail = make_rail(None, None, pin_factory=mock_pin_factory)
    rail.enable()
    assert mock_pin_factory.pin(MOCK_RAIL_PIN).state is True
    rail.close()
    assert mock_pin_factory.pin(MOCK_RAIL_PIN).state is False


def test_real_pin_with_an_explicit_factory(mock_pin_factory: MockFactory) -> None:
    rail = make_rail(21, None, pin_factory=mock_pin_factory)
    rail.enable()
    assert mock_pin_factory.pin(21).state is True
    assert mock_pin_factory.pin(19).state is True  # the heartbeat line, toggled once
    rail.close()


def test_the_heartbeat_needs_its_own_line(mock_pin_factory: MockFactory) -> None:
    with pytest.raises(RailError, match="in use"):
        make_rail(19, None, pin_factory=mock_pin_factory)
    rail = make_rail(19, None, pin_factory=mock_pin_factory, heartbeat_pin=20)
    rail.close()  # the refused attempt released the enable line


def test_a_mock_rail_whose_heartbeat_pin_fails_releases_its_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(MockFactory, "close", lambda self: closed.append(True))
    real_open = OutputDevice.__init__

    def refuse_gpio19(self: OutputDevice, pin: object, **kwargs: object) -> None:
        if pin == MOCK_HEARTBEAT_PIN:
            raise GPIOZeroError("no such pin")
        real_open(self, pin, **kwargs)

    monkeypatch.setattr(OutputDevice, "__init__", refuse_gpio19)
    with pytest.raises(RailError, match="GPIO19"):
        make_rail(None, None)
    assert closed == [True]


def test_real_pin_never_falls_back_to_a_mock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(RailError, match="pin 26") as info:
        make_rail(26, None)  # no GPIO library on a CI machine: must raise, not mock
    assert info.value.pin == "26"
    assert Device.pin_factory is None or not isinstance(Device.pin_factory, MockFactory)


def test_real_pin_refuses_a_default_factory_that_is_a_mock() -> None:
    with pytest.raises(RailError, match="mock"):
        make_rail(26, None)  # the fixture made the default factory a MockFactory


def test_invalid_pin_is_an_error_with_context(mock_pin_factory: MockFactory) -> None:
    with pytest.raises(RailError, match="GPIO99"):
        make_rail("GPIO99", None, pin_factory=mock_pin_factory)
