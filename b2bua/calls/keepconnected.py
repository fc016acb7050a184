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
    PlayTone,
    Progress,
    Respond,
    SendDtmf,
    StartTimer,
    StopFile,
    StopTone,
    Terminate,
    TimerFired,
    Unlink,
    WatchMedia,
    reason_header,
)

LINE_ANSWER, CONFIRM, RECONNECT, REDIAL, KEYPAD = "line-answer", "confirm", "reconnect", "redial", "keypad"
KEYPAD_GAP_S = 3.0  # a half-typed keypad code is dropped after this pause


class LineState(enum.Enum):
    DOWN = "down"
    CALLING = "calling"
    CONFIRMING = "confirming"
    UP = "up"


class PartyState(enum.Enum):
    DIALING = "dialing"  # outgoing, not answered yet
    OFFERED = "offered"  # incoming, waiting for the user to accept (or for the line to come back)
    WAITING = "waiting"  # incoming while another call is active: call waiting
    ACTIVE = "active"
    HELD = "held"
    PARKED = "parked"


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Offer:
    """An inbound call for the user; the runner already attached its leg under ``role``."""

    role: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dial:
    """Place an outgoing call over the line (dialling rules and presentation already applied)."""

    role: str
    uri: str
    from_uri: str
    number: str
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class UserAction:
    """hold, retrieve, swap, park, unpark, accept, reject, hangup, reconnect (API or keypad)."""

    name: str
    call: str = ""  # a party role; "" = the obvious one
    slot: int = 0  # park/unpark slot; 0 = first free / the only parked


SessionEvent = Event | Offer | Dial | UserAction


@dataclass(frozen=True, slots=True)
class SessionPlan:
    line_uri: str
    line_from: str
    number: str  # the telecommuter number, for events
    confirm_digit: str = ""
    line_answer_timeout_s: float = 30.0
    confirm_timeout_s: float = 15.0
    target_answer_timeout_s: float = 60.0
    reconnect_timeout_s: float = 60.0
    redial_on_drop: bool = False
    redial_interval_s: float = 10.0
    park_slots: int = 9
    park_timeout_s: float = 120.0
    auto_answer: bool = True  # connect an incoming call at once (else: announce, wait for accept)
    offer_timeout_s: float = 20.0
    call_waiting: bool = True
    music: str = ""  # WAV played (looped) to held and parked parties
    keypad: Mapping[str, str] = field(default_factory=dict)  # DTMF code -> action name
    fallback_code: int = 480
    rtp_timeout_s: float = 10.0  # no audio from the line this long (and not on hold): the line is dead


@dataclass
class Party:
    role: str
    number: str
    direction: str  # "in" or "out"
    state: PartyState
    answered: bool = False
    slot: int = 0
    since: float = 0.0

    def public(self) -> dict[str, Any]:
        return {"call": self.role, "number": self.number, "direction": self.direction, "state": self.state.value,
                "slot": self.slot or None}


@dataclass
class Pending:
    """What to do once the line is (back) up."""

    action: str  # "connect" or "dial"
    role: str
    dial: Dial | None = None


@dataclass
class KeepConnectedSession:
    plan: SessionPlan
    line_state: LineState = LineState.DOWN
    line_gen: int = 0
    line_live: bool = False  # the current line leg exists (placed, not yet ended)
    parties: dict[str, Party] = field(default_factory=dict)
    pending: Pending | None = None
    ending: bool = False
    finished: bool = False
    answered_at: float | None = None
    keypad_buffer: str = ""
    last_error: str = ""  # why the last user action was refused ("" = accepted)
    reconnecting: bool = False
    dead_lines: set[str] = field(default_factory=set)
    live_roles: set[str] = field(default_factory=set)  # every leg placed/attached and not yet ended
    line_invites: int = 0

    # ------------------------------------------------------------------------------------------ queries
    @property
    def done(self) -> bool:
        return self.finished

    @property
    def line(self) -> str:
        return f"line{self.line_gen}"

    @property
    def live(self) -> dict[str, bool]:
        """The runner's "is the user's phone busy" view: the line counts as the user leg."""
        return {"user": self.line_live}

    def active(self) -> Party | None:
        return next((p for p in self.parties.values() if p.state is PartyState.ACTIVE), None)

    def in_state(self, *states: PartyState) -> list[Party]:
        return sorted((p for p in self.parties.values() if p.state in states), key=lambda p: p.since)

    def can_offer(self) -> bool:
        """May one more incoming call join? One active plus one waiting call at most."""
        if self.ending:
            return False
        waiting = self.in_state(PartyState.WAITING, PartyState.OFFERED)
        if waiting:
            return False
        busy = self.active() is not None or self.in_state(PartyState.DIALING)
        return not busy or self.plan.call_waiting

    def snapshot(self) -> dict[str, Any]:
        return {"line": self.line_state.value, "line_invites": self.line_invites,
                "calls": [p.public() for p in sorted(self.parties.values(), key=lambda p: p.since)]}

    # ------------------------------------------------------------------------------------------ driving
    def start(self, now: float) -> list[Action]:
        return self._dial_line(now)

    def handle(self, ev: SessionEvent, now: float) -> list[Action]:
        if self.finished:
            return []
        self.last_error = ""
        match ev:
            case Offer():
                return self._offer(ev, now)
            case Dial():
                return self._dial(ev, now)
            case UserAction():
                return self._user_action(ev, now)
            case Terminate():
                return self._end(ev.cause, now)
            case TimerFired():
                return self._timer(ev.name, now)
        role = getattr(ev, "role", "")
        if role.startswith("line"):
            return self._line_event(ev, now) if role == self.line and role not in self.dead_lines else []
        if role not in self.parties and not isinstance(ev, Ended):
            return []
        match ev:
            case Progress():
                return self._party_progress(ev)
            case Answered():
                return self._party_answered(ev.role, now)
            case Ended():
                return self._party_ended(ev, now)
            case Dtmf():
                p = self.parties[ev.role]
                if p.state is PartyState.ACTIVE and self.line_state is LineState.UP:
                    return [SendDtmf(self.line, ev.digit, ev.duration_ms)]
            case HoldChanged():
                return []
        return []

    # ------------------------------------------------------------------------------------------ the line
    def _dial_line(self, now: float) -> list[Action]:
        self.line_gen += 1
        self.line_state = LineState.CALLING
        self.line_live = True
        self.line_invites += 1
        self.live_roles.add(self.line)
        p = self.plan
        return [PlaceCall(self.line, p.line_uri, p.line_from), StartTimer(LINE_ANSWER, p.line_answer_timeout_s),
                Notify("line-calling", {"number": p.number, "attempt": self.line_invites})]

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
            if self.pending.action == "dial":
                self.pending = None
        if kept or self.pending is not None:
            if not self.reconnecting:
                self.reconnecting = True
                acts.append(StartTimer(RECONNECT, self.plan.reconnect_timeout_s))
            if self.plan.redial_on_drop:
                acts.append(StartTimer(REDIAL, 0.0 if was is LineState.UP else self.plan.redial_interval_s))
        return acts

    def _ensure_line(self, pending: Pending, now: float) -> list[Action]:
        """The action needs the line: perform it now if the line is up, else (re)dial and do it afterwards."""
        if self.line_state is LineState.UP:
            return []
        self.pending = pending
        if self.line_state is LineState.DOWN:
            return self._dial_line(now)
        return []  # already calling/confirming: the pending action runs when it is up

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
        acts: list[Action] = []
        active = self.active()
        if active is not None:
            acts += self._to_held(active, now)
        if self.in_state(PartyState.DIALING):
            self.last_error = "already-dialling"
            return acts
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
                acts.append(StartTimer("failure-tone", 3.0))
        elif p.state is PartyState.WAITING and self.line_state is LineState.UP and self.active() is not None:
            acts.append(StopTone(self.line))
        acts.append(Notify("call-ended", {"call": p.role, "number": p.number, "code": ev.code,
                                          "was": p.state.value}))
        if self.reconnecting and not self._kept() and self.pending is None:
            self.reconnecting = False
            acts += [CancelTimer(RECONNECT), CancelTimer(REDIAL)]
        return acts + self._maybe_finish(now)

    def _kept(self) -> list[Party]:
        return self.in_state(PartyState.HELD, PartyState.PARKED, PartyState.WAITING, PartyState.OFFERED)

    # ------------------------------------------------------------------------------------------ media moves
    def _to_held(self, p: Party, now: float, state: PartyState = PartyState.HELD) -> list[Action]:
        was_active = p.state is PartyState.ACTIVE
        p.state = state
        p.since = now
        acts: list[Action] = []
        if was_active and self.line_state is LineState.UP:
            acts.append(Unlink(self.line))
        if self.plan.music:
            acts.append(PlayFile(p.role, self.plan.music, loop=True))
        acts.append(Notify("call-held" if state is PartyState.HELD else "call-parked",
                           {"call": p.role, "number": p.number, "slot": p.slot or None}))
        return acts

    def _connect(self, p: Party, now: float) -> list[Action]:
        """Make ``p`` the active call: hold whoever is active, answer it if needed, link it to the line."""
        if self.line_state is not LineState.UP:
            return self._ensure_line(Pending("connect", p.role), now)
        acts: list[Action] = []
        current = self.active()
        if current is not None and current is not p:
            acts += self._to_held(current, now)
        if p.slot:
            acts.append(CancelTimer(f"park-{p.slot}"))
            p.slot = 0
        if p.direction == "in" and not p.answered:
            p.answered = True
            acts += [CancelTimer(f"offer-{p.role}"), Answer(p.role)]
        p.state = PartyState.ACTIVE
        p.since = now
        acts += [StopTone(self.line), StopFile(p.role), Link(self.line, p.role),
                 Notify("call-connected", {"call": p.role, "number": p.number})]
        return acts

    # ------------------------------------------------------------------------------------------ user actions
    def _pick(self, call: str, *states: PartyState) -> Party | None:
        if call:
            p = self.parties.get(call)
            return p if p is not None and p.state in states else None
        found = self.in_state(*states)
        return found[-1] if found else None  # the most recent

    def _user_action(self, a: UserAction, now: float) -> list[Action]:
        acts = self._do(a, now)
        if self.last_error:
            return [Notify("action-refused", {"action": a.name, "reason": self.last_error})]
        return acts

    def _do(self, a: UserAction, now: float) -> list[Action]:
        name = a.name
        if self.ending:
            self.last_error = "session-ending"
            return []
        if name == "toggle-hold":  # one key for both: hold the active call, else retrieve the held one
            name = "hold" if self.active() is not None else "retrieve"
        if name == "hold":
            p = self._pick(a.call, PartyState.ACTIVE)
            if p is None:
                self.last_error = "no-active-call"
                return []
            return self._to_held(p, now)
        if name in ("retrieve", "unpark", "accept"):
            states = {"retrieve": (PartyState.HELD,), "unpark": (PartyState.PARKED,),
                      "accept": (PartyState.WAITING, PartyState.OFFERED)}[name]
            p = self._slot(a.slot) if name == "unpark" and a.slot else self._pick(a.call, *states)
            if p is None:
                self.last_error = {"retrieve": "no-held-call", "unpark": "no-parked-call",
                                   "accept": "no-waiting-call"}[name]
                return []
            return self._connect(p, now)
        if name == "swap":
            held = self._pick(a.call, PartyState.HELD)
            if held is None or self.active() is None:
                self.last_error = "nothing-to-swap"
                return []
            return self._connect(held, now)
        if name == "park":
            p = self._pick(a.call, PartyState.ACTIVE, PartyState.HELD)
            if p is None:
                self.last_error = "no-call-to-park"
                return []
            slot = a.slot or self._free_slot()
            if not 1 <= slot <= self.plan.park_slots or self._slot(slot) is not None:
                self.last_error = "slot-unavailable"
                return []
            p.slot = slot
            return [*self._to_held(p, now, PartyState.PARKED), StartTimer(f"park-{slot}", self.plan.park_timeout_s)]
        if name == "reject":
            p = self._pick(a.call, PartyState.WAITING, PartyState.OFFERED)
            if p is None:
                self.last_error = "no-waiting-call"
                return []
            return self._reject(p, 486, "Busy Here")
        if name == "hangup":
            p = self._pick(a.call, PartyState.ACTIVE) or (self.parties.get(a.call) if a.call else None)
            if p is None:
                self.last_error = "no-call"
                return []
            if p.direction == "in" and not p.answered:
                return self._reject(p, 486, "Busy Here")
            return [Hangup(p.role, "ended by user")]
        if name == "reconnect":
            if self.line_state is not LineState.DOWN:
                self.last_error = "line-not-down"
                return []
            return self._dial_line(now)
        self.last_error = "unknown-action"
        return []

    def _reject(self, p: Party, code: int, text: str) -> list[Action]:
        acts: list[Action] = [CancelTimer(f"offer-{p.role}"), Respond(p.role, code, headers=reason_header(code, text))]
        if p.state is PartyState.WAITING and self.line_state is LineState.UP:
            acts.append(StopTone(self.line))
        return acts

    def _slot(self, slot: int) -> Party | None:
        return next((p for p in self.parties.values() if p.state is PartyState.PARKED and p.slot == slot), None)

    def _free_slot(self) -> int:
        used = {p.slot for p in self.parties.values() if p.slot}
        return next((s for s in range(1, self.plan.park_slots + 1) if s not in used), 0)

    # ------------------------------------------------------------------------------------------ keypad
    def _keypad(self, ev: Dtmf, now: float) -> list[Action]:
        buf = self.keypad_buffer + ev.digit
        codes = self.plan.keypad
        if buf in codes:
            self.keypad_buffer = ""
            return [CancelTimer(KEYPAD), *self._user_action(UserAction(codes[buf]), now)]
        if any(c.startswith(buf) for c in codes):
            self.keypad_buffer = buf
            return [StartTimer(KEYPAD, KEYPAD_GAP_S)]
        self.keypad_buffer = ""
        active = self.active()
        if active is not None:  # not a code: the digits were for the other party (an IVR, a PIN)
            return [CancelTimer(KEYPAD), *[SendDtmf(active.role, d, ev.duration_ms) for d in buf]]
        return [CancelTimer(KEYPAD)]

    # ------------------------------------------------------------------------------------------ timers
    def _timer(self, name: str, now: float) -> list[Action]:
        if name == LINE_ANSWER and self.line_state is LineState.CALLING:
            return [Hangup(self.line, "no answer")]
        if name == CONFIRM and self.line_state is LineState.CONFIRMING:
            return [Hangup(self.line, "not confirmed", reason_header(480, "Not confirmed"))]
        if name == KEYPAD:
            self.keypad_buffer = ""
            return []
        if name == "failure-tone" and self.line_state is LineState.UP:
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
        self.pending = None
        code = self.plan.fallback_code
        acts: list[Action] = [CancelTimer(REDIAL), Notify("reconnect-failed", {"calls": sorted(self.parties)})]
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
