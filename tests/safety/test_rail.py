"""The LED power rail: off by default, cut and enable, file mirror, no silent mock fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero import Device, OutputDevice
from gpiozero.pins.mock import MockFactory

from safety.rail import MOCK_RAIL_PIN, FileRailLine, PowerRail, RailError, make_rail


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
    rail = PowerRail(device, on_change=seen.append)
    pin = mock_pin_factory.pin(17)
    assert pin.state is False
    rail.enable()
    assert pin.state is True
    rail.close()
    assert pin.state is False
    assert seen == [True, False]


def test_rail_file_mirrors_state_atomically(tmp_path: Path) -> None:
    rail_file = tmp_path / "rail"
    rail_file.write_text("1")  # a stale value from an earlier run must not count
    rail = make_rail(None, rail_file)
    assert rail_file.read_text() == "0"
    rail.enable()
    assert rail_file.read_text() == "1"
    rail.cut()
    assert rail_file.read_text() == "0"
    rail.close()
    assert [p.name for p in tmp_path.iterdir()] == ["rail"]  # no temporaries left


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

    def broken(enabled: bool) -> None:
        raise OSError("disk full")

    rail.add_listener(lambda enabled: None)
    rail._listeners.append(broken)
    with pytest.raises(RailError, match="disk full") as info:
        rail.cut()
    assert info.value.pin == MOCK_RAIL_PIN
    assert not rail.enabled
    rail._listeners.remove(broken)
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
    rail.close()


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
