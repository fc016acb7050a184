"""Two-leg bridged call (A: inbound, B: outbound) as a sans-I/O state machine.

The runner feeds events (leg progress, answer, end, hold, DTMF, timer) with the current monotonic time and
applies the returned actions through the SIP engine. Every rule about what one leg's signalling means for the
other lives here, so it is unit-testable without a network.

Failover: a route may name several trunks (``targets``). While the current B attempt has had no provisional
response, a 503, a 408, a local failure (transport error: code 0) or its trunk's ``failover_timeout_s`` passing
(the INVITE is CANCELled) moves the call to the next trunk, as a new B role ("b", "b2", "b3", ...: the runner maps
one engine leg per role) linked with A. Once an attempt has rung, the callee is being alerted: what follows is the
callee's answer, relayed as for a single trunk. A hears a failure only when every trunk has failed.
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
    Rerouted,
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
from b2bua.sip.types import Target

__all__ = [
    "Action", "Answer", "Answered", "BridgeCall", "CancelTimer", "Dtmf", "Ended", "Event", "Finished", "Hangup",
    "HoldChanged", "Link", "PlaceCall", "Progress", "Rerouted", "Respond", "Role", "RoleName", "SendDtmf", "SetHold",
    "StartTimer", "State", "Terminate", "TimerFired", "b_role", "failure_code_for_a", "other",
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
FAILOVER_TIMER = "failover"
# a B attempt that ends so before any 18x is retried on the route's next trunk (0: transport error, no response)
FAILOVER_CODES = frozenset({0, 408, 503})


def b_role(attempt: int) -> RoleName:
    """The role of the B leg of attempt ``attempt`` (0-based): "b", then "b2", "b3", ..."""
    return Role.B if attempt == 0 else f"b{attempt + 1}"

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
    targets: tuple[Target, ...] = ()  # the route's trunks in order (the first is b_uri's); () : b_uri alone
    state: State = State.CALLING
    started_at: float = 0.0
    answered_at: float | None = None
    live: dict[str, bool] = field(default_factory=lambda: {Role.A: True, Role.B: False})
    held_by: dict[str, bool] = field(default_factory=lambda: {Role.A: False, Role.B: False})
    sent_early: bool = False
    sent_ringing: bool = False
    final_code: int = 0
    outcome: str = ""
    attempt: int = 0  # index into targets of the B leg now being tried
    b: RoleName = Role.B  # that leg's role
    failover_armed: bool = False

    def start(self, now: float) -> list[Action]:
        self.started_at = now
        self.live[Role.B] = True
        return [
            PlaceCall(Role.B, self.b_uri, self.b_from_uri, self.b_headers),
            Link(),
            StartTimer(NO_ANSWER_TIMER, self.no_answer_timeout_s),
            *self._arm_failover(),
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
            case Answered():
                return self._answered(event.role, now)
            case Ended() if event.role not in (Role.A, self.b):
                return self._superseded_ended(event.role, now)
            case Ended():
                return self._ended(event, now)
            case HoldChanged() if event.role in (Role.A, self.b):
                return self._hold(event)
            case Dtmf() if event.role in (Role.A, self.b):
                if self.state is State.ANSWERED or (self.state is State.RINGING and event.role == Role.A):
                    return [SendDtmf(self._peer(event.role), event.digit, event.duration_ms)]
                return []
            case TimerFired() if event.name == NO_ANSWER_TIMER:
                if self.state in (State.CALLING, State.RINGING):
                    return self._fail_unanswered(480, "no-answer", "no answer", now)
                return []
            case TimerFired() if event.name == FAILOVER_TIMER:
                self.failover_armed = False
                if self._can_fail_over():
                    return self._fail_over("timeout", now)
                return []
            case Terminate():
                return self._terminate(event.cause, now)
        return []

    # -------------------------------------------------------------------------------------- handlers
    def _progress(self, ev: Progress) -> list[Action]:
        if ev.role != self.b or self.state not in (State.CALLING, State.RINGING):
            return []
        self.state = State.RINGING
        actions = self._disarm_failover()  # the trunk has the call: no more failover for this attempt
        if ev.early_media and not self.sent_early:
            self.sent_early = True
            return [*actions, Respond(Role.A, 183)]
        if ev.code == 180 and not self.sent_ringing and not self.sent_early:
            self.sent_ringing = True
            return [*actions, Respond(Role.A, 180)]
        return actions

    def _answered(self, role: RoleName, now: float) -> list[Action]:
        if role == Role.A:
            return []
        if role != self.b:  # an attempt we CANCELled answered as the CANCEL crossed its 200
            return [Hangup(role, "superseded")] if self.live.get(role) else []
        if self.state in (State.CALLING, State.RINGING):
            self.state = State.ANSWERED
            self.answered_at = now
            self.final_code = 200
            return [*self._disarm_failover(), CancelTimer(NO_ANSWER_TIMER), Answer(Role.A)]
        if self.state is State.ENDING and self.live[self.b]:
            # A gave up while B was answering: B must not stay up
            return [Hangup(self.b, "caller gone")]
        return []

    def _ended(self, ev: Ended, now: float) -> list[Action]:
        role = ev.role
        if not self.live[role]:
            return []
        self.live[role] = False
        actions: list[Action] = []
        if self.state in (State.CALLING, State.RINGING):
            if role != Role.A:
                if ev.code in FAILOVER_CODES and self._can_fail_over():
                    return self._fail_over(str(ev.code), now)
                code = failure_code_for_a(ev.code)
                return self._fail_unanswered(code, _outcome_for(ev.code), f"callee {ev.code}", now)
            # A cancelled (or its transaction failed) before B answered
            self.outcome = "cancelled"
            self.final_code = 487
            actions += [*self._disarm_failover(), CancelTimer(NO_ANSWER_TIMER), Hangup(self.b, "caller cancelled")]
            self.state = State.ENDING
            return actions + self._maybe_finish(now)
        if self.state is State.ANSWERED:
            self.outcome = f"completed-{'a' if role == Role.A else 'b'}-hangup"
            self.state = State.ENDING
            actions.append(Hangup(self._peer(role), "remote hangup"))
            return actions + self._maybe_finish(now)
        # ENDING: the other leg is now gone as well
        return self._maybe_finish(now)

    def _superseded_ended(self, role: RoleName, now: float) -> list[Action]:
        """An earlier attempt's leg is gone (its 487 after our CANCEL, or its failure): nothing else to do."""
        if not self.live.get(role):
            return []
        self.live[role] = False
        return self._maybe_finish(now)

    def _hold(self, ev: HoldChanged) -> list[Action]:
        side = Role.A if ev.role == Role.A else Role.B
        if self.state is not State.ANSWERED or self.held_by[side] == ev.held:
            return []
        self.held_by[side] = ev.held
        return [SetHold(self._peer(ev.role), ev.held)]

    # -------------------------------------------------------------------------------------- failover
    def _target(self, attempt: int) -> Target:
        return self.targets[attempt] if self.targets else Target("", self.b_uri)

    def _can_fail_over(self) -> bool:
        """Only before the current attempt rang, while A still waits, and if the route has another trunk."""
        return self.state is State.CALLING and self.live[Role.A] and self.attempt + 1 < len(self.targets)

    def _arm_failover(self) -> list[Action]:
        timeout = self._target(self.attempt).failover_timeout_s
        if timeout <= 0 or self.attempt + 1 >= len(self.targets):
            return []
        self.failover_armed = True
        return [StartTimer(FAILOVER_TIMER, timeout)]

    def _disarm_failover(self) -> list[Action]:
        if not self.failover_armed:
            return []
        self.failover_armed = False
        return [CancelTimer(FAILOVER_TIMER)]

    def _fail_over(self, reason: str, now: float) -> list[Action]:
        """Leave the current attempt (CANCEL it if it is still up) and place the next trunk's."""
        failed = self._target(self.attempt).trunk
        actions = self._disarm_failover()
        if self.live[self.b]:
            actions.append(Hangup(self.b, f"no provisional response; trying {self._target(self.attempt + 1).trunk}"))
        self.attempt += 1
        self.b = b_role(self.attempt)
        self.live[self.b] = True
        target = self._target(self.attempt)
        return [*actions, Rerouted(failed, target.trunk, reason),
                PlaceCall(self.b, target.uri, self.b_from_uri, self.b_headers), Link(Role.A, self.b),
                *self._arm_failover()]

    def _peer(self, role: RoleName) -> RoleName:
        return self.b if role == Role.A else Role.A

    # -------------------------------------------------------------------------------------- endings
    def _fail_unanswered(self, code: int, outcome: str, reason: str, now: float) -> list[Action]:
        self.state = State.ENDING
        self.outcome = outcome
        self.final_code = code
        actions: list[Action] = [*self._disarm_failover(), CancelTimer(NO_ANSWER_TIMER)]
        if self.live[self.b]:
            actions.append(Hangup(self.b, reason))
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
        return [Hangup(r, cause) for r in (Role.A, self.b) if self.live[r]] + self._maybe_finish(now)

    def _maybe_finish(self, now: float) -> list[Action]:
        if any(self.live.values()):
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
