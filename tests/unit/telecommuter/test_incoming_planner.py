"""Where a call to one of our users goes: the telecommuter phone (on-demand, with the redirect headers and the
original caller), the keep-connected session, or the desk they are logged in at; else voicemail, else busy or
unavailable. A page only ever rings a desk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from b2bua.calls.events import Role
from b2bua.calls.incoming import IncomingCall
from b2bua.calls.machine import CallKind
from b2bua.calls.routing import Router
from b2bua.control.interfaces import Attach, PlannedCall
from b2bua.media.sounds import write_notes
from b2bua.sip.types import Admit, Headers, InboundInvite
from b2bua.telecommuter.users import Mode
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import (
    BUSINESS,
    CALLER,
    MOBILE,
    OUT,
    PBX,
    events,
    headers_of,
    make_user,
    node,
    only_call,
    placed,
)

PAGE: Headers = (("Alert-Info", "<http://x>;info=alert-autoanswer"),)
ONE_WAY = "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"


def call_in(t: InProcess, leg: str, *, called: str = BUSINESS, src_ip: str = "127.0.0.2",
            headers: Headers = (), sdp: str = "", display: str = "Bob") -> InboundInvite:
    inv = invite(leg, called=called, from_user="03098765432", from_display=display, src_ip=src_ip,
                 headers=headers, sdp=sdp)
    assert isinstance(t.far.call_in(inv), Admit)
    return inv


def incoming_calls(t: InProcess) -> list[str]:
    """The ``ringing`` field of each running incoming call (None: nothing rings)."""
    return [c.info.get("ringing") for c in t.runner.calls.values() if c.kind is CallKind.INCOMING]


def greeted(t: InProcess, leg: str) -> bool:
    """Voicemail took the call: answered, greeting playing."""
    return t.engine.responses(leg) == [200] and any(c.leg == leg for c in t.engine.named("play_file"))


# ------------------------------------------------------------------------------------------ on-demand
async def test_on_demand_rings_the_telecommuter_number_as_the_original_caller(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call_in(t, "A1", headers=(("P-Asserted-Identity", "<sip:+493098765432@carrier>"),))
    (ring,) = placed(t)
    assert ring.args[:2] == (f"sip:{MOBILE}@{OUT}", f'"Bob" <sip:{CALLER}@127.0.0.1>')
    h = headers_of(ring)
    assert h["P-Asserted-Identity"] == "<sip:+493098765432@carrier>"
    assert h["Diversion"] == f"<sip:{BUSINESS}@127.0.0.1>;reason=unconditional;counter=1;privacy=off"
    assert h["History-Info"].startswith(f"<sip:{BUSINESS}@127.0.0.1>;index=1, <sip:{MOBILE}@127.0.0.1?")
    assert t.engine.responses("A1") == [180]
    call = only_call(t)
    assert (call.user_id, call.info["ringing"], call.info["caller"], call.info["trunk_in"]) == (
        u.id, "telecommuter", CALLER, "carrier")
    t.far.answered(ring.leg)
    assert t.engine.responses("A1") == [180, 200]


async def test_redirect_header_styles_and_reason_follow_the_settings(tmp_path: Path) -> None:
    tc = 'redirect_headers = ["diversion"]\ndiversion_reason = "follow-me"'
    async with node(tmp_path, telecommuter=tc) as t:
        make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
        call_in(t, "A1")
        h = headers_of(placed(t)[0])
        assert "History-Info" not in h and ";reason=follow-me;" in h["Diversion"]


async def test_line_busy_goes_to_voicemail(t: InProcess) -> None:
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call_in(t, "A1")
    call_in(t, "A2")
    assert len(placed(t)) == 1, "one call at a time on the telecommuter phone"
    assert greeted(t, "A2")
    assert sorted(incoming_calls(t), key=str) == [None, "telecommuter"]


async def test_line_busy_without_voicemail_is_486(t: InProcess) -> None:
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, voicemail=False)
    call_in(t, "A1")
    call_in(t, "A2")
    assert t.engine.responses("A2") == [486]
    assert headers_of(t.engine.named("respond")[-1])["Reason"] == 'SIP;cause=486;text="Busy Here"'


async def test_a_callback_holding_the_line_makes_it_busy(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, voicemail=False)
    t.domain.outgoing.start_callback(u, CALLER)
    call_in(t, "A1")
    assert t.engine.responses("A1") == [486] and len(placed(t)) == 1


async def test_call_waiting_allows_a_second_call_to_ring(t: InProcess) -> None:
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, voicemail=False, call_waiting=True)
    call_in(t, "A1")
    call_in(t, "A2")
    assert len(placed(t, f"sip:{MOBILE}@")) == 2
    call_in(t, "A3")
    assert t.engine.responses("A3") == [486] and len(placed(t)) == 2


async def test_line_free_again_once_the_user_leg_ended(t: InProcess) -> None:
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, voicemail=False)
    call_in(t, "A1")
    t.far.ended(placed(t)[0].leg, 486)  # the mobile is busy: the caller hears busy, the line is free
    assert t.engine.responses("A1") == [180, 486]
    call_in(t, "A2")
    assert len(placed(t)) == 2


async def test_no_route_to_the_telecommuter_number_is_unreachable(t: InProcess) -> None:
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, voicemail=False)
    t.domain.policy.planner.router = Router(t.settings.trunks, [])
    call_in(t, "A1")
    assert placed(t) == [] and t.engine.responses("A1") == [480]


async def test_no_answer_falls_back_to_voicemail(tmp_path: Path) -> None:
    async with node(tmp_path, telecommuter="ring_timeout_s = 0.02") as t:
        make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
        call_in(t, "A1")
        ring = placed(t)[0].leg
        await asyncio.sleep(0.05)
        assert [c.leg for c in t.engine.named("hangup")] == [ring]
        assert t.engine.responses("A1") == [180, 200] and t.engine.named("play_file")[0].leg == "A1"


# ------------------------------------------------------------------------------------------ desks and paging
async def test_desk_login_rings_the_desk_contact(t: InProcess) -> None:
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@10.1.1.1:5062")
    t.domain.desks.login(u, "300")
    call_in(t, "A1", display='Bob "the" Caller')
    (ring,) = placed(t)
    assert ring.args == ("sip:300@10.1.1.1:5062", f'"Bob the Caller" <sip:{CALLER}@127.0.0.1>', ())
    assert only_call(t).info["ringing"] == "desk"


async def test_calling_a_desk_extension_rings_its_occupant_there(t: InProcess) -> None:
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@10.1.1.1")
    t.domain.desks.login(u, "300")
    call_in(t, "P1", called="300", src_ip=PBX)
    assert placed(t)[0].args[0] == "sip:300@10.1.1.1" and only_call(t).user_id == u.id


async def test_logged_out_user_gets_voicemail_or_busy(t: InProcess) -> None:
    make_user(t, "201", BUSINESS)
    make_user(t, "202", "+493012345679", voicemail=False)
    call_in(t, "A1")
    call_in(t, "A2", called="+493012345679")
    assert greeted(t, "A1") and t.engine.responses("A2") == [486]
    assert placed(t) == []


async def test_full_voicemail_box_answers_busy(tmp_path: Path) -> None:
    async with node(tmp_path, voicemail="max_messages = 1") as t:
        u = make_user(t)
        mailbox = t.domain.mailbox
        plan = mailbox.plan_for(u)
        assert plan is not None
        write_notes(Path(plan.record_path), ((440, 1.0),))
        mailbox.recorded(u.id, {"message_id": plan.message_id, "path": plan.record_path, "caller": CALLER,
                                "called": BUSINESS, "duration_s": 1.0})
        assert mailbox.counts(u.id) == (1, 1)
        call_in(t, "A1")
        assert t.engine.responses("A1") == [486]
        assert events(t, u.id, "voicemail")[-1]["change"] == "unavailable"
        assert "box is full" in events(t, u.id, "voicemail")[-1]["why"]


async def test_paging_never_rings_a_mobile(t: InProcess) -> None:
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call_in(t, "P1", called="201", src_ip=PBX, headers=PAGE, sdp=ONE_WAY)
    assert placed(t) == []
    assert t.engine.responses("P1") == [480], "no voicemail for a page either"
    t.far.ended("P1", 480)
    (cdr,) = t.domain.records.recent(5)
    assert (cdr["kind"], cdr["outcome"], cdr["final_code"], cdr["called"]) == ("incoming", "paging", 480, "201")


async def test_paging_rings_the_desk_of_a_user_at_their_desk(t: InProcess) -> None:
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@10.1.1.1")
    t.domain.desks.login(u, "300")
    call_in(t, "P1", called="201", src_ip=PBX, headers=PAGE, sdp=ONE_WAY)
    assert [c.args[0] for c in placed(t)] == ["sip:300@10.1.1.1"]


async def test_paging_a_keep_connected_user_does_not_touch_the_session(t: InProcess) -> None:
    make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    session = only_call(t)
    call_in(t, "P1", called="201", src_ip=PBX, headers=PAGE, sdp=ONE_WAY)
    assert t.engine.responses("P1") == [480] and "in-P1" not in session.legs


async def test_intercom_call_is_not_a_page(t: InProcess) -> None:
    """Auto-answer asked for, but two-way audio: an intercom call is a normal call."""
    make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call_in(t, "P1", called="201", src_ip=PBX, headers=PAGE, sdp="v=0\r\na=sendrecv\r\n")
    assert [c.args[0] for c in placed(t)] == [f"sip:{MOBILE}@{OUT}"]


# ------------------------------------------------------------------------------------------ keep-connected
async def test_keep_connected_offers_the_call_to_the_session(t: InProcess) -> None:
    make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    session = only_call(t)
    line = session.legs["line1"]
    call_in(t, "A1")
    assert session.legs["in-A1"] == "A1" and len(t.runner.calls) == 1
    assert t.engine.responses("A1") == [180], "the line is still being called: the caller hears ringing"
    t.far.answered(line)
    assert t.engine.responses("A1") == [180, 200]
    assert (line, "A1") in {(c.leg, c.args[0]) for c in t.engine.named("link")}


async def test_keep_connected_plans_an_attach(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    session = only_call(t)
    inv = invite("A1", called=BUSINESS, from_user="03098765432")
    planned = t.domain.policy.plan_user_call(inv, Admit("carrier", "", "", user_id=u.id))
    assert isinstance(planned, Attach) and (planned.call_id, planned.role) == (session.id, "in-A1")


@pytest.mark.parametrize("call_waiting", [False, True])
async def test_keep_connected_session_full_falls_back_to_voicemail(t: InProcess, call_waiting: bool) -> None:
    make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE, call_waiting=call_waiting)
    session = only_call(t)
    t.far.answered(session.legs["line1"])
    call_in(t, "A1")  # active
    call_in(t, "A2")  # waiting, if the user has call waiting
    call_in(t, "A3")  # never
    joined = {r for r in session.legs if r.startswith("in-")}
    assert joined == ({"in-A1", "in-A2"} if call_waiting else {"in-A1"})
    assert greeted(t, "A3") and greeted(t, "A2") is not call_waiting
    fallbacks = [c.legs for c in t.runner.calls.values() if c.kind is CallKind.INCOMING]
    assert fallbacks == ([] if call_waiting else [{Role.CALLER: "A2"}]) + [{Role.CALLER: "A3"}]


async def test_keep_connected_without_a_session_possible_falls_back(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE, voicemail=False)
    t.runner.terminate(only_call(t).id)  # the session is ending; a new one finds no room
    t.node.gate.ceiling = t.node.gate.admitted + 1  # room for the INVITE only
    call_in(t, "A1")
    assert t.engine.responses("A1") == [486]
    assert [c.user_id for c in t.runner.calls.values() if c.kind is CallKind.INCOMING] == [u.id]


async def test_user_deleted_after_screening_is_unreachable(t: InProcess) -> None:
    u = make_user(t)
    inv = invite("A1", called=BUSINESS)
    t.domain.accounts.delete(u)
    planned = t.domain.policy.plan_user_call(inv, Admit("carrier", "", "", user_id=u.id))
    assert isinstance(planned, PlannedCall) and isinstance(planned.machine, IncomingCall)
    assert planned.machine.plan.ring is None and planned.machine.plan.voicemail is None
    assert planned.machine.plan.no_ring_reason == "unreachable"


@pytest.mark.parametrize("mode", [Mode.ON_DEMAND, Mode.OFF])
async def test_caller_number_is_shown_in_e164(t: InProcess, mode: Mode) -> None:
    make_user(t, mode=mode, number=MOBILE if mode is not Mode.OFF else "")
    call_in(t, "A1")
    assert only_call(t).info["caller"] == CALLER
