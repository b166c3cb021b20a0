"""A form sent again at once by the same session is done once and answered as the first
(``web.repeats``), on a virtual clock."""

from __future__ import annotations

import asyncio

import pytest

from hil.rigs.clock import VirtualClock
from web.flash import Flash
from web.repeats import FAILED, REPEAT_S, FormRepeats, form_digest

DONE = Flash("Recorded.", ok=True)
FORM = form_digest("/diary/nightly", [("csrf_token", "t"), ("leg_symptoms", "6")])


def test_a_repeat_while_the_first_is_done_waits_for_its_answer() -> None:
    repeats, calls = FormRepeats(VirtualClock()), []

    async def both() -> list[Flash]:
        release = asyncio.Event()

        async def action() -> Flash:
            calls.append(1)
            await release.wait()
            return DONE

        first = asyncio.create_task(repeats.once("a", FORM, action))
        await asyncio.sleep(0)
        second = asyncio.create_task(repeats.once("a", FORM, action))
        await asyncio.sleep(0)
        assert not second.done()  # waits for the first
        release.set()
        return [await first, await second]

    assert asyncio.run(both()) == [DONE, DONE]
    assert calls == [1]


def test_a_repeat_is_done_again_later_after_another_form_or_by_another_session() -> None:
    clock = VirtualClock()
    repeats, calls = FormRepeats(clock), []

    async def action() -> Flash:
        calls.append(1)
        return Flash(f"answer {len(calls)}", ok=True)

    async def run() -> list[str]:
        said = [(await repeats.once("a", FORM, action)).text]
        said.append((await repeats.once("a", FORM, action)).text)  # at once: the first's
        said.append((await repeats.once("b", FORM, action)).text)  # another session
        clock.advance(REPEAT_S + 0.1)
        said.append((await repeats.once("a", FORM, action)).text)  # later: done again
        repeats.sent("a", form_digest("/diary/irls", []))
        said.append((await repeats.once("a", FORM, action)).text)  # after another form
        return said

    assert asyncio.run(run()) == ["answer 1", "answer 1", "answer 2", "answer 3", "answer 4"]


def test_a_form_that_failed_is_said_so_to_a_waiting_repeat_and_done_again_later() -> None:
    repeats, calls = FormRepeats(VirtualClock()), []

    async def failing() -> Flash:
        calls.append(1)
        await asyncio.sleep(0)
        raise RuntimeError("the disk")

    async def run() -> Flash:
        first = asyncio.create_task(repeats.once("a", FORM, failing))
        await asyncio.sleep(0)
        waiting = await repeats.once("a", FORM, failing)
        with pytest.raises(RuntimeError):
            await first
        with pytest.raises(RuntimeError):  # sent again: done again
            await repeats.once("a", FORM, failing)
        return waiting

    assert asyncio.run(run()) == FAILED
    assert calls == [1, 1]


def test_at_most_so_many_sessions_are_remembered() -> None:
    repeats = FormRepeats(VirtualClock(), max_sessions=3)
    for owner in "abcde":
        repeats.sent(owner, FORM)
    assert len(repeats) == 3


def test_a_file_is_never_the_same_as_another() -> None:
    one, other = object(), object()
    assert form_digest("/p", [("file", one)]) != form_digest("/p", [("file", other)])
    assert form_digest("/p", [("a", "bc")]) != form_digest("/p", [("ab", "c")])
