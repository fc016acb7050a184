"""Call control in-process: a carrier's INVITE screened, bridged onwards and torn down; a call for one of our
users planned by the domain, or joining the user's keep-connected session; over a fake engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.calls.events import Role
from b2bua.calls.machine import CallKind
from b2bua.control.interfaces import Attach
from b2bua.sip.types import Admit, Reject
from b2bua.telecommuter.users import Mode
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess, in_process
from tests.unit.control.helpers import BUSINESS, CALLER, MOBILE, OUT, PBX, make_user, only_call


async def test_trunk_call_is_bridged_and_both_legs_end(tmp_path: Path) -> None:
    async with in_process(tmp_path) as t:
        admitted = t.far.call_in(invite("A1", called="4930123456"))
        assert isinstance(admitted, Admit) and admitted.target_trunk == "carrier"
        placed = t.engine.calls_placed()
        assert len(placed) == 1 and placed[0].args[0].startswith("sip:4930123456@127.0.0.3")
        b_leg = placed[0].leg
        t.far.ringing(b_leg)
        assert t.engine.responses("A1") == [180]
        t.far.answered(b_leg)
        assert 200 in t.engine.responses("A1")
        t.far.answered("A1")
        assert {(c.leg, c.args[0]) for c in t.engine.named("link")} == {("A1", b_leg)}
        assert t.node.gate.admitted == 1
        t.far.ended("A1")
        assert [c.leg for c in t.engine.named("hangup")] == [b_leg]
        t.far.ended(b_leg)
        assert t.node.gate.admitted == 0 and not t.runner.calls
        cdr = t.domain.records.recent(10)
        assert cdr[0]["outcome"] == "completed-a-hangup" and cdr[0]["kind"] == "trunk", cdr


async def test_unknown_source_is_refused_before_any_call(tmp_path: Path) -> None:
    async with in_process(tmp_path) as t:
        refused = t.far.call_in(invite("A1", src_ip="127.0.0.66"))
        assert isinstance(refused, Reject) and refused.code == 403
        assert t.engine.commands == [] and t.node.gate.admitted == 0


# ------------------------------------------------------------------------------------------ calls for our users
async def test_trunk_call_passes_the_callers_identity_and_nothing_else(t: InProcess) -> None:
    hdrs = (("P-Asserted-Identity", "<sip:+493098765432@carrier>"), ("Privacy", "id"), ("X-Secret", "1"))
    t.far.call_in(invite("A1", called="4930123456", from_display='Al "the" Caller', headers=hdrs))
    (placed,) = t.engine.calls_placed()
    assert placed.args[1] == '"Al the Caller" <sip:15551230001@127.0.0.1>'
    assert placed.args[2] == hdrs[:2]
    call = only_call(t)
    assert call.kind is CallKind.TRUNK and call.invite is not None and call.invite.leg_id == "A1"
    assert call.summary()["trunk_in"] == "carrier" and call.summary()["called"] == "4930123456"


async def test_call_for_a_user_is_admitted_as_that_user_and_planned_by_the_domain(t: InProcess) -> None:
    u = make_user(t, voicemail=False)  # mode off, no desk, no voicemail: busy
    admitted = t.far.call_in(invite("A1", called=BUSINESS, from_user="03098765432"))
    assert isinstance(admitted, Admit) and admitted.user_id == u.id and admitted.target_uri == ""
    assert t.engine.calls_placed() == []  # not routed onwards
    assert t.engine.responses("A1") == [486]
    call = only_call(t)
    assert (call.kind, call.user_id, call.legs) == (CallKind.INCOMING, u.id, {Role.CALLER: "A1"})
    assert call.info["caller"] == CALLER and call.info["sip_call_id"] == "cid-A1"
    t.far.ended("A1", 486)
    assert not t.runner.calls and t.node.gate.admitted == 0
    cdr = t.domain.records.recent(1)[0]
    assert (cdr["kind"], cdr["user_id"], cdr["outcome"], cdr["final_code"]) == ("incoming", u.id, "logged-out", 486)


async def test_extension_call_from_the_pbx_rings_the_telecommuter(t: InProcess) -> None:
    u = make_user(t, extension="201", mode=Mode.ON_DEMAND, number=MOBILE)
    admitted = t.far.call_in(invite("P1", called="201", from_user="202", src_ip=PBX))
    assert isinstance(admitted, Admit) and (admitted.user_id, admitted.trunk) == (u.id, "pbx")
    (ring,) = t.engine.calls_placed()
    assert ring.args[0] == f"sip:{MOBILE}@{OUT}"
    assert t.engine.responses("P1") == [180]
    t.far.answered(ring.leg)
    assert t.engine.responses("P1") == [180, 200]
    assert {(c.leg, c.args[0]) for c in t.engine.named("link")} == {("P1", ring.leg)}


async def test_call_for_a_keep_connected_user_joins_the_session(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    session = only_call(t)
    line = session.legs["line1"]
    t.far.answered(line)
    assert t.node.gate.admitted == 1
    admitted = t.far.call_in(invite("A1", called=BUSINESS))
    assert isinstance(admitted, Admit) and admitted.user_id == u.id
    assert list(t.runner.calls) == [session.id], "no new call: the leg joined the session"
    assert session.legs["in-A1"] == "A1" and session.admitted_roles == {"in-A1"}
    assert t.engine.responses("A1") == [180, 200]
    assert (line, "A1") in {(c.leg, c.args[0]) for c in t.engine.named("link")}
    assert t.node.gate.admitted == 2
    t.far.ended("A1")
    assert t.node.gate.admitted == 1 and session.admitted_roles == set()


async def test_session_gone_before_the_call_joins_refuses_480_and_gives_admission_back(
        t: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    make_user(t)
    monkeypatch.setattr(t.domain.policy.planner, "plan",
                        lambda inv, admit: Attach("no-such-session", f"in-{inv.leg_id}", lambda now: []))
    assert isinstance(t.far.call_in(invite("A1", called=BUSINESS)), Admit)
    assert t.engine.responses("A1") == [480]
    assert t.node.gate.admitted == 0 and not t.runner.owns_leg("A1")
