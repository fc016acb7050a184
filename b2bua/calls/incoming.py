"""A call for a user (DID or extension) as a sans-I/O state machine: ring where the user is, else voicemail or
busy/unavailable.

Roles: ``caller`` (the inbound leg) and ``user`` (the leg to the telecommuter number or the desk device).
The caller gets a plain 180 while the user's phone rings; the user leg's early media is *not* relayed, because
a mobile network's "subscriber not reachable" announcement must not reach the caller when voicemail is about to
take the call instead.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from b2bua.calls.events import (
    Action,
    Answer,
    Answered,
    CancelTimer,
    Dtmf,
    Ended,
    Event,
    Finished,
    Hangup,
    Headers,
    HoldChanged,
    Link,
    Notify,
    PlaceCall,
    PlayFile,
    Respond,
    Role,
    SendDtmf,
    SetHold,
    StartRecording,
    StartTimer,
    Terminate,
    TimerFired,
    reason_header,
)

RING, GREETING, MESSAGE = "ring", "greeting", "message"
END_MESSAGE_DIGIT = "#"
MIN_MESSAGE_S = 0.5  # shorter "messages" are callers hanging up at the beep


class State(enum.Enum):
    RINGING = "ringing"
    CONNECTED = "connected"
    GREETING = "greeting"
    RECORDING = "recording"
    ENDING = "ending"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Ring:
    uri: str
    from_uri: str
    headers: Headers
    where: str  # "telecommuter" or "desk"


@dataclass(frozen=True, slots=True)
class VoicemailPlan:
    message_id: str
    greeting_path: str
    greeting_s: float
    record_path: str
    max_message_s: float


@dataclass(frozen=True, slots=True)
class IncomingPlan:
    """Decided when the INVITE arrived: where to ring, for how long, and what happens if nobody answers."""

    ring: Ring | None
    ring_timeout_s: float
    voicemail: VoicemailPlan | None  # None: busy/unavailable instead
    no_ring_reason: str = ""  # why ``ring`` is None: "logged-out", "line-busy", "paging"
    details: Mapping[str, Any] = field(default_factory=dict)  # caller, caller_name, called, trunk: for events


# what the user leg's failure means for the caller when there is no voicemail
_FALLBACK = {"busy": 486, "declined": 486, "no-answer": 480, "unreachable": 480, "logged-out": 486,
             "line-busy": 486, "paging": 480}


def _user_failure(code: int) -> str:
    if code in (486, 600):
        return "busy"
    if code in (603, 403):
        return "declined"
    if code in (408, 480, 487):
        return "no-answer"
    return "unreachable"


@dataclass
class IncomingCall:
    plan: IncomingPlan
    state: State = State.RINGING
    started_at: float = 0.0
    answered_at: float | None = None
    recording_since: float | None = None
    live: dict[str, bool] = field(default_factory=lambda: {Role.CALLER: True, Role.USER: False})
    held_by: dict[str, bool] = field(default_factory=lambda: {Role.CALLER: False, Role.USER: False})
    outcome: str = ""
    code: int = 0

    @property
    def done(self) -> bool:
        return self.state is State.ENDED

    @property
    def state_name(self) -> str:
        return self.state.value

    @property
    def holds_user_line(self) -> bool:
        return self.live[Role.USER]

    def start(self, now: float) -> list[Action]:
        self.started_at = now
        p = self.plan
        if p.ring is None:
            return self._fallback(p.no_ring_reason or "logged-out", now)
        self.live[Role.USER] = True
        return [
            PlaceCall(Role.USER, p.ring.uri, p.ring.from_uri, p.ring.headers),
            Respond(Role.CALLER, 180),
            StartTimer(RING, p.ring_timeout_s),
            Notify("ringing", {**p.details, "ringing": p.ring.where}),
        ]

    def handle(self, event: Event, now: float) -> list[Action]:
        if self.state is State.ENDED:
            return []
        match event:
            case Answered(role=Role.USER):
                return self._user_answered(now)
            case Ended():
                return self._ended(event, now)
            case HoldChanged():
                if self.state is not State.CONNECTED or self.held_by[event.role] == event.held:
                    return []
                self.held_by[event.role] = event.held
                return [SetHold(Role.USER if event.role == Role.CALLER else Role.CALLER, event.held),
                        Notify("held" if event.held else "resumed", {"by": event.role})]
            case Dtmf():
                return self._dtmf(event)
            case TimerFired():
                return self._timer(event.name, now)
            case Terminate():
                return self._terminate(event.cause, now)
        return []

    # ------------------------------------------------------------------------------------------ steps
    def _user_answered(self, now: float) -> list[Action]:
        if self.state is State.RINGING:
            self.state = State.CONNECTED
            self.answered_at = now
            self.code = 200
            return [CancelTimer(RING), Answer(Role.CALLER), Link(Role.CALLER, Role.USER),
                    Notify("connected", dict(self.plan.details))]
        if self.live[Role.USER]:  # answered after we gave up on it (timeout, caller gone)
            return [Hangup(Role.USER, "call no longer wanted")]
        return []

    def _dtmf(self, ev: Dtmf) -> list[Action]:
        if self.state is State.CONNECTED:
            return [SendDtmf(Role.USER if ev.role == Role.CALLER else Role.CALLER, ev.digit, ev.duration_ms)]
        if self.state is State.RECORDING and ev.role == Role.CALLER and ev.digit == END_MESSAGE_DIGIT:
            return [CancelTimer(MESSAGE), Hangup(Role.CALLER, "message complete")]
        return []

    def _fallback(self, why: str, now: float) -> list[Action]:
        """Nobody takes the call: voicemail if the user has it, else busy/unavailable to the caller."""
        vm = self.plan.voicemail
        if vm is not None and self.live[Role.CALLER]:
            self.state = State.GREETING
            self.answered_at = now
            self.code = 200
            return [Answer(Role.CALLER), PlayFile(Role.CALLER, vm.greeting_path), StartTimer(GREETING, vm.greeting_s),
                    Notify("voicemail", {**self.plan.details, "because": why})]
        code = _FALLBACK.get(why, 480)
        self.outcome, self.code = why, code
        self.state = State.ENDING
        acts: list[Action] = [Notify("unanswered", {**self.plan.details, "because": why, "code": code})]
        if self.live[Role.CALLER]:
            text = "Busy Here" if code == 486 else "Temporarily Unavailable"
            acts.append(Respond(Role.CALLER, code, headers=reason_header(code, text)))
        return acts + self._maybe_finish(now)

    def _ended(self, ev: Ended, now: float) -> list[Action]:
        role = ev.role
        if not self.live[role]:
            return []
        self.live[role] = False
        st = self.state
        if role == Role.USER:
            if st is State.RINGING:
                return [CancelTimer(RING), *self._fallback(_user_failure(ev.code), now)]
            if st is State.CONNECTED:
                self.outcome = "completed-user-hangup"
                self.state = State.ENDING
                return [Hangup(Role.CALLER, "remote hangup"), *self._maybe_finish(now)]
            return self._maybe_finish(now)
        # the caller's leg is gone
        if st is State.RINGING:
            self.outcome, self.code = "cancelled", 487
            self.state = State.ENDING
            return [CancelTimer(RING), Hangup(Role.USER, "caller cancelled"), *self._maybe_finish(now)]
        if st is State.CONNECTED:
            self.outcome = "completed-caller-hangup"
            self.state = State.ENDING
            return [Hangup(Role.USER, "remote hangup"), *self._maybe_finish(now)]
        if st is State.GREETING:
            self.outcome = "voicemail-no-message"
            self.state = State.ENDING
            return [CancelTimer(GREETING), *self._maybe_finish(now)]
        if st is State.RECORDING:
            return [CancelTimer(MESSAGE), *self._message_done(now)]
        return self._maybe_finish(now)

    def _message_done(self, now: float) -> list[Action]:
        vm = self.plan.voicemail
        assert vm is not None and self.recording_since is not None
        duration = now - self.recording_since
        self.state = State.ENDING
        acts: list[Action] = []
        if duration >= MIN_MESSAGE_S:
            self.outcome = "voicemail"
            acts.append(Notify("voicemail-recorded", {**self.plan.details, "message_id": vm.message_id,
                                                      "path": vm.record_path, "duration_s": round(duration, 2)}))
        else:
            self.outcome = "voicemail-no-message"
            acts.append(Notify("voicemail-discarded", {"message_id": vm.message_id, "path": vm.record_path}))
        return acts + self._maybe_finish(now)

    def _timer(self, name: str, now: float) -> list[Action]:
        st = self.state
        if name == RING and st is State.RINGING:
            # the user leg stays "live" until its Ended arrives, so a 200 racing our CANCEL is hung up too
            return [Hangup(Role.USER, "no answer"), *self._fallback("no-answer", now)]
        if name == GREETING and st is State.GREETING:
            vm = self.plan.voicemail
            assert vm is not None
            self.state = State.RECORDING
            self.recording_since = now
            return [StartRecording(Role.CALLER, vm.record_path), StartTimer(MESSAGE, vm.max_message_s),
                    Notify("recording", {})]
        if name == MESSAGE and st is State.RECORDING:
            return [Hangup(Role.CALLER, "maximum message length")]
        return []

    def _terminate(self, cause: str, now: float) -> list[Action]:
        st = self.state
        if st is State.ENDING:
            return []
        if st is State.RECORDING:  # keep what was said so far
            return [CancelTimer(MESSAGE), Hangup(Role.CALLER, cause)]
        self.outcome = "terminated"
        self.state = State.ENDING
        acts: list[Action] = [CancelTimer(t) for t in (RING, GREETING)]
        if self.live[Role.USER]:
            acts.append(Hangup(Role.USER, cause))
        if self.live[Role.CALLER]:
            if st is State.RINGING:
                acts.append(Respond(Role.CALLER, 503, headers=reason_header(503, cause)))
            else:
                acts.append(Hangup(Role.CALLER, cause))
        return acts + self._maybe_finish(now)

    def _maybe_finish(self, now: float) -> list[Action]:
        if self.live[Role.CALLER] or self.live[Role.USER]:
            return []
        self.state = State.ENDED
        return [Notify("ended", {**self.plan.details, "outcome": self.outcome or "unknown", "code": self.code}),
                Finished(self.outcome or "unknown", self.code, self.answered_at, now)]
