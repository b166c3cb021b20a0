"""The fuzz command line: a Ctrl-C ends it with a line, not a traceback."""

from __future__ import annotations

import pytest

from hil.tools import fuzz


def test_ctrl_c_ends_the_run_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(frames: int, seed: int) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(fuzz, "fuzz_decoder", interrupted)
    assert fuzz.main(["decoder", "--frames", "10", "--seed", "1"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m hil.tools.fuzz: interrupted (seed 1); no report"
    )


@pytest.mark.parametrize("frames", ["0", "-5"])
def test_a_run_of_no_frames_is_a_usage_error(
    frames: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        fuzz.main(["decoder", "--frames", frames])
    assert exc.value.code == 2
    assert "--frames" in capsys.readouterr().err
