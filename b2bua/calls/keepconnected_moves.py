"""A keep-connected session's state and the moves on its calls: (re)dialling the line, holding, parking and
connecting parties, and the user's actions and keypad codes built from those moves.

:class:`SessionMoves` is the base of :class:`b2bua.calls.keepconnected.KeepConnectedSession`, which adds the
reactions to the legs' signalling and to timers. Nothing here is driven by an event directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b2bua.calls.events import (
    Abandon,
    Action,
    Answer,
    CancelTimer,
    Dtmf,
    Hangup,
    Link,
    Notify,
    PlaceCall,
    PlayFile,
    Respond,
    RoleName,
    SendDtmf,
    StartTimer,
    StopFile,
    StopTone,
    Unlink,
    reason_header,
)
from b2bua.calls.keepconnected_plan import (
    KEYPAD,
    KEYPAD_GAP_S,
    LINE_ANSWER,
    LineState,
    Party,
    PartyState,
    Pending,
    SessionPlan,
    UserAction,
)

# which party a "take this call" action picks, and what it says when there is none
_TAKE: dict[str, tuple[tuple[PartyState, ...], str]] = {
    "retrieve": ((PartyState.HELD,), "no-held-call"),
    "unpark": ((PartyState.PARKED,), "no-parked-call"),
    "accept": ((PartyState.WAITING, PartyState.OFFERED), "no-waiting-call"),
}


@dataclass
class SessionMoves:
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
    def state_name(self) -> str:
        """The API shows the state of the line (the parties are listed by :meth:`snapshot`)."""
        return self.line_state.value

    @property
    def holds_user_line(self) -> bool:
        """The line leg is the user's phone, from the first INVITE until that leg has ended."""
        return self.line_live

    @property
    def line(self) -> RoleName:
        return f"line{self.line_gen}"

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

    def _kept(self) -> list[Party]:
        return self.in_state(PartyState.HELD, PartyState.PARKED, PartyState.WAITING, PartyState.OFFERED)

    def _slot(self, slot: int) -> Party | None:
        return next((p for p in self.parties.values() if p.state is PartyState.PARKED and p.slot == slot), None)

    def _free_slot(self) -> int:
        used = {p.slot for p in self.parties.values() if p.slot}
        return next((s for s in range(1, self.plan.park_slots + 1) if s not in used), 0)

    def _pick(self, call: RoleName, *states: PartyState) -> Party | None:
        if call:
            p = self.parties.get(call)
            return p if p is not None and p.state in states else None
        found = self.in_state(*states)
        return found[-1] if found else None  # the most recent

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

    def _ensure_line(self, pending: Pending, now: float) -> list[Action]:
        """The action needs the line: perform it now if the line is up, else (re)dial and do it afterwards."""
        if self.line_state is LineState.UP:
            return []
        acts: list[Action] = []
        replaced = self.pending
        if replaced is not None and replaced.action == "dial" and replaced.role != pending.role:
            acts.append(Abandon(replaced.role))  # a newer action takes the line's turn: that dial is dropped
        self.pending = pending
        if self.line_state is LineState.DOWN:
            return acts + self._dial_line(now)
        return acts  # already calling/confirming: the pending action runs when it is up

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

    def _reject(self, p: Party, code: int, text: str) -> list[Action]:
        acts: list[Action] = [CancelTimer(f"offer-{p.role}"), Respond(p.role, code, headers=reason_header(code, text))]
        if p.state is PartyState.WAITING and self.line_state is LineState.UP:
            acts.append(StopTone(self.line))
        return acts

    # ------------------------------------------------------------------------------------------ user actions
    def _user_action(self, a: UserAction, now: float) -> list[Action]:
        acts = self._do(a, now)
        if self.last_error:
            return [Notify("action-refused", {"action": a.name, "reason": self.last_error})]
        return acts

    def _do(self, a: UserAction, now: float) -> list[Action]:
        name = a.name
        if self.ending:
            return self._refuse("session-ending")
        if name == "toggle-hold":  # one key for both: hold the active call, else retrieve the held one
            name = "hold" if self.active() is not None else "retrieve"
        match name:
            case "retrieve" | "unpark" | "accept":
                return self._take(name, a, now)
            case "hold":
                return self._hold(a, now)
            case "swap":
                return self._swap(a, now)
            case "park":
                return self._park(a, now)
            case "reject":
                return self._reject_waiting(a)
            case "hangup":
                return self._hangup(a)
            case "reconnect":
                return self._reconnect(now)
        return self._refuse("unknown-action")

    def _refuse(self, reason: str) -> list[Action]:
        self.last_error = reason
        return []

    def _take(self, name: str, a: UserAction, now: float) -> list[Action]:
        """retrieve, unpark or accept: make that call the active one."""
        states, none = _TAKE[name]
        p = self._slot(a.slot) if name == "unpark" and a.slot else self._pick(a.call, *states)
        if p is None:
            return self._refuse(none)
        return self._connect(p, now)

    def _hold(self, a: UserAction, now: float) -> list[Action]:
        p = self._pick(a.call, PartyState.ACTIVE)
        if p is None:
            return self._refuse("no-active-call")
        return self._to_held(p, now)

    def _swap(self, a: UserAction, now: float) -> list[Action]:
        held = self._pick(a.call, PartyState.HELD)
        if held is None or self.active() is None:
            return self._refuse("nothing-to-swap")
        return self._connect(held, now)

    def _park(self, a: UserAction, now: float) -> list[Action]:
        p = self._pick(a.call, PartyState.ACTIVE, PartyState.HELD)
        if p is None:
            return self._refuse("no-call-to-park")
        slot = a.slot or self._free_slot()
        if not 1 <= slot <= self.plan.park_slots or self._slot(slot) is not None:
            return self._refuse("slot-unavailable")
        p.slot = slot
        return [*self._to_held(p, now, PartyState.PARKED), StartTimer(f"park-{slot}", self.plan.park_timeout_s)]

    def _reject_waiting(self, a: UserAction) -> list[Action]:
        p = self._pick(a.call, PartyState.WAITING, PartyState.OFFERED)
        if p is None:
            return self._refuse("no-waiting-call")
        return self._reject(p, 486, "Busy Here")

    def _hangup(self, a: UserAction) -> list[Action]:
        p = self._pick(a.call, PartyState.ACTIVE) or (self.parties.get(a.call) if a.call else None)
        if p is None:
            return self._refuse("no-call")
        if p.direction == "in" and not p.answered:
            return self._reject(p, 486, "Busy Here")
        return [Hangup(p.role, "ended by user")]

    def _reconnect(self, now: float) -> list[Action]:
        if self.line_state is not LineState.DOWN:
            return self._refuse("line-not-down")
        return self._dial_line(now)

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
