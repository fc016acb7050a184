"""Where each engine event goes: INVITEs to the inbound handler, leg events to the runner, engine faults to the
metrics. One failing handler never stops the next event; a new call that cannot be set up gives its admission
back and answers 500."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from b2bua.sip.types import Admit, EngineFault, InboundInvite, IncomingCall, InviteRejected, LegEnded, LegProgress
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, make_user, metric


async def test_engine_fault_is_counted_and_logged(t: InProcess) -> None:
    with capture_logs() as logs:
        t.node.dispatcher.on_event(EngineFault("on_call_state", "SWIG says no"))
        t.node.dispatcher.on_event(EngineFault("on_call_state", "again"))
        t.node.dispatcher.on_event(EngineFault("on_incoming_call", "once"))
    assert metric(t, "b2bua_engine_faults_total", where="on_call_state") == 2
    assert metric(t, "b2bua_engine_faults_total", where="on_incoming_call") == 1
    assert [e["error"] for e in logs if e["event"] == "engine fault"] == ["SWIG says no", "again", "once"]


async def test_rejected_invite_is_counted_by_code_and_reason(t: InProcess) -> None:
    inv = invite("A1", src_ip="127.0.0.66")
    with capture_logs() as logs:
        t.node.dispatcher.on_event(InviteRejected(inv, 403, "untrusted-source"))
        t.node.dispatcher.on_event(InviteRejected(inv, 401, "auth-challenge"))
        t.node.dispatcher.on_event(InviteRejected(inv, 403, "auth-failed", "bad password"))
    assert metric(t, "b2bua_invites_rejected_total", code="403", reason="untrusted-source") == 1
    assert metric(t, "b2bua_invites_rejected_total", code="401", reason="auth-challenge") == 1
    levels = {e["reason"]: e["log_level"] for e in logs if e["event"] == "invite rejected"}
    assert levels == {"untrusted-source": "info", "auth-challenge": "debug", "auth-failed": "warning"}
    assert next(e for e in logs if e["reason"] == "auth-failed")["detail"] == "bad password"
    assert t.engine.commands == []


async def test_a_handler_failing_does_not_stop_the_next_event(t: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(t.far.call_in(invite("A1", called="4930123456")), Admit)
    b = t.engine.calls_placed()[0].leg
    real = t.runner.on_leg_event

    def flaky(event: object) -> None:
        if isinstance(event, LegProgress) and event.code == 181:
            raise RuntimeError("handler bug")
        real(event)

    monkeypatch.setattr(t.runner, "on_leg_event", flaky)
    with capture_logs() as logs:
        t.node.dispatcher.on_event(LegProgress(b, 181))
        t.node.dispatcher.on_event(LegProgress(b, 180))
    assert any(e["event"] == "event handling failed" and "181" in e["engine_event"] for e in logs)
    assert t.engine.responses("A1") == [180]
    t.node.dispatcher.on_event(LegEnded(b, 486, ""))
    assert t.engine.responses("A1") == [180, 486]


async def test_user_call_whose_planning_raises_gives_admission_back_and_answers_500(
        t: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    make_user(t)

    def broken(inv: InboundInvite, admit: Admit) -> None:
        raise RuntimeError("planner bug")

    monkeypatch.setattr(t.domain.policy.planner, "plan", broken)
    with capture_logs() as logs:
        result = t.far.call_in(invite("A1", called=BUSINESS))
    assert isinstance(result, Admit) and result.user_id
    assert t.engine.responses("A1") == [500]
    reason = next(c.args[1] for c in t.engine.named("respond") if c.leg == "A1")
    assert reason == (("Reason", 'SIP;cause=500;text="internal error (plan)"'),)
    assert metric(t, "b2bua_call_faults_total", stage="plan") == 1
    assert t.node.gate.admitted == 0 and t.node.gate.snapshot() == (0, 0)
    assert not t.runner.calls and not t.runner.owns_leg("A1")
    assert any(e["event"] == "inbound call failed" and e["sip_call_id"] == "cid-A1" for e in logs)
    # the next call is handled normally
    monkeypatch.undo()
    assert isinstance(t.far.call_in(invite("A2", called=BUSINESS)), Admit)
    assert t.node.gate.admitted == 1 and len(t.runner.calls) == 1


async def test_incoming_call_delivered_directly_is_dispatched_to_inbound(t: InProcess) -> None:
    """The dispatcher is what the SIP thread's emit calls: an IncomingCall it is handed starts the call."""
    assert t.node.gate.admit() is None  # what screening did on the SIP thread
    inv = invite("A1", called="4930123456")
    t.node.dispatcher.on_event(IncomingCall(inv, Admit("carrier", "sip:4930123456@127.0.0.3:5060", "carrier")))
    assert t.runner.owns_leg("A1") and [c.args[0] for c in t.engine.calls_placed()] == [
        "sip:4930123456@127.0.0.3:5060"]


async def test_a_flood_of_refused_invites_writes_a_few_lines_and_a_count(t: InProcess) -> None:
    inv = invite("A1", src_ip="127.0.0.66")
    with capture_logs() as logs:
        for _ in range(1000):
            t.node.dispatcher.on_event(InviteRejected(inv, 403, "untrusted-source"))
        t.node.dispatcher.on_event(InviteRejected(invite("B1", src_ip="127.0.0.77"), 403, "untrusted-source"))
    written = [e for e in logs if e["event"] == "invite rejected"]
    assert [e["src"] for e in written] == ["127.0.0.66"] * 5 + ["127.0.0.77"], "5 per source, others unaffected"
    assert metric(t, "b2bua_invites_rejected_total", code="403", reason="untrusted-source") == 1001
    assert metric(t, "b2bua_log_lines_suppressed_total", what="invite-rejected") == 995
