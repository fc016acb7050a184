"""Presence: the status a user sets is stored and sent at once to their own stream and to the colleagues'
channel; while the user talks on a call (incoming answered, callback answered, a keep-connected party
connected) everyone sees busy, and the user's own status after; do-not-disturb is what routing reads."""

from __future__ import annotations

from typing import Any

from b2bua.sip.types import Admit
from b2bua.telecommuter.presence import CHANNEL
from b2bua.telecommuter.users import Mode, PresenceStatus, User
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, MOBILE, events, make_user, only_call, placed

HAMBURG = "+494012345678"


def statuses(t: InProcess, key: str) -> list[tuple[str, str, bool]]:
    """(user, status seen, on a call) of each presence event on a stream (a user's, or the colleagues')."""
    return [(e.data["user_id"], e.data["status"], e.data["on_call"]) for e in t.node.bus.recent(key)
            if e.kind == "presence"]


def seen(t: InProcess, u: User) -> dict[str, Any]:
    view: dict[str, Any] = t.domain.presence.of(u)
    return view


async def test_a_new_user_is_available(t: InProcess) -> None:
    u = make_user(t)
    assert seen(t, u) == {"user_id": u.id, "name": "User 201", "extension": "201", "status": "available",
                          "set_status": "available", "message": "", "on_call": False, "updated_at": None}
    assert t.domain.presence.dnd(u.id) is False


async def test_set_is_stored_and_sent_to_the_user_and_the_colleagues(t: InProcess) -> None:
    u = make_user(t)
    view = t.domain.presence.update(u, PresenceStatus.AWAY, "  at   lunch ")
    assert (view["status"], view["set_status"], view["message"]) == ("away", "away", "at lunch")
    assert t.store.presence(u.id).status is PresenceStatus.AWAY  # type: ignore[union-attr]
    assert events(t, u.id, "presence") == [{"kind": "presence", **view}]
    assert statuses(t, CHANNEL) == [(u.id, "away", False)]


async def test_everyone_lists_all_users_by_extension(t: InProcess) -> None:
    b = make_user(t, "202", "+493012345679")
    a = make_user(t, "201")
    t.domain.presence.update(b, PresenceStatus.DND, "focus")
    listed = t.domain.presence.everyone()
    assert [(p["extension"], p["status"], p["message"]) for p in listed] == [
        ("201", "available", ""), ("202", "do-not-disturb", "focus")]
    assert t.domain.presence.dnd(b.id) and not t.domain.presence.dnd(a.id)


# ------------------------------------------------------------------------------------------ busy on a call
async def test_an_answered_incoming_call_shows_busy_and_back_after(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    t.domain.presence.update(u, PresenceStatus.AWAY, "back at 2")
    assert isinstance(t.far.call_in(invite("A1", called=BUSINESS)), Admit)
    (ring,) = placed(t)
    assert seen(t, u)["status"] == "away", "ringing is not talking"
    t.far.answered(ring.leg)
    view = seen(t, u)
    assert (view["status"], view["set_status"], view["on_call"], view["message"]) == ("busy", "away", True,
                                                                                       "back at 2")
    assert t.domain.presence.dnd(u.id) is False, "busy on a call is not do-not-disturb"
    t.far.ended("A1")
    t.far.ended(ring.leg)  # the user's leg, hung up by the B2BUA: now the call is over
    assert seen(t, u)["status"] == "away" and not t.runner.calls
    assert statuses(t, CHANNEL) == [(u.id, "away", False), (u.id, "busy", True), (u.id, "away", False)]
    assert statuses(t, u.id) == statuses(t, CHANNEL)


async def test_voicemail_taking_the_call_is_not_the_user_talking(t: InProcess) -> None:
    u = make_user(t)  # at no desk: voicemail answers
    assert isinstance(t.far.call_in(invite("A1", called=BUSINESS)), Admit)
    assert t.engine.responses("A1") == [200] and only_call(t).user_id == u.id
    assert seen(t, u)["on_call"] is False and statuses(t, CHANNEL) == []


async def test_a_callback_is_a_call_once_the_users_phone_answers(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call = t.domain.outgoing.start_callback(u, HAMBURG)
    assert seen(t, u)["on_call"] is False
    t.far.answered(placed(t)[0].leg)
    assert seen(t, u)["status"] == "busy"
    t.runner.terminate(call.id)
    for leg in call.legs.values():
        t.far.ended(leg)
    assert seen(t, u)["status"] == "available" and not t.runner.calls


async def test_a_keep_connected_party_is_a_call_the_line_alone_is_not(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    (line,) = placed(t)
    t.far.answered(line.leg)
    assert seen(t, u)["on_call"] is False, "the persistent line alone is no call"
    t.domain.sessions.dial(u, HAMBURG)
    out = placed(t)[-1]
    t.far.answered(out.leg)
    assert seen(t, u)["status"] == "busy"
    t.far.ended(out.leg)
    assert seen(t, u)["status"] == "available"
    assert [s for _, s, _ in statuses(t, CHANNEL)] == ["busy", "available"]


async def test_two_calls_at_once_show_busy_until_both_ended(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE, call_waiting=True)
    for leg in ("A1", "A2"):
        assert isinstance(t.far.call_in(invite(leg, called=BUSINESS)), Admit)
    first, second = placed(t)
    for ring in (first, second):
        t.far.answered(ring.leg)
    for ring, caller in ((first, "A1"), (second, "A2")):
        assert seen(t, u)["status"] == "busy"
        t.far.ended(ring.leg)  # the user hangs up; the caller's leg is hung up by the B2BUA
        t.far.ended(caller)
    assert seen(t, u)["status"] == "available" and not t.runner.calls
    assert [s for _, s, _ in statuses(t, CHANNEL)] == ["busy", "available"], "only the changes are sent"
