"""Live settings: selecting a profile applies all of it in one transaction (the telecommuter mode's consequences
follow: desk, persistent line) and says so once; a partial change may make Detected appear; the telecommuter
mode/number and voicemail are the user record's own values, whichever route changes them; a store failure in
the middle of applying leaves the previous settings whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from b2bua.calls.machine import CallKind
from b2bua.telecommuter.users import Mode, User
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import MOBILE, OUT, events, make_user, placed, refused, user

HAMBURG = "+494012345678"
FRANCE = "+33123456789"


def kinds(t: InProcess, u: User) -> list[str]:
    return [e.kind for e in t.node.bus.recent(u.id)]


def at_desk(t: InProcess, **fields: Any) -> User:
    """A user with a mobile number, logged in at desk 300."""
    u = make_user(t, telecommuter_number=MOBILE, **fields)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.desks.login(u, "300")
    return user(t, u.id)


@contextmanager
def failing(t: InProcess, statement: str) -> Iterator[list[str]]:
    """The database refuses the first statement starting so (as a full disk would); yields what was run."""
    run: list[str] = []
    real = t.store._db.execute

    def execute(sql: str, *args: Any) -> sqlite3.Cursor:
        run.append(sql.split(None, 1)[0])
        if sql.lstrip().startswith(statement):
            raise sqlite3.OperationalError("disk I/O error")
        return real(sql, *args)

    t.store._db.execute = execute  # type: ignore[method-assign]
    try:
        yield run
    finally:
        t.store._db.execute = real  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------ selecting
async def test_selecting_home_applies_everything_and_says_so_once(t: InProcess) -> None:
    u = at_desk(t)
    t.node.bus.forget(u.id)
    active = t.domain.live.select(u, "home")
    assert (active.id, active.name, active.profile is not None) == ("home", "Home", True)
    after = user(t, u.id)
    assert (after.mode, after.telecommuter_number, after.restore_desk) == (Mode.ON_DEMAND, MOBILE, "300")
    assert t.domain.desks.of(u.id) is None, "telecommuting takes the user off the desk"
    assert t.domain.policy.directory.current.desks["300"] == "", "the SIP thread's directory knows"
    assert active.live == t.domain.profiles.get(u, "home").settings
    assert [(e["id"], e["cause"]) for e in events(t, u.id, "profile")] == [("home", "selected")]
    assert kinds(t, u) == ["mode", "profile"], "the mode changed too: the mode event as ever"


async def test_back_to_office_restores_the_desk(t: InProcess) -> None:
    u = at_desk(t)
    t.domain.live.select(u, "home")
    t.domain.live.select(user(t, u.id), "office")
    after = user(t, u.id)
    assert after.mode is Mode.OFF and t.domain.desks.of(u.id) is not None
    assert after.telecommuter_number == MOBILE, "the number is kept for later, as PUT telecommuter keeps it"
    assert t.domain.profiles.active(after).id == "office"


async def test_selecting_the_active_profile_again_still_says_so_once(t: InProcess) -> None:
    u = make_user(t)
    t.domain.live.select(u, "office")
    assert kinds(t, u) == ["profile"]


async def test_a_keep_connected_profile_brings_the_line_up(t: InProcess) -> None:
    u = make_user(t)
    keep = t.domain.profiles.create(u, "Line", {"telecommuter": {"mode": "keep-connected", "number": MOBILE}})
    t.domain.live.select(u, keep.id)
    assert [c.kind for c in t.runner.calls.values()] == [CallKind.SESSION]
    assert placed(t)[0].args[0] == f"sip:{MOBILE}@{OUT}"
    t.domain.live.select(user(t, u.id), "office")
    assert t.domain.sessions.of(u.id) is None


async def test_detected_cannot_be_selected_and_unknown_profiles_are_404(t: InProcess) -> None:
    u = make_user(t)
    with refused(409, "detected-not-selectable"):
        t.domain.live.select(u, "detected")
    with refused(404, "no-profile"):
        t.domain.live.select(u, "nope")


async def test_a_profile_the_rules_now_refuse_cannot_be_selected(t: InProcess) -> None:
    u = make_user(t, class_of_service="international")
    t.domain.profiles.update(u, "home", None, {"forwarding": {"unconditional": FRANCE}})
    u = t.domain.accounts.update(u, class_of_service="standard")
    with refused(403, "class-of-service:standard:international"):
        t.domain.live.select(u, "home")
    assert t.domain.profiles.active(u).id == "office" and events(t, u.id, "profile") == []


# ------------------------------------------------------------------------------------------ atomic
async def test_a_store_failure_while_applying_leaves_the_previous_settings_whole(t: InProcess) -> None:
    u = at_desk(t)
    t.domain.profiles.update(u, "home", None, {"forwarding": {"busy": HAMBURG}, "pickup": False})
    before = (user(t, u.id), t.store.live_routing(u.id), t.store.desk_of(u.id))
    t.node.bus.forget(u.id)
    with failing(t, "INSERT OR REPLACE INTO routing_live") as run, pytest.raises(sqlite3.OperationalError):
        t.domain.live.select(u, "home")
    assert run.count("UPDATE") >= 2 and run[-1] == "ROLLBACK", "the desk and user rows were written, then undone"
    assert (user(t, u.id), t.store.live_routing(u.id), t.store.desk_of(u.id)) == before
    assert t.domain.profiles.active(u).id == "office" and kinds(t, u) == []
    assert t.node.gate.admitted == 0 and not t.runner.calls


# ------------------------------------------------------------------------------------------ partial changes
async def test_a_settings_change_shows_detected_and_selecting_makes_it_go(t: InProcess) -> None:
    u = make_user(t)
    view = t.domain.live.change(u, {"forwarding": {"unconditional": "040 12345678"}})
    assert view["active_profile"] == {"id": "detected", "name": "Detected", "detected": True}
    assert view["settings"]["forwarding"]["unconditional"] == HAMBURG and view["dnd"] is False
    assert t.store.live_routing(u.id).settings.forwarding.unconditional == HAMBURG  # type: ignore[union-attr]
    t.domain.live.change(u, {"pickup": False})  # still Detected: no event
    t.domain.live.select(u, "office")
    t.domain.live.change(u, {"forwarding": {"unconditional": HAMBURG}})
    t.domain.live.change(u, {"forwarding": {"unconditional": ""}, "pickup": True})  # matches Office again
    assert [(e["id"], e["cause"]) for e in events(t, u.id, "profile")] == [
        ("detected", "settings-changed"), ("office", "selected"), ("detected", "settings-changed"),
        ("office", "settings-changed")]


async def test_a_refused_change_changes_nothing(t: InProcess) -> None:
    u = make_user(t)
    with refused(403, "class-of-service:standard:premium"):
        t.domain.live.change(u, {"pickup": False, "forwarding": {"no_answer": "+499001234567"}})
    assert t.domain.profiles.active(u).id == "office" and events(t, u.id) == []


async def test_the_telecommuter_route_and_the_live_settings_are_one_value(t: InProcess) -> None:
    u = make_user(t)
    u, _ = t.domain.modes.set(u, Mode.ON_DEMAND, MOBILE, False)  # PUT /v1/users/{id}/telecommuter
    live = t.domain.profiles.active(u).live
    assert (live.telecommuter.mode, live.telecommuter.number) == (Mode.ON_DEMAND, MOBILE)
    t.domain.live.change(u, {"telecommuter": {"mode": "off"}})  # PATCH /v1/users/{id}/settings
    assert user(t, u.id).mode is Mode.OFF and user(t, u.id).telecommuter_number == MOBILE
    t.domain.live.change(user(t, u.id), {"telecommuter": {"number": "+4930123456"}})
    assert user(t, u.id).telecommuter_number == "+4930123456"
    assert [(e["mode"], e["number"]) for e in events(t, u.id, "mode")] == [
        ("on-demand", MOBILE), ("off", MOBILE), ("off", "+4930123456")], "one per change of the mode or number"
    t.domain.live.change(user(t, u.id), {"pickup": False})
    assert len(events(t, u.id, "mode")) == 3, "no mode event when neither changed"


async def test_voicemail_on_off_is_the_users_own_setting(t: InProcess) -> None:
    u = make_user(t)
    t.domain.accounts.update(u, voicemail=False)  # PATCH /v1/users/{id}
    assert t.domain.profiles.active(u).live.voicemail.enabled is False
    t.domain.live.change(u, {"voicemail": {"enabled": True, "callback": True}})
    assert user(t, u.id).voicemail is True
    assert t.domain.profiles.active(u).live.voicemail.callback is True


async def test_without_disconnect_supervision_on_demand_is_keep_connected_and_still_matches(t: InProcess) -> None:
    u = make_user(t, telecommuter_number=MOBILE)
    u = t.domain.accounts.update(u, no_supervision=True)
    active = t.domain.live.select(u, "home")
    assert user(t, u.id).mode is Mode.KEEP_CONNECTED and active.id == "home"
