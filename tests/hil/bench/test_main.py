"""``python -m hil.bench``'s dispatch: a Ctrl-C ends any benchmark with a line."""

from __future__ import annotations

import pytest

import hil.bench.protocol
from hil.bench.__main__ import main


def test_ctrl_c_ends_a_benchmark_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(argv: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(hil.bench.protocol, "main", interrupted)
    assert main(["protocol"]) == 130
    assert capsys.readouterr().err == "python -m hil.bench: interrupted; nothing was written\n"
