"""The forms' answers, kept for one look: the flash store on a virtual clock."""

from __future__ import annotations

import pytest

from hil.rigs.clock import VirtualClock
from web.flash import FLASH_TTL_S, MAX_FLASHES, Flash, FlashStore

SAID = Flash("Done.", ok=True)


def test_a_flash_is_taken_once_by_its_owner() -> None:
    store = FlashStore(VirtualClock())
    flash_id = store.put("session-a", SAID)
    assert store.take("session-b", flash_id) is None  # another session: nothing
    assert store.take("session-a", flash_id) == SAID  # a foreign look did not use it up
    assert store.take("session-a", flash_id) is None
    assert len(store) == 0


@pytest.mark.parametrize("flash_id", [None, "", "no-such-id"])
def test_an_unknown_id_is_no_flash(flash_id: str | None) -> None:
    store = FlashStore(VirtualClock())
    store.put("session-a", SAID)
    assert store.take("session-a", flash_id) is None
    assert len(store) == 1


def test_a_flash_expires_after_its_time_to_live() -> None:
    clock = VirtualClock()
    store = FlashStore(clock)
    kept, gone = store.put("a", SAID), store.put("a", SAID)
    clock.advance(FLASH_TTL_S)
    assert store.take("a", kept) == SAID  # still within its time
    clock.advance(0.001)
    assert store.take("a", gone) is None
    assert len(store) == 0


def test_the_store_keeps_at_most_its_maximum_the_oldest_going_first() -> None:
    store = FlashStore(VirtualClock())
    ids = [store.put("a", Flash(f"answer {n}", ok=True)) for n in range(MAX_FLASHES + 1)]
    assert len(store) == MAX_FLASHES and len(set(ids)) == len(ids)
    assert store.take("a", ids[0]) is None
    assert store.take("a", ids[1]) == Flash("answer 1", ok=True)
    assert all(len(flash_id) >= 22 for flash_id in ids)  # 16 random bytes
