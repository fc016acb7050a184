"""Callback dialling as a sans-I/O state machine: ring the telecommuter first, then the target, then bridge.

Roles: ``user`` (the telecommuter's phone) and ``target``. The target is never dialled unless the user answered
(and, when configured, pressed the confirmation digit), so a mobile's voicemail cannot take the leg and a
refused user leg costs nothing. A failed target gives the user a busy/congestion tone, then the user's leg
ends with a Reason header naming the failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from b2bua.calls.events import (
    Action,
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
    PlayTone,
    Progress,
    Role,
    SendDtmf,
    SetHold,
    StartTimer,
    StopTone,
    Terminate,
    TimerFired,
    reason_header,
)

USER_ANSWER, CONFIRM, TARGET_ANSWER, FAILURE_TONE = "user-answer", "confirm", "target-answer", "failure-tone"


class State(enum.Enum):
    USER_CALLING = "user-calling"
    USER_RINGING = "user-ringing"
    CONFIRMING = "confirming"
    TARGET_CALLING = "target-calling"
    TARGET_RINGING = "target-ringing"
    CONNECTED = "connected"
    FAILING = "failing"  # the user hears why the target failed, then is hung up
    ENDING = "ending"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallbackPlan:
    """Everything decided before dialling: who, how presented, how long to wait."""

    user_uri: str
    user_from: str
    target_uri: str
    target_from: str
    target_number: str  # E.164 (or extension), for events
    target_headers: Headers = ()
    confirm_digit: str = ""  # "" = no confirmation
    user_answer_timeout_s: float = 30.0
    confirm_timeout_s: float = 15.0
    target_answer_timeout_s: float = 60.0
    failure_tone_s: float = 3.0


def _user_outcome(code: int) -> str:
    if code in (486, 600):
        return "user-busy"
    if code in (603, 403):
        return "user-rejected"
    if code in (408, 480, 487):
        return "user-no-answer"
    return "user-failed"


def _target_outcome(code: int) -> tuple[str, str, str]:
    """(outcome label, tone the user hears, reason text)."""
    if code in (486, 600):
        return "target-busy", "busy", "Busy Here"
    if code in (408, 480, 487):
        return "target-no-answer", "congestion", "No Answer"
    if code in (603, 403):
        return "target-rejected", "congestion", "Declined"
    if code == 404 or code == 484:
        return "target-unreachable", "congestion", "Not Found"
    return "target-failed", "congestion", "Call Failed"


@dataclass
class CallbackCall:
    plan: CallbackPlan
    state: State = State.USER_CALLING
    started_at: float = 0.0
    answered_at: float | None = None
    live: dict[str, bool] = field(default_factory=lambda: {Role.USER: False, Role.TARGET: False})
    held_by: dict[str, bool] = field(default_factory=lambda: {Role.USER: False, Role.TARGET: False})
    outcome: str = ""
    code: int = 0
    failure_reason: str = ""

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
        self.live[Role.USER] = True
        p = self.plan
        return [
            PlaceCall(Role.USER, p.user_uri, p.user_from),
            StartTimer(USER_ANSWER, p.user_answer_timeout_s),
            Notify("user-calling", {"target": p.target_number}),
        ]

    def handle(self, event: Event, now: float) -> list[Action]:
        if self.state is State.ENDED:
            return []
        match event:
            case Progress(role=Role.USER):
                if self.state is State.USER_CALLING:
                    self.state = State.USER_RINGING
                    return [Notify("user-ringing", {"target": self.plan.target_number})]
                return []
            case Progress(role=Role.TARGET):
                return self._target_progress(event)
            case Answered(role=Role.USER):
                return self._user_answered()
            case Answered(role=Role.TARGET):
                return self._target_answered(now)
            case Dtmf():
                return self._dtmf(event)
            case Ended():
                return self._ended(event, now)
            case HoldChanged():
                other = Role.TARGET if event.role == Role.USER else Role.USER
                if self.state is not State.CONNECTED or self.held_by[event.role] == event.held:
                    return []
                self.held_by[event.role] = event.held
                return [SetHold(other, event.held), Notify("held" if event.held else "resumed", {"by": event.role})]
            case TimerFired():
                return self._timer(event.name, now)
            case Terminate():
                return self._terminate(event.cause, now)
        return []

    # ------------------------------------------------------------------------------------------ steps
    def _user_answered(self) -> list[Action]:
        if self.state not in (State.USER_CALLING, State.USER_RINGING):
            return []
        acts: list[Action] = [CancelTimer(USER_ANSWER), Notify("user-answered", {"target": self.plan.target_number})]
        if self.plan.confirm_digit:
            self.state = State.CONFIRMING
            return [*acts, PlayTone(Role.USER, "prompt"), StartTimer(CONFIRM, self.plan.confirm_timeout_s),
                    Notify("confirming", {"digit": self.plan.confirm_digit})]
        return acts + self._dial_target()

    def _dtmf(self, ev: Dtmf) -> list[Action]:
        if self.state is State.CONFIRMING and ev.role == Role.USER:
            if ev.digit != self.plan.confirm_digit:
                return []
            return [CancelTimer(CONFIRM), StopTone(Role.USER), Notify("confirmed", {}), *self._dial_target()]
        if self.state is State.CONNECTED:
            return [SendDtmf(Role.TARGET if ev.role == Role.USER else Role.USER, ev.digit, ev.duration_ms)]
        return []

    def _dial_target(self) -> list[Action]:
        p = self.plan
        self.state = State.TARGET_CALLING
        self.live[Role.TARGET] = True
        return [
            PlaceCall(Role.TARGET, p.target_uri, p.target_from, p.target_headers),
            PlayTone(Role.USER, "ringback"),
            StartTimer(TARGET_ANSWER, p.target_answer_timeout_s),
            Notify("target-calling", {"target": p.target_number}),
        ]

    def _target_progress(self, ev: Progress) -> list[Action]:
        if self.state not in (State.TARGET_CALLING, State.TARGET_RINGING):
            return []
        acts: list[Action] = []
        if self.state is State.TARGET_CALLING:
            acts.append(Notify("target-ringing", {"target": self.plan.target_number}))
        self.state = State.TARGET_RINGING
        if ev.early_media:
            # the target's own ringback/announcement beats our local one
            acts += [StopTone(Role.USER), Link(Role.USER, Role.TARGET)]
        return acts

    def _target_answered(self, now: float) -> list[Action]:
        if self.state in (State.TARGET_CALLING, State.TARGET_RINGING):
            self.state = State.CONNECTED
            self.answered_at = now
            self.code = 200
            return [CancelTimer(TARGET_ANSWER), StopTone(Role.USER), Link(Role.USER, Role.TARGET),
                    Notify("connected", {"target": self.plan.target_number})]
        if self.live[Role.TARGET]:  # answered after we gave up on it
            return [Hangup(Role.TARGET, "call no longer wanted")]
        return []

    def _fail_target(self, code: int) -> list[Action]:
        outcome, tone, text = _target_outcome(code)
        self.outcome, self.code, self.failure_reason = outcome, code, text
        self.state = State.FAILING
        acts: list[Action] = [CancelTimer(TARGET_ANSWER), PlayTone(Role.USER, tone),
                              StartTimer(FAILURE_TONE, self.plan.failure_tone_s),
                              Notify("target-failed", {"target": self.plan.target_number, "code": code,
                                                       "reason": text})]
        if self.live[Role.TARGET]:
            acts.append(Hangup(Role.TARGET, "no answer"))
        return acts

    def _ended(self, ev: Ended, now: float) -> list[Action]:
        role = ev.role
        if not self.live[role]:
            return []
        self.live[role] = False
        st = self.state
        if role == Role.USER:
            if st in (State.USER_CALLING, State.USER_RINGING):
                if not self.outcome:
                    self.outcome, self.code = _user_outcome(ev.code), ev.code
                self.state = State.ENDING
                return [CancelTimer(USER_ANSWER), *self._maybe_finish(now)]
            if st is State.CONFIRMING:
                self.outcome = self.outcome or "user-hangup-before-confirm"
                self.state = State.ENDING
                return [CancelTimer(CONFIRM), *self._maybe_finish(now)]
            if st in (State.TARGET_CALLING, State.TARGET_RINGING):
                self.outcome, self.code = "user-hangup-while-ringing", 487
                self.state = State.ENDING
                return [CancelTimer(TARGET_ANSWER), Hangup(Role.TARGET, "caller gone"), *self._maybe_finish(now)]
            if st is State.CONNECTED:
                self.outcome = "completed-user-hangup"
                self.state = State.ENDING
                return [Hangup(Role.TARGET, "remote hangup"), *self._maybe_finish(now)]
            if st is State.FAILING:
                self.state = State.ENDING
                return [CancelTimer(FAILURE_TONE), *self._maybe_finish(now)]
            return self._maybe_finish(now)
        # target leg ended
        if st in (State.TARGET_CALLING, State.TARGET_RINGING):
            return self._fail_target(ev.code)
        if st is State.CONNECTED:
            self.outcome = "completed-target-hangup"
            self.state = State.ENDING
            return [Hangup(Role.USER, "remote hangup"), *self._maybe_finish(now)]
        return self._maybe_finish(now)

    def _timer(self, name: str, now: float) -> list[Action]:
        st = self.state
        if name == USER_ANSWER and st in (State.USER_CALLING, State.USER_RINGING):
            self.outcome, self.code = "user-no-answer", 480
            return [Hangup(Role.USER, "no answer")]
        if name == CONFIRM and st is State.CONFIRMING:
            self.outcome, self.code = "user-not-confirmed", 0
            self.state = State.ENDING
            return [Hangup(Role.USER, "not confirmed", reason_header(480, "Not confirmed")),
                    Notify("not-confirmed", {})]
        if name == TARGET_ANSWER and st in (State.TARGET_CALLING, State.TARGET_RINGING):
            return self._fail_target(480)
        if name == FAILURE_TONE and st is State.FAILING:
            self.state = State.ENDING
            return [Hangup(Role.USER, self.failure_reason, reason_header(self.code or 500, self.failure_reason))]
        return []

    def _terminate(self, cause: str, now: float) -> list[Action]:
        if self.state is State.ENDING:
            return []
        if not self.outcome or self.state is not State.FAILING:
            self.outcome = "terminated"
        self.state = State.ENDING
        acts: list[Action] = [CancelTimer(t) for t in (USER_ANSWER, CONFIRM, TARGET_ANSWER, FAILURE_TONE)]
        acts += [Hangup(r, cause) for r in (Role.USER, Role.TARGET) if self.live[r]]
        return acts + self._maybe_finish(now)

    def _maybe_finish(self, now: float) -> list[Action]:
        if self.live[Role.USER] or self.live[Role.TARGET]:
            return []
        self.state = State.ENDED
        return [Notify("ended", {"outcome": self.outcome or "unknown", "code": self.code,
                                 "target": self.plan.target_number}),
                Finished(self.outcome or "unknown", self.code, self.answered_at, now)]
