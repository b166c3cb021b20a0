"""docs/make_sample_report.py still runs: the picture in docs/course.md stays true."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.care.test_report_pdf import pdf_text

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_sample_report.py"


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
    assert "All 4 weeks 11 / 12 9 83% 2 1 1 2 of 4 weeks on target" in text
    assert "Device serial: NP-2026-00017" in text
    assert "Prescribed by Dr Anna Müller, Sleep Clinic" in text
    if shutil.which("pdftoppm"):
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "sample-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the PDF is made; the picture needs poppler-utils, and says so
        assert proc.returncode == 1 and "pdftoppm is not installed" in proc.stderr
