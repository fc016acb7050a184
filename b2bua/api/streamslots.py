"""How many live event streams may be open: per user (a portal in a few tabs and devices) and in all (each
stream holds a socket and a queue for as long as the client stays, and sockets are shared with RTP).

A stream takes a slot before its response starts, so a refusal is a plain 429; the slot is given back when the
response ends, however it ends (client gone, shutdown, error). Runs on the event loop thread only.
"""

from __future__ import annotations

from b2bua.ops.metrics import Metrics
from b2bua.telecommuter.errors import Refused

# a slot frees only when some client leaves: a client that was refused should not come straight back
RETRY_AFTER_S = 30


class StreamSlot:
    """One open stream's place; ``release`` is idempotent."""

    def __init__(self, slots: StreamSlots, user_id: str, metrics: Metrics) -> None:
        self._slots, self._user_id, self._metrics = slots, user_id, metrics
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._slots.give_back(self._user_id)
            self._metrics.event_streams.dec()


class StreamSlots:
    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._open: dict[str, int] = {}
        self.open = 0

    def of(self, user_id: str) -> int:
        return self._open.get(user_id, 0)

    def take(self, user_id: str, metrics: Metrics) -> StreamSlot:
        """A slot for one more stream of this user, or the 429 that says which limit was reached."""
        if self.of(user_id) >= self.per_user:
            metrics.event_streams_refused.labels("user").inc()
            raise Refused(429, "too-many-streams", f"this user already has {self.per_user} event streams open; "
                          "close one first", retry_after=RETRY_AFTER_S)
        if self.open >= self.total:
            metrics.event_streams_refused.labels("total").inc()
            raise Refused(429, "too-many-streams", f"the service has {self.total} event streams open, its limit",
                          retry_after=RETRY_AFTER_S)
        self._open[user_id] = self.of(user_id) + 1
        self.open += 1
        metrics.event_streams.inc()
        return StreamSlot(self, user_id, metrics)

    def give_back(self, user_id: str) -> None:
        left = self._open.pop(user_id) - 1
        if left:
            self._open[user_id] = left
        self.open -= 1
