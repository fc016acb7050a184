from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.calls import bridge as br


def started() -> tuple[br.BridgeCall, list[br.Action]]:
    call = br.BridgeCall("sip:1@far", "<sip:2@us>", 30.0)
    return call, call.start(0.0)


def kinds(actions: list[br.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_start_places_b_links_and_arms_no_answer_timer() -> None:
    _, acts = started()
    assert acts == [br.PlaceCall("b", "sip:1@far", "<sip:2@us>"), br.Link(), br.StartTimer("no-answer", 30.0)]


def test_ringing_then_answer_answers_a_once() -> None:
    call, _ = started()
    assert call.handle(br.Progress("b", 180), 1) == [br.Respond("a", 180)]
    assert call.handle(br.Progress("b", 180), 1.1) == []  # relayed once
    assert call.handle(br.Answered("b"), 2) == [br.CancelTimer("no-answer"), br.Answer("a")]
    assert call.state is br.State.ANSWERED and call.answered_at == 2


def test_early_media_sends_183_once_even_after_180() -> None:
    call, _ = started()
    assert call.handle(br.Progress("b", 180), 1) == [br.Respond("a", 180)]
    assert call.handle(br.Progress("b", 183, True), 1.2) == [br.Respond("a", 183)]
    assert call.handle(br.Progress("b", 183, True), 1.3) == []


def test_busy_maps_to_486_with_reason_and_finishes_when_a_is_gone() -> None:
    call, _ = started()
    acts = call.handle(br.Ended("b", 486, "Busy Here"), 1)
    assert kinds(acts) == ["CancelTimer", "Respond"]
    resp = acts[1]
    assert isinstance(resp, br.Respond) and resp.code == 486 and resp.headers[0][0] == "Reason"
    assert not call.done
    fin = call.handle(br.Ended("a", 486), 1.01)
    assert fin == [br.Finished("busy", 486, None, 1.01)]
    assert call.done


def test_no_answer_timer_cancels_b_and_refuses_a_with_480() -> None:
    call, _ = started()
    call.handle(br.Progress("b", 180), 1)
    acts = call.handle(br.TimerFired("no-answer"), 30)
    assert kinds(acts) == ["CancelTimer", "Hangup", "Respond"]
    assert acts[2] == br.Respond("a", 480, headers=(("Reason", 'SIP;cause=480;text="no answer"'),))
    call.handle(br.Ended("b", 487), 30.1)
    assert call.handle(br.Ended("a", 480), 30.2)[-1] == br.Finished("no-answer", 480, None, 30.2)


def test_unknown_timer_is_ignored() -> None:
    call, _ = started()
    assert call.handle(br.TimerFired("something-else"), 5) == []
    assert call.state is br.State.CALLING


def test_caller_cancel_cancels_b() -> None:
    call, _ = started()
    call.handle(br.Progress("b", 180), 1)
    assert call.handle(br.Ended("a", 487), 2) == [br.CancelTimer("no-answer"), br.Hangup("b", "caller cancelled")]
    assert call.handle(br.Ended("b", 487), 2.1) == [br.Finished("cancelled", 487, None, 2.1)]


def test_b_answering_after_a_cancelled_is_hung_up() -> None:
    call, _ = started()
    call.handle(br.Ended("a", 487), 1)
    assert call.handle(br.Answered("b"), 1.05) == [br.Hangup("b", "caller gone")]


def test_bye_from_either_side_ends_the_other() -> None:
    for role in ("a", "b"):
        call, _ = started()
        call.handle(br.Answered("b"), 1)
        acts = call.handle(br.Ended(role, 200), 10)
        assert acts == [br.Hangup(br.other(role), "remote hangup")]
        fin = call.handle(br.Ended(br.other(role), 200), 10.1)
        assert fin == [br.Finished(f"completed-{role}-hangup", 200, 1, 10.1)]


def test_hold_is_mirrored_and_not_repeated() -> None:
    call, _ = started()
    call.handle(br.Answered("b"), 1)
    assert call.handle(br.HoldChanged("a", True), 2) == [br.SetHold("b", True)]
    assert call.handle(br.HoldChanged("a", True), 2.5) == []
    assert call.handle(br.HoldChanged("a", False), 3) == [br.SetHold("b", False)]
    assert call.handle(br.HoldChanged("b", False), 3) == []  # b was never held


def test_dtmf_passes_through_both_ways_once_answered() -> None:
    call, _ = started()
    assert call.handle(br.Dtmf("b", "5", 100), 0.5) == []  # nothing to relay to before answer
    call.handle(br.Answered("b"), 1)
    assert call.handle(br.Dtmf("a", "1", 160), 2) == [br.SendDtmf("b", "1", 160)]
    assert call.handle(br.Dtmf("b", "#", 100), 2) == [br.SendDtmf("a", "#", 100)]


def test_terminate_while_ringing_refuses_a_and_cancels_b() -> None:
    call, _ = started()
    acts = call.handle(br.Terminate("shutdown"), 1)
    assert kinds(acts) == ["CancelTimer", "Hangup", "Respond"]


def test_failure_code_mapping() -> None:
    assert br.failure_code_for_a(486) == 486
    assert br.failure_code_for_a(603) == 603
    assert br.failure_code_for_a(404) == 404
    assert br.failure_code_for_a(401) == 403  # our hop's credentials are not the caller's business
    assert br.failure_code_for_a(407) == 403
    assert br.failure_code_for_a(503) == 502  # RFC 3261 16.7: never relay a 503
    assert br.failure_code_for_a(500) == 502
    assert br.failure_code_for_a(302) == 480
    assert br.failure_code_for_a(0) == 500
    assert br.failure_code_for_a(699) == 603


# ----------------------------------------------------------------------- property: any event order
roles = st.sampled_from(["a", "b"])
events = st.one_of(
    st.builds(br.Progress, st.just("b"), st.sampled_from([180, 183]), st.booleans()),
    st.builds(br.Answered, roles),
    st.builds(br.Ended, roles, st.sampled_from([0, 200, 404, 408, 486, 487, 500, 503, 603])),
    st.builds(br.HoldChanged, roles, st.booleans()),
    st.builds(br.Dtmf, roles, st.sampled_from(list("0123456789*#")), st.just(100)),
    st.builds(br.TimerFired, st.just("no-answer")),
    st.builds(br.Terminate),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(events, max_size=25))
def test_any_event_sequence_keeps_the_invariants(seq: list[br.Event]) -> None:
    call, first = started()
    actions = list(first)
    answered_a = responded_final = False
    t = 0.0
    for ev in seq:
        t += 0.1
        was_done = call.done
        out = call.handle(ev, t)
        if was_done:
            assert out == [], "no action after the call finished"
        for a in out:
            if isinstance(a, br.Answer):
                assert not responded_final and not answered_a, "A answered twice or after a final failure"
                answered_a = True
            if isinstance(a, br.Respond) and a.code >= 300:
                assert not answered_a and not responded_final, "final failure after answer, or twice"
                responded_final = True
            assert not isinstance(a, br.PlaceCall), "B is placed once, at start"
        actions += out
    # then both legs go away, as the engine will always eventually report
    for role in ("a", "b"):
        t += 0.1
        actions += call.handle(br.Ended(role, 200), t)
    finished = [a for a in actions if isinstance(a, br.Finished)]
    assert len(finished) == 1, "exactly one terminal record"
    assert call.done
    started_timers = sum(isinstance(a, br.StartTimer) for a in actions)
    assert started_timers == 1
