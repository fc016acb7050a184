"""A fake SIP engine for in-process tests: implements the ``Engine`` Protocol call control uses, records every
command, and lets a test play the far ends by handing engine events to the dispatcher.

It is deliberately dumb (no SIP, no media): tests of orchestration ask "what did call control tell the engine to
do" and "what happens when the engine reports X"; the e2e suite proves the real engine does it over SIP.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b2bua.control.interfaces import Engine
from b2bua.sip.types import (
    Admit,
    EngineEvent,
    Headers,
    InboundInvite,
    IncomingCall,
    LegAnswered,
    LegDtmf,
    LegEnded,
    LegMedia,
    LegProgress,
    Reject,
    ScreenResult,
)


@dataclass(frozen=True)
class Command:
    name: str
    leg: str
    args: tuple[Any, ...] = ()


@dataclass
class FakeEngine:
    """Commands complete at once (or fail, for legs named in ``failing``)."""

    commands: list[Command] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _record(self, name: str, leg: str, *args: Any) -> concurrent.futures.Future[None]:
        self.commands.append(Command(name, leg, args))
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        if leg in self.failing:
            fut.set_exception(RuntimeError(f"{name} failed on {leg}"))
        else:
            fut.set_result(None)
        return fut

    # ------------------------------------------------------------------------------ the Engine Protocol
    def new_leg_id(self) -> str:
        return f"F{next(self._ids)}"

    def make_call(self, leg_id: str, uri: str, from_uri: str, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self._record("make_call", leg_id, uri, from_uri, headers)

    def respond(self, leg_id: str, code: int, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self._record("respond", leg_id, code, headers)

    def hangup(self, leg_id: str, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self._record("hangup", leg_id, headers)

    def link(self, a: str, b: str) -> concurrent.futures.Future[None]:
        return self._record("link", a, b)

    def set_hold(self, leg_id: str, held: bool) -> concurrent.futures.Future[None]:
        return self._record("set_hold", leg_id, held)

    def send_dtmf(self, leg_id: str, digits: str, duration_ms: int = 160) -> concurrent.futures.Future[None]:
        return self._record("send_dtmf", leg_id, digits, duration_ms)

    def play_tone(self, leg_id: str, name: str) -> concurrent.futures.Future[None]:
        return self._record("play_tone", leg_id, name)

    def stop_tone(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self._record("stop_tone", leg_id)

    def play_file(self, leg_id: str, path: str, loop: bool = False) -> concurrent.futures.Future[None]:
        return self._record("play_file", leg_id, path, loop)

    def stop_file(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self._record("stop_file", leg_id)

    def unlink(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self._record("unlink", leg_id)

    def watch_media(self, leg_id: str, timeout_s: float) -> concurrent.futures.Future[None]:
        return self._record("watch_media", leg_id, timeout_s)

    def record(self, leg_id: str, path: str) -> concurrent.futures.Future[None]:
        return self._record("record", leg_id, path)

    # ------------------------------------------------------------------------------ for the tests
    def named(self, name: str) -> list[Command]:
        return [c for c in self.commands if c.name == name]

    def calls_placed(self) -> list[Command]:
        return self.named("make_call")

    def responses(self, leg: str) -> list[int]:
        return [c.args[0] for c in self.commands if c.name == "respond" and c.leg == leg]

    def clear(self) -> None:
        self.commands.clear()


def _typecheck(engine: FakeEngine) -> Engine:
    return engine  # mypy proves the fake satisfies the Protocol call control uses


def invite(leg_id: str = "IN1", *, called: str = "15557654321", from_user: str = "15551230001",
           from_display: str = "", src_ip: str = "127.0.0.2", headers: Headers = (), sdp: str = "") -> InboundInvite:
    return InboundInvite(leg_id=leg_id, src_ip=src_ip, src_port=5060, request_uri=f"sip:{called}@127.0.0.1",
                         called=called, from_uri=f"sip:{from_user}@{src_ip}", from_user=from_user,
                         from_display=from_display, to_uri=f"sip:{called}@127.0.0.1", sip_call_id=f"cid-{leg_id}",
                         headers=headers, received_at=0.0, sdp=sdp)


@dataclass
class FarEnds:
    """Plays the SIP peers: screens an INVITE like the SIP thread would, then reports leg events."""

    screen: Callable[[InboundInvite], ScreenResult]
    deliver: Callable[[EngineEvent], None]

    def call_in(self, inv: InboundInvite) -> ScreenResult:
        result = self.screen(inv)
        if isinstance(result, Admit):
            self.deliver(IncomingCall(inv, result))
        else:
            assert isinstance(result, Reject)
        return result

    def ringing(self, leg: str, code: int = 180) -> None:
        self.deliver(LegProgress(leg, code))

    def early_media(self, leg: str) -> None:
        self.deliver(LegMedia(leg, active=True, remote_hold=False, early=True))

    def answered(self, leg: str) -> None:
        self.deliver(LegAnswered(leg))
        self.deliver(LegMedia(leg, active=True, remote_hold=False, early=False))

    def held(self, leg: str, held: bool = True) -> None:
        self.deliver(LegMedia(leg, active=True, remote_hold=held, early=False))

    def ended(self, leg: str, code: int = 200, reason: str = "") -> None:
        self.deliver(LegEnded(leg, code, reason))

    def dtmf(self, leg: str, digit: str, duration_ms: int = 160) -> None:
        self.deliver(LegDtmf(leg, digit, duration_ms))
