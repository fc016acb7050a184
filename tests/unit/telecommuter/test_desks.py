"""Hot desking: desk extensions, logging in and out (one desk per user, one user per desk), every change reaching
the directory (a desk rings its occupant) and the user's event stream, and the desk restored after telecommuting."""

from __future__ import annotations

from b2bua.telecommuter.users import Desk, Mode
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import MOBILE, events, make_user, refused, user


def pbx_lookup(t: InProcess, extension: str) -> tuple[str, int, str]:
    local = t.domain.policy.lookup(extension, "pbx")
    assert local is not None
    return local.user_id, local.code, local.reason


async def test_create_a_desk_rings_nobody_until_someone_logs_in(t: InProcess) -> None:
    desk = t.domain.desks.create("300", "sip:300@127.0.0.5", "Reception")
    assert desk == Desk("300", "Reception", "sip:300@127.0.0.5", "")
    assert t.domain.desks.list() == [desk] and t.domain.desks.get("300") == desk
    assert pbx_lookup(t, "300") == ("", 480, "desk-free")


async def test_create_refusals(t: InProcess) -> None:
    desks = t.domain.desks
    make_user(t, "201")
    desks.create("300", "sip:300@127.0.0.5")
    with refused(409, "conflict"):
        desks.create("300", "sip:other@127.0.0.5")
    with refused(409, "conflict"):
        desks.create("201", "sip:201@127.0.0.5")  # a user's extension
    with refused(422, "invalid-extension"):
        desks.create("3", "sip:3@127.0.0.5")
    assert [d.extension for d in desks.list()] == ["300"]


async def test_get_update_and_delete_unknown_desk_are_404(t: InProcess) -> None:
    desks = t.domain.desks
    with refused(404, "no-desk"):
        desks.get("399")
    with refused(404, "no-desk"):
        desks.update("399", name="x", contact=None)
    with refused(404, "no-desk"):
        desks.delete("399")
    with refused(404, "no-desk"):
        desks.login(make_user(t), "399")


async def test_update_changes_only_what_is_given(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5", "Reception")
    assert desks.update("300", name=None, contact="sip:300@10.0.0.9") == Desk("300", "Reception",
                                                                                "sip:300@10.0.0.9")
    assert desks.update("300", name="Lobby", contact=None).name == "Lobby"


async def test_login_rings_the_desk_for_its_occupant_and_tells_the_user(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    u = make_user(t)
    desk = desks.login(u, "300")
    assert desk.occupant == u.id and desks.of(u.id) == desk
    assert pbx_lookup(t, "300") == (u.id, 404, "unknown-number")  # Local(user): the defaults are unused
    assert events(t, u.id, "desk") == [{"kind": "desk", "desk": "300", "restored": False, "logged_out": False}]


async def test_login_elsewhere_moves_the_user(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    desks.create("301", "sip:301@127.0.0.5")
    u = make_user(t)
    desks.login(u, "300")
    desks.login(u, "301")
    assert desks.get("300").occupant == "" and desks.get("301").occupant == u.id
    assert pbx_lookup(t, "300")[1:] == (480, "desk-free")


async def test_occupied_desk_and_telecommuter_mode_refuse_login(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    ann, bo = make_user(t, "201"), make_user(t, "202", "+493012345679")
    desks.login(ann, "300")
    with refused(409, "desk-occupied"):
        desks.login(bo, "300")
    assert desks.get("300").occupant == ann.id
    away = make_user(t, "203", "+493012345670", mode=Mode.ON_DEMAND, number=MOBILE)
    desks.create("301", "sip:301@127.0.0.5")
    with refused(409, "telecommuter-mode-on"):
        desks.login(away, "301")
    assert desks.get("301").occupant == ""


async def test_login_forgets_a_desk_remembered_for_restoring(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    desks.create("301", "sip:301@127.0.0.5")
    u = make_user(t)
    desks.login(u, "300")
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)
    assert u.restore_desk == "300"
    u, _ = t.domain.modes.set(u, Mode.OFF, None, False)
    assert desks.of(u.id).extension == "300" and u.restore_desk == ""


async def test_logout_frees_the_desk(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    u = make_user(t)
    desks.login(u, "300")
    desks.logout(u)
    assert desks.of(u.id) is None and pbx_lookup(t, "300")[1:] == (480, "desk-free")
    assert events(t, u.id, "desk")[-1] == {"kind": "desk", "desk": None, "restored": False, "logged_out": True}


async def test_delete_an_occupied_desk_logs_its_occupant_out(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    u = make_user(t)
    desks.login(u, "300")
    desks.delete("300")
    assert desks.list() == [] and desks.of(u.id) is None
    assert pbx_lookup(t, "300")[1:] == (404, "unknown-extension")
    assert events(t, u.id, "desk")[-1]["logged_out"] is True


async def test_ensure_not_a_desk(t: InProcess) -> None:
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.ensure_not_a_desk("301")
    with refused(409, "conflict"):
        t.domain.desks.ensure_not_a_desk("300")


async def test_leave_for_telecommuting_and_restore(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    u = make_user(t)
    assert desks.leave_for_telecommuting(u) == ""  # not logged in anywhere
    desks.login(u, "300")
    assert desks.leave_for_telecommuting(u) == "300" and desks.of(u.id) is None
    t.domain.accounts.repository.update_user(u.id, restore_desk="300")
    restored = desks.restore(user(t, u.id))
    assert restored.restore_desk == "" and desks.of(u.id).extension == "300"
    assert events(t, u.id, "desk")[-1] == {"kind": "desk", "desk": "300", "restored": True, "logged_out": False}


async def test_restore_when_someone_else_took_the_desk(t: InProcess) -> None:
    desks = t.domain.desks
    desks.create("300", "sip:300@127.0.0.5")
    u, other = make_user(t, "201"), make_user(t, "202", "+493012345679")
    t.domain.accounts.repository.update_user(u.id, restore_desk="300")
    desks.login(other, "300")
    restored = desks.restore(user(t, u.id))
    assert restored.restore_desk == "" and desks.of(u.id) is None and desks.get("300").occupant == other.id
    assert events(t, u.id, "desk")[-1] == {"kind": "desk", "desk": None, "restored": False, "logged_out": True}


async def test_restore_without_a_remembered_desk_says_nothing(t: InProcess) -> None:
    u = make_user(t)
    assert t.domain.desks.restore(u) == u
    assert events(t, u.id, "desk") == []
