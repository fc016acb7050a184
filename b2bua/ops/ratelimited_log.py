"""Log lines that a flood could repeat (refused requests, failed logins) without letting the flood write the log.

Each line names a key (a source address, a reason, or both): at most ``lines`` lines per key are written in an
interval that starts with the key's first line; the rest are only counted. Once the interval is over, one line
says how many were left out (``"<event>: suppressed K similar lines"``, carrying the last left-out line's fields
and ``suppressed=K``). The operator sees that something repeats and how often, never thousands of copies of it.

Not thread-safe: use one per thread (the asyncio thread in practice).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Level = Literal["debug", "info", "warning", "error"]


class SupportsInc(Protocol):
    """A counter to add left-out lines to (a ``prometheus_client`` Counter or one of its labelled children)."""

    def inc(self, amount: float = 1) -> None: ...


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0
    level: Level = "info"
    event: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


class RateLimitedLog:
    """``log(level, key, event, **fields)`` writes through ``logger`` unless ``key`` has used up its lines for
    the current interval. Summaries of finished intervals are written by the next ``log`` or ``flush`` call."""

    def __init__(self, logger: Any, *, lines: int = 1, interval_s: float = 60.0, max_keys: int = 10_000,
                 suppressed: SupportsInc | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if lines < 1 or interval_s <= 0 or max_keys < 1:
            raise ValueError("lines and max_keys must be at least 1, interval_s above 0")
        self._logger = logger
        self._lines = lines
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._counter = suppressed
        self._clock = clock
        self._windows: dict[Hashable, _Window] = {}  # oldest interval first: finished ones are found at the front
        self.suppressed_total = 0

    def log(self, level: Level, key: Hashable, event: str, **fields: Any) -> bool:
        """Write the line, or count it as left out; True if it was written."""
        now = self._clock()
        self._roll_over(now)
        window = self._windows.get(key)
        if window is None:
            while len(self._windows) >= self._max_keys:  # bounded: the oldest interval ends early
                self._finish(next(iter(self._windows)))
            window = self._windows[key] = _Window(now)
        if window.written < self._lines:
            window.written += 1
            getattr(self._logger, level)(event, **fields)
            return True
        window.suppressed += 1
        window.level, window.event, window.fields = level, event, fields
        self.suppressed_total += 1
        if self._counter is not None:
            self._counter.inc()
        return False

    def flush(self, everything: bool = False) -> int:
        """Write the summaries of finished intervals (of all of them with ``everything``, e.g. at shutdown);
        returns how many summary lines were written."""
        return self._roll_over(float("inf") if everything else self._clock())

    def _roll_over(self, now: float) -> int:
        summaries = 0
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if now - window.started < self._interval_s:
                break
            summaries += self._finish(key)
        return summaries

    def _finish(self, key: Hashable) -> int:
        window = self._windows.pop(key)
        if not window.suppressed:
            return 0
        getattr(self._logger, window.level)(f"{window.event}: suppressed {window.suppressed} similar lines",
                                            **{**window.fields, "suppressed": window.suppressed,
                                               "interval_s": self._interval_s})
        return 1
