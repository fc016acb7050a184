from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.calls import events as call_events
from b2bua.calls import incoming
from b2bua.sip.message import is_paging
from b2bua.store.sqlite import Store
from b2bua.telecommuter.dialplan import Dialplan
from b2bua.telecommuter.directory import Directory
from b2bua.telecommuter.users import Desk, Mode, User

RING = incoming.Ring("sip:+49171@m", '"C" <sip:+4940@us>', (("Diversion", "<sip:+4930@us>"),), "telecommuter")
VM = incoming.VoicemailPlan("m1", "/g.wav", 2.0, "/box/m1.wav", 30.0)


def plan(
    ring: incoming.Ring | None = RING, vm: incoming.VoicemailPlan | None = VM, why: str = ""
) -> incoming.IncomingPlan:
    return incoming.IncomingPlan(ring, 20.0, vm, why, {"caller": "+4940"})


def types(acts: list[call_events.Action]) -> list[str]:
    return [type(a).__name__ for a in acts]


def test_rings_the_user_and_tells_the_caller_it_rings() -> None:
    c = incoming.IncomingCall(plan())
    acts = c.start(0)
    assert call_events.PlaceCall("user", RING.uri, RING.from_uri, RING.headers) in acts
    assert call_events.Respond("caller", 180) in acts
    assert call_events.Notify("ringing", {"caller": "+4940", "ringing": "telecommuter"}) in acts


def test_answer_connects_both_legs() -> None:
    c = incoming.IncomingCall(plan())
    c.start(0)
    acts = c.handle(call_events.Answered("user"), 3)
    assert call_events.Answer("caller") in acts and call_events.Link("caller", "user") in acts
    assert c.state is incoming.State.CONNECTED and c.answered_at == 3


def test_no_answer_goes_to_voicemail_greeting_then_recording() -> None:
    c = incoming.IncomingCall(plan())
    c.start(0)
    acts = c.handle(call_events.TimerFired(incoming.RING), 20)
    assert call_events.Hangup("user", "no answer") in acts and call_events.Answer("caller") in acts
    assert call_events.PlayFile("caller", VM.greeting_path) in acts
    acts = c.handle(call_events.TimerFired(incoming.GREETING), 22)
    assert call_events.StartRecording("caller", VM.record_path) in acts and c.state is incoming.State.RECORDING
    # a 200 racing our CANCEL is hung up, not left connected to nobody
    assert call_events.Hangup("user", "call no longer wanted") in c.handle(call_events.Answered("user"), 22.1)
    c.handle(call_events.Ended("user", 487), 22.2)
    acts = c.handle(call_events.Ended("caller", 200), 30)
    recorded = next(a for a in acts if isinstance(a, call_events.Notify) and a.state == "voicemail-recorded")
    assert recorded.detail["duration_s"] == 8.0 and recorded.detail["message_id"] == "m1"
    assert isinstance(acts[-1], call_events.Finished) and acts[-1].outcome == "voicemail" and c.done


def test_hash_ends_the_message_and_a_short_message_is_discarded() -> None:
    c = incoming.IncomingCall(plan(ring=None, why="logged-out"))
    c.start(0)
    c.handle(call_events.TimerFired(incoming.GREETING), 2)
    assert call_events.Hangup("caller", "message complete") in c.handle(call_events.Dtmf("caller", "#", 100), 2.2)
    acts = c.handle(call_events.Ended("caller", 200), 2.3)
    assert "voicemail-discarded" in [a.state for a in acts if isinstance(a, call_events.Notify)]
    assert c.outcome == "voicemail-no-message" and c.done


def test_busy_user_without_voicemail_gives_486_and_no_answer_480() -> None:
    c = incoming.IncomingCall(plan(vm=None))
    c.start(0)
    acts = c.handle(call_events.Ended("user", 486), 1)
    assert any(isinstance(a, call_events.Respond) and a.code == 486 for a in acts)
    c = incoming.IncomingCall(plan(vm=None))
    c.start(0)
    acts = c.handle(call_events.TimerFired(incoming.RING), 20)
    assert any(isinstance(a, call_events.Respond) and a.code == 480 for a in acts)


def test_logged_out_without_voicemail_is_busy_at_once() -> None:
    c = incoming.IncomingCall(plan(ring=None, vm=None, why="logged-out"))
    acts = c.start(0)
    assert not any(isinstance(a, call_events.PlaceCall) for a in acts)
    assert any(isinstance(a, call_events.Respond) and a.code == 486 for a in acts)
    assert isinstance(c.handle(call_events.Ended("caller", 486), 0.1)[-1], call_events.Finished)


def test_caller_cancel_while_ringing_cancels_the_user_leg() -> None:
    c = incoming.IncomingCall(plan())
    c.start(0)
    acts = c.handle(call_events.Ended("caller", 487), 2)
    assert call_events.Hangup("user", "caller cancelled") in acts and not c.done
    acts = c.handle(call_events.Ended("user", 487), 2.1)
    assert isinstance(acts[-1], call_events.Finished) and acts[-1].outcome == "cancelled"


EVENTS = st.sampled_from(
    [
        call_events.Answered("user"),
        call_events.Answered("caller"),
        call_events.Ended("user", 486),
        call_events.Ended("user", 408),
        call_events.Ended("caller", 200),
        call_events.HoldChanged("caller", True),
        call_events.HoldChanged("user", False),
        call_events.Dtmf("caller", "#", 100),
        call_events.Dtmf("user", "5", 100),
        call_events.TimerFired(incoming.RING),
        call_events.TimerFired(incoming.GREETING),
        call_events.TimerFired(incoming.MESSAGE),
        call_events.Terminate("shutdown"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.booleans(), st.lists(EVENTS, max_size=14))
def test_any_sequence_finishes_once_and_never_leaves_a_leg(ring: bool, vm: bool, seq: list[call_events.Event]) -> None:
    """Invariants: one Finished at most, only after both legs ended; the user leg is placed at most once."""
    c = incoming.IncomingCall(plan(ring=RING if ring else None, vm=VM if vm else None, why="logged-out"))
    acts = c.start(0)
    live = {"caller": True, "user": any(isinstance(a, call_events.PlaceCall) for a in acts)}
    finished = sum(isinstance(a, call_events.Finished) for a in acts)
    for i, e in enumerate(seq):
        if isinstance(e, call_events.Ended) and not live[e.role]:
            continue  # a leg ends once
        if isinstance(e, call_events.Ended):
            live[e.role] = False
        out = c.handle(e, 1 + i)
        assert not any(isinstance(a, call_events.PlaceCall) for a in out)
        finished += sum(isinstance(a, call_events.Finished) for a in out)
        if any(isinstance(a, call_events.Finished) for a in out):
            assert not any(live.values()), (seq[: i + 1], live)
    assert finished <= 1
    # whatever happened, ending both legs finishes the call
    for role in ("caller", "user"):
        if live[role]:
            finished += sum(isinstance(a, call_events.Finished) for a in c.handle(call_events.Ended(role, 200), 100))
    assert finished == 1 and c.done


# ----------------------------------------------------------------------------------------- directory
def _user(uid: str, ext: str, number: str) -> User:
    return User(uid, "n", ext, number, "", Mode.OFF, "standard", "", False, 0.0)


def test_directory_finds_users_by_did_in_any_format_and_refuses_owned_unknowns() -> None:
    dp = Dialplan("DE", "[0-9]{2,6}")
    d = Directory.build(
        dp,
        [_user("u1", "2001", "+493012345678")],
        [Desk("2101", "", "sip:d@x", "u1"), Desk("2102", "", "sip:e@x")],
        ["+4930123"],
        frozenset({"pbx"}),
    )
    for called in ("+493012345678", "03012345678", "493012345678"):
        hit = d.lookup(called, "carrier")
        assert hit is not None and hit.user_id == "u1", called
    unknown = d.lookup("+493012399999", "carrier")
    assert unknown is not None and unknown.user_id == "" and unknown.code == 404
    assert d.lookup("+4989123456", "carrier") is None  # not ours: routed on
    assert d.lookup("2001", "carrier") is None  # extensions only from extension trunks
    assert d.lookup("2001", "pbx").user_id == "u1"  # type: ignore[union-attr]
    assert d.lookup("2101", "pbx").user_id == "u1"  # type: ignore[union-attr]  # desk -> occupant
    free = d.lookup("2102", "pbx")
    assert free is not None and free.code == 480


def test_paging_needs_auto_answer_and_one_way_audio() -> None:
    hint = (("Alert-Info", "<http://x>;info=alert-autoanswer"),)
    assert is_paging(hint, "v=0\r\na=sendonly\r\n")
    assert not is_paging(hint, "v=0\r\na=sendrecv\r\n")  # intercom: a normal call
    assert not is_paging((), "v=0\r\na=sendonly\r\n")


def test_store_keeps_one_user_per_desk_and_one_desk_per_user(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite")
    for uid, ext, num in (("u1", "2001", "+4930111"), ("u2", "2002", "+4930222")):
        s.add_user(_user(uid, ext, num), "h" + uid)
    s.add_desk(Desk("2101", "a", "sip:a@x"))
    s.add_desk(Desk("2102", "b", "sip:b@x"))
    assert s.set_occupant("2101", "u1")
    assert not s.set_occupant("2101", "u2")  # taken
    assert s.set_occupant("2102", "u1")  # moving desks frees the old one
    assert s.get_desk("2101").occupant == "" and s.desk_of("u1").extension == "2102"  # type: ignore[union-attr]
    assert s.clear_occupant("u1") == "2102" and s.desk_of("u1") is None
    assert not s.set_occupant("9999", "u1")
    s.set_occupant("2101", "u2")
    s.delete_user("u2")
    assert s.get_desk("2101").occupant == ""  # type: ignore[union-attr]
    s.close()
