"""A Redis cache that fails open: with Redis down or hung, Loupe keeps serving, slower.

Django's RedisCache raises ``redis.exceptions.RedisError`` from every call when Redis is
unreachable, so every request reading a cached session (``cached_db``), a rendered image
or a counter would answer 500. Here each call that fails answers as a miss (``get``: the
default; ``add``: False; ``set``, ``delete``: nothing done) and, for ``BREAK_SECONDS``
after a failure, calls do not try Redis at all (a hung Redis would otherwise cost each
call its socket timeout). What is cached has its source of truth elsewhere: sessions
and share links in the database, rendered bytes made again; counters (rate limits, the
share guess counter) count nothing while Redis is away, which is the price of serving.

``unreachable()`` asks Redis itself (a PING), for ``/readyz``: the cache failing open must
not read as healthy there.

Logouts while Redis is down delete the session row but cannot delete its cached copy:
run Redis as a cache (no persistence, ``--save ''``), so that a Redis that comes back
comes back empty (README "Deploying").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")
BREAK_SECONDS = 5.0


class FailOpenRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._broken_until = 0.0
        self._lock = threading.Lock()

    def _try(self, call: Callable[[], T], fallback: T) -> T:
        if time.monotonic() < self._broken_until:
            return fallback
        try:
            return call()
        except RedisError as exc:
            with self._lock:
                if time.monotonic() >= self._broken_until:
                    log.warning(
                        "cache: Redis failed (%s); serving without it for %.0f s",
                        type(exc).__name__,
                        BREAK_SECONDS,
                    )
                self._broken_until = time.monotonic() + BREAK_SECONDS
            return fallback

    def unreachable(self) -> str | None:
        """None when Redis answers a PING now (never through the breaker), else the
        class of the error (``ConnectionError``, ``TimeoutError`` for a hung Redis)."""
        try:
            client = self._cache.get_client(write=False)  # type: ignore[attr-defined]
            client.ping()
        except RedisError as exc:
            return type(exc).__name__
        return None

    def reachable(self) -> bool:
        return self.unreachable() is None

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        return self._try(lambda: RedisCache.add(self, key, value, timeout, version), False)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._try(lambda: RedisCache.get(self, key, default, version), default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._try(lambda: RedisCache.set(self, key, value, timeout, version), None)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self._try(lambda: RedisCache.touch(self, key, timeout, version), False)

    def delete(self, key: Any, version: Any = None) -> bool:
        return self._try(lambda: RedisCache.delete(self, key, version), False)

    def get_many(self, keys: Any, version: Any = None) -> dict[Any, Any]:
        return self._try(lambda: RedisCache.get_many(self, keys, version), {})

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self._try(lambda: RedisCache.has_key(self, key, version), False)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        # A missing key raises ValueError (Django's contract); Redis away counts nothing.
        return self._try(lambda: RedisCache.incr(self, key, delta, version), 0)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> list[Any]:
        return self._try(lambda: RedisCache.set_many(self, data, timeout, version), list(data))

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._try(lambda: RedisCache.delete_many(self, keys, version), None)

    def clear(self) -> None:
        self._try(lambda: RedisCache.clear(self), None)
