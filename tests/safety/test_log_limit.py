"""RepeatLimiter: a line that recurs at frame rate is logged once a minute per key."""

from __future__ import annotations

import logging

import pytest

from hil.rigs.clock import VirtualClock
from safety.log_limit import RepeatLimiter


def test_a_key_is_logged_once_a_minute_and_the_next_line_counts_the_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    limiter = RepeatLimiter(logging.getLogger("nirpad.test"), clock, every_s=60.0)
    with caplog.at_level(logging.INFO, logger="nirpad.test"):
        started_s = clock()
        assert limiter.log("reset", logging.WARNING, "board reset")
        for _ in range(2999):  # the frames of the minute after it
            clock.advance(0.02)
            assert not limiter.log("reset", logging.WARNING, "board reset")
        assert limiter.log("other", logging.INFO, "another kind")  # its own key
        clock.advance_to(started_s + 60.0)
        assert limiter.log("reset", logging.WARNING, "board reset")
    assert [r.getMessage() for r in caplog.records] == [
        "board reset",
        "another kind",
        "board reset (and 2999 more times in the last 60 s)",
    ]


def test_a_line_names_the_callers_file_not_the_limiters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RepeatLimiter(logging.getLogger("nirpad.test"), VirtualClock())
    with caplog.at_level(logging.INFO, logger="nirpad.test"):
        limiter.log("k", logging.INFO, "once")
    [record] = caplog.records
    assert record.filename == "test_log_limit.py"
