"""Keep-connected sessions: one persistent line per user, started and stopped with the mode, resumed at start-up
(paced by the call-rate limit), and driven by the API: calls dialled over the line and hold/retrieve/... actions.
Every refusal gives back the admission it took."""

from __future__ import annotations

import time
from pathlib import Path

from b2bua.calls.keepconnected import KeepConnectedSession
from b2bua.calls.machine import CallKind
from b2bua.calls.routing import Router
from b2bua.control.active import ActiveCall
from b2bua.sip.types import Admit
from b2bua.telecommuter.users import Mode, User
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess, in_process
from tests.unit.control.helpers import (
    BUSINESS,
    CALLER,
    MOBILE,
    OUT,
    headers_of,
    make_user,
    node,
    only_call,
    placed,
    refused,
    user,
)


def kept_user(t: InProcess, extension: str = "201", business: str = BUSINESS, number: str = MOBILE) -> User:
    """A user left in keep-connected mode (as after a restart): no session runs yet."""
    u = make_user(t, extension, business)
    updated = t.domain.accounts.repository.update_user(u.id, mode=Mode.KEEP_CONNECTED, telecommuter_number=number)
    assert isinstance(updated, User)
    return updated


def machine(call: ActiveCall) -> KeepConnectedSession:
    m = call.machine
    assert isinstance(m, KeepConnectedSession)
    return m


def line_up(t: InProcess, u: User) -> ActiveCall:
    """Start the user's session and answer its line."""
    call = t.domain.sessions.start(u)
    t.far.answered(call.legs[machine(call).line])
    assert machine(call).state_name == "up"
    assert isinstance(call, ActiveCall)
    return call


# ------------------------------------------------------------------------------------------ start and stop
async def test_start_calls_the_line_under_the_business_number(t: InProcess) -> None:
    u = kept_user(t)
    call = t.domain.sessions.start(u)
    assert (call.kind, call.user_id, call.info) == (CallKind.SESSION, u.id, {"user_number": MOBILE})
    (line,) = placed(t)
    assert line.args == (f"sip:{MOBILE}@{OUT}", f'"User 201 (line)" <sip:{BUSINESS}@127.0.0.1>', ())
    assert call.legs == {"line1": line.leg} and t.node.gate.admitted == 1
    assert t.domain.sessions.of(u.id) is call
    assert t.domain.sessions.start(u) is call, "one session per user"
    assert len(placed(t)) == 1 and t.node.gate.admitted == 1


async def test_the_session_plan_follows_user_and_settings(tmp_path: Path) -> None:
    kc = 'auto_answer = false\nreconnect_timeout_s = 7\nkeypad = { "#1" = "hold" }'
    async with node(tmp_path, keep_connected=kc, telecommuter="user_answer_timeout_s = 9") as t:
        u = kept_user(t)
        u = t.domain.accounts.update(u, confirm_digit="5", call_waiting=True)
        plan = machine(t.domain.sessions.start(u)).plan
        assert (plan.auto_answer, plan.reconnect_timeout_s, dict(plan.keypad)) == (False, 7, {"#1": "hold"})
        assert (plan.confirm_digit, plan.call_waiting, plan.line_answer_timeout_s) == ("5", True, 9)
        assert plan.music == t.settings.keep_connected.music_wav
        assert plan.target_answer_timeout_s == t.settings.sip.no_answer_timeout_s


async def test_built_in_hold_music_is_written_beside_the_store(tmp_path: Path) -> None:
    async with in_process(tmp_path) as t:
        music = Path(t.domain.sessions.music)
        assert music == tmp_path / "var" / "media" / "music-on-hold.wav" and music.stat().st_size > 1000


async def test_start_refusals_hold_no_admission(t: InProcess) -> None:
    u = kept_user(t)
    t.node.gate.ceiling = 0
    with refused(503, "over-capacity"):
        t.domain.sessions.start(u)
    t.node.gate.ceiling = 10
    t.domain.sessions.router = Router(t.settings.trunks, [])
    with refused(503, "no-route"):
        t.domain.sessions.start(u)
    assert placed(t) == [] and t.node.gate.admitted == 0 and t.domain.sessions.of(u.id) is None


async def test_stop_hangs_up_the_line_and_the_session_ends(t: InProcess) -> None:
    u = kept_user(t)
    call = line_up(t, u)
    line = call.legs["line1"]
    t.domain.sessions.stop(u.id, "mode off")
    assert [c.leg for c in t.engine.named("hangup")] == [line]
    assert t.domain.sessions.of(u.id) is None, "an ending session is not the user's session any more"
    t.far.ended(line)
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    t.domain.sessions.stop(u.id, "again")  # nothing to stop: nothing happens
    assert len(t.engine.named("hangup")) == 1


async def test_a_new_session_may_start_while_the_old_line_hangs_up(t: InProcess) -> None:
    u = kept_user(t)
    old = line_up(t, u)
    t.domain.sessions.stop(u.id, "number changed")
    new = t.domain.sessions.start(u)
    assert new is not old and t.domain.sessions.of(u.id) is new
    assert len(placed(t)) == 2 and t.node.gate.admitted == 2
    t.far.ended(old.legs["line1"])
    assert t.node.gate.admitted == 1 and t.domain.sessions.of(u.id) is new


# ------------------------------------------------------------------------------------------ resuming
async def test_resume_all_restarts_the_sessions_of_users_left_in_keep_connected(t: InProcess) -> None:
    a = kept_user(t, "201", BUSINESS)
    b = kept_user(t, "202", "+493012345679", "+491711234568")
    make_user(t, "203", "+493012345670", mode=Mode.ON_DEMAND, number="+491711234569")
    no_number = make_user(t, "204", "+493012345671")
    t.domain.accounts.repository.update_user(no_number.id, mode=Mode.KEEP_CONNECTED)
    assert await t.domain.sessions.resume_all() == 2
    assert {c.user_id for c in t.runner.calls.values()} == {a.id, b.id}
    assert sorted(c.args[0] for c in placed(t)) == [f"sip:{MOBILE}@{OUT}", f"sip:+491711234568@{OUT}"]


async def test_resume_all_is_paced_by_the_call_rate_limit(t: InProcess) -> None:
    for i in range(3):
        kept_user(t, f"20{i}", f"+49301234567{i}", f"+49171123456{i}")
    t.node.gate.set_rate(40.0, 1)  # one now, then one every 25 ms
    started = time.monotonic()
    assert await t.domain.sessions.resume_all() == 3
    assert time.monotonic() - started >= 0.05, "the later ones waited for the rate limit"
    assert len(placed(t)) == 3 and t.node.gate.admitted == 3


async def test_resume_all_skips_a_user_it_cannot_start_and_goes_on(t: InProcess) -> None:
    kept_user(t, "201", BUSINESS)
    kept_user(t, "202", "+493012345679", "+491711234568")
    t.node.gate.ceiling = 1  # room for one: the other is refused outright, not retried
    started = time.monotonic()
    assert await t.domain.sessions.resume_all() == 1
    assert time.monotonic() - started < 0.5 and len(placed(t)) == 1


# ------------------------------------------------------------------------------------------ incoming calls
async def test_an_incoming_call_starts_a_missing_session_and_joins_it(t: InProcess) -> None:
    u = kept_user(t)
    assert isinstance(t.far.call_in(invite("A1", called=BUSINESS)), Admit)
    call = only_call(t)
    assert call.kind is CallKind.SESSION and call.user_id == u.id
    assert call.legs == {"line1": placed(t)[0].leg, "in-A1": "A1"} and t.node.gate.admitted == 2
    t.far.answered(call.legs["line1"])
    assert t.engine.responses("A1") == [180, 200]


# ------------------------------------------------------------------------------------------ dialling
async def test_dial_over_the_line(t: InProcess) -> None:
    u = kept_user(t)
    call = line_up(t, u)
    result = t.domain.sessions.dial(u, "030 98765432")
    assert (result["call"], result["number"]) == ("out-1", CALLER)
    assert result["session"]["id"] == call.id and result["session"]["calls"][0]["state"] == "dialing"
    out = placed(t)[-1]
    assert out.args[:2] == (f"sip:{CALLER}@{OUT}", f'"User 201" <sip:{BUSINESS}@127.0.0.1>')
    assert "P-Asserted-Identity" in headers_of(out)
    assert call.legs["out-1"] == out.leg and t.node.gate.admitted == 2
    t.far.answered(out.leg)
    assert (call.legs["line1"], out.leg) in {(c.leg, c.args[0]) for c in t.engine.named("link")}
    t.far.ended(out.leg)
    assert t.node.gate.admitted == 1


async def test_dial_refusals_take_no_admission(t: InProcess) -> None:
    u = kept_user(t)
    with refused(409, "no-session"):
        t.domain.sessions.dial(u, CALLER)
    line_up(t, u)
    with refused(403, "class-of-service:standard:international"):
        t.domain.sessions.dial(u, "+33123456789")
    t.node.gate.ceiling = 1
    with refused(503, "over-capacity"):
        t.domain.sessions.dial(u, CALLER)
    t.node.gate.ceiling = 10
    t.domain.sessions.router = Router(t.settings.trunks, [])
    with refused(503, "no-route"):
        t.domain.sessions.dial(u, CALLER)
    assert len(placed(t)) == 1 and t.node.gate.admitted == 1


async def test_dial_refused_by_the_session_gives_its_admission_back(t: InProcess) -> None:
    u = kept_user(t)
    call = line_up(t, u)
    t.domain.sessions.dial(u, CALLER)
    assert t.node.gate.admitted == 2
    with refused(409, "already-dialling"):
        t.domain.sessions.dial(u, "+493011111111")
    assert t.node.gate.admitted == 2 and call.admitted_roles == {"out-1"}
    assert len(placed(t)) == 2


async def test_dial_while_the_line_is_being_called_waits_for_it_and_a_second_is_refused(t: InProcess) -> None:
    u = kept_user(t)
    call = t.domain.sessions.start(u)
    t.domain.sessions.dial(u, CALLER)  # runs once the line is up
    assert len(placed(t)) == 1 and t.node.gate.admitted == 2
    with refused(409, "line-busy"):
        t.domain.sessions.dial(u, "+493011111111")
    assert t.node.gate.admitted == 2
    t.far.answered(call.legs["line1"])
    assert placed(t)[-1].args[0] == f"sip:{CALLER}@{OUT}" and call.legs["out-1"] == placed(t)[-1].leg


async def test_dial_dropped_because_the_line_failed_gives_its_admission_back(t: InProcess) -> None:
    u = kept_user(t)
    call = t.domain.sessions.start(u)
    t.domain.sessions.dial(u, CALLER)
    t.far.ended(call.legs["line1"], 486)
    assert t.node.gate.admitted == 1


# ------------------------------------------------------------------------------------------ actions
async def test_actions_on_the_sessions_calls(t: InProcess) -> None:
    u = kept_user(t)
    call = line_up(t, u)
    t.far.call_in(invite("A1", called=BUSINESS, from_user="03098765432"))  # auto-answered onto the idle line
    view = t.domain.sessions.action(u, "hold")
    assert view["id"] == call.id and [c["state"] for c in view["calls"]] == ["held"]
    assert t.engine.named("play_file")[-1].leg == "A1", "a held caller hears music"
    view = t.domain.sessions.action(u, "retrieve", "in-A1")
    assert [c["state"] for c in view["calls"]] == ["active"]
    view = t.domain.sessions.action(u, "park", slot=3)
    assert view["calls"] == [{"call": "in-A1", "number": CALLER, "direction": "in", "state": "parked", "slot": 3}]
    t.domain.sessions.action(u, "unpark", slot=3)
    t.domain.sessions.action(u, "hangup")
    assert [c.leg for c in t.engine.named("hangup")] == ["A1"]


async def test_action_refusals_are_409(t: InProcess) -> None:
    u = kept_user(t)
    with refused(409, "no-session"):
        t.domain.sessions.action(u, "hold")
    call = line_up(t, u)
    for name, rule in (("hold", "no-active-call"), ("retrieve", "no-held-call"), ("accept", "no-waiting-call"),
                       ("swap", "nothing-to-swap"), ("reconnect", "line-not-down"), ("dance", "unknown-action")):
        with refused(409, rule):
            t.domain.sessions.action(u, name)
    assert machine(call).state_name == "up" and t.node.gate.admitted == 1


async def test_view_and_require(t: InProcess) -> None:
    u = kept_user(t)
    with refused(409, "no-session"):
        t.domain.sessions.require(u)
    call = t.domain.sessions.start(u)
    assert t.domain.sessions.require(user(t, u.id)) is call
    assert t.domain.sessions.view(call) == {"id": call.id, "line": "calling", "line_invites": 1, "calls": []}


async def test_a_dial_refused_while_another_is_dialling_leaves_the_active_call_active(t: InProcess) -> None:
    u = kept_user(t)
    line_up(t, u)
    t.far.call_in(invite("A1", called=BUSINESS, from_user="03098765432"))  # auto-answered: the active call
    first = t.domain.sessions.dial(u, "+493011111111")  # holds A1 and dials
    t.domain.sessions.action(u, "retrieve", "in-A1")
    admitted = t.node.gate.admitted
    with refused(409, "already-dialling"):
        t.domain.sessions.dial(u, "+493022222222")
    view = t.domain.sessions.view(t.domain.sessions.require(u))
    states = {c["call"]: c["state"] for c in view["calls"]}
    assert states["in-A1"] == "active" and states[first["call"]] == "dialing", states
    assert t.node.gate.admitted == admitted, "the refused dial's admission went back"
