"""What happens around a call: a call detail record for every kind when it ends, its state changes on the user's
event stream under the right kind, the test call's result on the user's record, and voicemail kept or discarded
(announced by the mailbox, never with file paths)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from b2bua.calls.bridge import BridgeCall
from b2bua.calls.events import Ended, Finished, Notify, Role
from b2bua.calls.incoming import IncomingCall
from b2bua.calls.machine import CallKind
from b2bua.control.active import ActiveCall
from b2bua.media.sounds import write_notes
from b2bua.ops.logging import get_logger
from b2bua.sip.types import Admit
from b2bua.telecommuter.users import Mode
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import (
    BUSINESS,
    CALLER,
    GREETING_S,
    MOBILE,
    events,
    make_user,
    only_call,
    placed,
    user,
)


def cdr(t: InProcess, call_id: str) -> dict[str, Any]:
    row = t.domain.records.repository.get_cdr(call_id)
    assert row is not None, "no call record"
    assert isinstance(row, dict)
    return row


def states(t: InProcess, user_id: str, kind: str) -> list[str]:
    return [e.get("state", "") for e in events(t, user_id, kind)]


# ------------------------------------------------------------------------------------------ records of each kind
async def test_trunk_call_record(t: InProcess) -> None:
    t.far.call_in(invite("A1", called="4930123456"))
    call = only_call(t)
    b = call.legs[Role.B]
    t.far.answered(b)
    t.far.ended(b)
    t.far.ended("A1")
    row = cdr(t, call.id)
    assert {k: row[k] for k in ("kind", "user_id", "caller", "called", "trunk_in", "trunk_out", "sip_call_id",
                                "outcome", "final_code")} == {
        "kind": "trunk", "user_id": "", "caller": "15551230001", "called": "4930123456", "trunk_in": "carrier",
        "trunk_out": "carrier", "sip_call_id": "cid-A1", "outcome": "completed-b-hangup", "final_code": 200}
    assert row["started_at"] == call.created and row["duration_s"] >= 0


async def test_incoming_call_record_and_events(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.far.call_in(invite("A1", called=BUSINESS, from_user="03098765432"))
    call = only_call(t)
    ring = placed(t)[-1].leg
    t.far.answered(ring)
    t.far.ended("A1")
    t.far.ended(ring)
    row = cdr(t, call.id)
    assert (row["kind"], row["user_id"], row["caller"], row["called"], row["trunk_in"], row["outcome"]) == (
        "incoming", u.id, CALLER, BUSINESS, "carrier", "completed-caller-hangup")
    assert states(t, u.id, "call") == ["ringing", "connected", "ended"]
    assert events(t, u.id, "call")[0]["call_id"] == call.id and events(t, u.id, "call")[0]["ringing"] == (
        "telecommuter")


async def test_callback_record_names_the_business_number_and_the_target(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call = t.domain.outgoing.start_callback(u, CALLER)
    t.far.ended(placed(t)[0].leg, 486)
    row = cdr(t, call.id)
    assert (row["kind"], row["user_id"], row["caller"], row["called"], row["outcome"], row["final_code"]) == (
        "callback", u.id, BUSINESS, CALLER, "user-busy", 486)
    assert states(t, u.id, "call") == ["user-calling", "ended"]
    assert events(t, u.id, "call")[-1]["outcome"] == "user-busy"


async def test_test_call_record_event_kind_and_result_on_the_user(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call = t.domain.outgoing.start_test_call(u)
    leg = placed(t)[0].leg
    t.far.answered(leg)
    t.far.ended(leg)
    row = cdr(t, call.id)
    assert (row["kind"], row["called"], row["outcome"], row["final_code"]) == ("test", MOBILE, "test-success", 200)
    test_events = events(t, u.id, "test-call")
    assert [e["status"] for e in test_events] == ["calling", "answered", "done"]
    assert all(e["state"] == "test-call" and e["call_id"] == call.id for e in test_events)
    assert events(t, u.id, "call") == []
    stored = user(t, u.id)
    assert stored.last_test_result == "success" and stored.last_test_at > 0
    assert t.domain.accounts.view(stored)["last_test"]["result"] == "success"


async def test_failed_test_call_result_is_stored_too(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.outgoing.start_test_call(u)
    t.far.ended(placed(t)[0].leg, 486)
    assert user(t, u.id).last_test_result == "busy"


async def test_session_record_and_event_kind(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    call = only_call(t)
    line = call.legs["line1"]
    t.far.answered(line)
    t.domain.modes.set(u, Mode.OFF, None, False)
    t.far.ended(line)
    row = cdr(t, call.id)
    assert (row["kind"], row["called"], row["outcome"], row["final_code"]) == ("session", MOBILE, "session-ended",
                                                                                 200)
    assert states(t, u.id, "session") == ["line-calling", "line-up", "session-ended"]
    assert events(t, u.id, "call") == []


async def test_api_view_of_an_ended_call(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call = t.domain.outgoing.start_callback(u, CALLER)
    assert t.domain.records.ended(call.id) is None, "still running: no record yet"
    t.far.ended(placed(t)[0].leg, 480)
    view = t.domain.records.ended(call.id)
    assert view == {"id": call.id, "kind": "callback", "user_id": u.id, "state": "ended",
                    "outcome": "user-no-answer", "final_code": 480, "caller": BUSINESS, "called": CALLER,
                    "started": call.created, "duration_s": 0.0}
    assert t.domain.records.recent(10)[0]["id"] == call.id


async def test_record_of_a_deleted_users_call_has_no_business_number(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call = t.domain.outgoing.start_callback(u, CALLER)
    t.domain.accounts.delete(u)
    t.far.ended(placed(t)[0].leg, 487)
    row = cdr(t, call.id)
    assert (row["user_id"], row["caller"], row["outcome"]) == (u.id, "", "terminated")


# ------------------------------------------------------------------------------------------ voicemail
async def voicemail_recording(t: InProcess) -> tuple[str, ActiveCall, str]:
    """A caller of a logged-out user with voicemail: greeted, then recorded. Returns user id, call, file path."""
    u = make_user(t)
    assert isinstance(t.far.call_in(invite("A1", called=BUSINESS, from_user="03098765432", from_display="Bob")),
                      Admit)
    call = only_call(t)
    assert t.engine.responses("A1") == [200]
    await asyncio.sleep(GREETING_S + 0.05)
    (rec,) = t.engine.named("record")
    assert rec.leg == "A1"
    return u.id, call, str(rec.args[0])


async def test_voicemail_recorded_becomes_a_message_announced_without_paths(t: InProcess) -> None:
    uid, call, path = await voicemail_recording(t)
    write_notes(Path(path), ((440, 0.7),))  # what the engine's recorder wrote
    machine = call.machine
    assert isinstance(machine, IncomingCall)
    # the caller hangs up a second after the beep (the machine is fed the time, so no test has to wait for it)
    t.runner.drive(call.id, lambda now: machine.handle(Ended(Role.CALLER, 200), now + 1.0))
    assert t.runner.get(call.id) is None and t.node.gate.admitted == 0
    (m,) = t.domain.mailbox.messages(uid)
    assert (m.caller, m.caller_name, m.called, m.path, m.duration_s) == (CALLER, "Bob", BUSINESS, path, 0.7)
    (vm,) = events(t, uid, "voicemail")
    assert vm["change"] == "new" and vm["message"]["id"] == m.id
    assert "path" not in str(events(t, uid)), "no event carries a file path"
    assert "voicemail-recorded" not in states(t, uid, "call")
    assert states(t, uid, "call") == ["voicemail", "recording", "ended"]
    assert cdr(t, call.id)["outcome"] == "voicemail"


async def test_voicemail_too_short_is_discarded_silently(t: InProcess) -> None:
    uid, call, path = await voicemail_recording(t)
    write_notes(Path(path), ((440, 0.1),))
    t.far.ended("A1")  # hung up at the beep
    assert not Path(path).exists()
    assert t.domain.mailbox.messages(uid) == [] and events(t, uid, "voicemail") == []
    assert "voicemail-discarded" not in states(t, uid, "call")
    assert cdr(t, call.id)["outcome"] == "voicemail-no-message"


async def test_calls_without_a_user_publish_nothing(t: InProcess) -> None:
    call = ActiveCall("c1", CallKind.TRUNK, BridgeCall("sip:b@x", "<sip:a@y>", 1.0), {}, 0.0, get_logger("test"))
    t.domain.records.on_notify(call, Notify("ringing", {"x": 1}))
    t.domain.records.on_finished(call, Finished("completed-a-hangup", 200, 1.0, 3.5))
    assert t.node.bus.recent("") == []
    assert cdr(t, "c1")["duration_s"] == 2.5
