"""The LED power rail: the second, independent way to turn the light off.

Owns: the one GPIO line (a gpiozero ``OutputDevice``, active high, off at start) that
enables the LED power rail on the driver board, and, optionally, a file that mirrors
its state for a simulator running as a separate process. Does not own *when* the rail
is cut (``safety.interlock`` and ``safety.core`` decide) nor the serial OFF command.

How each kind of run gets the rail:

* Real board: ``make_rail(pin=26, rail_file=None)``. gpiozero opens the pin with its
  default pin factory. If that fails, ``RailError`` is raised; there is never a silent
  fallback to a mock pin (a mock would let the light stay on when we "cut" it).
* In-process simulator (tests): ``make_rail(None, None)`` gives a rail on a gpiozero
  ``MockFactory`` pin; connect it to the simulated board with
  ``rail.add_listener(board.set_rail)``.
* Simulator as a separate process: start it with ``python -m hil.sim --rail-file PATH``
  (``nirpad sim`` passes the flag through) and build the host's rail with
  ``make_rail(None, Path(PATH))``. Every change of the rail is written atomically into
  PATH as ``1`` (enabled) or ``0`` (cut), write-to-temporary then ``os.replace``; the
  simulator enables its rail only while the file reads ``1``. The file is written
  ``0`` as soon as the rail is made, so a stale ``1`` from an earlier run never counts.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero import Device, OutputDevice
from gpiozero.exc import GPIOZeroError
from gpiozero.pins.mock import MockFactory

from safety.errors import SafetyError

__all__ = ["MOCK_RAIL_PIN", "FileRailLine", "PowerRail", "RailError", "make_rail"]

log = logging.getLogger(__name__)

MOCK_RAIL_PIN = "GPIO26"
"""The pin used on the gpiozero MockFactory when no real pin is given."""

RailListener = Callable[[bool], None]


class RailError(SafetyError):
    """The rail line could not be opened or driven. ``pin`` names the line."""

    def __init__(self, message: str, *, pin: str) -> None:
        super().__init__(message)
        self.pin = pin


class FileRailLine:
    """Mirrors the rail into ``path`` as ``"1"``/``"0"``, atomically, for a pty simulator."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, enabled: bool) -> None:
        data = b"1" if enabled else b"0"
        fd, tmp_name = tempfile.mkstemp(prefix=".rail-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


class PowerRail:
    """The rail-enable line. ``enable()`` powers the LEDs' supply, ``cut()`` removes it.

    ``on_change(enabled)`` and any listener added later are told after every change;
    a failing listener never stops a cut (the GPIO line is already low) but is raised
    afterwards as ``RailError`` so the caller knows the mirror may be wrong.
    """

    def __init__(
        self,
        device: OutputDevice,
        on_change: RailListener | None = None,
        *,
        owned_factory: Any | None = None,
    ) -> None:
        self._device = device
        self._listeners: list[RailListener] = [] if on_change is None else [on_change]
        self._owned_factory = owned_factory
        self._pin_name = str(device.pin)

    @property
    def enabled(self) -> bool:
        return bool(self._device.value)

    @property
    def pin_name(self) -> str:
        return self._pin_name

    def add_listener(self, listener: RailListener) -> None:
        """Also tell ``listener`` every change (e.g. an in-process ``SimBoard.set_rail``)."""
        self._listeners.append(listener)
        listener(self.enabled)

    def enable(self) -> None:
        self._device.on()
        try:
            self._notify(True)
        except RailError:
            self._device.off()
            self._notify_quietly(False)
            raise
        log.info("LED power rail enabled (%s)", self._pin_name)

    def cut(self) -> None:
        was_enabled = self.enabled
        self._device.off()
        if was_enabled:  # a routine off (every all_off, every boot) is not news
            log.info("LED power rail cut (%s)", self._pin_name)
        self._notify(False)

    def close(self) -> None:
        """Cut the rail and release the GPIO line (and a factory made for it)."""
        try:
            self.cut()
        finally:
            self._device.close()
            if self._owned_factory is not None:
                self._owned_factory.close()

    def _notify(self, enabled: bool) -> None:
        failures = self._notify_quietly(enabled)
        if failures:
            raise RailError(
                f"rail {self._pin_name} set to {int(enabled)} but a listener failed: "
                + "; ".join(failures),
                pin=self._pin_name,
            )

    def _notify_quietly(self, enabled: bool) -> list[str]:
        failures: list[str] = []
        for listener in self._listeners:
            try:
                listener(enabled)
            except Exception as exc:
                log.exception("rail listener %r failed for enabled=%s", listener, enabled)
                failures.append(f"{type(exc).__name__}: {exc}")
        return failures


def _open_device(pin: int | str, pin_factory: Any | None) -> OutputDevice:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return OutputDevice(pin, active_high=True, initial_value=False, pin_factory=pin_factory)
        except (GPIOZeroError, ImportError, OSError) as exc:
            raise RailError(
                f"cannot open the LED rail line on pin {pin}: {exc}", pin=str(pin)
            ) from exc
        finally:
            for warning in caught:
                log.warning("gpiozero while opening rail pin %s: %s", pin, warning.message)


def make_rail(
    pin: int | str | None,
    rail_file: Path | None,
    pin_factory: Any | None = None,
) -> PowerRail:
    """Build the rail: a real pin, or (``pin=None``) a MockFactory pin; optional file mirror.

    A real ``pin`` without an explicit ``pin_factory`` must resolve to a real gpiozero
    factory; if gpiozero cannot load one, or resolves to a mock (``GPIOZERO_PIN_FACTORY=
    mock``), ``RailError`` is raised rather than driving a pin that switches nothing.
    """
    owned = None
    if pin is None:
        factory = pin_factory if pin_factory is not None else MockFactory()
        owned = None if pin_factory is not None else factory
        device = _open_device(MOCK_RAIL_PIN, factory)
    else:
        device = _open_device(pin, pin_factory)
        if pin_factory is None and isinstance(device.pin_factory, MockFactory):
            device.close()
            raise RailError(
                f"pin {pin} asked for, but gpiozero's default factory is a mock "
                f"({Device.pin_factory!r}); refusing a rail that switches nothing",
                pin=str(pin),
            )
    rail = PowerRail(device, owned_factory=owned)
    if rail_file is not None:
        rail.add_listener(FileRailLine(rail_file))
    return rail
