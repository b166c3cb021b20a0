"""The shipped systemd units, checked by systemd itself (``systemd-analyze``).

``verify`` loads each unit as systemd would, in a throw-away root: the host's own unit
directory (for ``sysinit.target`` and the like), our units in ``etc/systemd/system`` and
a stub ``/usr/bin/nirpad`` (the product is not installed there; so what is verified is
the files' syntax, keys, values and dependencies, and that ExecStart names an absolute
executable, not that it runs). Any line on stderr fails: systemd only *warns* about an
unknown key or a bad value and still exits 0.

``security --offline=yes --threshold=N`` fails a unit whose exposure is above N. In
systemd 252 N is in tenths (the exposure is kept as 0..100 and printed divided by 10):
``--threshold=25`` means "at most 2.5".

Where ``systemd-analyze`` is missing these tests skip (``apt-get install systemd``),
except under CI (``CI=true``), where they fail: CI installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import firmware_host
from firmware_host.console import EXIT_INTERRUPTED

UNIT_DIR = Path(firmware_host.__file__).parent / "systemd"
HOST_UNITS = Path("/usr/lib/systemd/system")
INSTALL = "apt-get install systemd"

# The highest exposure each service may have, in tenths (systemd 252's --threshold).
MAX_EXPOSURE_TENTHS = {
    "nirpad.service": 25,
    "nirpad-web.service": 35,
    "nirpad-remind.service": 20,
}
UNITS = [*MAX_EXPOSURE_TENTHS, "nirpad-remind.timer"]


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None or not HOST_UNITS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"systemd-analyze is missing on the CI machine ({INSTALL})")
        pytest.skip(f"systemd-analyze is missing: {INSTALL}")
    return path


def _root_with(tmp_path: Path, units: dict[str, str]) -> Path:
    """A root directory systemd can load ``units`` from, with a stub /usr/bin/nirpad."""
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    stub = root / "usr/bin/nirpad"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for name, text in units.items():
        (etc / name).write_text(text, encoding="utf-8")
    return root


def _verify(analyze: str, root: Path, name: str) -> subprocess.CompletedProcess[str]:
    argv = [analyze, "verify", "--man=no", f"--root={root}", name]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _shipped() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in UNIT_DIR.iterdir()}


@pytest.mark.parametrize("name", UNITS)
@pytest.mark.slow
def test_systemd_verify_loads_the_unit_without_a_warning(
    analyze: str, tmp_path: Path, name: str
) -> None:
    result = _verify(analyze, _root_with(tmp_path, _shipped()), name)
    assert (result.returncode, result.stderr) == (0, "")


def test_verify_as_run_here_reports_a_bad_value(analyze: str, tmp_path: Path) -> None:
    units = _shipped()
    units["nirpad.service"] = units["nirpad.service"].replace(
        "PrivateNetwork=yes", "PrivateNetwork=maybe"
    )
    result = _verify(analyze, _root_with(tmp_path, units), "nirpad.service")
    assert result.returncode == 0  # only a warning: the check above is on stderr
    assert "Failed to parse boolean value, ignoring: maybe" in result.stderr


def _security(analyze: str, unit: Path, threshold: int) -> subprocess.CompletedProcess[str]:
    argv = [analyze, "security", "--offline=yes", f"--threshold={threshold}", str(unit)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE_TENTHS))
def test_exposure_is_at_most_the_units_limit(analyze: str, name: str) -> None:
    result = _security(analyze, UNIT_DIR / name, MAX_EXPOSURE_TENTHS[name])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match[1]) * 10 <= MAX_EXPOSURE_TENTHS[name]
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_threshold_fails_a_unit_above_it(analyze: str) -> None:
    result = _security(analyze, UNIT_DIR / "nirpad.service", 0)
    assert result.returncode != 0


def _service_lines(name: str) -> list[str]:
    text = (UNIT_DIR / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line and not line.startswith("#")]


def test_the_controller_keeps_what_it_needs_to_run() -> None:
    lines = _service_lines("nirpad.service")
    # The board's serial port and the rail's GPIO chip; the group that may open them.
    assert {"DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-gpiochip rw"} <= set(lines)
    assert "SupplementaryGroups=dialout gpio" in lines
    # No private /dev (it would have no ttyUSB0); a writable working directory (lgpio).
    assert not any(line.startswith("PrivateDevices=") for line in lines)
    assert {"RuntimeDirectory=nirpad", "WorkingDirectory=%t/nirpad"} <= set(lines)
    # sd_notify and the watchdog from the main process; only Unix sockets.
    assert {"NotifyAccess=main", "WatchdogSec=5", "RestrictAddressFamilies=AF_UNIX"} <= set(lines)
    assert {"PrivateNetwork=yes", "CapabilityBoundingSet="} <= set(lines)


def test_the_page_runs_as_its_own_user_in_the_nirpad_group() -> None:
    lines = _service_lines("nirpad-web.service")
    assert {"User=nirpad-web", "Group=nirpad"} <= set(lines)
    assert "ExecStart=/usr/bin/nirpad web --state-dir /var/lib/nirpad" in lines
    # It listens: Internet sockets, the host's own network (loopback unless a drop-in).
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in lines
    assert "IPAddressAllow=localhost" in lines and "PrivateNetwork=yes" not in lines
    # Writable: the diary's directory only, never the record's (ledger, prescription).
    writable = [line for line in lines if line.startswith(("ReadWritePaths=", "StateDirectory="))]
    assert writable == ["StateDirectory=nirpad/diary"]
    assert "StateDirectoryMode=2770" in lines


SLOW_START_S = 10
"""A start that fails after this long (Python's imports, a handshake, a Pi under load)
must still count towards the start limit."""


def _settings(name: str) -> dict[str, str]:
    """The unit's ``Key=value`` lines (the last one wins, as for these keys in systemd)."""
    return dict(line.split("=", 1) for line in _service_lines(name) if "=" in line)


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE_TENTHS))
def test_a_unit_that_restarts_gives_up_on_a_failure_that_stays(name: str) -> None:
    """Restart=on-failure with RestartSec=2 under systemd's default start limit (5 starts
    in 10 s) is restarted forever: five starts never fit in 10 s once each takes a
    second. A failure that stays (a port another program holds, a damaged site.toml)
    must end in a failed unit after a few tries, not one log line every few seconds."""
    settings = _settings(name)
    if settings.get("Restart", "no") == "no":
        assert "RestartSec" not in settings
        return
    interval_s = int(settings.get("StartLimitIntervalSec", "10"))  # systemd's defaults
    burst = int(settings.get("StartLimitBurst", "5"))
    restart_s = int(settings["RestartSec"])
    assert burst * (restart_s + SLOW_START_S) <= interval_s


def test_a_stop_during_the_controllers_start_up_is_a_success_to_systemd() -> None:
    """``systemctl stop`` (or restart) while ``nirpad run`` is still starting: its SIGTERM
    unwinds the start-up, nothing was lit, and it exits 130 (``nirpad: interrupted``).
    A stop once it runs exits 0. Either way the unit must end inactive, not failed, and
    a stray SIGTERM is no failure to restart from, early in the start-up or later."""
    settings = _settings("nirpad.service")
    assert str(EXIT_INTERRUPTED) in settings.get("SuccessExitStatus", "").split()


def test_the_controller_waits_for_its_board_instead_of_failing_without_it() -> None:
    """No board at boot (unplugged, a USB adapter that enumerates late): the start is
    skipped, not failed, so no restart is spent on it, and plugging the board in starts
    the controller. Without that, the five tries of the start limit were over in about
    15 s and a board plugged in later was never used until a reboot."""
    lines = _service_lines("nirpad.service")
    (exec_start,) = (line for line in lines if line.startswith("ExecStart="))
    port = exec_start.split("--port ", 1)[1].split()[0]
    device = port.removeprefix("/").replace("/", "-") + ".device"  # systemd-escape --path
    assert port == "/dev/ttyUSB0" and device == "dev-ttyUSB0.device"
    assert f"ConditionPathExists={port}" in lines
    assert {f"After={device}", f"Wants={device}"} <= set(lines)
    (wanted_by,) = (line for line in lines if line.startswith("WantedBy="))
    assert wanted_by.removeprefix("WantedBy=").split() == ["multi-user.target", device]
