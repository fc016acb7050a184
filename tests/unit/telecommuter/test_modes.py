"""Telecommuter mode: off, on-demand or keep-connected, and the number. Turning it on takes the user off their desk;
turning it off puts them back if the desk is free; the keep-connected line exists exactly while that mode is on;
a test call proves an on-demand number."""

from __future__ import annotations

from b2bua.calls.machine import CallKind
from b2bua.telecommuter.users import Mode, User
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import MOBILE, OUT, events, make_user, placed, refused, user


def sessions_of(t: InProcess, u: User) -> list[str]:
    return [c.id for c in t.runner.calls_of(u.id, CallKind.SESSION)]


async def test_on_demand_with_a_number(t: InProcess) -> None:
    u = make_user(t)
    updated, test_id = t.domain.modes.set(u, Mode.ON_DEMAND, "0171 1234567", False)
    assert (updated.mode, updated.telecommuter_number, test_id) == (Mode.ON_DEMAND, MOBILE, None)
    assert user(t, u.id) == updated and placed(t) == []
    assert events(t, u.id, "mode") == [{"kind": "mode", "mode": "on-demand", "number": MOBILE}]


async def test_a_number_is_required_and_checked(t: InProcess) -> None:
    u = make_user(t)
    with refused(422, "number-required"):
        t.domain.modes.set(u, Mode.ON_DEMAND, None, False)
    with refused(403, "class-of-service:standard:premium"):
        t.domain.modes.set(u, Mode.KEEP_CONNECTED, "+499001234567", False)
    with refused(422, "invalid-number"):
        t.domain.modes.set(u, Mode.ON_DEMAND, "call me", False)
    assert user(t, u.id).mode is Mode.OFF and events(t, u.id, "mode") == [] and not t.runner.calls


async def test_a_number_given_with_mode_off_is_kept_for_later(t: InProcess) -> None:
    u = make_user(t)
    u, _ = t.domain.modes.set(u, Mode.OFF, MOBILE, False)
    assert (u.mode, u.telecommuter_number) == (Mode.OFF, MOBILE)
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, None, False)  # the stored number is enough now
    assert u.mode is Mode.ON_DEMAND


async def test_mode_on_for_a_deleted_user_is_404(t: InProcess) -> None:
    u = make_user(t)
    t.domain.accounts.delete(u)
    with refused(404, "no-user"):
        t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)


# ------------------------------------------------------------------------------------------ hot desking
async def test_telecommuting_logs_the_user_out_of_the_desk_and_off_restores_it(t: InProcess) -> None:
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.login(u, "300")
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)
    assert u.restore_desk == "300" and t.domain.desks.of(u.id) is None
    u, _ = t.domain.modes.set(u, Mode.KEEP_CONNECTED, None, False)  # on to on: still remembered
    assert u.restore_desk == "300"
    u, _ = t.domain.modes.set(u, Mode.OFF, None, False)
    assert u.restore_desk == "" and t.domain.desks.of(u.id).extension == "300"
    assert events(t, u.id, "desk")[-1] == {"kind": "desk", "desk": "300", "restored": True, "logged_out": False}
    assert events(t, u.id, "mode")[-1] == {"kind": "mode", "mode": "off", "number": MOBILE}


async def test_off_does_not_take_the_desk_from_someone_else(t: InProcess) -> None:
    u, other = make_user(t, "201"), make_user(t, "202", "+493012345679")
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.login(u, "300")
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)
    t.domain.desks.login(other, "300")
    u, _ = t.domain.modes.set(u, Mode.OFF, None, False)
    assert u.restore_desk == "" and t.domain.desks.of(u.id) is None
    assert t.domain.desks.get("300").occupant == other.id
    assert events(t, u.id, "desk")[-1]["logged_out"] is True
    assert t.domain.policy.lookup("300", "pbx").user_id == other.id


# ------------------------------------------------------------------------------------------ the persistent line
async def test_keep_connected_starts_the_session_and_off_stops_it(t: InProcess) -> None:
    u = make_user(t)
    u, test_id = t.domain.modes.set(u, Mode.KEEP_CONNECTED, MOBILE, True)
    assert test_id is None, "keep-connected: the line itself is the test"
    (session,) = sessions_of(t, u)
    (line,) = placed(t)
    assert line.args[0] == f"sip:{MOBILE}@{OUT}" and t.node.gate.admitted == 1
    u, _ = t.domain.modes.set(u, Mode.KEEP_CONNECTED, None, False)  # unchanged: the same session
    assert sessions_of(t, u) == [session] and len(placed(t)) == 1
    u, _ = t.domain.modes.set(u, Mode.OFF, None, False)
    assert [c.leg for c in t.engine.named("hangup")] == [line.leg]
    t.far.ended(line.leg)
    assert sessions_of(t, u) == [] and t.node.gate.admitted == 0


async def test_on_demand_from_keep_connected_stops_the_session(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    line = placed(t)[0].leg
    t.domain.modes.set(u, Mode.ON_DEMAND, None, False)
    assert [c.leg for c in t.engine.named("hangup")] == [line]


async def test_a_new_number_in_keep_connected_moves_the_line(t: InProcess) -> None:
    u = make_user(t, mode=Mode.KEEP_CONNECTED, number=MOBILE)
    (old,) = sessions_of(t, u)
    old_line = placed(t)[0].leg
    t.domain.modes.set(u, Mode.KEEP_CONNECTED, "+491711234568", False)
    assert [c.leg for c in t.engine.named("hangup")] == [old_line]
    assert placed(t)[-1].args[0] == f"sip:+491711234568@{OUT}", "the new number gets a line at once"
    current = t.domain.sessions.of(u.id)
    assert current is not None and current.id != old and current.info["user_number"] == "+491711234568"
    t.far.ended(old_line)
    assert sessions_of(t, u) == [current.id] and t.node.gate.admitted == 1


async def test_no_new_session_once_shutting_down(t: InProcess) -> None:
    u = make_user(t)
    t.node.gate.close()
    u, _ = t.domain.modes.set(u, Mode.KEEP_CONNECTED, MOBILE, False)
    assert u.mode is Mode.KEEP_CONNECTED and sessions_of(t, u) == [] and placed(t) == []


async def test_no_supervision_forces_keep_connected(t: InProcess) -> None:
    u = make_user(t)
    u = t.domain.accounts.update(u, no_supervision=True)
    u, test_id = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, True)
    assert u.mode is Mode.KEEP_CONNECTED and test_id is None
    assert len(sessions_of(t, u)) == 1
    assert events(t, u.id, "mode")[-1]["mode"] == "keep-connected"


# ------------------------------------------------------------------------------------------ the test call
async def test_test_call_started_for_on_demand_when_asked(t: InProcess) -> None:
    u = make_user(t)
    u, test_id = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, True)
    assert test_id is not None
    call = t.runner.get(test_id)
    assert call is not None and (call.kind, call.user_id) == (CallKind.TEST, u.id)
    assert [c.args[0] for c in placed(t)] == [f"sip:{MOBILE}@{OUT}"]


async def test_no_test_call_when_turning_off(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    _, test_id = t.domain.modes.set(u, Mode.OFF, None, True)
    assert test_id is None and placed(t) == []


async def test_a_full_node_refuses_the_change_before_anything_changes(t: InProcess) -> None:
    """The line (or the test call) needs an admission: with none left, 503 and the user is as before."""
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.login(u, "300")
    while t.node.gate.admit() is None:
        pass
    taken = t.node.gate.admitted
    for mode, test_call in ((Mode.KEEP_CONNECTED, False), (Mode.ON_DEMAND, True)):
        with refused(503, "over-capacity"):
            t.domain.modes.set(u, mode, MOBILE, test_call)
        assert user(t, u.id).mode is Mode.OFF and t.domain.desks.of(u.id) is not None
    assert t.node.gate.admitted == taken and events(t, u.id, "mode") == [] and not t.runner.calls

