"""The keep-connected session machine: examples, and a hypothesis stateful test over random sequences of user
actions, line drops, remote hang-ups and timers (invariants: no call lost without a terminal event, at most one
active call, music to every held or parked party, no leg left when the session ends)."""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from b2bua.calls import events as call_events
from b2bua.calls import keepconnected

PLAN = keepconnected.SessionPlan(
    line_uri="sip:+49171@m",
    line_from="<sip:b@us>",
    number="+49171",
    music="/moh.wav",
    keypad={"*1": "toggle-hold", "*3": "park", "*5": "unpark"},
    reconnect_timeout_s=60,
)
ACTIONS = ("hold", "retrieve", "swap", "park", "unpark", "accept", "reject", "hangup", "reconnect", "toggle-hold")


def up(plan: keepconnected.SessionPlan = PLAN) -> tuple[keepconnected.KeepConnectedSession, list[call_events.Action]]:
    s = keepconnected.KeepConnectedSession(plan)
    acts = s.start(0) + s.handle(call_events.Answered("line1"), 1)
    return s, acts


def test_line_is_dialled_once_and_calls_ride_it() -> None:
    s, acts = up()
    assert [a.role for a in acts if isinstance(a, call_events.PlaceCall)] == ["line1"]
    assert s.line_state is keepconnected.LineState.UP
    acts = s.handle(keepconnected.Dial("out-1", "sip:t@x", "<sip:b@us>", "+4930"), 2)
    assert [a.role for a in acts if isinstance(a, call_events.PlaceCall)] == ["out-1"]
    acts = s.handle(call_events.Answered("out-1"), 3)
    assert call_events.Link("line1", "out-1") in acts and s.active() is not None
    acts = s.handle(call_events.Ended("out-1", 200), 4)
    assert call_events.Unlink("line1") in acts and s.line_state is keepconnected.LineState.UP and not s.parties


def test_drop_keeps_the_active_call_held_with_music_and_retrieve_redials() -> None:
    s, _ = up()
    s.handle(keepconnected.Dial("out-1", "sip:t@x", "<sip:b@us>", "+4930"), 2)
    s.handle(call_events.Answered("out-1"), 3)
    acts = s.handle(call_events.Ended("line1", 408), 4)
    assert call_events.PlayFile("out-1", "/moh.wav", loop=True) in acts
    assert s.parties["out-1"].state is keepconnected.PartyState.HELD
    assert call_events.StartTimer(keepconnected.RECONNECT, 60) in acts
    acts = s.handle(keepconnected.UserAction("retrieve"), 5)
    assert [a.role for a in acts if isinstance(a, call_events.PlaceCall)] == ["line2"]
    acts = s.handle(call_events.Answered("line2"), 6)
    assert call_events.Link("line2", "out-1") in acts and call_events.StopFile("out-1") in acts
    assert call_events.CancelTimer(keepconnected.RECONNECT) in acts
    assert s.handle(call_events.Ended("line1", 200), 7) == []  # a late event from the dead line changes nothing


def test_unreachable_user_gets_the_fallback_after_the_bound() -> None:
    s, _ = up()
    s.handle(keepconnected.Offer("in-1", {"caller": "+4940"}), 2)  # auto-answered on the idle line
    s.handle(keepconnected.UserAction("park"), 3)
    s.handle(call_events.Ended("line1", 408), 4)
    acts = s.handle(call_events.TimerFired(keepconnected.RECONNECT), 64)
    hang = [a for a in acts if isinstance(a, call_events.Hangup)]
    assert [h.role for h in hang] == ["in-1"] and "cause=480" in hang[0].headers[0][1]
    assert call_events.Notify("reconnect-failed", {"calls": ["in-1"]}) in acts


def test_waiting_call_accept_holds_current_and_a_further_call_is_refused() -> None:
    s, _ = up()
    s.handle(keepconnected.Offer("in-1", {}), 2)
    acts = s.handle(keepconnected.Offer("in-2", {}), 3)
    assert (
        call_events.PlayTone("line1", "call-waiting") in acts
        and s.parties["in-2"].state is keepconnected.PartyState.WAITING
    )
    assert not s.can_offer()
    acts = s.handle(keepconnected.UserAction("accept"), 4)
    assert call_events.Answer("in-2") in acts and call_events.PlayFile("in-1", "/moh.wav", loop=True) in acts


def test_keypad_codes_and_digits_for_the_far_end() -> None:
    s, _ = up()
    s.handle(keepconnected.Offer("in-1", {}), 2)
    assert s.handle(call_events.Dtmf("line1", "*", 100), 3) == [
        call_events.StartTimer(keepconnected.KEYPAD, keepconnected.KEYPAD_GAP_S)
    ]
    acts = s.handle(call_events.Dtmf("line1", "1", 100), 3.2)
    assert s.parties["in-1"].state is keepconnected.PartyState.HELD and call_events.Unlink("line1") in acts
    s.handle(call_events.Dtmf("line1", "*", 100), 4)
    s.handle(call_events.Dtmf("line1", "1", 100), 4.1)
    assert s.active() is not None
    acts = s.handle(call_events.Dtmf("line1", "7", 100), 5)  # not a code: goes to the caller
    assert call_events.SendDtmf("in-1", "7", 100) in acts


class SessionRun(RuleBasedStateMachine):
    """A simulated engine around one session: legs live until their end is delivered."""

    @initialize(redial=st.booleans(), cw=st.booleans(), auto=st.booleans(), confirm=st.booleans())
    def setup(self, redial: bool, cw: bool, auto: bool, confirm: bool) -> None:
        plan = keepconnected.SessionPlan(
            line_uri="sip:l@m",
            line_from="<sip:b@us>",
            number="+49171",
            music="/moh.wav",
            redial_on_drop=redial,
            call_waiting=cw,
            auto_answer=auto,
            park_slots=3,
            keypad={"*1": "toggle-hold"},
            confirm_digit="9" if confirm else "",
        )
        self.s = keepconnected.KeepConnectedSession(plan)
        self.now = 0.0
        self.live: dict[str, bool] = {}  # role -> answered
        self.ending: set[str] = set()  # hangup/final response sent, end not delivered yet
        self.timers: set[str] = set()
        self.music: dict[str, bool] = {}
        self.parties_seen: set[str] = set()
        self.terminal: set[str] = set()
        self.n = 0
        self.apply(self.s.start(self.now))

    def apply(self, acts: list[call_events.Action]) -> None:
        for a in acts:
            match a:
                case call_events.PlaceCall():
                    assert a.role not in self.live, f"{a.role} placed twice"
                    self.live[a.role] = False
                case call_events.Hangup() | call_events.Respond() if getattr(a, "code", 300) >= 300:
                    if a.role in self.live:
                        self.ending.add(a.role)
                case call_events.Answer():
                    self.live[a.role] = True
                case call_events.StartTimer():
                    self.timers.add(a.name)
                case call_events.CancelTimer():
                    self.timers.discard(a.name)
                case call_events.PlayFile():
                    self.music[a.role] = True
                case call_events.StopFile():
                    self.music[a.role] = False
                case call_events.Notify(state="call-ended"):
                    self.terminal.add(str(a.detail["call"]))
                case call_events.Notify(state="reconnect-failed"):
                    self.terminal.update(a.detail["calls"])

    def feed(self, e: keepconnected.SessionEvent) -> None:
        self.now += 1
        self.apply(self.s.handle(e, self.now))

    def end_leg(self, role: str, code: int) -> None:
        if role == self.s.line:  # for --hypothesis-show-statistics: drops seen in which states
            event(f"line drop while {self.s.line_state.value}")
            for p in self.s.parties.values():
                event(f"line drop with a {p.state.value} call")
        self.live.pop(role, None)
        self.ending.discard(role)
        self.feed(call_events.Ended(role, code))

    # -------------------------------------------------------------------------------------- rules
    @rule(name=st.sampled_from(ACTIONS), slot=st.integers(0, 3))
    def user_action(self, name: str, slot: int) -> None:
        self.feed(keepconnected.UserAction(name, "", slot))

    @rule()
    def dial(self) -> None:
        self.n += 1
        self.feed(keepconnected.Dial(f"out-{self.n}", "sip:t@x", "<sip:b@us>", "+4930"))
        if f"out-{self.n}" in self.s.parties:
            self.parties_seen.add(f"out-{self.n}")

    @rule()
    def incoming(self) -> None:
        self.n += 1
        role = f"in-{self.n}"
        if not self.s.can_offer():
            return  # the service sends it to voicemail/busy instead
        self.live[role] = False
        self.parties_seen.add(role)
        self.feed(keepconnected.Offer(role, {}))

    @precondition(lambda self: any(not up and r not in self.ending for r, up in self.live.items()))
    @rule(data=st.data())
    def answered(self, data: st.DataObject) -> None:
        role = data.draw(st.sampled_from(sorted(r for r, up in self.live.items() if not up and r not in self.ending)))
        if role.startswith("in-"):
            return  # inbound legs are answered by us, not by the far end
        self.live[role] = True
        self.feed(call_events.Answered(role))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), code=st.sampled_from([200, 408, 486, 487]))
    def leg_ends(self, data: st.DataObject, code: int) -> None:
        """A remote hang-up, a failure, the line dying, or the end we asked for."""
        self.end_leg(data.draw(st.sampled_from(sorted(self.live))), code)

    @precondition(lambda self: bool(self.timers))
    @rule(data=st.data())
    def timer(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.timers)))
        self.timers.discard(name)
        self.feed(call_events.TimerFired(name))

    @precondition(lambda self: self.live.get(self.s.line) is False and self.s.line not in self.ending)
    @rule(confirm=st.booleans())
    def line_answers(self, confirm: bool) -> None:
        """The telecommuter picks up (and, if asked, presses the confirmation digit)."""
        self.live[self.s.line] = True
        self.feed(call_events.Answered(self.s.line))
        if confirm:
            self.feed(call_events.Dtmf(self.s.line, "9", 100))

    @rule(digit=st.sampled_from(["*", "1", "5", "9"]))
    def keypad(self, digit: str) -> None:
        self.feed(call_events.Dtmf(self.s.line, digit, 100))

    # -------------------------------------------------------------------------------------- invariants
    @invariant()
    def one_active_at_most(self) -> None:
        assert len(self.s.in_state(keepconnected.PartyState.ACTIVE)) <= 1

    @invariant()
    def held_and_parked_hear_music(self) -> None:
        for p in self.s.in_state(keepconnected.PartyState.HELD, keepconnected.PartyState.PARKED):
            assert self.music.get(p.role), f"{p.role} {p.state} without music"

    @invariant()
    def no_orphan_leg(self) -> None:
        """Every live party leg is either a party of the session or being ended."""
        for role in self.live:
            if not role.startswith("line"):
                assert role in self.s.parties or role in self.ending, f"{role} orphaned"

    @invariant()
    def no_ghost_party(self) -> None:
        """A party whose leg is gone is no longer offered to the user."""
        for role in self.s.parties:
            assert role in self.live, f"{role} ended but still a {self.s.parties[role].state}"

    @invariant()
    def active_needs_the_line(self) -> None:
        if self.s.active() is not None:
            assert self.s.line_state is keepconnected.LineState.UP

    def teardown(self) -> None:
        """End the session: every leg goes, the machine finishes, every party had a terminal event."""
        if not hasattr(self, "s"):
            return
        self.feed(call_events.Terminate("test over"))
        for _ in range(50):
            if not self.live:
                break
            role = sorted(self.live)[0]
            assert role in self.ending or role.startswith("line") or role not in self.s.parties
            self.end_leg(role, 200)
        assert not self.live and self.s.done, (self.live, self.s.snapshot())
        gone = {r for r in self.parties_seen if r not in self.s.parties}
        assert gone <= self.terminal, f"no terminal event for {gone - self.terminal}"


SessionRun.TestCase.settings = settings(max_examples=500, stateful_step_count=50, deadline=None)
test_session_stateful = SessionRun.TestCase
