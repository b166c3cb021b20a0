"""docs/make_sample_report.py still runs: the picture in docs/course.md stays true.

The sample's sessions are run on the simulated board, so its figures are checked here
as the report prints them. The picture needs pdftoppm (poppler-utils): without it the
script says so, which passes here only outside CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.care.test_report_pdf import pdf_text

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_sample_report.py"


def pdftoppm_present() -> bool:
    """Whether the picture can be made; under CI (``CI=true``, where .ci/run installs
    poppler-utils) a missing pdftoppm fails the test instead of passing it unchecked."""
    if shutil.which("pdftoppm"):
        return True
    if os.environ.get("CI") == "true":
        pytest.fail("pdftoppm is missing on the CI machine (.ci/run installs poppler-utils)")
    return False


def test_under_ci_a_missing_pdftoppm_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "false")
    assert pdftoppm_present() is False
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="pdftoppm is missing on the CI machine"):
        pdftoppm_present()


@pytest.mark.slow
def test_the_sample_report_script_makes_the_pdf_and_its_picture(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    pages, text = pdf_text((tmp_path / "sample-report.pdf").read_bytes())
    assert pages == 1
    # the course run on the simulated board: its sessions, its long press (at 55 % of the
    # time, stopping 2 s of hold later) and the fault the simulator caused, as measured
    assert "All 4 weeks 11 / 12 9 84% 2 1 1 2 of 4 weeks on target" in text
    assert "Wed 11 Mar 2026 21:00 early stop: stopped before the end" in text
    assert "62% of the planned fluence delivered" in text
    assert "Fri 20 Mar 2026 20:15 early stop: ended by a fault" in text
    assert "40% of the planned fluence delivered" in text
    assert "Wed 25 Mar 2026 17:10 outside window" in text
    assert "Device serial: NP-2026-00017" in text
    assert "Prescribed by Dr Anna Müller, Sleep Clinic" in text
    if pdftoppm_present():
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "sample-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the PDF is made; the picture needs poppler-utils, and says so
        assert proc.returncode == 1 and "pdftoppm is not installed" in proc.stderr
