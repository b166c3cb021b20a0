"""The LED power rail: the second, independent way to turn the light off, held by a heartbeat.

Owns: the two GPIO lines of the rail (gpiozero ``OutputDevice``s, active high, off at
start): the enable line (GPIO26) and the heartbeat line (GPIO19) that keeps the
dead-man hold circuit on the pad's HAT retriggered, and, optionally, a file that
mirrors both for a simulator running as a separate process. Does not own *when* the
rail is cut (``safety.interlock`` and ``safety.core`` decide), *when* a heartbeat is
sent (every tick of the event loop, ``SafetyCore.tick``, and the self-test's waits),
nor the serial OFF command. The hardware is described in docs/hardware.md.

The board's rail-enable input is the AND of the enable line and the hold circuit's
output, which stays high for ``RAIL_HOLD_S`` after each toggle of the heartbeat line:
a host that stops (SIGKILL, a hang, a power cut) drops the rail within the hold time,
whatever level its enable line was left at. ``heartbeat()`` toggles the line only
while the rail is enabled (a host that cuts the rail stops toggling too), and
``enable()`` gives one heartbeat at once so the hold circuit comes up with the line.

How each kind of run gets the rail:

* Real board: ``make_rail(pin=26, rail_file=None)`` (heartbeat on GPIO19). gpiozero
  opens both pins with its default pin factory. If that fails, ``RailError`` is
  raised; there is never a silent fallback to a mock pin (a mock would let the light
  stay on when we "cut" it).
* In-process simulator (tests): ``make_rail(None, None)`` gives a rail on gpiozero
  ``MockFactory`` pins; connect it to the simulated board with ``add_listener`` (the
  enable line) and ``add_heartbeat_listener`` (the heartbeat line).
* Simulator as a separate process: start it with ``python -m hil.sim --rail-file PATH``
  (``nirpad sim`` passes the flag through) and build the host's rail with
  ``make_rail(None, Path(PATH))``. PATH holds one line ``<enable 0|1> <heartbeat
  count>``: the count goes up by one per toggle of the heartbeat line (any change is a
  heartbeat to the reader). A change of the enable line replaces it atomically
  (temporary file, fsynced, then ``os.replace``); a heartbeat (50 a second) rewrites it
  in place with one ``pwrite`` (``FileRailLine`` says why that is safe). The file is
  written ``0 0`` as soon as the rail is made, so a stale ``1`` from an earlier run
  never counts. The format and the simulated hold circuit are in docs/hil.md.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from gpiozero import Device, OutputDevice
from gpiozero.exc import GPIOZeroError
from gpiozero.pins.mock import MockFactory

from safety.errors import SafetyError

__all__ = [
    "DEFAULT_HEARTBEAT_PIN",
    "MOCK_HEARTBEAT_PIN",
    "MOCK_RAIL_PIN",
    "RAIL_HOLD_S",
    "FileRailLine",
    "PowerRail",
    "RailError",
    "make_rail",
]

log = logging.getLogger(__name__)

MOCK_RAIL_PIN: Final = "GPIO26"
"""The enable line's pin on the gpiozero MockFactory when no real pin is given."""
MOCK_HEARTBEAT_PIN: Final = "GPIO19"
"""The heartbeat line's pin on the gpiozero MockFactory when no real pin is given."""
DEFAULT_HEARTBEAT_PIN: Final = 19
"""The heartbeat line on the pad's HAT (docs/hardware.md)."""
RAIL_HOLD_S: Final = 0.3
"""How long the HAT's hold circuit keeps the rail up after the last heartbeat: longer
than the 200 ms lease, about twice the worst measured host stall, shorter than the
500 ms lease maximum (docs/hardware.md). The host never waits on it; it is here so
tests and the simulator can check their figures against one number."""

RailListener = Callable[[bool], None]
HeartbeatListener = Callable[[int], None]


class RailError(SafetyError):
    """A rail line could not be opened or driven. ``pin`` names the line."""

    def __init__(self, message: str, *, pin: str) -> None:
        super().__init__(message)
        self.pin = pin


class FileRailLine:
    """Mirrors the rail into ``path`` as ``"<enable> <count>"`` for a pty simulator.

    Call it with the enable line's level (a change listener) and ``heartbeat(count)``
    with each heartbeat (a heartbeat listener). An enable change replaces the file
    atomically and fsyncs it. A heartbeat, 50 a second, rewrites the file in place with
    one ``pwrite`` on a descriptor kept open (one system call, not eight): the count
    only grows, so the new line covers the old one, and a reader that catches the
    write half done sees a changed count, which is a heartbeat, as it is. A heartbeat
    while the mirror shows the rail cut only records the count: the next enable
    writes it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.enabled = False
        self.count = 0
        self._fd: int | None = None

    def __call__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._replace()

    def heartbeat(self, count: int) -> None:
        self.count = count
        if self.enabled:
            assert self._fd is not None  # every enable opened it
            os.pwrite(self._fd, self._line(), 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _line(self) -> bytes:
        return b"%d %d\n" % (self.enabled, self.count)

    def _replace(self) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=".rail-", dir=self.path.parent)
        try:
            os.write(fd, self._line())
            os.fsync(fd)
            os.replace(tmp_name, self.path)
        except BaseException:
            os.close(fd)
            Path(tmp_name).unlink(missing_ok=True)
            raise
        self.close()
        self._fd = fd  # the file now at ``path``: heartbeats write into it


class PowerRail:
    """The rail's two lines. ``enable()`` powers the LEDs' supply, ``cut()`` removes it,
    ``heartbeat()`` (every tick) keeps the hold circuit from dropping it.

    ``on_change(enabled)`` and any listener added later are told after every change;
    a failing listener never stops a cut (the GPIO line is already low) but is raised
    afterwards as ``RailError`` so the caller knows the mirror may be wrong. Heartbeat
    listeners are told the new count after each toggle; one that fails makes
    ``heartbeat()`` raise ``RailError`` after the line has toggled.
    """

    def __init__(
        self,
        device: OutputDevice,
        heartbeat_device: OutputDevice,
        on_change: RailListener | None = None,
        *,
        owned_factory: Any | None = None,
        drives: str | None = None,
    ) -> None:
        self._device = device
        self._heartbeat_device = heartbeat_device
        self._listeners: list[RailListener] = [] if on_change is None else [on_change]
        self._heartbeat_listeners: list[HeartbeatListener] = []
        self._owned_factory = owned_factory
        self._on_close: list[Callable[[], None]] = []
        self._pin_name = str(device.pin)
        self._heartbeat_pin_name = str(heartbeat_device.pin)
        self.drives = drives or f"enable {self._pin_name}, heartbeat {self._heartbeat_pin_name}"
        """What the rail really switches, for the log (pins, mock pins, a file)."""
        self.heartbeats = 0
        """Toggles of the heartbeat line so far (the rail file's count)."""
        self._heartbeat_high = bool(heartbeat_device.value)
        """The heartbeat line's level. The rail alone drives that line, so it keeps the
        level it wrote instead of reading the pin back before every toggle."""

    @property
    def enabled(self) -> bool:
        return bool(self._device.value)

    @property
    def pin_name(self) -> str:
        return self._pin_name

    @property
    def heartbeat_pin_name(self) -> str:
        return self._heartbeat_pin_name

    def add_listener(self, listener: RailListener) -> None:
        """Also tell ``listener`` every change (e.g. an in-process ``SimBoard.set_rail``)."""
        self._listeners.append(listener)
        listener(self.enabled)

    def add_heartbeat_listener(self, listener: HeartbeatListener) -> None:
        """Also tell ``listener`` every heartbeat, with the new count."""
        self._heartbeat_listeners.append(listener)

    def enable(self) -> None:
        """Enable line high and one heartbeat at once, so the hold circuit comes up too."""
        self._device.on()
        try:
            self._beat()
            self._notify(True)
        except RailError:
            self._device.off()
            self._notify_quietly(False)
            raise
        log.info("LED power rail enabled (%s)", self.drives)

    def heartbeat(self) -> None:
        """Toggle the heartbeat line once; nothing while the rail is cut."""
        if self.enabled:
            self._beat()

    def cut(self) -> None:
        was_enabled = self.enabled
        self._device.off()
        if was_enabled:  # a routine off (every all_off, every boot) is not news
            log.info("LED power rail cut (%s)", self.drives)
        self._notify(False)

    def close(self) -> None:
        """Cut the rail and release both GPIO lines (and a factory made for them)."""
        try:
            self.cut()
        finally:
            try:
                self._device.close()
                self._heartbeat_device.close()
                if self._owned_factory is not None:
                    self._owned_factory.close()
            finally:
                for closer in self._on_close:
                    closer()

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the rail closes (after the cut): a mirror's descriptor."""
        self._on_close.append(closer)

    def _beat(self) -> None:
        """Toggle the heartbeat line: write the other level than the one it holds."""
        try:
            if self._heartbeat_high:
                self._heartbeat_device.off()
            else:
                self._heartbeat_device.on()
        except (GPIOZeroError, OSError) as exc:
            raise RailError(
                f"heartbeat line {self._heartbeat_pin_name} cannot be toggled: {exc}",
                pin=self._heartbeat_pin_name,
            ) from exc
        self._heartbeat_high = not self._heartbeat_high
        self.heartbeats += 1
        failures: list[str] = []
        for listener in self._heartbeat_listeners:
            try:
                listener(self.heartbeats)
            except Exception as exc:  # reported, not logged: this runs 50 times a second
                failures.append(f"{type(exc).__name__}: {exc}")
        if failures:
            raise RailError(
                f"heartbeat {self.heartbeats} on {self._heartbeat_pin_name} sent but a "
                "listener failed: " + "; ".join(failures),
                pin=self._heartbeat_pin_name,
            )

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


def _open_real(pin: int | str, pin_factory: Any | None) -> OutputDevice:
    device = _open_device(pin, pin_factory)
    if pin_factory is None and isinstance(device.pin_factory, MockFactory):
        device.close()
        raise RailError(
            f"pin {pin} asked for, but gpiozero's default factory is a mock "
            f"({Device.pin_factory!r}); refusing a rail that switches nothing",
            pin=str(pin),
        )
    return device


def _drives(
    enable: OutputDevice, heartbeat: OutputDevice, real: bool, rail_file: Path | None
) -> str:
    """What the rail switches, in words for the log."""
    pins = f"enable {enable.pin}, heartbeat {heartbeat.pin}"
    if not real:
        pins = f"mock pins {enable.pin}, {heartbeat.pin}: no hardware"
    return pins if rail_file is None else f"rail file {rail_file}; {pins}"


def make_rail(
    pin: int | str | None,
    rail_file: Path | None,
    pin_factory: Any | None = None,
    *,
    heartbeat_pin: int | str = DEFAULT_HEARTBEAT_PIN,
) -> PowerRail:
    """Build the rail: real pins, or (``pin=None``) MockFactory pins; optional file mirror.

    A real ``pin`` without an explicit ``pin_factory`` must resolve to a real gpiozero
    factory; if gpiozero cannot load one, or resolves to a mock (``GPIOZERO_PIN_FACTORY=
    mock``), ``RailError`` is raised rather than driving a pin that switches nothing.
    The heartbeat line is ``heartbeat_pin`` (GPIO19) on the same factory as the enable
    line (``MOCK_HEARTBEAT_PIN`` on a mock).
    """
    owned = None
    if pin is None:
        factory = pin_factory if pin_factory is not None else MockFactory()
        owned = None if pin_factory is not None else factory
        device = _open_device(MOCK_RAIL_PIN, factory)
        heartbeat_pin = MOCK_HEARTBEAT_PIN
    else:
        device = _open_real(pin, pin_factory)
    try:  # a pin already in use (the enable line's own) is refused by gpiozero
        heartbeat = _open_device(heartbeat_pin, device.pin_factory)
    except RailError:
        device.close()
        if owned is not None:
            owned.close()
        raise
    drives = _drives(device, heartbeat, pin is not None, rail_file)
    rail = PowerRail(device, heartbeat, owned_factory=owned, drives=drives)
    if rail_file is not None:
        mirror = FileRailLine(rail_file)
        rail.add_listener(mirror)
        rail.add_heartbeat_listener(mirror.heartbeat)
        rail.on_close(mirror.close)
    return rail
