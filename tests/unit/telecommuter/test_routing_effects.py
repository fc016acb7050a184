"""Routing on the live settings, in-process with the fake engine: do-not-disturb, forwarding (unconditional, on
busy, on no answer) with the caller's identity and Diversion kept, twinning (first answer wins, the other leg
CANCELled with Reason cause=200, the twin's confirmation digit)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from b2bua.calls.events import Answered, Hangup, Link, PlaceCall, Role, StartTimer, TimerFired
from b2bua.calls.incoming import Forwards, IncomingCall, IncomingPlan, Ring
from b2bua.telecommuter.users import Mode, PresenceStatus, User
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, CALLER, MOBILE, OUT, headers_of, make_user, node, placed
from tests.unit.telecommuter.test_incoming_planner import call_in, greeted

HOME = "+494012345678"
ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


def at_desk(t: InProcess, u: User, ext: str = "2101") -> str:
    t.domain.desks.create(ext, f"sip:{ext}@127.0.0.9:5060", "desk")
    t.domain.desks.login(u, ext)
    return f"sip:{ext}@127.0.0.9:5060"


def hangups(t: InProcess) -> dict[str, dict[str, str]]:
    return {c.leg: headers_of(c) for c in t.engine.named("hangup")}


async def test_dnd_sends_calls_to_voicemail_else_busy(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.presence.update(u, PresenceStatus.DND, "")
    call_in(t, "A1")
    assert placed(t) == [] and greeted(t, "A1")
    v = make_user(t, "202", "+493012345679", voicemail=False)
    t.domain.presence.update(v, PresenceStatus.DND, "")
    call_in(t, "A2", called="+493012345679")
    assert placed(t) == [] and t.engine.responses("A2") == [486]


async def test_unconditional_forward_keeps_the_caller_and_names_the_business_number(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.live.change(u, {"forwarding": {"unconditional": "040 12345678"}})
    call_in(t, "A1")
    (fwd,) = placed(t)
    assert fwd.args[:2] == (f"sip:{HOME}@{OUT}", f'"Bob" <sip:{CALLER}@127.0.0.1>')
    h = headers_of(fwd)
    assert h["Diversion"] == f"<sip:{BUSINESS}@127.0.0.1>;reason=unconditional;counter=1;privacy=off"
    assert f"<sip:{HOME}@127.0.0.1?Reason=SIP%3Bcause%3D302>" in h["History-Info"]
    t.far.ended(fwd.leg, 486)  # a forwarded call is not taken by the user's voicemail
    assert t.engine.responses("A1") == [180, 486]


async def test_busy_forward_when_the_phone_is_busy_and_when_the_line_is_in_use(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.live.change(u, {"forwarding": {"busy": HOME}})
    call_in(t, "A1")
    t.far.ended(placed(t)[0].leg, 486)
    fwd = placed(t)[1]
    assert fwd.args[0] == f"sip:{HOME}@{OUT}" and "reason=user-busy" in headers_of(fwd)["Diversion"]
    assert t.engine.responses("A1") == [180]
    t.far.answered(fwd.leg)
    assert t.engine.responses("A1") == [180, 200]
    call_in(t, "A2")  # the telecommuter line is taken by nobody now: it rings; a third while it rings is busy
    call_in(t, "A3")
    assert [str(c.args[0]).split("@")[0] for c in placed(t)[2:]] == [f"sip:{MOBILE}", f"sip:{HOME}"]
    assert t.engine.responses("A3") == [180]


async def test_no_answer_forward_uses_the_ring_time_and_is_not_forwarded_again(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.live.change(u, {"forwarding": {"no_answer": HOME, "ring_time_s": 5}})
    call_in(t, "A1")
    ring = placed(t)[0]
    active = next(iter(t.runner.calls.values()))
    assert isinstance(active.machine, IncomingCall) and active.machine.plan.ring_timeout_s == 5.0
    t.far.ended(ring.leg, 480)  # the phone gives up (as our ring timer would): forward
    fwd = placed(t)[1]
    assert fwd.args[0] == f"sip:{HOME}@{OUT}" and "reason=no-answer" in headers_of(fwd)["Diversion"]
    assert "cause%3D408" in headers_of(fwd)["History-Info"]
    t.far.ended(fwd.leg, 480)
    assert t.engine.responses("A1") == [180, 480] and len(placed(t)) == 2


def test_the_ring_timer_cancels_the_ringing_legs_then_forwards() -> None:
    ring = Ring("sip:desk", "from", (), "desk")
    twin = Ring("sip:mobile", "from", (), "twin")
    fwd = Ring("sip:home", "from", (("Diversion", "x"),), "forward")
    call = IncomingCall(IncomingPlan(ring, 5, None, "", {}, twin, Forwards(no_answer=fwd, ring_timeout_s=9)))
    call.start(0.0)
    acts = call.handle(TimerFired("ring"), 5.0)
    assert [a for a in acts if isinstance(a, Hangup)] == [Hangup(Role.USER, "no answer"),
                                                          Hangup(Role.TWIN, "no answer")]
    assert PlaceCall(Role.FORWARD, "sip:home", "from", (("Diversion", "x"),)) in acts
    assert StartTimer("ring", 9) in acts
    assert call.handle(Answered(Role.TWIN), 5.1) == [Hangup(Role.TWIN, "call no longer wanted")]
    acts = call.handle(Answered(Role.FORWARD), 6.0)
    assert Link(Role.CALLER, Role.FORWARD) in acts and call.state_name == "connected"


async def test_twinning_rings_both_and_the_first_answer_wins(t: InProcess) -> None:
    u = make_user(t)
    desk = at_desk(t, u)
    t.domain.live.change(u, {"mobility": {"twinning": True, "twin_number": MOBILE}})
    call_in(t, "A1")
    desk_leg, twin_leg = placed(t)
    assert desk_leg.args[0] == desk and twin_leg.args[0] == f"sip:{MOBILE}@{OUT}"
    assert "Diversion" in headers_of(twin_leg)
    t.far.answered(desk_leg.leg)
    assert hangups(t) == {twin_leg.leg: {"Reason": ELSEWHERE}}
    assert t.engine.responses("A1") == [180, 200]


async def test_the_twin_must_press_its_digit_and_a_silent_answer_is_dropped(tmp_path: Path) -> None:
    async with node(tmp_path, telecommuter="confirm_timeout_s = 0.05") as t:
        u = make_user(t, confirm_digit="1")
        at_desk(t, u)
        t.domain.live.change(u, {"mobility": {"twinning": True, "twin_number": MOBILE}})
        call_in(t, "A1")
        desk_leg, twin_leg = placed(t)
        t.far.answered(twin_leg.leg)  # a mobile's voicemail answers: no digit
        assert t.engine.responses("A1") == [180]
        await asyncio.sleep(0.1)
        assert 'cause=480' in hangups(t)[twin_leg.leg]["Reason"] and desk_leg.leg not in hangups(t)
        t.far.ended(twin_leg.leg, 200)
        t.far.answered(desk_leg.leg)  # the desk still rang, and takes the call
        assert t.engine.responses("A1") == [180, 200]

        call_in(t, "A2")
        desk2, twin2 = placed(t)[2:]
        t.far.answered(twin2.leg)
        t.far.dtmf(twin2.leg, "1")
        assert hangups(t)[desk2.leg] == {"Reason": ELSEWHERE} and t.engine.responses("A2") == [180, 200]


async def test_the_callers_own_confirmation_does_not_end_a_forwarded_call(t: InProcess) -> None:
    # the real engine reports the caller's leg Answered when its ACK to our 200 arrives: that is no late answer
    # of a far leg, so neither the caller nor the forward leg may be hung up
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.live.change(u, {"forwarding": {"unconditional": HOME}})
    call_in(t, "A1")
    (fwd,) = placed(t)
    t.far.answered(fwd.leg)
    assert t.engine.responses("A1") == [180, 200]
    t.far.answered("A1")
    assert hangups(t) == {} and len(t.runner.calls) == 1
    t.far.ended("A1")
    assert hangups(t) == {fwd.leg: {}}


def test_the_callers_answered_is_ignored_in_every_state() -> None:
    ring = Ring("sip:home", "from", (), "forward")
    call = IncomingCall(IncomingPlan(ring, 5, None, "", {}))
    call.start(0.0)
    assert Link(Role.CALLER, Role.USER) in call.handle(Answered(Role.USER), 1.0)
    assert call.handle(Answered(Role.CALLER), 1.01) == []
    assert call.handle(Answered(Role.USER), 1.02) == []
    assert call.state_name == "connected"
