"""viewer.lru.Lru: bounded by entries, by weight, by time; least recently used first."""

from __future__ import annotations

import threading
import time

import pytest

from viewer.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.set("c", 3)
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert len(cache) == 2


def test_a_weight_bound_keeps_the_total_under_it_and_refuses_an_entry_too_heavy() -> None:
    cache: Lru[tuple[str, int], bytes] = Lru(max_weight=10, weight=len)
    cache.set(("x", 1), b"12345")
    cache.set(("x", 2), b"1234")
    assert cache.used == 9
    cache.set(("x", 3), b"123")  # 12 > 10: the oldest goes
    assert ("x", 1) not in cache and cache.used == 7
    cache.set(("x", 4), b"12345678901")  # heavier than the bound alone: not kept
    assert ("x", 4) not in cache and cache.used == 7
    cache.set(("x", 2), b"1")  # replacing an entry replaces its weight
    assert cache.used == 4


def test_entries_expire_their_time_after_they_were_set() -> None:
    cache: Lru[str, str] = Lru(entries=10, seconds=0.2)
    cache.set("role", "radiologist")
    assert cache.get("role") == "radiologist"
    time.sleep(0.25)
    assert cache.get("role") is None and len(cache) == 0


def test_forget_where_drops_the_matching_keys() -> None:
    cache: Lru[tuple[int, str], str] = Lru(entries=10)
    for key in [(1, "a"), (1, "b"), (2, "a")]:
        cache.set(key, "v")
    cache.forget_where(lambda key: key[0] == 1)
    assert len(cache) == 1 and (2, "a") in cache
    cache.forget((2, "a"))
    cache.clear()
    assert len(cache) == 0 and cache.used == 0


def test_a_bound_is_required() -> None:
    with pytest.raises(ValueError):
        Lru()
    with pytest.raises(ValueError):
        Lru(max_weight=10)


def test_threads_never_push_it_over_its_bounds() -> None:
    cache: Lru[int, bytes] = Lru(entries=50, max_weight=1000, weight=len)

    def work(offset: int) -> None:
        for i in range(2000):
            cache.set(offset + i, b"x" * (i % 40))
            cache.get(offset + i - 3)

    threads = [threading.Thread(target=work, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50 and cache.used <= 1000
    assert cache.used == sum(len(cache.get(k) or b"") for k in list(cache._items))
