"""Failures per source (password guessing): too many within a window and the source is blocked for a while.

Memory stays bounded whatever the number of sources: beyond ``max_sources`` the source whose last failure is
oldest is forgotten (and among blocked sources, the one whose block ends first). Not thread-safe: one thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(self, max_failures: int, window_s: float, block_s: float, *, max_sources: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.block_s = block_s
        self._max_sources = max_sources
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}  # source -> recent failure times; oldest last failure first
        self._blocked: dict[str, float] = {}  # source -> until; the block that ends first comes first

    def blocked_for(self, source: str) -> float:
        """Seconds the source stays blocked (0: it is not)."""
        self._unblock_expired()
        until = self._blocked.get(source)
        return 0.0 if until is None else until - self._clock()

    @property
    def blocked(self) -> int:
        """Sources blocked now."""
        self._unblock_expired()
        return len(self._blocked)

    def failed(self, source: str) -> bool:
        """Count one failure; True if it blocked the source (it happens once per block)."""
        now = self._clock()
        recent = self._failures.pop(source, None) or deque()
        recent.append(now)
        while now - recent[0] > self.window_s:
            recent.popleft()
        if len(recent) < self.max_failures:
            self._failures[source] = recent  # re-inserted: now the newest
            while len(self._failures) > self._max_sources:
                del self._failures[next(iter(self._failures))]
            return False
        self._blocked.pop(source, None)
        self._blocked[source] = now + self.block_s
        while len(self._blocked) > self._max_sources:
            del self._blocked[next(iter(self._blocked))]
        return True

    def _unblock_expired(self) -> None:
        now = self._clock()
        while self._blocked:
            source, until = next(iter(self._blocked.items()))
            if until > now:
                break
            del self._blocked[source]
