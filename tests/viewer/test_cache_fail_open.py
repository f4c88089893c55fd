"""viewer.cache.FailOpenRedisCache against a real Redis that stops and hangs: every call
answers as a miss, within the socket timeout, and the breaker then skips Redis."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests.conftest import require
from tests.servers import redis_available, start_redis
from viewer import cache


def make(url: str) -> cache.FailOpenRedisCache:
    return cache.FailOpenRedisCache(
        url, {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    )


@pytest.fixture
def redis() -> Any:
    require(redis_available())
    server = start_redis()
    yield server
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_with_redis_up_it_is_a_cache(redis: Any) -> None:
    found = make(redis.url)
    found.set("k", {"v": 1}, 30)
    assert found.get("k") == {"v": 1}
    assert found.add("k", 2) is False and found.add("new", 2) is True
    assert found.incr("new", 3) == 5
    assert found.get_many(["k", "new", "none"]) == {"k": {"v": 1}, "new": 5}
    assert found.reachable()


def test_with_redis_stopped_every_call_is_a_miss_and_the_breaker_skips_it(
    redis: Any, monkeypatch: Any
) -> None:
    found = make(redis.url)
    found.set("k", "v", 30)
    redis.stop()
    assert found.get("k", "default") == "default"
    assert found.reachable() is False
    # Broken: Redis is not asked again until BREAK_SECONDS have passed.
    asked: list[str] = []
    monkeypatch.setattr(type(found._cache), "get", lambda *a: asked.append("get"))  # type: ignore[attr-defined]
    assert found.get("k") is None and asked == []
    found.set("k", "v")  # nothing done, no error
    found.delete("k")
    assert found.add("k", "v") is False and found.incr("k") == 0


def test_a_hung_redis_costs_a_call_its_socket_timeout_once(redis: Any) -> None:
    found = make(redis.url)
    found.set("k", "v", 30)
    os.kill(redis.process.pid, signal.SIGSTOP)  # hung: accepts, never answers
    try:
        started = time.monotonic()
        assert found.get("k", "miss") == "miss"
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(20):
            assert found.get("k", "miss") == "miss"
        then = time.monotonic() - started
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    # The first call waited for its timeout; the next twenty did not wait at all.
    assert first >= 0.4
    assert then < first
