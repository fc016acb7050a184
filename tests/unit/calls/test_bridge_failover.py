"""Failover inside a trunk call: a route's next trunk is tried on 503, 408, a transport error or no 18x in time,
before A hears anything; other failures, and anything after the callee rang, are final as for one trunk."""

from __future__ import annotations

import pytest

from b2bua.calls import bridge
from b2bua.calls.events import reason_header
from b2bua.sip.types import Target

A_URI, B_URI, C_URI = "sip:1@10.0.0.1:5060", "sip:1@10.0.0.2:5060", "sip:1@10.0.0.3:5060"
TARGETS = (Target("ta", A_URI, 4.0), Target("tb", B_URI, 4.0), Target("tc", C_URI, 0.0))


def started(targets: tuple[Target, ...] = TARGETS) -> tuple[bridge.BridgeCall, list[bridge.Action]]:
    call = bridge.BridgeCall(targets[0].uri, "<sip:2@us>", 30.0, targets=targets)
    return call, call.start(0.0)


def placed(actions: list[bridge.Action]) -> list[tuple[str, str]]:
    return [(a.role, a.uri) for a in actions if isinstance(a, bridge.PlaceCall)]


def test_start_arms_the_failover_timer_of_the_first_trunk() -> None:
    _, acts = started()
    assert acts == [bridge.PlaceCall("b", A_URI, "<sip:2@us>"), bridge.Link(),
                    bridge.StartTimer("no-answer", 30.0), bridge.StartTimer("failover", 4.0)]


@pytest.mark.parametrize("code", [503, 408, 0])
def test_503_408_or_transport_error_places_the_next_trunk_and_a_hears_nothing(code: int) -> None:
    call, _ = started()
    acts = call.handle(bridge.Ended("b", code), 1)
    assert acts == [bridge.CancelTimer("failover"), bridge.Rerouted("ta", "tb", str(code)),
                    bridge.PlaceCall("b2", B_URI, "<sip:2@us>"), bridge.Link("a", "b2"),
                    bridge.StartTimer("failover", 4.0)]
    assert not any(isinstance(a, bridge.Respond) for a in acts)
    assert call.handle(bridge.Progress("b2", 180), 2) == [bridge.CancelTimer("failover"), bridge.Respond("a", 180)]
    assert call.handle(bridge.Answered("b2"), 3) == [bridge.CancelTimer("no-answer"), bridge.Answer("a")]
    assert call.handle(bridge.Dtmf("a", "5", 100), 4) == [bridge.SendDtmf("b2", "5", 100)]
    assert call.handle(bridge.HoldChanged("b2", True), 5) == [bridge.SetHold("a", True)]
    assert call.handle(bridge.Ended("a", 200), 9) == [bridge.Hangup("b2", "remote hangup")]
    assert call.handle(bridge.Ended("b2", 200), 9.1) == [bridge.Finished("completed-a-hangup", 200, 3, 9.1)]


def test_no_18x_before_the_failover_timeout_cancels_the_first_and_tries_the_next() -> None:
    call, _ = started()
    acts = call.handle(bridge.TimerFired("failover"), 4)
    assert acts[0] == bridge.Hangup("b", "no provisional response; trying tb")  # CANCEL
    assert acts[1] == bridge.Rerouted("ta", "tb", "timeout")
    assert placed(acts) == [("b2", B_URI)]
    # the CANCELled attempt's 487 (or a 200 that crossed the CANCEL) changes nothing for the call
    assert call.handle(bridge.Answered("b"), 4.1) == [bridge.Hangup("b", "superseded")]
    assert call.handle(bridge.Ended("b", 487), 4.2) == []
    assert call.handle(bridge.Progress("b", 180), 4.3) == []
    assert call.state is bridge.State.CALLING and call.live == {"a": True, "b": False, "b2": True}


@pytest.mark.parametrize("code", [486, 404, 403, 480, 603])
def test_other_failures_are_final_with_no_failover(code: int) -> None:
    call, _ = started()
    acts = call.handle(bridge.Ended("b", code), 1)
    assert placed(acts) == []
    assert [a.code for a in acts if isinstance(a, bridge.Respond)] == [bridge.failure_code_for_a(code)]


def test_after_18x_the_failover_timer_is_cancelled_and_a_503_is_final() -> None:
    call, _ = started()
    assert call.handle(bridge.Progress("b", 180), 1) == [bridge.CancelTimer("failover"), bridge.Respond("a", 180)]
    assert call.handle(bridge.TimerFired("failover"), 4) == []  # a late timer: nothing
    acts = call.handle(bridge.Ended("b", 503), 5)
    assert placed(acts) == [] and bridge.Respond("a", 502, headers=reason_header(502, "callee 503")) in acts


def test_18x_then_silence_ends_with_the_usual_no_answer() -> None:
    call, _ = started()
    call.handle(bridge.Progress("b", 183, True), 1)
    acts = call.handle(bridge.TimerFired("no-answer"), 30)
    assert placed(acts) == [] and bridge.Hangup("b", "no answer") in acts
    assert bridge.Respond("a", 480, headers=reason_header(480, "no answer")) in acts


def test_all_trunks_failing_gives_a_the_last_failure_mapped() -> None:
    call, _ = started()
    call.handle(bridge.Ended("b", 503), 1)
    acts = call.handle(bridge.TimerFired("failover"), 5)  # b2 silent: CANCEL it, try the last
    assert placed(acts) == [("b3", C_URI)] and not any(isinstance(a, bridge.StartTimer) for a in acts)
    acts = call.handle(bridge.Ended("b3", 503), 6)  # the last trunk: no more failover
    assert bridge.Respond("a", 502, headers=reason_header(502, "callee 503")) in acts
    assert call.handle(bridge.Ended("a", 502), 6.1) == []  # b2's CANCEL is still outstanding
    assert call.handle(bridge.Ended("b2", 487), 6.2) == [bridge.Finished("failed", 502, None, 6.2)]


def test_a_cancelling_during_failover_cancels_only_the_current_attempt() -> None:
    call, _ = started()
    call.handle(bridge.TimerFired("failover"), 4)
    acts = call.handle(bridge.Ended("a", 487), 5)
    assert acts == [bridge.CancelTimer("failover"), bridge.CancelTimer("no-answer"),
                    bridge.Hangup("b2", "caller cancelled")]
    assert call.handle(bridge.Ended("b2", 487), 5.1) == []  # b is not gone yet
    assert call.handle(bridge.Ended("b", 487), 5.2) == [bridge.Finished("cancelled", 487, None, 5.2)]


def test_one_trunk_never_fails_over() -> None:
    call, acts = started((Target("ta", A_URI, 4.0),))
    assert not any(isinstance(a, bridge.StartTimer) and a.name == "failover" for a in acts)
    assert placed(call.handle(bridge.Ended("b", 503), 1)) == []
