"""Per-user live events for the portal (SSE): publish from call control, subscribe from the API.

Each user has a short replay buffer so a client reconnecting with Last-Event-ID misses nothing recent.
Runs on the event loop thread only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class UserEvent:
    id: int
    user_id: str
    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, **self.data}


class EventBus:
    def __init__(self, replay: int = 200, queue_size: int = 1000) -> None:
        self._ids = itertools.count(1)
        self._recent: dict[str, deque[UserEvent]] = {}
        self._subs: dict[str, set[asyncio.Queue[UserEvent | None]]] = {}
        self._replay = replay
        self._queue_size = queue_size
        self.closed = False

    def publish(self, user_id: str, kind: str, data: dict[str, Any]) -> UserEvent:
        ev = UserEvent(next(self._ids), user_id, kind, data)
        self._recent.setdefault(user_id, deque(maxlen=self._replay)).append(ev)
        for q in list(self._subs.get(user_id, ())):
            if q.full():  # a stalled client loses its oldest events, never blocks call control
                q.get_nowait()
            q.put_nowait(ev)
        return ev

    def recent(self, user_id: str, after_id: int = 0) -> list[UserEvent]:
        return [e for e in self._recent.get(user_id, ()) if e.id > after_id]

    async def subscribe(self, user_id: str, after_id: int | None = None) -> AsyncIterator[UserEvent | None]:
        """Live events of one user until the bus closes (shutdown ends every stream). The first item is None,
        once the subscription is registered: a client told "subscribed" then cannot miss an event."""
        if self.closed:
            return
        q: asyncio.Queue[UserEvent | None] = asyncio.Queue(self._queue_size)
        self._subs.setdefault(user_id, set()).add(q)
        try:
            yield None
            last = 0
            if after_id is not None:
                for old in self.recent(user_id, after_id):
                    last = old.id
                    yield old
            while True:
                ev = await q.get()
                if ev is None:
                    return
                if ev.id > last:
                    yield ev
        finally:
            self._subs[user_id].discard(q)

    def close(self) -> None:
        self.closed = True
        for subs in self._subs.values():
            for q in subs:
                if q.full():
                    q.get_nowait()
                q.put_nowait(None)

    def forget(self, user_id: str) -> None:
        self._recent.pop(user_id, None)
