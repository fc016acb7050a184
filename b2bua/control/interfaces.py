"""The narrow interfaces call control works through: what it asks of the SIP engine (commands, any thread) and of
the domain (which numbers are ours, which calls are allowed, how a user's call is planned, what to record).

Call control implements none of the domain's rules itself; the composition root passes the implementations in.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from b2bua.calls.events import Action, Finished, Notify
from b2bua.calls.machine import Machine
from b2bua.sip.types import Admit, Headers, InboundInvite

if TYPE_CHECKING:
    from b2bua.control.active import ActiveCall

Feed = Callable[[float], list[Action]]  # given the time, feed a machine and return its actions


class Engine(Protocol):
    """Commands to the SIP engine. Each returns at once; the future completes on the SIP thread."""

    def new_leg_id(self) -> str: ...
    def make_call(self, leg_id: str, uri: str, from_uri: str,
                  headers: Headers = ...) -> concurrent.futures.Future[None]: ...
    def respond(self, leg_id: str, code: int, headers: Headers = ...) -> concurrent.futures.Future[None]: ...
    def hangup(self, leg_id: str, headers: Headers = ...) -> concurrent.futures.Future[None]: ...
    def link(self, a: str, b: str) -> concurrent.futures.Future[None]: ...
    def set_hold(self, leg_id: str, held: bool) -> concurrent.futures.Future[None]: ...
    def send_dtmf(self, leg_id: str, digits: str, duration_ms: int = ...) -> concurrent.futures.Future[None]: ...
    def play_tone(self, leg_id: str, name: str) -> concurrent.futures.Future[None]: ...
    def stop_tone(self, leg_id: str) -> concurrent.futures.Future[None]: ...
    def play_file(self, leg_id: str, path: str, loop: bool = ...) -> concurrent.futures.Future[None]: ...
    def stop_file(self, leg_id: str) -> concurrent.futures.Future[None]: ...
    def unlink(self, leg_id: str) -> concurrent.futures.Future[None]: ...
    def watch_media(self, leg_id: str, timeout_s: float) -> concurrent.futures.Future[None]: ...
    def record(self, leg_id: str, path: str) -> concurrent.futures.Future[None]: ...


@dataclass(frozen=True, slots=True)
class Local:
    """The called number belongs to us: a user (``user_id``), or a number we own that reaches nobody."""

    user_id: str = ""
    code: int = 404
    reason: str = "unknown-number"


@dataclass(frozen=True, slots=True)
class Attach:
    """Join an inbound leg to a running call (a keep-connected session) under ``role``, then apply ``feed``."""

    call_id: str
    role: str
    feed: Feed


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A new call for one of our users: the machine to run and what the API shows about it."""

    machine: Machine
    info: dict[str, Any]


class CallPolicy(Protocol):
    """What call control asks of the domain. ``lookup`` and ``transit_refusal`` run on the SIP thread for every
    INVITE: they may read immutable snapshots only and must not block; ``plan_user_call`` runs on asyncio."""

    def lookup(self, called: str, trunk: str) -> Local | None:
        """Is the called number ours? A user, a refusal for a number of ours that reaches nobody, or None."""

    def transit_refusal(self, trunk: str, called: str) -> tuple[str, str] | None:
        """For a trunk call routed out again: (rule, text) if the trunk's dialling rules refuse it."""

    def plan_user_call(self, invite: InboundInvite, admit: Admit) -> PlannedCall | Attach:
        """How a call to one of our users is handled: a new call, or a party joining a running session."""


class CallObserver(Protocol):
    """Told about every call's notable states and its end (call records, live events, voicemail)."""

    def on_notify(self, call: ActiveCall, notify: Notify) -> None: ...
    def on_finished(self, call: ActiveCall, finished: Finished) -> None: ...
