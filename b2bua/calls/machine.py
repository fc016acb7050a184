"""What the runner may read of a call state machine, and the kinds of call it runs.

Every machine in ``b2bua.calls`` implements :class:`Machine`; the runner reads nothing else of it (no duck
typing), so a new kind of call only has to satisfy this Protocol to be run, listed by the API and counted
against the user's line.
"""

from __future__ import annotations

import enum
from typing import Protocol

from b2bua.calls.events import Action, Event


class CallKind(enum.StrEnum):
    """Which product feature a running call belongs to (a metrics label and an API field)."""

    TRUNK = "trunk"  # a carrier's call routed out again
    INCOMING = "incoming"  # a call to one of our users' numbers
    CALLBACK = "callback"  # the user's phone first, then the target
    TEST = "test"  # the activation test call to a telecommuter number
    SESSION = "session"  # a keep-connected session (persistent leg plus its parties)


class Machine(Protocol):
    """A sans-I/O call: events and the time in, actions out."""

    @property
    def answered_at(self) -> float | None:
        """Monotonic time the call was answered (None: never), for durations in call records."""

    @property
    def done(self) -> bool:
        """True once the machine has emitted ``Finished``."""

    @property
    def state_name(self) -> str:
        """The state as the API shows it (a short fixed word)."""

    @property
    def holds_user_line(self) -> bool:
        """True while this call rings or holds the user's telecommuter phone (the line is one call, plus one
        waiting call at most)."""

    def start(self, now: float) -> list[Action]: ...

    def handle(self, event: Event, now: float) -> list[Action]: ...
