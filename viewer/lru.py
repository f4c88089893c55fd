"""A small thread-safe map that keeps the most recently used entries of this process.

Bounded by a number of entries, by a total weight (e.g. bytes), or both; entries may
also expire a fixed time after they were set. Per process: nothing here is shared
between workers, so what it holds is only ever a copy of what the database or the
stored files already say. Values are never None: ``get`` answers None for a key it does
not hold (or holds no longer).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """The most recently used entries: at most ``entries`` of them, weighing at most
    ``max_weight`` together (each ``weight(value)``), each kept at most ``seconds`` after
    it was set. Reading or writing an entry makes it the most recent; the least recently
    used goes first. A value heavier than ``max_weight`` alone is not kept."""

    def __init__(
        self,
        *,
        entries: int | None = None,
        max_weight: int | None = None,
        weight: Callable[[V], int] | None = None,
        seconds: float | None = None,
    ) -> None:
        if entries is None and max_weight is None:
            raise ValueError("an Lru needs a bound: entries, max_weight or both")
        if (max_weight is None) != (weight is None):
            raise ValueError("max_weight and weight go together")
        self._items: OrderedDict[K, tuple[V, int, float]] = OrderedDict()
        self._entries = entries
        self._max_weight = max_weight
        self._weight = weight
        self._seconds = seconds
        self.used = 0  # the total weight held
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[2] < time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return found[0]

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self._items)

    def set(self, key: K, value: V) -> None:
        weight = self._weight(value) if self._weight is not None else 0
        if self._max_weight is not None and weight > self._max_weight:
            return
        expires = time.monotonic() + self._seconds if self._seconds is not None else float("inf")
        with self._lock:
            self._drop(key)
            self._items[key] = (value, weight, expires)
            self.used += weight
            while (self._entries is not None and len(self._items) > self._entries) or (
                self._max_weight is not None and self.used > self._max_weight
            ):
                self._drop(next(iter(self._items)))

    def _drop(self, key: K) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self.used -= found[1]

    def forget(self, key: K) -> None:
        with self._lock:
            self._drop(key)

    def forget_where(self, matches: Callable[[K], bool]) -> None:
        """Drop every entry whose key ``matches``."""
        with self._lock:
            for key in [k for k in self._items if matches(k)]:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used = 0
