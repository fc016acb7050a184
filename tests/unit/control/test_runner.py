"""The call runner: engine leg events fed to call machines, their actions applied through the engine, timers,
termination, and admissions given back on every way a call (or one of its party legs) can end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from b2bua.calls.bridge import BridgeCall
from b2bua.calls.events import Finished, Notify, Role
from b2bua.calls.keepconnected import Dial, KeepConnectedSession, Offer, SessionPlan
from b2bua.calls.machine import CallKind
from b2bua.control.active import ActiveCall
from b2bua.control.admission import AdmissionGate
from b2bua.control.runner import CallRunner
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import Admit, LegAnswered, LegDtmf, LegEnded, LegProgress
from tests.support.fake_engine import FakeEngine, invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import headers_of, metric


def trunk_call(t: InProcess, leg: str = "A1", called: str = "4930123456") -> tuple[ActiveCall, str]:
    """A carrier's call admitted and bridged: the call and its B leg."""
    assert isinstance(t.far.call_in(invite(leg, called=called)), Admit)
    call = next(c for c in t.runner.calls.values() if c.legs.get(Role.A) == leg)
    assert isinstance(call, ActiveCall)
    return call, call.legs[Role.B]


def answered_trunk_call(t: InProcess, leg: str = "A1") -> tuple[ActiveCall, str]:
    call, b = trunk_call(t, leg)
    t.far.answered(b)
    t.far.answered(leg)
    return call, b


def respond_headers(t: InProcess, leg: str) -> list[dict[str, str]]:
    return [headers_of(c) for c in t.engine.named("respond") if c.leg == leg]


# ------------------------------------------------------------------------------------------ a trunk call
async def test_trunk_call_with_early_media_answered_and_hung_up(t: InProcess) -> None:
    call, b = trunk_call(t)
    assert t.engine.calls_placed()[0].args[:2] == ("sip:4930123456@127.0.0.3:5060", "<sip:15551230001@127.0.0.1>")
    assert metric(t, "b2bua_active_calls") == 1 and t.node.gate.admitted == 1
    assert metric(t, "b2bua_call_setup_forward_seconds_count") == 1
    t.far.early_media(b)
    assert t.engine.responses("A1") == [183]
    t.far.ringing(b)  # a 180 after early media: the caller keeps hearing the callee's media, no second 1xx
    assert t.engine.responses("A1") == [183]
    assert call.machine.state_name == "ringing"
    t.far.answered(b)
    assert t.engine.responses("A1") == [183, 200]
    assert call.summary()["answered"] is True and call.summary()["state"] == "answered"
    assert metric(t, "b2bua_call_answer_relay_seconds_count") == 1
    t.far.answered("A1")
    t.far.dtmf("A1", "5")
    assert [(c.leg, c.args[0]) for c in t.engine.named("send_dtmf")] == [(b, "5")]
    t.far.held(b)
    assert [(c.leg, c.args[0]) for c in t.engine.named("set_hold")] == [("A1", True)]
    t.far.ended(b)
    assert [c.leg for c in t.engine.named("hangup")] == ["A1"]
    assert t.runner.get(call.id) is not None, "the call lasts until both legs are gone"
    t.far.ended("A1")
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    assert metric(t, "b2bua_calls_total", outcome="completed-b-hangup") == 1
    assert metric(t, "b2bua_active_calls") == 0
    cdr = t.domain.records.ended(call.id)
    assert cdr is not None and cdr["outcome"] == "completed-b-hangup" and cdr["final_code"] == 200


async def test_early_media_on_the_inbound_leg_is_not_progress(t: InProcess) -> None:
    call, _b = trunk_call(t)
    t.far.early_media("A1")
    assert t.engine.responses("A1") == [] and call.machine.state_name == "calling"


async def test_events_for_legs_nobody_owns_are_ignored(t: InProcess) -> None:
    call, b = trunk_call(t)
    for leg in ("nobody", "F99"):
        t.far.ringing(leg)
        t.far.answered(leg)
        t.far.ended(leg, 486)
    assert t.engine.responses("A1") == [] and t.runner.get(call.id) is call and t.node.gate.admitted == 1
    t.far.ringing(b)
    assert t.engine.responses("A1") == [180]


@pytest.mark.parametrize(("b_code", "a_code", "outcome"), [
    (486, 486, "busy"), (404, 404, "failed"), (603, 603, "rejected"), (503, 502, "failed"), (407, 403, "failed"),
    (302, 480, "failed"), (0, 500, "failed"),
])
async def test_callee_failure_is_mapped_onto_the_caller(t: InProcess, b_code: int, a_code: int,
                                                        outcome: str) -> None:
    call, b = trunk_call(t)
    t.far.ringing(b)
    t.far.ended(b, b_code)
    assert t.engine.responses("A1") == [180, a_code]
    assert respond_headers(t, "A1")[-1]["Reason"].startswith(f"SIP;cause={a_code};")
    assert t.engine.named("hangup") == [], "the failed B leg is gone already"
    t.far.ended("A1", a_code)  # pjsua reports the A leg ended by our final response
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    assert metric(t, "b2bua_calls_total", outcome=outcome) == 1
    cdr = t.domain.records.ended(call.id)
    assert cdr is not None and (cdr["outcome"], cdr["final_code"]) == (outcome, a_code)


async def test_caller_cancelling_cancels_the_callee(t: InProcess) -> None:
    call, b = trunk_call(t)
    t.far.ringing(b)
    t.far.ended("A1", 487)
    assert [c.leg for c in t.engine.named("hangup")] == [b]
    t.far.ended(b, 487)
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    assert metric(t, "b2bua_calls_total", outcome="cancelled") == 1


async def test_no_answer_timer_gives_the_caller_480(t: InProcess) -> None:
    t.node.dispatcher.inbound.no_answer_timeout_s = 0.03
    call, b = trunk_call(t)
    t.far.ringing(b)
    await asyncio.sleep(0.08)
    assert t.engine.responses("A1") == [180, 480]
    assert [c.leg for c in t.engine.named("hangup")] == [b]
    assert call.timers == {}
    t.far.ended(b, 487)
    t.far.ended("A1", 480)
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    assert metric(t, "b2bua_calls_total", outcome="no-answer") == 1


async def test_answer_cancels_the_no_answer_timer(t: InProcess) -> None:
    t.node.dispatcher.inbound.no_answer_timeout_s = 0.03
    call, b = trunk_call(t)
    assert set(call.timers) == {"no-answer"}
    t.far.answered(b)
    assert call.timers == {}
    await asyncio.sleep(0.06)
    assert t.engine.responses("A1") == [200] and call.machine.state_name == "answered"


# ------------------------------------------------------------------------------------------ ending calls
async def test_terminate_an_answered_call_hangs_up_both_legs(t: InProcess) -> None:
    call, b = answered_trunk_call(t)
    assert t.runner.terminate(call.id, "operator says so") is True
    assert {c.leg for c in t.engine.named("hangup")} == {"A1", b}
    t.far.ended("A1")
    t.far.ended(b)
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    assert metric(t, "b2bua_calls_total", outcome="terminated") == 1


async def test_terminate_an_unanswered_call_answers_the_caller_503(t: InProcess) -> None:
    call, b = trunk_call(t)
    t.runner.terminate(call.id)
    assert t.engine.responses("A1") == [503] and [c.leg for c in t.engine.named("hangup")] == [b]
    assert call.timers == {}


async def test_terminate_an_unknown_call_is_false(t: InProcess) -> None:
    assert t.runner.terminate("no-such-call") is False


async def test_terminate_all_and_wait_idle(t: InProcess) -> None:
    assert await t.runner.wait_idle(0.01) is True  # nothing running
    _c1, b1 = answered_trunk_call(t, "A1")
    _c2, b2 = trunk_call(t, "A2")
    assert t.node.gate.admitted == 2
    assert await t.runner.wait_idle(0.01) is False
    t.runner.terminate_all("shutting down")
    assert {c.leg for c in t.engine.named("hangup")} == {"A1", b1, b2}
    assert t.engine.responses("A2") == [503]
    loop = asyncio.get_running_loop()
    for i, leg in enumerate(("A1", b1, "A2", b2)):
        loop.call_later(0.005 * (i + 1), t.far.ended, leg)
    assert await t.runner.wait_idle(1.0) is True
    assert not t.runner.calls and t.node.gate.admitted == 0


# ------------------------------------------------------------------------------------------ party legs
def session(runner: CallRunner, gate: AdmissionGate, **plan: Any) -> ActiveCall:
    """A keep-connected session started as the domain does (its own admission first), line not yet up."""
    assert gate.admit() is None
    machine = KeepConnectedSession(SessionPlan("sip:line@carrier", '"line" <sip:us@host>', "+491711234567",
                                               rtp_timeout_s=0, **plan))
    return runner.start(CallKind.SESSION, machine, user_id="u1")


def dial(runner: CallRunner, call: ActiveCall, role: str) -> ActiveCall | None:
    machine = call.machine
    assert isinstance(machine, KeepConnectedSession)
    d = Dial(role, f"sip:{role}@carrier", "<sip:us@host>", "+493011111111")
    return runner.drive(call.id, lambda now: machine.handle(d, now), admitted_role=role)


async def test_party_leg_admission_is_given_back_when_the_party_ends(t: InProcess) -> None:
    gate = t.node.gate
    call = session(t.runner, gate)
    line = call.legs["line1"]
    t.far.answered(line)
    assert gate.admit() is None  # the domain takes the party's admission before driving the dial
    dial(t.runner, call, "out-1")
    out = call.legs["out-1"]
    assert gate.admitted == 2 and call.admitted_roles == {"out-1"}
    t.far.answered(out)
    t.far.ended(out)
    assert gate.admitted == 1 and call.admitted_roles == set()
    t.far.ended(out)  # a repeated end must not give back a second admission
    assert gate.admitted == 1


async def test_party_admissions_go_back_when_the_whole_session_ends(t: InProcess) -> None:
    gate = t.node.gate
    call = session(t.runner, gate)
    line = call.legs["line1"]
    t.far.answered(line)
    assert gate.admit() is None
    dial(t.runner, call, "out-1")
    t.far.answered(call.legs["out-1"])
    assert gate.admitted == 2
    t.runner.terminate(call.id)
    assert {c.leg for c in t.engine.named("hangup")} == {line, call.legs["out-1"]}
    t.far.ended(line)
    t.far.ended(call.legs["out-1"])
    assert t.runner.get(call.id) is None and gate.admitted == 0


async def test_party_never_placed_is_given_back_when_the_session_finishes(t: InProcess) -> None:
    gate = t.node.gate
    call = session(t.runner, gate)
    assert gate.admit() is None
    dial(t.runner, call, "out-1")  # the line is not up yet: the dial waits for it, unplaced
    assert "out-1" not in call.legs and call.admitted_roles == {"out-1"} and gate.admitted == 2
    t.runner.terminate(call.id)
    t.far.ended(call.legs["line1"])
    assert t.runner.get(call.id) is None and gate.admitted == 0 and call.admitted_roles == set()


async def test_drive_a_gone_call_gives_the_party_admission_back(t: InProcess) -> None:
    gate = t.node.gate
    assert gate.admit() is None
    assert t.runner.drive("gone", lambda now: [], admitted_role="out-1") is None
    assert gate.admitted == 0
    assert t.runner.drive("gone", lambda now: []) is None  # no party admission: nothing to give back
    assert gate.admitted == 0


async def test_release_unplaced_gives_back_only_a_party_never_placed(t: InProcess) -> None:
    gate = t.node.gate
    call = session(t.runner, gate)
    t.far.answered(call.legs["line1"])
    assert gate.admit() is None
    dial(t.runner, call, "out-1")  # placed
    assert gate.admit() is None
    dial(t.runner, call, "out-2")  # refused by the machine: one call is dialling already
    machine = call.machine
    assert isinstance(machine, KeepConnectedSession) and machine.last_error == "already-dialling"
    assert "out-2" not in call.legs and gate.admitted == 3
    t.runner.release_unplaced(call.id, "out-2")
    assert gate.admitted == 2 and call.admitted_roles == {"out-1"}
    t.runner.release_unplaced(call.id, "out-2")  # twice: still one release
    t.runner.release_unplaced(call.id, "out-1")  # placed: its leg's end gives it back, not this
    t.runner.release_unplaced("gone", "out-1")
    assert gate.admitted == 2


async def test_attached_inbound_party_gives_its_admission_back_when_it_ends(t: InProcess) -> None:
    gate = t.node.gate
    call = session(t.runner, gate)
    t.far.answered(call.legs["line1"])
    machine = call.machine
    assert isinstance(machine, KeepConnectedSession)
    assert gate.admit() is None  # screening admitted the inbound INVITE
    offer = Offer("in-X1", {"caller": "+493098765432"})
    assert t.runner.attach(call.id, "in-X1", "X1", lambda now: machine.handle(offer, now)) is True
    assert t.engine.responses("X1") == [180, 200]  # auto-answer onto the idle line
    assert gate.admitted == 2
    t.far.ended("X1")
    assert gate.admitted == 1
    assert t.runner.attach("gone", "in-X2", "X2", lambda now: []) is False


# ------------------------------------------------------------------------------------------ failures
async def test_failing_engine_command_is_logged_and_the_call_goes_on(t: InProcess) -> None:
    t.engine.failing.add("A1")
    with capture_logs() as logs:
        call, b = trunk_call(t)
        t.far.ringing(b)
        t.far.answered(b)
    failed = [e for e in logs if e["event"] == "engine command failed"]
    assert [e["command"] for e in failed] == ["link", "respond", "answer"]
    assert all("failed on A1" in e["error"] and e["log_level"] == "warning" for e in failed)
    assert call.machine.state_name == "answered"
    t.far.ended(b)
    t.far.ended("A1")
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0


async def test_failed_outbound_invite_is_not_counted_as_forwarded(t: InProcess) -> None:
    t.engine.failing.add("F1")  # the first leg id the fake engine hands out: the B leg
    call, b = trunk_call(t)
    assert b == "F1"
    assert metric(t, "b2bua_call_setup_forward_seconds_count") == 0
    t.far.ended(b, 0)  # the engine reports the leg that could not be placed as failed
    assert t.engine.responses("A1") == [500]
    t.far.ended("A1")
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0


async def test_call_records_failing_disk_full_neither_strands_the_call_nor_leaks(t: InProcess,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    def disk_full(row: dict[str, Any]) -> None:
        raise OSError(28, "disk full")

    monkeypatch.setattr(t.domain.records.repository, "add_cdr", disk_full)
    with capture_logs() as logs:
        call, b = answered_trunk_call(t)
        t.far.ended("A1")
        t.far.ended(b)
    assert t.runner.get(call.id) is None and not t.runner.owns_leg("A1") and not t.runner.owns_leg(b)
    assert t.node.gate.admitted == 0 and await t.runner.wait_idle(0.01)
    assert metric(t, "b2bua_calls_total", outcome="completed-a-hangup") == 1
    # the record is not dropped: it waits in memory for the disk (tests/unit/telecommuter/test_pending_writes.py)
    assert any(e["event"].startswith("database refused a write") and e["log_level"] == "error" for e in logs)
    assert t.domain.records.pending.pending("cdr") == 1
    assert (t.domain.records.ended(call.id) or {}).get("outcome") == "completed-a-hangup", "shown while it waits"


class RaisingObserver:
    def __init__(self) -> None:
        self.told: list[str] = []

    def on_notify(self, call: ActiveCall, notify: Notify) -> None:
        self.told.append(notify.state)
        raise RuntimeError("observer broken")

    def on_finished(self, call: ActiveCall, finished: Finished) -> None:
        self.told.append(f"finished:{finished.outcome}")
        raise RuntimeError("observer broken")


async def test_observer_raising_on_every_notify_does_not_stop_the_machine() -> None:
    """A runner built directly: a keep-connected session whose every state change the observer fails on."""
    engine, gate, observer = FakeEngine(), AdmissionGate(10), RaisingObserver()
    runner = CallRunner(engine, gate, Metrics(), observer)
    call = session(runner, gate)
    line = call.legs["line1"]
    assert [c.leg for c in engine.calls_placed()] == [line]
    assert set(call.timers) == {"line-answer"}, "actions after the failed notify were still applied"
    runner.on_leg_event(LegProgress(line, 180))
    runner.on_leg_event(LegAnswered(line))
    assert call.machine.state_name == "up" and call.timers == {}
    runner.on_leg_event(LegDtmf(line, "5", 100))
    runner.terminate(call.id)
    runner.on_leg_event(LegEnded(line, 200, ""))
    assert runner.get(call.id) is None and gate.admitted == 0
    assert observer.told == ["line-calling", "line-up", "session-ended", "finished:session-ended"]


async def test_bridge_call_built_directly_releases_on_finish() -> None:
    """The runner without the domain: a machine started by hand holds the admission it was given."""
    engine, gate, observer = FakeEngine(), AdmissionGate(1), RaisingObserver()
    runner = CallRunner(engine, gate, Metrics(), observer)
    assert gate.admit() is None
    call = runner.start(CallKind.TRUNK, BridgeCall("sip:b@x", "<sip:a@y>", 0.02), legs={Role.A: "A"})
    b = call.legs[Role.B]
    await asyncio.sleep(0.05)  # no-answer
    assert engine.responses("A") == [480]
    runner.on_leg_event(LegEnded(b, 487, ""))
    runner.on_leg_event(LegEnded("A", 480, ""))
    assert gate.admitted == 0 and gate.admit() is None
    assert observer.told == ["finished:no-answer"]
