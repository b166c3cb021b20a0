"""Storage that works again is noticed without a restart; an unset clock says so."""

from __future__ import annotations

import datetime as dt

from safety.ledger import LEDGER_FILENAME

from .conftest import Rig, make_profile


def test_a_ledger_that_could_not_be_opened_is_tried_again(rig: Rig) -> None:
    rig.state_dir.mkdir(parents=True)
    blocker = rig.state_dir / LEDGER_FILENAME
    blocker.mkdir()  # the ledger cannot be opened: in its place is a folder
    core = rig.ready()
    reason = core.start_refusal(make_profile())
    assert reason is not None and "cannot be opened" in reason
    rig.run(10.1)
    assert core.start_refusal(make_profile()) == reason  # tried again: still unusable
    blocker.rmdir()  # the storage works again
    assert core.start_refusal(make_profile()) == reason  # not tried again at once
    rig.run(10.1)
    assert core.start_refusal(make_profile()) is None
    core.begin_session(make_profile(), "ab" * 32)  # and the record takes the session
    with rig.ledger() as ledger:
        assert len(ledger.sessions()) == 1


def test_a_clock_that_was_never_set_is_named_as_such(rig: Rig) -> None:
    core = rig.ready()
    rig.wall.offset = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) - rig.wall()
    reason = core.start_refusal(make_profile())
    assert reason == (
        "The pad's clock is not set (it reads 1970-01-01). Set the date and time, then try again."
    )


def test_a_damaged_record_is_not_read_again_and_again(rig: Rig) -> None:
    rig.state_dir.mkdir(parents=True)
    (rig.state_dir / LEDGER_FILENAME).write_bytes(b"garbage" * 2000)
    core = rig.ready()
    reason = core.start_refusal(make_profile())
    assert reason is not None and "nirpad ledger reset" in reason
    (rig.state_dir / LEDGER_FILENAME).unlink()  # would open now, if it were tried
    rig.run(20.5)
    assert core.start_refusal(make_profile()) == reason  # only a reset helps


def test_storage_that_comes_back_damaged_is_not_tried_again(rig: Rig) -> None:
    rig.state_dir.mkdir(parents=True)
    blocker = rig.state_dir / LEDGER_FILENAME
    blocker.mkdir()
    core = rig.ready()
    blocker.rmdir()
    blocker.write_bytes(b"garbage" * 2000)  # it comes back, damaged
    rig.run(10.1)
    reason = core.start_refusal(make_profile())
    assert reason is not None and "nirpad ledger reset" in reason
    blocker.unlink()
    rig.run(20.5)
    assert core.start_refusal(make_profile()) == reason
