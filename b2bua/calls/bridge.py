"""Two-leg bridged call (A: inbound, B: outbound) as a sans-I/O state machine.

The runner feeds events (leg progress, answer, end, hold, DTMF, timer) with the current monotonic time and
applies the returned actions through the SIP engine. Every rule about what one leg's signalling means for the
other lives here, so it is unit-testable without a network.
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
    PlaceCall,
    Progress,
    Respond,
    Role,
    RoleName,
    SendDtmf,
    SetHold,
    StartTimer,
    Terminate,
    TimerFired,
    reason_header,
)

__all__ = [
    "Action", "Answer", "Answered", "BridgeCall", "CancelTimer", "Dtmf", "Ended", "Event", "Finished", "Hangup",
    "HoldChanged", "Link", "PlaceCall", "Progress", "Respond", "Role", "RoleName", "SendDtmf", "SetHold", "StartTimer",
    "State", "Terminate", "TimerFired", "failure_code_for_a", "other",
]


def other(role: RoleName) -> Role:
    return Role.B if role == Role.A else Role.A


class State(enum.Enum):
    CALLING = "calling"  # B INVITE sent, nothing back yet
    RINGING = "ringing"  # B sent 18x
    ANSWERED = "answered"  # both legs up
    ENDING = "ending"  # waiting for the remaining leg to go
    ENDED = "ended"


NO_ANSWER_TIMER = "no-answer"

# Final statuses from B that A sees unchanged; anything else is mapped (see failure_code_for_a).
_PASS_THROUGH = {
    400, 403, 404, 405, 406, 408, 410, 413, 414, 415, 416, 420, 480, 482, 483, 484, 485, 486, 487,
    488, 493, 600, 603, 604, 606,
}


def failure_code_for_a(b_code: int) -> int:
    """Map B's final failure onto A. Auth challenges and 503 are about *our* hop, not A's: never relay them
    (RFC 3261 §16.7: a 503 from downstream is not forwarded as 503)."""
    if b_code in _PASS_THROUGH:
        return b_code
    if b_code in (401, 407):
        return 403
    if 300 <= b_code < 400:
        return 480
    if 400 <= b_code < 500:
        return 480
    if b_code == 503 or 500 <= b_code < 600:
        return 502
    if 600 <= b_code < 700:
        return 603
    return 500  # 0 or nonsense: the B leg failed locally (transport error, timeout)


@dataclass
class BridgeCall:
    """One A→B bridged call. Create it when A's INVITE was accepted and routed, then call :meth:`start`."""

    b_uri: str
    b_from_uri: str
    no_answer_timeout_s: float
    b_headers: tuple[tuple[str, str], ...] = ()
    state: State = State.CALLING
    started_at: float = 0.0
    answered_at: float | None = None
    live: dict[str, bool] = field(default_factory=lambda: {Role.A: True, Role.B: False})
    held_by: dict[str, bool] = field(default_factory=lambda: {Role.A: False, Role.B: False})
    sent_early: bool = False
    sent_ringing: bool = False
    final_code: int = 0
    outcome: str = ""

    def start(self, now: float) -> list[Action]:
        self.started_at = now
        self.live[Role.B] = True
        return [
            PlaceCall(Role.B, self.b_uri, self.b_from_uri, self.b_headers),
            Link(),
            StartTimer(NO_ANSWER_TIMER, self.no_answer_timeout_s),
        ]

    @property
    def done(self) -> bool:
        return self.state is State.ENDED

    @property
    def state_name(self) -> str:
        return self.state.value

    @property
    def holds_user_line(self) -> bool:
        """A trunk call never rings a user's phone."""
        return False

    def handle(self, event: Event, now: float) -> list[Action]:
        if self.state is State.ENDED:
            return []
        match event:
            case Progress():
                return self._progress(event)
            case Answered(role=Role.B):
                return self._b_answered(now)
            case Answered(role=Role.A):
                return []
            case Ended():
                return self._ended(event, now)
            case HoldChanged():
                return self._hold(event)
            case Dtmf():
                if self.state is State.ANSWERED or (self.state is State.RINGING and event.role == Role.A):
                    return [SendDtmf(other(event.role), event.digit, event.duration_ms)]
                return []
            case TimerFired() if event.name == NO_ANSWER_TIMER:
                if self.state in (State.CALLING, State.RINGING):
                    return self._fail_unanswered(480, "no-answer", "no answer", now)
                return []
            case Terminate():
                return self._terminate(event.cause, now)
        return []

    # -------------------------------------------------------------------------------------- handlers
    def _progress(self, ev: Progress) -> list[Action]:
        if ev.role != Role.B or self.state not in (State.CALLING, State.RINGING):
            return []
        self.state = State.RINGING
        if ev.early_media and not self.sent_early:
            self.sent_early = True
            return [Respond(Role.A, 183)]
        if ev.code == 180 and not self.sent_ringing and not self.sent_early:
            self.sent_ringing = True
            return [Respond(Role.A, 180)]
        return []

    def _b_answered(self, now: float) -> list[Action]:
        if self.state in (State.CALLING, State.RINGING):
            self.state = State.ANSWERED
            self.answered_at = now
            self.final_code = 200
            return [CancelTimer(NO_ANSWER_TIMER), Answer(Role.A)]
        if self.state is State.ENDING and self.live[Role.B]:
            # A gave up while B was answering: B must not stay up
            return [Hangup(Role.B, "caller gone")]
        return []

    def _ended(self, ev: Ended, now: float) -> list[Action]:
        role = ev.role
        if not self.live[role]:
            return []
        self.live[role] = False
        actions: list[Action] = []
        if self.state in (State.CALLING, State.RINGING):
            if role == Role.B:
                code = failure_code_for_a(ev.code)
                return self._fail_unanswered(code, _outcome_for(ev.code), f"callee {ev.code}", now)
            # A cancelled (or its transaction failed) before B answered
            self.outcome = "cancelled"
            self.final_code = 487
            actions += [CancelTimer(NO_ANSWER_TIMER), Hangup(Role.B, "caller cancelled")]
            self.state = State.ENDING
            return actions + self._maybe_finish(now)
        if self.state is State.ANSWERED:
            self.outcome = f"completed-{role}-hangup"
            self.state = State.ENDING
            actions.append(Hangup(other(role), "remote hangup"))
            return actions + self._maybe_finish(now)
        # ENDING: the other leg is now gone as well
        return self._maybe_finish(now)

    def _hold(self, ev: HoldChanged) -> list[Action]:
        if self.state is not State.ANSWERED or self.held_by[ev.role] == ev.held:
            return []
        self.held_by[ev.role] = ev.held
        return [SetHold(other(ev.role), ev.held)]

    def _fail_unanswered(self, code: int, outcome: str, reason: str, now: float) -> list[Action]:
        self.state = State.ENDING
        self.outcome = outcome
        self.final_code = code
        actions: list[Action] = [CancelTimer(NO_ANSWER_TIMER)]
        if self.live[Role.B]:
            actions.append(Hangup(Role.B, reason))
        if self.live[Role.A]:
            actions.append(Respond(Role.A, code, headers=reason_header(code, reason)))
            # A's leg ends with that final response; pjsua reports it as DISCONNECTED, which we also await
        return actions + self._maybe_finish(now)

    def _terminate(self, cause: str, now: float) -> list[Action]:
        if self.state is State.ENDING:
            return []
        if self.state in (State.CALLING, State.RINGING):
            return self._fail_unanswered(503, "terminated", cause, now)
        self.state = State.ENDING
        self.outcome = "terminated"
        return [Hangup(r, cause) for r in (Role.A, Role.B) if self.live[r]] + self._maybe_finish(now)

    def _maybe_finish(self, now: float) -> list[Action]:
        if self.live[Role.A] or self.live[Role.B]:
            return []
        self.state = State.ENDED
        return [Finished(self.outcome or "unknown", self.final_code, self.answered_at, now)]


def _outcome_for(code: int) -> str:
    if code in (486, 600):
        return "busy"
    if code in (408, 480):
        return "no-answer"
    if code in (603, 403):
        return "rejected"
    return "failed"
