from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.calls import bridge
from b2bua.sip.types import Target


def started() -> tuple[bridge.BridgeCall, list[bridge.Action]]:
    call = bridge.BridgeCall("sip:1@far", "<sip:2@us>", 30.0)
    return call, call.start(0.0)


def kinds(actions: list[bridge.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_start_places_b_links_and_arms_no_answer_timer() -> None:
    _, acts = started()
    assert acts == [
        bridge.PlaceCall("b", "sip:1@far", "<sip:2@us>"),
        bridge.Link(),
        bridge.StartTimer("no-answer", 30.0),
    ]


def test_ringing_then_answer_answers_a_once() -> None:
    call, _ = started()
    assert call.handle(bridge.Progress("b", 180), 1) == [bridge.Respond("a", 180)]
    assert call.handle(bridge.Progress("b", 180), 1.1) == []  # relayed once
    assert call.handle(bridge.Answered("b"), 2) == [bridge.CancelTimer("no-answer"), bridge.Answer("a")]
    assert call.state is bridge.State.ANSWERED and call.answered_at == 2


def test_early_media_sends_183_once_even_after_180() -> None:
    call, _ = started()
    assert call.handle(bridge.Progress("b", 180), 1) == [bridge.Respond("a", 180)]
    assert call.handle(bridge.Progress("b", 183, True), 1.2) == [bridge.Respond("a", 183)]
    assert call.handle(bridge.Progress("b", 183, True), 1.3) == []


def test_busy_maps_to_486_with_reason_and_finishes_when_a_is_gone() -> None:
    call, _ = started()
    acts = call.handle(bridge.Ended("b", 486, "Busy Here"), 1)
    assert kinds(acts) == ["CancelTimer", "Respond"]
    resp = acts[1]
    assert isinstance(resp, bridge.Respond) and resp.code == 486 and resp.headers[0][0] == "Reason"
    assert not call.done
    fin = call.handle(bridge.Ended("a", 486), 1.01)
    assert fin == [bridge.Finished("busy", 486, None, 1.01)]
    assert call.done


def test_no_answer_timer_cancels_b_and_refuses_a_with_480() -> None:
    call, _ = started()
    call.handle(bridge.Progress("b", 180), 1)
    acts = call.handle(bridge.TimerFired("no-answer"), 30)
    assert kinds(acts) == ["CancelTimer", "Hangup", "Respond"]
    assert acts[2] == bridge.Respond("a", 480, headers=(("Reason", 'SIP;cause=480;text="no answer"'),))
    call.handle(bridge.Ended("b", 487), 30.1)
    assert call.handle(bridge.Ended("a", 480), 30.2)[-1] == bridge.Finished("no-answer", 480, None, 30.2)


def test_unknown_timer_is_ignored() -> None:
    call, _ = started()
    assert call.handle(bridge.TimerFired("something-else"), 5) == []
    assert call.state is bridge.State.CALLING


def test_caller_cancel_cancels_b() -> None:
    call, _ = started()
    call.handle(bridge.Progress("b", 180), 1)
    assert call.handle(bridge.Ended("a", 487), 2) == [
        bridge.CancelTimer("no-answer"),
        bridge.Hangup("b", "caller cancelled"),
    ]
    assert call.handle(bridge.Ended("b", 487), 2.1) == [bridge.Finished("cancelled", 487, None, 2.1)]


def test_b_answering_after_a_cancelled_is_hung_up() -> None:
    call, _ = started()
    call.handle(bridge.Ended("a", 487), 1)
    assert call.handle(bridge.Answered("b"), 1.05) == [bridge.Hangup("b", "caller gone")]


def test_bye_from_either_side_ends_the_other() -> None:
    for role in ("a", "b"):
        call, _ = started()
        call.handle(bridge.Answered("b"), 1)
        acts = call.handle(bridge.Ended(role, 200), 10)
        assert acts == [bridge.Hangup(bridge.other(role), "remote hangup")]
        fin = call.handle(bridge.Ended(bridge.other(role), 200), 10.1)
        assert fin == [bridge.Finished(f"completed-{role}-hangup", 200, 1, 10.1)]


def test_hold_is_mirrored_and_not_repeated() -> None:
    call, _ = started()
    call.handle(bridge.Answered("b"), 1)
    assert call.handle(bridge.HoldChanged("a", True), 2) == [bridge.SetHold("b", True)]
    assert call.handle(bridge.HoldChanged("a", True), 2.5) == []
    assert call.handle(bridge.HoldChanged("a", False), 3) == [bridge.SetHold("b", False)]
    assert call.handle(bridge.HoldChanged("b", False), 3) == []  # b was never held


def test_dtmf_passes_through_both_ways_once_answered() -> None:
    call, _ = started()
    assert call.handle(bridge.Dtmf("b", "5", 100), 0.5) == []  # nothing to relay to before answer
    call.handle(bridge.Answered("b"), 1)
    assert call.handle(bridge.Dtmf("a", "1", 160), 2) == [bridge.SendDtmf("b", "1", 160)]
    assert call.handle(bridge.Dtmf("b", "#", 100), 2) == [bridge.SendDtmf("a", "#", 100)]


def test_terminate_while_ringing_refuses_a_and_cancels_b() -> None:
    call, _ = started()
    acts = call.handle(bridge.Terminate("shutdown"), 1)
    assert kinds(acts) == ["CancelTimer", "Hangup", "Respond"]


def test_failure_code_mapping() -> None:
    assert bridge.failure_code_for_a(486) == 486
    assert bridge.failure_code_for_a(603) == 603
    assert bridge.failure_code_for_a(404) == 404
    assert bridge.failure_code_for_a(401) == 403  # our hop's credentials are not the caller's business
    assert bridge.failure_code_for_a(407) == 403
    assert bridge.failure_code_for_a(503) == 502  # RFC 3261 16.7: never relay a 503
    assert bridge.failure_code_for_a(500) == 502
    assert bridge.failure_code_for_a(302) == 480
    assert bridge.failure_code_for_a(0) == 500
    assert bridge.failure_code_for_a(699) == 603


# ----------------------------------------------------------------------- property: any event order
roles = st.sampled_from(["a", "b", "b2", "b3"])  # b2, b3: failover attempts (ignored while not current)
events = st.one_of(
    st.builds(bridge.Progress, st.sampled_from(["b", "b2", "b3"]), st.sampled_from([180, 183]), st.booleans()),
    st.builds(bridge.Answered, roles),
    st.builds(bridge.Ended, roles, st.sampled_from([0, 200, 404, 408, 486, 487, 500, 503, 603])),
    st.builds(bridge.HoldChanged, roles, st.booleans()),
    st.builds(bridge.Dtmf, roles, st.sampled_from(list("0123456789*#")), st.just(100)),
    st.builds(bridge.TimerFired, st.sampled_from(["no-answer", "failover"])),
    st.builds(bridge.Terminate),
)
TRUNKS = (Target("t1", "sip:1@far", 3.0), Target("t2", "sip:1@far2", 3.0), Target("t3", "sip:1@far3", 0.0))


@settings(max_examples=600, deadline=None)
@given(st.lists(events, max_size=25), st.integers(min_value=1, max_value=3))
def test_any_event_sequence_keeps_the_invariants(seq: list[bridge.Event], n_trunks: int) -> None:
    call = bridge.BridgeCall("sip:1@far", "<sip:2@us>", 30.0, targets=TRUNKS[:n_trunks])
    actions = list(call.start(0.0))
    answered_a = responded_final = False
    placed_roles = ["b"]
    t = 0.0
    for ev in seq:
        t += 0.1
        was_done = call.done
        out = call.handle(ev, t)
        if was_done:
            assert out == [], "no action after the call finished"
        for a in out:
            if isinstance(a, bridge.Answer):
                assert not responded_final and not answered_a, "A answered twice or after a final failure"
                answered_a = True
            if isinstance(a, bridge.Respond) and a.code >= 300:
                assert not answered_a and not responded_final, "final failure after answer, or twice"
                responded_final = True
            if isinstance(a, bridge.PlaceCall):
                assert not answered_a and not responded_final, "a trunk tried after A was answered or refused"
                assert a.role == bridge.b_role(len(placed_roles)), "attempts get new roles in order"
                assert len(placed_roles) < n_trunks, "more attempts than trunks"
                placed_roles.append(a.role)
            if isinstance(a, bridge.Link):
                assert (a.first, a.second) == ("a", placed_roles[-1]), "A is linked with the current attempt"
        actions += out
    # then every leg goes away, as the engine will always eventually report
    for role in ("a", *placed_roles):
        t += 0.1
        actions += call.handle(bridge.Ended(role, 200), t)
    finished = [a for a in actions if isinstance(a, bridge.Finished)]
    assert len(finished) == 1, "exactly one terminal record"
    assert call.done
    assert sum(isinstance(a, bridge.StartTimer) and a.name == "no-answer" for a in actions) == 1
    assert sum(isinstance(a, bridge.Rerouted) for a in actions) == len(placed_roles) - 1
