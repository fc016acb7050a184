"""Keep-connected mode as one sans-I/O state machine per user: a persistent leg to the telecommuter phone (the
*line*) and any number of remote parties riding it.

Roles: ``line<N>`` is the N-th persistent leg (a re-dial gets a new role, so a late event from a dead leg can
never be mistaken for the new one); every remote party has its own role (the runner names inbound ones).
At most one party is *active* (its audio linked to the line); every held or parked party hears music; a
waiting call hears ringing (180) while the line hears a call-waiting tone over the active call.

Reconnect, always: when the line drops, the active party becomes held (music) and nothing is lost. The next user
action (retrieve, unpark, accept, dial), an incoming call, or an automatic re-dial calls the telecommuter
number again and then performs that action. If the line is not back within ``reconnect_timeout_s``, every
held, parked and waiting party gets the fallback (a Reason header, never silence forever).

The session is built in three modules: :mod:`b2bua.calls.keepconnected_plan` (the plan, the commands, the
parties), :mod:`b2bua.calls.keepconnected_moves` (the session's state and the moves on its calls, including the
user's actions and keypad codes) and this one (the reactions to the legs' signalling, timers and the end).
"""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.calls.events import (
    Abandon,
    Action,
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
    PlayTone,
    Progress,
    Respond,
    SendDtmf,
    StartTimer,
    StopTone,
    Terminate,
    TimerFired,
    Unlink,
    WatchMedia,
    reason_header,
)
from b2bua.calls.keepconnected_moves import SessionMoves
from b2bua.calls.keepconnected_plan import (
    CONFIRM,
    FAILURE_TONE,
    FAILURE_TONE_S,
    KEYPAD,
    KEYPAD_GAP_S,
    LINE_ANSWER,
    RECONNECT,
    REDIAL,
    Dial,
    LineState,
    Offer,
    Party,
    PartyState,
    Pending,
    SessionEvent,
    SessionPlan,
    UserAction,
)

__all__ = [
    "CONFIRM", "KEYPAD", "KEYPAD_GAP_S", "LINE_ANSWER", "RECONNECT", "REDIAL", "Dial", "KeepConnectedSession",
    "LineState", "Offer", "Party", "PartyState", "Pending", "SessionEvent", "SessionPlan", "UserAction",
]


@dataclass
class KeepConnectedSession(SessionMoves):
    # ------------------------------------------------------------------------------------------ driving
    def start(self, now: float) -> list[Action]:
        return self._dial_line(now)

    def handle(self, event: SessionEvent, now: float) -> list[Action]:
        if self.finished:
            return []
        self.last_error = ""
        match event:
            case Offer():
                return self._offer(event, now)
            case Dial():
                return self._dial(event, now)
            case UserAction():
                return self._user_action(event, now)
            case Terminate():
                return self._end(event.cause, now)
            case TimerFired():
                return self._timer(event.name, now)
        role = getattr(event, "role", "")
        if role.startswith("line"):
            return self._line_event(event, now) if role == self.line and role not in self.dead_lines else []
        if role not in self.parties and not isinstance(event, Ended):
            return []
        match event:
            case Progress():
                return self._party_progress(event)
            case Answered():
                return self._party_answered(event.role, now)
            case Ended():
                return self._party_ended(event, now)
            case Dtmf():
                p = self.parties[event.role]
                if p.state is PartyState.ACTIVE and self.line_state is LineState.UP:
                    return [SendDtmf(self.line, event.digit, event.duration_ms)]
            case HoldChanged():
                return []
        return []

    # ------------------------------------------------------------------------------------------ the line
    def _line_event(self, ev: Event, now: float) -> list[Action]:
        match ev:
            case Answered():
                if self.line_state is not LineState.CALLING:
                    return []
                acts: list[Action] = [CancelTimer(LINE_ANSWER)]
                if self.plan.confirm_digit:
                    self.line_state = LineState.CONFIRMING
                    return [*acts, PlayTone(self.line, "prompt"), StartTimer(CONFIRM, self.plan.confirm_timeout_s),
                            Notify("line-confirming", {"digit": self.plan.confirm_digit})]
                return acts + self._line_up(now)
            case Dtmf():
                if self.line_state is LineState.CONFIRMING:
                    if ev.digit == self.plan.confirm_digit:
                        return [CancelTimer(CONFIRM), StopTone(self.line), *self._line_up(now)]
                    return []
                if self.line_state is LineState.UP:
                    return self._keypad(ev, now)
                return []
            case Ended():
                return self._line_ended(ev, now)
        return []

    def _line_up(self, now: float) -> list[Action]:
        self.line_state = LineState.UP
        if self.answered_at is None:
            self.answered_at = now
        acts: list[Action] = [Notify("line-up", {"number": self.plan.number, "attempt": self.line_invites})]
        if self.plan.rtp_timeout_s > 0:
            acts.append(WatchMedia(self.line, self.plan.rtp_timeout_s))
        if self.reconnecting:
            self.reconnecting = False
            acts += [CancelTimer(RECONNECT), CancelTimer(REDIAL)]
        pending, self.pending = self.pending, None
        if pending is not None:
            if pending.action == "dial" and pending.dial is not None:
                acts += self._dial(pending.dial, now)
            elif pending.role in self.parties:
                acts += self._connect(self.parties[pending.role], now)
        return acts

    def _line_ended(self, ev: Ended, now: float) -> list[Action]:
        dead = self.line
        self.dead_lines.add(dead)
        self.live_roles.discard(dead)
        self.line_live = False
        was = self.line_state
        self.line_state = LineState.DOWN
        acts: list[Action] = [CancelTimer(LINE_ANSWER), CancelTimer(CONFIRM), CancelTimer(KEYPAD)]
        self.keypad_buffer = ""
        if self.ending:
            return acts + self._maybe_finish(now)
        active = self.active()
        if active is not None:  # nobody talks to them now: music until the user is back
            acts += self._to_held(active, now)
        for p in self.in_state(PartyState.DIALING):  # an unanswered outgoing call has nobody to reach
            acts.append(Hangup(p.role, "telecommuter line lost"))
        kept = self.in_state(PartyState.HELD, PartyState.PARKED, PartyState.WAITING, PartyState.OFFERED)
        acts.append(Notify("line-down", {"code": ev.code, "was": was.value, "kept": [p.role for p in kept]}))
        if was is not LineState.UP and self.pending is not None:
            acts.append(Notify("line-failed", {"code": ev.code, "for": self.pending.role}))
            if self.pending.action == "dial":  # nobody to dial for now: its admission goes back
                acts.append(Abandon(self.pending.role))
                self.pending = None
        if kept or self.pending is not None:
            if not self.reconnecting:
                self.reconnecting = True
                acts.append(StartTimer(RECONNECT, self.plan.reconnect_timeout_s))
            if self.plan.redial_on_drop:
                acts.append(StartTimer(REDIAL, 0.0 if was is LineState.UP else self.plan.redial_interval_s))
        return acts

    # ------------------------------------------------------------------------------------------ parties
    def _offer(self, ev: Offer, now: float) -> list[Action]:
        self.live_roles.add(ev.role)
        number = str(ev.details.get("caller", ""))
        if not self.can_offer():  # the runner checks first; this guards races
            return [Respond(ev.role, 486, headers=reason_header(486, "Busy Here"))]
        busy = self.active() is not None or bool(self.in_state(PartyState.DIALING))
        state = PartyState.WAITING if busy else PartyState.OFFERED
        p = Party(ev.role, number, "in", state, since=now)
        self.parties[ev.role] = p
        acts: list[Action] = [Respond(ev.role, 180), StartTimer(f"offer-{ev.role}", self.plan.offer_timeout_s),
                              Notify("call-offered", {**ev.details, "call": ev.role, "waiting": busy})]
        if self.line_state is LineState.UP:
            acts.append(PlayTone(self.line, "call-waiting" if busy else "announce"))
            if not busy and self.plan.auto_answer:
                acts += self._connect(p, now)
        elif not busy:
            acts += self._ensure_line(Pending("connect", p.role), now)
        return acts

    def _dial(self, ev: Dial, now: float) -> list[Action]:
        if self.line_state is not LineState.UP:
            if self.pending is not None and self.line_state is not LineState.DOWN:
                self.last_error = "line-busy"
                return []
            return self._ensure_line(Pending("dial", ev.role, ev), now)
        if self.in_state(PartyState.DIALING):  # refused before anything changes: the active call stays active
            self.last_error = "already-dialling"
            return []
        acts: list[Action] = []
        active = self.active()
        if active is not None:
            acts += self._to_held(active, now)
        p = Party(ev.role, ev.number, "out", PartyState.DIALING, since=now)
        self.parties[ev.role] = p
        self.live_roles.add(ev.role)
        return [*acts, PlaceCall(ev.role, ev.uri, ev.from_uri, ev.headers), StopTone(self.line),
                PlayTone(self.line, "ringback"), StartTimer(f"answer-{ev.role}", self.plan.target_answer_timeout_s),
                Notify("call-dialing", {"call": ev.role, "number": ev.number})]

    def _party_progress(self, ev: Progress) -> list[Action]:
        p = self.parties[ev.role]
        if p.state is PartyState.DIALING and ev.early_media and self.line_state is LineState.UP:
            return [StopTone(self.line), Link(self.line, p.role)]
        if p.state is PartyState.DIALING and ev.code in (180, 183):
            return [Notify("call-ringing", {"call": p.role, "number": p.number})]
        return []

    def _party_answered(self, role: str, now: float) -> list[Action]:
        p = self.parties[role]
        if p.direction == "out" and p.state is PartyState.DIALING:
            p.answered = True
            acts: list[Action] = [CancelTimer(f"answer-{role}")]
            if self.line_state is LineState.UP and self.active() is None:
                return acts + self._connect(p, now)
            return acts + self._to_held(p, now)
        return []

    def _party_ended(self, ev: Ended, now: float) -> list[Action]:
        self.live_roles.discard(ev.role)
        p = self.parties.pop(ev.role, None)
        if p is None:
            return self._maybe_finish(now)
        acts: list[Action] = [CancelTimer(f"answer-{p.role}"), CancelTimer(f"offer-{p.role}")]
        if p.slot:
            acts.append(CancelTimer(f"park-{p.slot}"))
        if self.pending is not None and self.pending.role == p.role:
            self.pending = None
        if p.state is PartyState.ACTIVE and self.line_state is LineState.UP:
            acts += [Unlink(self.line), StopTone(self.line)]
        elif p.state is PartyState.DIALING and self.line_state is LineState.UP:
            acts += [StopTone(self.line), Unlink(self.line)]
            if not self.ending:
                acts.append(PlayTone(self.line, "busy" if ev.code in (486, 600) else "congestion"))
                acts.append(StartTimer(FAILURE_TONE, FAILURE_TONE_S))
        elif p.state is PartyState.WAITING and self.line_state is LineState.UP and self.active() is not None:
            acts.append(StopTone(self.line))
        acts.append(Notify("call-ended", {"call": p.role, "number": p.number, "code": ev.code,
                                          "was": p.state.value}))
        if self.reconnecting and not self._kept() and self.pending is None:
            self.reconnecting = False
            acts += [CancelTimer(RECONNECT), CancelTimer(REDIAL)]
        return acts + self._maybe_finish(now)

    # ------------------------------------------------------------------------------------------ timers
    def _timer(self, name: str, now: float) -> list[Action]:
        if name == LINE_ANSWER and self.line_state is LineState.CALLING:
            return [Hangup(self.line, "no answer")]
        if name == CONFIRM and self.line_state is LineState.CONFIRMING:
            return [Hangup(self.line, "not confirmed", reason_header(480, "Not confirmed"))]
        if name == KEYPAD:
            self.keypad_buffer = ""
            return []
        if name == FAILURE_TONE and self.line_state is LineState.UP:
            return [StopTone(self.line)]
        if name == REDIAL and self.line_state is LineState.DOWN and self.reconnecting:
            return self._dial_line(now)
        if name == RECONNECT and self.reconnecting and self.line_state is not LineState.UP:
            return self._give_up(now)
        if name.startswith("answer-"):
            p = self.parties.get(name.removeprefix("answer-"))
            if p is not None and p.state is PartyState.DIALING:
                return [Hangup(p.role, "no answer")]
        if name.startswith("offer-"):
            p = self.parties.get(name.removeprefix("offer-"))
            if p is not None and p.state in (PartyState.OFFERED, PartyState.WAITING):
                return self._reject(p, 480, "No Answer")
        if name.startswith("park-"):
            p = self._slot(int(name.removeprefix("park-")))
            if p is not None:  # recall: back to the user as a held call, announced on the line
                p.slot = 0
                p.state = PartyState.HELD
                acts: list[Action] = [Notify("park-recall", {"call": p.role, "number": p.number})]
                if self.line_state is LineState.UP and self.active() is None:
                    return acts + self._connect(p, now)
                if self.line_state is LineState.UP:
                    return [*acts, PlayTone(self.line, "announce")]
                return acts + self._ensure_line(Pending("connect", p.role), now)
        return []

    def _give_up(self, now: float) -> list[Action]:
        """The user could not be reached in time: every kept party gets the fallback, with a reason."""
        self.reconnecting = False
        acts: list[Action] = [CancelTimer(REDIAL), Notify("reconnect-failed", {"calls": sorted(self.parties)})]
        if self.pending is not None and self.pending.action == "dial":
            acts.append(Abandon(self.pending.role))
        self.pending = None
        code = self.plan.fallback_code
        if self.line_live:
            acts.append(Hangup(self.line, "reconnect timed out"))
        for p in list(self.parties.values()):
            del self.parties[p.role]  # gone for the session now; their legs' Ended only clears live_roles
            why = reason_header(code, "Telecommuter unreachable")
            if p.direction == "in" and not p.answered:
                acts.append(Respond(p.role, code, headers=why))
            else:
                acts.append(Hangup(p.role, "telecommuter unreachable", why))
        return acts

    # ------------------------------------------------------------------------------------------ the end
    def _end(self, cause: str, now: float) -> list[Action]:
        if self.ending:
            return []
        self.ending = True
        self.pending = None
        acts: list[Action] = [CancelTimer(t) for t in (LINE_ANSWER, CONFIRM, RECONNECT, REDIAL, KEYPAD)]
        why = reason_header(480, cause)
        for p in self.parties.values():
            if p.direction == "in" and not p.answered:
                acts.append(Respond(p.role, 480, headers=why))
            else:
                acts.append(Hangup(p.role, cause))
        if self.line_live:
            acts.append(Hangup(self.line, cause))
        return acts + self._maybe_finish(now)

    def _maybe_finish(self, now: float) -> list[Action]:
        if not self.ending or self.live_roles:
            return []
        self.finished = True
        return [Notify("session-ended", {"line_invites": self.line_invites}),
                Finished("session-ended", 200 if self.answered_at is not None else 0, self.answered_at, now)]
