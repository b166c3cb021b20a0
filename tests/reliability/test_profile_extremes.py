"""Extreme numbers in every numeric field, through the whole path: install (or a hand edit
of the installed file), the controller's reload and status, its start guard, and
``nirpad profile show``. Nothing may raise or reach a fault, every refusal is readable,
and a prescription that installs can start.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_host.machine import State
from hil.rigs.clinic import profile_toml
from hil.rigs.harness import InProcessRig, builtin_profile_bytes
from profiles.store import install_atomic
from tests.profiles.conftest import run_cli

pytestmark = pytest.mark.slow

BASE = builtin_profile_bytes("rls-810-standard").decode()
PULSED = BASE.replace('kind = "cw"', 'kind = "pulsed"\npulse_hz = 10\nduty_pct = 50')
WITH_STOP = BASE.replace("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 39")
EXTREMES = ["1e308", "-1e308", "1e14", "1e-300", "0", "-1", "0.5", "10.7", "810.0", "nan",
            "inf", "true", "1" + "0" * 30, "9223372036854775808", '"30"']  # fmt: skip
FIELDS = [
    (BASE, "duration_min"), (BASE, "ramp_s"), (BASE, "sessions_per_week"),
    (BASE, "min_interval_h"), (BASE, "course_weeks"), (BASE, "irradiance_mw_cm2"),
    (BASE, "wavelength_nm"), (BASE, "schema_version"), (PULSED, "pulse_hz"),
    (PULSED, "duty_pct"), (WITH_STOP, "skin_temp_stop_c"),
]  # fmt: skip
DATES = ["expires = 2026-01-02", "expires = 2028-01-02", "expires = 9999-12-31",
         "issued = 0001-01-01", "issued = 9999-12-30"]  # fmt: skip


def _variants() -> Iterator[tuple[str, bytes]]:
    for text, key in FIELDS:
        for literal in EXTREMES:
            changed = re.sub(rf"^{key} = .*$", f"{key} = {literal}", text, count=1, flags=re.M)
            assert changed != text or literal == "0"
            yield f"{key} = {literal}", changed.encode()
    for line in DATES:
        key = line.partition(" = ")[0]
        yield line, re.sub(rf"^{key} = .*$", line, BASE, count=1, flags=re.M).encode()


VARIANTS = list(_variants())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessRig]:
    opened = InProcessRig.build(tmp_path_factory.mktemp("extremes"), profile_id=None, seed=1)
    opened.controller.boot()
    opened.run(0.3)
    # One session in the record, a month ago: the schedule then computes with the
    # prescription's interval (an unbounded one overflowed there).
    assert opened.install(profile_toml(profile_id="earlier", duration_min=1, ramp_s=0.0)).ok
    assert opened.command("start").ok
    opened.run(65.0)
    assert opened.command("ack").ok and opened.state is State.READY
    opened.skip_idle(30 * 86400.0)
    try:
        yield opened
    finally:
        opened.close()


def _show(state_dir: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(["show", "--state-dir", str(state_dir)])
    return code, out.getvalue() + err.getvalue()


def _assert_readable(text: str) -> None:
    for word in ("Traceback", "Error:", "internal error", "Input should be", "errno"):
        assert word not in text, text


def _judge(stack: InProcessRig, label: str) -> tuple[str | None, str]:
    status = stack.status()
    assert stack.state in (State.READY, State.IDLE), (label, status)
    refusal = status["start_refusal"]
    _assert_readable(str(status))
    code, shown = _show(stack.state_dir)
    assert code in (0, 3), (label, shown)
    _assert_readable(shown)
    return refusal, shown


@pytest.mark.parametrize(("label", "data"), VARIANTS, ids=[v[0][:40] for v in VARIANTS])
def test_install_then_status_show_and_start(stack: InProcessRig, label: str, data: bytes) -> None:
    outcome = stack.install(data)
    _assert_readable(" ".join([outcome.message, *outcome.problems]))
    refusal, _ = _judge(stack, label)
    if outcome.ok:  # what installs must be able to start
        assert refusal is None, (label, refusal)
    else:
        assert outcome.exit_code == 2 and outcome.problems, label


@pytest.mark.parametrize(("label", "data"), VARIANTS, ids=[v[0][:40] for v in VARIANTS])
def test_hand_edited_installed_file(stack: InProcessRig, label: str, data: bytes) -> None:
    install_atomic(stack.state_dir, data)  # written by hand, never checked by install
    assert stack.command("reload_prescription").ok
    refusal, shown = _judge(stack, label)
    if stack.state is State.IDLE:  # refused on load or by date: show says why, as status does
        assert "no usable prescription" in shown or "status: This prescription" in shown
    else:
        assert refusal is None, (label, refusal)
