from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.calls import callback as cbm
from b2bua.calls import events as ev
from b2bua.calls.testcall import TestCall

PLAN = cbm.CallbackPlan(user_uri="sip:u@t", user_from="<sip:b@us>", target_uri="sip:t@t", target_from="<sip:b@us>",
                        target_number="+4930", target_headers=(("P-Asserted-Identity", "<sip:b@us>"),))


def kinds(acts: list[ev.Action]) -> list[str]:
    return [type(a).__name__ for a in acts]


def placed(acts: list[ev.Action]) -> list[str]:
    return [a.role for a in acts if isinstance(a, ev.PlaceCall)]


def started(plan: cbm.CallbackPlan = PLAN) -> tuple[cbm.CallbackCall, list[ev.Action]]:
    c = cbm.CallbackCall(plan)
    return c, c.start(0.0)


def test_user_is_called_first_and_target_only_after_answer() -> None:
    c, acts = started()
    assert placed(acts) == ["user"]
    assert placed(c.handle(ev.Progress("user", 180), 0.1)) == []
    acts = c.handle(ev.Answered("user"), 1)
    assert placed(acts) == ["target"]
    assert ev.PlayTone("user", "ringback") in acts
    assert c.state is cbm.State.TARGET_CALLING
    target = next(a for a in acts if isinstance(a, ev.PlaceCall))
    assert target.headers == PLAN.target_headers


def test_target_answer_stops_ringback_and_links() -> None:
    c, _ = started()
    c.handle(ev.Answered("user"), 1)
    c.handle(ev.Progress("target", 180), 1.5)
    acts = c.handle(ev.Answered("target"), 3)
    assert ev.StopTone("user") in acts and ev.Link("user", "target") in acts
    assert c.state is cbm.State.CONNECTED and c.answered_at == 3


def test_target_early_media_replaces_local_ringback() -> None:
    c, _ = started()
    c.handle(ev.Answered("user"), 1)
    acts = c.handle(ev.Progress("target", 183, True), 1.5)
    assert ev.StopTone("user") in acts and ev.Link("user", "target") in acts


def test_confirmation_digit_required() -> None:
    c, _ = started(cbm.CallbackPlan(PLAN.user_uri, PLAN.user_from, PLAN.target_uri, PLAN.target_from,
                                    PLAN.target_number, PLAN.target_headers, confirm_digit="1"))
    acts = c.handle(ev.Answered("user"), 1)
    assert placed(acts) == [] and ev.PlayTone("user", "prompt") in acts
    assert c.handle(ev.Dtmf("user", "7", 100), 2) == []
    acts = c.handle(ev.Dtmf("user", "1", 100), 3)
    assert placed(acts) == ["target"]


def test_confirmation_timeout_hangs_up_and_never_dials_target() -> None:
    c, _ = started(cbm.CallbackPlan(PLAN.user_uri, PLAN.user_from, PLAN.target_uri, PLAN.target_from,
                                    PLAN.target_number, confirm_digit="1"))
    c.handle(ev.Answered("user"), 1)
    acts = c.handle(ev.TimerFired(cbm.CONFIRM), 16)
    assert kinds(acts)[0] == "Hangup" and placed(acts) == []
    fin = c.handle(ev.Ended("user", 200), 16.1)
    assert fin[-1] == ev.Finished("user-not-confirmed", 0, None, 16.1)


def test_user_busy_finishes_without_target() -> None:
    c, _ = started()
    acts = c.handle(ev.Ended("user", 486), 1)
    assert placed(acts) == []
    assert isinstance(acts[-1], ev.Finished) and acts[-1].outcome == "user-busy"


def test_user_no_answer_timer_cancels_user() -> None:
    c, _ = started()
    assert c.handle(ev.TimerFired(cbm.USER_ANSWER), 30) == [ev.Hangup("user", "no answer")]
    acts = c.handle(ev.Ended("user", 487), 30.1)
    assert isinstance(acts[-1], ev.Finished) and acts[-1].outcome == "user-no-answer"


def test_target_busy_plays_busy_then_hangs_up_user_with_reason() -> None:
    c, _ = started()
    c.handle(ev.Answered("user"), 1)
    acts = c.handle(ev.Ended("target", 486), 2)
    assert ev.PlayTone("user", "busy") in acts and ev.StartTimer(cbm.FAILURE_TONE, PLAN.failure_tone_s) in acts
    acts = c.handle(ev.TimerFired(cbm.FAILURE_TONE), 5)
    assert acts == [ev.Hangup("user", "Busy Here", ev.reason_header(486, "Busy Here"))]
    fin = c.handle(ev.Ended("user", 200), 5.1)
    assert fin[-1] == ev.Finished("target-busy", 486, None, 5.1)


def test_target_no_answer_cancels_target_and_plays_congestion() -> None:
    c, _ = started()
    c.handle(ev.Answered("user"), 1)
    acts = c.handle(ev.TimerFired(cbm.TARGET_ANSWER), 61)
    assert ev.Hangup("target", "no answer") in acts and ev.PlayTone("user", "congestion") in acts
    assert c.handle(ev.Ended("target", 487), 61.1) == []  # already failing
    c.handle(ev.TimerFired(cbm.FAILURE_TONE), 64)
    assert c.handle(ev.Ended("user", 200), 64.1)[-1].outcome == "target-no-answer"  # type: ignore[union-attr]


def test_user_hangup_while_target_rings_cancels_target() -> None:
    c, _ = started()
    c.handle(ev.Answered("user"), 1)
    c.handle(ev.Progress("target", 180), 1.2)
    acts = c.handle(ev.Ended("user", 200), 2)
    assert ev.Hangup("target", "caller gone") in acts
    assert c.handle(ev.Ended("target", 487), 2.1)[-1].outcome == "user-hangup-while-ringing"  # type: ignore[union-attr]


def test_either_side_hangup_when_connected_ends_both() -> None:
    for first, second in (("user", "target"), ("target", "user")):
        c, _ = started()
        c.handle(ev.Answered("user"), 1)
        c.handle(ev.Answered("target"), 2)
        assert c.handle(ev.Ended(first, 200), 9) == [ev.Hangup(second, "remote hangup")]
        assert c.handle(ev.Ended(second, 200), 9.1)[-1].outcome == f"completed-{first}-hangup"  # type: ignore[union-attr]


events = st.one_of(
    st.builds(ev.Progress, st.sampled_from(["user", "target"]), st.sampled_from([180, 183]), st.booleans()),
    st.builds(ev.Answered, st.sampled_from(["user", "target"])),
    st.builds(ev.Ended, st.sampled_from(["user", "target"]), st.sampled_from([0, 200, 408, 486, 487, 603])),
    st.builds(ev.Dtmf, st.sampled_from(["user", "target"]), st.sampled_from(["1", "2"]), st.just(100)),
    st.builds(ev.HoldChanged, st.sampled_from(["user", "target"]), st.booleans()),
    st.builds(ev.TimerFired, st.sampled_from([cbm.USER_ANSWER, cbm.CONFIRM, cbm.TARGET_ANSWER, cbm.FAILURE_TONE])),
    st.builds(ev.Terminate),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(events, max_size=30), st.sampled_from(["", "1"]))
def test_any_sequence_target_only_after_user_answer_and_one_terminal(seq: list[ev.Event], digit: str) -> None:
    plan = cbm.CallbackPlan(PLAN.user_uri, PLAN.user_from, PLAN.target_uri, PLAN.target_from, PLAN.target_number,
                            confirm_digit=digit)
    c, acts = started(plan)
    user_answered = confirmed = False
    t = 0.0
    all_acts = list(acts)
    for e in seq:
        t += 0.1
        if isinstance(e, ev.Answered) and e.role == "user" and c.live["user"]:
            user_answered = True
        if isinstance(e, ev.Dtmf) and e.role == "user" and e.digit == "1":
            confirmed = True
        out = c.handle(e, t)
        if "target" in placed(out):
            assert user_answered, "target dialled before the user answered"
            if digit:
                assert confirmed, "target dialled without the confirmation digit"
        all_acts += out
    for role in ("user", "target"):
        t += 0.1
        all_acts += c.handle(ev.Ended(role, 200), t)
    assert sum(isinstance(a, ev.Finished) for a in all_acts) == 1
    assert placed(all_acts).count("target") <= 1 and placed(all_acts).count("user") == 1
    notifies = [a.state for a in all_acts if isinstance(a, ev.Notify)]
    assert notifies[0] == "user-calling" and notifies[-1] == "ended"


def test_test_call_success_and_failures() -> None:
    t = TestCall("sip:u@x", "<sip:b@us>", "+49171")
    assert placed(t.start(0)) == ["user"]
    acts = t.handle(ev.Answered("user"), 1)
    assert ev.PlayTone("user", "confirm") in acts
    assert t.handle(ev.TimerFired("confirmation-played"), 4) == [ev.Hangup("user", "test call complete")]
    acts = t.handle(ev.Ended("user", 200), 4.1)
    assert acts[-1] == ev.Finished("test-success", 200, 1, 4.1)
    for code, result in ((486, "busy"), (603, "rejected"), (480, "no-answer"), (500, "failed")):
        t = TestCall("sip:u@x", "<sip:b@us>", "+49171")
        t.start(0)
        assert t.handle(ev.Ended("user", code), 1)[-1].outcome == f"test-{result}"  # type: ignore[union-attr]
    t = TestCall("sip:u@x", "<sip:b@us>", "+49171")
    t.start(0)
    assert t.handle(ev.TimerFired("user-answer"), 30) == [ev.Hangup("user", "no answer")]
    assert t.handle(ev.Ended("user", 487), 30.1)[-1].outcome == "test-no-answer"  # type: ignore[union-attr]
