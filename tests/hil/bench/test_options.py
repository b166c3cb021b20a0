"""The benchmarks refuse counts and baud rates that would end in a traceback."""

from __future__ import annotations

import pytest

from hil.bench import ledger, protocol, report


@pytest.mark.parametrize(
    ("main", "argv", "option"),
    [
        (report.main, ["--baud", "0"], "--baud"),
        (report.main, ["--injections", "-1"], "--injections"),
        (report.main, ["--only", ","], "--only"),
        (protocol.main, ["--baud", "0"], "--baud"),
        (protocol.main, ["--round-trips", "1"], "--round-trips"),
        (protocol.main, ["--codec-seconds", "nan"], "--codec-seconds"),
        (ledger.main, ["--years", "0"], "--years"),
        (ledger.main, ["--runs", "0"], "--runs"),
        (ledger.main, ["--writes", "-2"], "--writes"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option(
    main: object, argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)  # type: ignore[operator]
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
