"""Writes the database refused for now (disk full, read-only, file deleted): kept in order in memory and tried
again before the next write and by the periodic upkeep, so a passing store fault loses no call record and no
voicemail message.

Bounded: past ``limit`` the oldest write is given up, logged in full at error level (the log then holds what the
database could not); whatever still waits when the node stops is logged the same way."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics

KINDS = ("cdr", "voicemail")


@dataclass(eq=False)
class _Write:
    kind: str  # "cdr" or "voicemail": the metric's label
    record: dict[str, Any]  # what is written, for the log if it never is
    apply: Callable[[], None]  # the write itself (and whatever must follow it, e.g. the user's event)
    since: float = field(default_factory=time.time)


class PendingWrites:
    def __init__(self, metrics: Metrics, limit: int = 10_000) -> None:
        self.metrics = metrics
        self.limit = limit
        self.error = ""  # why the store refused the first waiting write ("" when nothing waits)
        self._queue: deque[_Write] = deque()
        self._counts: Counter[str] = Counter()
        self._log = get_logger("store")
        for kind in KINDS:
            metrics.pending_writes.labels(kind).set(0)

    def write(self, kind: str, record: dict[str, Any], apply: Callable[[], None]) -> bool:
        """Write now, after whatever already waits (order is kept); False: the store refused, the write waits."""
        w = _Write(kind, record, apply)
        self._queue.append(w)
        self._counts[kind] += 1
        self.metrics.pending_writes.labels(kind).set(self._counts[kind])
        while len(self._queue) > self.limit:
            self._drop(self._queue[0], "too many writes waiting for the database")
        self.retry()
        return w not in self._queue

    def retry(self) -> int:
        """Try the waiting writes in order, stopping at the first the store still refuses; returns how many wait."""
        done = 0
        while self._queue:
            w = self._queue[0]
            try:
                w.apply()
            except sqlite3.IntegrityError as e:  # written after all (a retry of a write that did land)
                self._log.warning("waiting write already in the database", kind=w.kind, error=str(e))
            except (sqlite3.Error, OSError) as e:  # the disk or the database, not the write: it waits
                self._refused(w, str(e))
                break
            except Exception:
                self._log.exception("waiting write failed, given up", kind=w.kind, record=w.record)
            self._remove(w)
            done += 1
        if done and self.error and not self._queue:
            self._log.info("database writes resumed: every waiting write is in", written=done)
            self.error = ""
        return len(self._queue)

    def pending(self, kind: str | None = None) -> int:
        return len(self._queue) if kind is None else self._counts[kind]

    def waiting(self, kind: str) -> list[dict[str, Any]]:
        """The records of ``kind`` the database has not taken yet, oldest first: readers show them as written."""
        return [w.record for w in self._queue if w.kind == kind] if self._counts[kind] else []

    def give_up(self) -> None:
        """The node is stopping: what the database never took goes to the log, in full."""
        for w in list(self._queue):
            self._drop(w, "the node stopped before the database took it")

    def _refused(self, w: _Write, error: str) -> None:
        if error != self.error:
            self._log.error("database refused a write: kept in memory and retried", kind=w.kind, error=error,
                            waiting=len(self._queue))
        self.error = error

    def _drop(self, w: _Write, why: str) -> None:
        self._log.error("write given up: " + why, kind=w.kind, record=w.record, waiting_since=w.since)
        self._remove(w)

    def _remove(self, w: _Write) -> None:
        self._queue.remove(w)
        self._counts[w.kind] -= 1
        self.metrics.pending_writes.labels(w.kind).set(self._counts[w.kind])
