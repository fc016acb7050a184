"""A call whose handling raises ends cleanly: the caller gets a final response with a Reason, every other leg a
BYE/CANCEL, every admission goes back, the record says ``fault`` and the stage is counted."""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.calls.events import Action, Answered, Event, PlaceCall, Respond
from b2bua.calls.machine import CallKind
from b2bua.sip.types import Admit
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import metric


@dataclass
class Brittle:
    """A machine that places a B leg, rings, then raises on the answer (or on whatever ``fail_on`` names)."""

    fail_on: type = Answered
    answered_at: float | None = None
    done: bool = False
    state_name: str = "brittle"
    holds_user_line: bool = False

    def start(self, now: float) -> list[Action]:
        return [PlaceCall("b", "sip:4930123456@127.0.0.3", "<sip:1@127.0.0.1>")]

    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, self.fail_on):
            raise RuntimeError("machine bug")
        return [Respond("a", 180)]


def start_brittle(t: InProcess, fail_on: type = Answered) -> str:
    assert t.node.gate.admit() is None
    inv = invite("IN1")
    call = t.runner.start(CallKind.TRUNK, Brittle(fail_on), legs={"a": "IN1"}, invite=inv)
    return str(call.id)


async def test_a_machine_raising_on_a_leg_event_ends_the_call_cleanly(t: InProcess) -> None:
    call_id = start_brittle(t)
    b_leg = t.engine.calls_placed()[0].leg
    t.far.ringing(b_leg)
    t.far.answered(b_leg)
    assert t.engine.responses("IN1")[-1] == 500, "the unanswered caller gets a final response"
    reason = next(c.args[1] for c in t.engine.named("respond") if c.args[0] == 500)
    assert reason == (("Reason", 'SIP;cause=500;text="internal error (leg-event)"'),)
    assert [c.leg for c in t.engine.named("hangup")] == [b_leg]
    assert call_id not in t.runner.calls and t.node.gate.admitted == 0
    assert metric(t, "b2bua_call_faults_total", stage="leg-event") == 1
    assert t.domain.records.ended(call_id)["outcome"] == "fault"
    # the legs' own ends arrive later and are ignored; the next call works
    t.far.ended(b_leg)
    t.far.ended("IN1")
    assert isinstance(t.far.call_in(invite("A2", called="4930123456")), Admit)
    assert t.node.gate.admitted == 1


async def test_a_machine_raising_on_terminate_or_a_timer_still_frees_everything(t: InProcess) -> None:
    from b2bua.calls.events import Terminate

    call_id = start_brittle(t, fail_on=Terminate)
    assert t.runner.terminate(call_id, "operator")
    assert call_id not in t.runner.calls and t.node.gate.admitted == 0
    assert metric(t, "b2bua_call_faults_total", stage="terminate") == 1


async def test_a_failing_observer_does_not_count_as_a_call_fault(t: InProcess) -> None:
    """Records failing (a full disk) are the observer's business: the call itself ended normally."""
    assert isinstance(t.far.call_in(invite("A1", called="4930123456")), Admit)
    b_leg = t.engine.calls_placed()[0].leg
    t.store.close()  # every store write now raises
    t.far.answered(b_leg)
    t.far.ended("A1")
    t.far.ended(b_leg)
    assert not t.runner.calls and t.node.gate.admitted == 0
    assert metric(t, "b2bua_call_faults_total", stage="leg-event") == 0
