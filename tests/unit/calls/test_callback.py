from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.calls import callback
from b2bua.calls import events as call_events
from b2bua.calls.testcall import TestCall

PLAN = callback.CallbackPlan(
    user_uri="sip:u@t",
    user_from="<sip:b@us>",
    target_uri="sip:t@t",
    target_from="<sip:b@us>",
    target_number="+4930",
    target_headers=(("P-Asserted-Identity", "<sip:b@us>"),),
)


def kinds(acts: list[call_events.Action]) -> list[str]:
    return [type(a).__name__ for a in acts]


def placed(acts: list[call_events.Action]) -> list[str]:
    return [a.role for a in acts if isinstance(a, call_events.PlaceCall)]


def started(plan: callback.CallbackPlan = PLAN) -> tuple[callback.CallbackCall, list[call_events.Action]]:
    c = callback.CallbackCall(plan)
    return c, c.start(0.0)


def test_user_is_called_first_and_target_only_after_answer() -> None:
    c, acts = started()
    assert placed(acts) == ["user"]
    assert placed(c.handle(call_events.Progress("user", 180), 0.1)) == []
    acts = c.handle(call_events.Answered("user"), 1)
    assert placed(acts) == ["target"]
    assert call_events.PlayTone("user", "ringback") in acts
    assert c.state is callback.State.TARGET_CALLING
    target = next(a for a in acts if isinstance(a, call_events.PlaceCall))
    assert target.headers == PLAN.target_headers


def test_target_answer_stops_ringback_and_links() -> None:
    c, _ = started()
    c.handle(call_events.Answered("user"), 1)
    c.handle(call_events.Progress("target", 180), 1.5)
    acts = c.handle(call_events.Answered("target"), 3)
    assert call_events.StopTone("user") in acts and call_events.Link("user", "target") in acts
    assert c.state is callback.State.CONNECTED and c.answered_at == 3


def test_target_early_media_replaces_local_ringback() -> None:
    c, _ = started()
    c.handle(call_events.Answered("user"), 1)
    acts = c.handle(call_events.Progress("target", 183, True), 1.5)
    assert call_events.StopTone("user") in acts and call_events.Link("user", "target") in acts


def test_confirmation_digit_required() -> None:
    c, _ = started(
        callback.CallbackPlan(
            PLAN.user_uri,
            PLAN.user_from,
            PLAN.target_uri,
            PLAN.target_from,
            PLAN.target_number,
            PLAN.target_headers,
            confirm_digit="1",
        )
    )
    acts = c.handle(call_events.Answered("user"), 1)
    assert placed(acts) == [] and call_events.PlayTone("user", "prompt") in acts
    assert c.handle(call_events.Dtmf("user", "7", 100), 2) == []
    acts = c.handle(call_events.Dtmf("user", "1", 100), 3)
    assert placed(acts) == ["target"]


def test_confirmation_timeout_hangs_up_and_never_dials_target() -> None:
    c, _ = started(
        callback.CallbackPlan(
            PLAN.user_uri, PLAN.user_from, PLAN.target_uri, PLAN.target_from, PLAN.target_number, confirm_digit="1"
        )
    )
    c.handle(call_events.Answered("user"), 1)
    acts = c.handle(call_events.TimerFired(callback.CONFIRM), 16)
    assert kinds(acts)[0] == "Hangup" and placed(acts) == []
    fin = c.handle(call_events.Ended("user", 200), 16.1)
    assert fin[-1] == call_events.Finished("user-not-confirmed", 0, None, 16.1)


def test_user_busy_finishes_without_target() -> None:
    c, _ = started()
    acts = c.handle(call_events.Ended("user", 486), 1)
    assert placed(acts) == []
    assert isinstance(acts[-1], call_events.Finished) and acts[-1].outcome == "user-busy"


def test_user_no_answer_timer_cancels_user() -> None:
    c, _ = started()
    assert c.handle(call_events.TimerFired(callback.USER_ANSWER), 30) == [call_events.Hangup("user", "no answer")]
    acts = c.handle(call_events.Ended("user", 487), 30.1)
    assert isinstance(acts[-1], call_events.Finished) and acts[-1].outcome == "user-no-answer"


def test_target_busy_plays_busy_then_hangs_up_user_with_reason() -> None:
    c, _ = started()
    c.handle(call_events.Answered("user"), 1)
    acts = c.handle(call_events.Ended("target", 486), 2)
    assert (
        call_events.PlayTone("user", "busy") in acts
        and call_events.StartTimer(callback.FAILURE_TONE, PLAN.failure_tone_s) in acts
    )
    acts = c.handle(call_events.TimerFired(callback.FAILURE_TONE), 5)
    assert acts == [call_events.Hangup("user", "Busy Here", call_events.reason_header(486, "Busy Here"))]
    fin = c.handle(call_events.Ended("user", 200), 5.1)
    assert fin[-1] == call_events.Finished("target-busy", 486, None, 5.1)


def test_target_no_answer_cancels_target_and_plays_congestion() -> None:
    c, _ = started()
    c.handle(call_events.Answered("user"), 1)
    acts = c.handle(call_events.TimerFired(callback.TARGET_ANSWER), 61)
    assert call_events.Hangup("target", "no answer") in acts and call_events.PlayTone("user", "congestion") in acts
    assert c.handle(call_events.Ended("target", 487), 61.1) == []  # already failing
    c.handle(call_events.TimerFired(callback.FAILURE_TONE), 64)
    assert c.handle(call_events.Ended("user", 200), 64.1)[-1].outcome == "target-no-answer"  # type: ignore[union-attr]


def test_user_hangup_while_target_rings_cancels_target() -> None:
    c, _ = started()
    c.handle(call_events.Answered("user"), 1)
    c.handle(call_events.Progress("target", 180), 1.2)
    acts = c.handle(call_events.Ended("user", 200), 2)
    assert call_events.Hangup("target", "caller gone") in acts
    assert c.handle(call_events.Ended("target", 487), 2.1)[-1].outcome == "user-hangup-while-ringing"  # type: ignore[union-attr]


def test_either_side_hangup_when_connected_ends_both() -> None:
    for first, second in (("user", "target"), ("target", "user")):
        c, _ = started()
        c.handle(call_events.Answered("user"), 1)
        c.handle(call_events.Answered("target"), 2)
        assert c.handle(call_events.Ended(first, 200), 9) == [call_events.Hangup(second, "remote hangup")]
        assert c.handle(call_events.Ended(second, 200), 9.1)[-1].outcome == f"completed-{first}-hangup"  # type: ignore[union-attr]


events = st.one_of(
    st.builds(call_events.Progress, st.sampled_from(["user", "target"]), st.sampled_from([180, 183]), st.booleans()),
    st.builds(call_events.Answered, st.sampled_from(["user", "target"])),
    st.builds(call_events.Ended, st.sampled_from(["user", "target"]), st.sampled_from([0, 200, 408, 486, 487, 603])),
    st.builds(call_events.Dtmf, st.sampled_from(["user", "target"]), st.sampled_from(["1", "2"]), st.just(100)),
    st.builds(call_events.HoldChanged, st.sampled_from(["user", "target"]), st.booleans()),
    st.builds(
        call_events.TimerFired,
        st.sampled_from([callback.USER_ANSWER, callback.CONFIRM, callback.TARGET_ANSWER, callback.FAILURE_TONE]),
    ),
    st.builds(call_events.Terminate),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(events, max_size=30), st.sampled_from(["", "1"]))
def test_any_sequence_target_only_after_user_answer_and_one_terminal(seq: list[call_events.Event], digit: str) -> None:
    plan = callback.CallbackPlan(
        PLAN.user_uri, PLAN.user_from, PLAN.target_uri, PLAN.target_from, PLAN.target_number, confirm_digit=digit
    )
    c, acts = started(plan)
    user_answered = confirmed = False
    t = 0.0
    all_acts = list(acts)
    for e in seq:
        t += 0.1
        if isinstance(e, call_events.Answered) and e.role == "user" and c.live["user"]:
            user_answered = True
        if isinstance(e, call_events.Dtmf) and e.role == "user" and e.digit == "1":
            confirmed = True
        out = c.handle(e, t)
        if "target" in placed(out):
            assert user_answered, "target dialled before the user answered"
            if digit:
                assert confirmed, "target dialled without the confirmation digit"
        all_acts += out
    for role in ("user", "target"):
        t += 0.1
        all_acts += c.handle(call_events.Ended(role, 200), t)
    assert sum(isinstance(a, call_events.Finished) for a in all_acts) == 1
    assert placed(all_acts).count("target") <= 1 and placed(all_acts).count("user") == 1
    notifies = [a.state for a in all_acts if isinstance(a, call_events.Notify)]
    assert notifies[0] == "user-calling" and notifies[-1] == "ended"


def test_test_call_success_and_failures() -> None:
    t = TestCall("sip:u@x", "<sip:b@us>", "+49171")
    assert placed(t.start(0)) == ["user"]
    acts = t.handle(call_events.Answered("user"), 1)
    assert call_events.PlayTone("user", "confirm") in acts
    assert t.handle(call_events.TimerFired("confirmation-played"), 4) == [
        call_events.Hangup("user", "test call complete")
    ]
    acts = t.handle(call_events.Ended("user", 200), 4.1)
    assert acts[-1] == call_events.Finished("test-success", 200, 1, 4.1)
    for code, result in ((486, "busy"), (603, "rejected"), (480, "no-answer"), (500, "failed")):
        t = TestCall("sip:u@x", "<sip:b@us>", "+49171")
        t.start(0)
        assert t.handle(call_events.Ended("user", code), 1)[-1].outcome == f"test-{result}"  # type: ignore[union-attr]
    t = TestCall("sip:u@x", "<sip:b@us>", "+49171")
    t.start(0)
    assert t.handle(call_events.TimerFired("user-answer"), 30) == [call_events.Hangup("user", "no answer")]
    assert t.handle(call_events.Ended("user", 487), 30.1)[-1].outcome == "test-no-answer"  # type: ignore[union-attr]
