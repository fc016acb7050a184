"""Presence: a status (available, away, busy, do-not-disturb, offline) and a message, set by the user and stored,
shown at once on every client of the user (their event stream) and of their colleagues (the company-wide
presence channel). A user on a call shows as busy while it lasts, whatever they set (their own status comes back
after); do-not-disturb is the stored status routing reads.

Which calls count: an incoming call once answered (at a desk or the telecommuter phone, not by voicemail), a
callback once the user's phone answered, a keep-connected session's party call while connected (held or parked
too); the keep-connected line itself and test calls do not. Calls live in memory: after a restart there are none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from b2bua.calls.machine import CallKind
from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.telecommuter.users import PresenceState, PresenceStatus, User, UserRepository

CHANNEL = "*presence"  # the event bus channel every user's presence changes go to (never a user id: those are hex)
_TALKING = {CallKind.INCOMING: "connected", CallKind.CALLBACK: "user-answered"}


class Presence:
    def __init__(self, repository: UserRepository, bus: EventBus, clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.bus = bus
        self.clock = clock
        self._calls: dict[str, set[str]] = {}  # user id -> the calls (or session parties) they are talking on

    # ------------------------------------------------------------------------------------------ reading
    def of(self, user: User) -> dict[str, Any]:
        return self._view(user, self.repository.presence(user.id))

    def everyone(self) -> list[dict[str, Any]]:
        """Every user's presence, as colleagues see it (by extension)."""
        stored = {p.user_id: p for p in self.repository.presences()}
        users = sorted(self.repository.list_users(), key=lambda u: u.extension)
        return [self._view(u, stored.get(u.id)) for u in users]

    def dnd(self, user_id: str) -> bool:
        """The user asked not to be disturbed (their own status, not a call's busy)."""
        state = self.repository.presence(user_id)
        return state is not None and state.status is PresenceStatus.DND

    def on_call(self, user_id: str) -> bool:
        return bool(self._calls.get(user_id))

    # ------------------------------------------------------------------------------------------ changing
    def update(self, user: User, status: PresenceStatus, message: str) -> dict[str, Any]:
        state = PresenceState(user.id, status, " ".join(message.split()), self.clock())
        self.repository.set_presence(state)
        get_logger("telecommuter").info("presence", user_id=user.id, status=status.value)
        return self._publish(user, state)

    def call_state(self, user_id: str, call_id: str, kind: CallKind, state: str, detail: Mapping[str, Any]) -> None:
        """A call's state change (the runner's observer passes them on)."""
        if kind is CallKind.SESSION:
            party = f"{call_id}/{detail.get('call', '')}"
            if state == "call-connected":
                self._talking(user_id, lambda calls: calls.add(party))
            elif state == "call-ended":
                self._talking(user_id, lambda calls: calls.discard(party))
            elif state == "session-ended":
                self.call_ended(user_id, call_id)
        elif _TALKING.get(kind) == state:
            self._talking(user_id, lambda calls: calls.add(call_id))

    def call_ended(self, user_id: str, call_id: str) -> None:
        def drop(calls: set[str]) -> None:
            calls.difference_update({c for c in calls if c == call_id or c.startswith(f"{call_id}/")})

        self._talking(user_id, drop)

    def _talking(self, user_id: str, change: Callable[[set[str]], object]) -> None:
        """Change the user's calls; publish only when being on a call started or stopped."""
        calls = self._calls.setdefault(user_id, set())
        was = bool(calls)
        change(calls)
        now = bool(calls)
        if not calls:
            del self._calls[user_id]
        if was != now:
            user = self.repository.get_user(user_id)
            if user is not None:
                self._publish(user, self.repository.presence(user_id))

    def _publish(self, user: User, state: PresenceState | None) -> dict[str, Any]:
        view = self._view(user, state)
        self.bus.publish(user.id, "presence", view)
        self.bus.publish(CHANNEL, "presence", view)
        return view

    def _view(self, user: User, state: PresenceState | None) -> dict[str, Any]:
        """``status`` is what others see (busy on a call), ``set_status`` what the user chose."""
        chosen = state.status if state else PresenceStatus.AVAILABLE
        on_call = self.on_call(user.id)
        return {"user_id": user.id, "name": user.name, "extension": user.extension,
                "status": (PresenceStatus.BUSY if on_call else chosen).value, "set_status": chosen.value,
                "message": state.message if state else "", "on_call": on_call,
                "updated_at": state.updated_at if state else None}
