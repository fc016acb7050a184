"""A call for a user (DID or extension) as a sans-I/O state machine: ring where the user is (and the twinned
number beside it), else forward, voicemail or busy/unavailable.

Roles: ``caller`` (the inbound leg), ``user`` (the telecommuter number, the desk device, or an unconditional
forward), ``twin`` (the twinned number, ringing in parallel) and ``forward`` (the forward number on busy or no
answer). The first ringing leg to answer wins (a leg with a confirmation digit only once it is pressed, so a
mobile's voicemail cannot win); the others are CANCELled with ``Reason: SIP;cause=200`` (RFC 3326).
The caller gets a plain 180 while phones ring; their early media is *not* relayed, because a mobile network's
"subscriber not reachable" announcement must not reach the caller when voicemail is about to take the call instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

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
    HoldChanged,
    Link,
    Notify,
    PlaceCall,
    PlayFile,
    PlayTone,
    Respond,
    Role,
    RoleName,
    SendDtmf,
    SetHold,
    StartRecording,
    StartTimer,
    StopTone,
    Terminate,
    TimerFired,
    reason_header,
)
from b2bua.calls.incoming_plan import (
    FALLBACK,
    FORWARD_ON,
    MIN_MESSAGE_S,
    Forwards,
    IncomingPlan,
    Ring,
    VoicemailPlan,
    user_failure,
)

__all__ = ["MIN_MESSAGE_S", "Forwards", "IncomingCall", "IncomingPlan", "Ring", "State", "VoicemailPlan"]

RING, GREETING, MESSAGE, CONFIRM = "ring", "greeting", "message", "confirm"
END_MESSAGE_DIGIT = "#"
ELSEWHERE = reason_header(200, "Call completed elsewhere")
_FAR = (Role.USER, Role.TWIN, Role.FORWARD)  # every leg that may ring for the user


class State(enum.Enum):
    RINGING = "ringing"
    CONNECTED = "connected"
    GREETING = "greeting"
    RECORDING = "recording"
    ENDING = "ending"
    ENDED = "ended"


@dataclass
class IncomingCall:
    plan: IncomingPlan
    state: State = State.RINGING
    started_at: float = 0.0
    answered_at: float | None = None
    recording_since: float | None = None
    live: dict[str, bool] = field(default_factory=lambda: {Role.CALLER: True, Role.USER: False, Role.TWIN: False,
                                                           Role.FORWARD: False})
    held_by: dict[str, bool] = field(default_factory=dict)
    outcome: str = ""
    code: int = 0
    peer: RoleName = Role.USER  # the leg that answered (once connected)
    ringing: dict[RoleName, Ring] = field(default_factory=dict)  # legs ringing now (or awaiting their digit)
    confirming: RoleName = ""  # the leg that answered and must press its digit
    failures: dict[RoleName, str] = field(default_factory=dict)
    forwarded: bool = False
    alerted: bool = False  # the caller has had its 180

    @property
    def done(self) -> bool:
        return self.state is State.ENDED

    @property
    def state_name(self) -> str:
        return self.state.value

    @property
    def holds_user_line(self) -> bool:
        return self.live[Role.USER] or self.live[Role.TWIN]

    def start(self, now: float) -> list[Action]:
        self.started_at = now
        p = self.plan
        legs = [(r, ring) for r, ring in ((Role.USER, p.ring), (Role.TWIN, p.twin)) if ring is not None]
        if not legs:
            return self._next(p.no_ring_reason or "logged-out", now)
        acts: list[Action] = []
        for role, ring in legs:
            acts += self._place(role, ring)
        self.alerted = True
        where = {"ringing": legs[0][1].where, **({"twin": p.twin.where} if p.twin and p.ring else {})}
        return [*acts, Respond(Role.CALLER, 180), StartTimer(RING, p.ring_timeout_s),
                Notify("ringing", {**p.details, **where})]

    def handle(self, event: Event, now: float) -> list[Action]:
        if self.state is State.ENDED:
            return []
        match event:
            case Answered():
                return self._answered(event.role, now)
            case Ended():
                return self._ended(event, now)
            case HoldChanged():
                return self._hold(event)
            case Dtmf():
                return self._dtmf(event, now)
            case TimerFired():
                return self._timer(event.name, now)
            case Terminate():
                return self._terminate(event.cause, now)
        return []

    # ------------------------------------------------------------------------------------------ ringing
    def _place(self, role: RoleName, ring: Ring) -> list[Action]:
        self.live[role] = True
        self.ringing[role] = ring
        return [PlaceCall(role, ring.uri, ring.from_uri, ring.headers)]

    def _answered(self, role: RoleName, now: float) -> list[Action]:
        ring = self.ringing.get(role)
        if self.state is State.RINGING and ring is not None:
            if not ring.confirm_digit:
                return self._win(role, now)
            self.confirming = role  # the others ring on until the digit comes
            return [PlayTone(role, "prompt"), StartTimer(CONFIRM, self.plan.confirm_timeout_s),
                    Notify("confirming", {"leg": ring.where, "digit": ring.confirm_digit})]
        # a far leg answered after we gave up on it (timeout, caller gone, answered elsewhere); the caller's own
        # leg reports Answered too (its ACK to our 200), as does the winner if told twice: neither is hung up
        if role in _FAR and self.live.get(role) and not (self.state is State.CONNECTED and role == self.peer):
            return [Hangup(role, "call no longer wanted")]
        return []

    def _win(self, role: RoleName, now: float) -> list[Action]:
        where = self.ringing[role].where
        others = [r for r in self.ringing if r != role]
        acts: list[Action] = [CancelTimer(RING)]
        if self.confirming:
            acts.append(CancelTimer(CONFIRM))
            if self.confirming == role:
                acts.append(StopTone(role))
        acts += [Hangup(r, "completed elsewhere", ELSEWHERE) for r in others]
        self.ringing.clear()
        self.confirming = ""
        self.state, self.peer, self.answered_at, self.code = State.CONNECTED, role, now, 200
        return [*acts, Answer(Role.CALLER), Link(Role.CALLER, role),
                Notify("connected", {**self.plan.details, "answered": where})]

    def _next(self, why: str, now: float) -> list[Action]:
        """Nobody took the call: the forwarding for ``why`` if set (once), else voicemail or busy/unavailable."""
        f: Forwards = self.plan.forwards
        which = FORWARD_ON.get(why)
        target = None if self.forwarded or which is None else getattr(f, which)
        if target is None or not self.live[Role.CALLER]:
            return self._fallback(why, now)
        self.forwarded = True
        acts = self._place(Role.FORWARD, target)
        if not self.alerted:
            self.alerted = True
            acts.append(Respond(Role.CALLER, 180))
        return [*acts, StartTimer(RING, f.ring_timeout_s),
                Notify("forwarding", {**self.plan.details, "because": why, "to": which})]

    def _unanswered(self, role: RoleName, why: str, now: float) -> list[Action]:
        """A ringing leg failed (or was dropped unconfirmed): the call moves on once no leg rings."""
        self.ringing.pop(role, None)
        self.failures[role] = why
        acts: list[Action] = []
        if self.confirming == role:
            self.confirming = ""
            acts.append(CancelTimer(CONFIRM))
        if self.ringing:
            return acts
        first = self.failures.get(Role.FORWARD) or self.failures.get(Role.USER) or why
        return [*acts, CancelTimer(RING), *self._next(first, now)]

    def _fallback(self, why: str, now: float) -> list[Action]:
        """Voicemail if the user has it (not for a forwarded call), else busy/unavailable to the caller."""
        vm = None if self.forwarded else self.plan.voicemail
        if vm is not None and self.live[Role.CALLER]:
            self.state = State.GREETING
            self.answered_at = now
            self.code = 200
            return [Answer(Role.CALLER), PlayFile(Role.CALLER, vm.greeting_path), StartTimer(GREETING, vm.greeting_s),
                    Notify("voicemail", {**self.plan.details, "because": why})]
        code = FALLBACK.get(why, 480)
        self.outcome, self.code = why, code
        self.state = State.ENDING
        acts: list[Action] = [Notify("unanswered", {**self.plan.details, "because": why, "code": code})]
        if self.live[Role.CALLER]:
            text = "Busy Here" if code == 486 else "Temporarily Unavailable"
            acts.append(Respond(Role.CALLER, code, headers=reason_header(code, text)))
        return acts + self._maybe_finish(now)

    # ------------------------------------------------------------------------------------------ connected
    def _hold(self, ev: HoldChanged) -> list[Action]:
        if self.state is not State.CONNECTED or ev.role not in (Role.CALLER, self.peer):
            return []
        if self.held_by.get(ev.role, False) == ev.held:
            return []
        self.held_by[ev.role] = ev.held
        return [SetHold(self.peer if ev.role == Role.CALLER else Role.CALLER, ev.held),
                Notify("held" if ev.held else "resumed", {"by": "caller" if ev.role == Role.CALLER else "user"})]

    def _dtmf(self, ev: Dtmf, now: float) -> list[Action]:
        st = self.state
        if st is State.CONNECTED and ev.role in (Role.CALLER, self.peer):
            return [SendDtmf(self.peer if ev.role == Role.CALLER else Role.CALLER, ev.digit, ev.duration_ms)]
        if st is State.RINGING and ev.role == self.confirming and ev.digit == self.ringing[ev.role].confirm_digit:
            return self._win(ev.role, now)
        if st is State.RECORDING and ev.role == Role.CALLER and ev.digit == END_MESSAGE_DIGIT:
            return [CancelTimer(MESSAGE), Hangup(Role.CALLER, "message complete")]
        return []

    # ------------------------------------------------------------------------------------------ endings
    def _ended(self, ev: Ended, now: float) -> list[Action]:
        role = ev.role
        if not self.live.get(role):
            return []
        self.live[role] = False
        st = self.state
        if role != Role.CALLER:
            if st is State.RINGING and role in self.ringing:
                return self._unanswered(role, user_failure(ev.code), now)
            if st is State.CONNECTED and role == self.peer:
                self.outcome = "completed-user-hangup"
                self.state = State.ENDING
                return [Hangup(Role.CALLER, "remote hangup"), *self._maybe_finish(now)]
            return self._maybe_finish(now)
        # the caller's leg is gone
        if st is State.RINGING:
            self.outcome, self.code = "cancelled", 487
            self.state = State.ENDING
            return [CancelTimer(RING), CancelTimer(CONFIRM), *self._hangup_far("caller cancelled"),
                    *self._maybe_finish(now)]
        if st is State.CONNECTED:
            self.outcome = "completed-caller-hangup"
            self.state = State.ENDING
            return [Hangup(self.peer, "remote hangup"), *self._maybe_finish(now)]
        if st is State.GREETING:
            self.outcome = "voicemail-no-message"
            self.state = State.ENDING
            return [CancelTimer(GREETING), *self._maybe_finish(now)]
        if st is State.RECORDING:
            return [CancelTimer(MESSAGE), *self._message_done(now)]
        return self._maybe_finish(now)

    def _hangup_far(self, cause: str) -> list[Action]:
        self.ringing.clear()
        self.confirming = ""
        return [Hangup(r, cause) for r in _FAR if self.live[r]]

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
            # legs stay "live" until their Ended arrives, so a 200 racing our CANCEL is hung up too
            acts = [CancelTimer(CONFIRM)] if self.confirming else []
            return [*acts, *self._hangup_far("no answer"), *self._next("no-answer", now)]
        if name == CONFIRM and st is State.RINGING and self.confirming:
            role = self.confirming
            return [Hangup(role, "not confirmed", reason_header(480, "Not confirmed")),
                    *self._unanswered(role, "no-answer", now)]
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
        acts: list[Action] = [CancelTimer(t) for t in (RING, GREETING, CONFIRM)]
        acts += self._hangup_far(cause)
        if self.live[Role.CALLER]:
            if st is State.RINGING:
                acts.append(Respond(Role.CALLER, 503, headers=reason_header(503, cause)))
            else:
                acts.append(Hangup(Role.CALLER, cause))
        return acts + self._maybe_finish(now)

    def _maybe_finish(self, now: float) -> list[Action]:
        if any(self.live.values()):
            return []
        self.state = State.ENDED
        return [Notify("ended", {**self.plan.details, "outcome": self.outcome or "unknown", "code": self.code}),
                Finished(self.outcome or "unknown", self.code, self.answered_at, now)]
