"""The routing tables: a database from before profiles migrates (its users keep everything and simply have no
live row yet); the live settings join the user's columns (the telecommuter mode/number and voicemail on/off are
stored once, there); seeding never overwrites; a reopened database has profiles, live settings and presence."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from b2bua.store.sqlite import MIGRATIONS, Store
from b2bua.telecommuter.users import (
    Conflict,
    Desk,
    Forwarding,
    LiveRouting,
    Mode,
    PresenceState,
    PresenceStatus,
    Profile,
    RoutingSettings,
    Telecommuting,
    User,
    VoicemailPrefs,
)

MOBILE = "+491711234567"
HAMBURG = "+494012345678"


def ann(**fields: object) -> User:
    values: dict[str, object] = {"id": "u1", "name": "Ann", "extension": "201", "business_number": "+493012345678",
                                 "telecommuter_number": "", "mode": Mode.OFF, "class_of_service": "standard",
                                 "confirm_digit": "", "privacy": False, "created_at": 1.0, **fields}
    return User(**values)  # type: ignore[arg-type]


def profile(pid: str, settings: RoutingSettings, position: int = 0, name: str = "") -> Profile:
    return Profile(pid, "u1", name or pid.capitalize(), settings, position, 1.0, 1.0)


def test_a_database_from_before_profiles_migrates_and_keeps_its_users(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:5]:
        for stmt in filter(None, (s.strip() for s in step.split(";"))):
            db.execute(stmt)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO users (id, name, extension, business_number, telecommuter_number, mode, class_of_service,"
               " token_hash, created_at) VALUES ('u1', 'Ann', '201', '+493012345678', ?, 'on-demand', 'standard',"
               " 'h', 1.0)", (MOBILE,))
    db.close()
    store = Store(path, create=False)
    assert store.schema_version == len(MIGRATIONS) == 6
    user = store.get_user("u1")
    assert user is not None and (user.mode, user.telecommuter_number) == (Mode.ON_DEMAND, MOBILE)
    assert store.live_routing("u1") is None and store.profiles("u1") == [] and store.presence("u1") is None
    store.close()


def test_live_settings_are_the_users_columns_plus_the_live_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.add_user(ann(), "h")
    live = RoutingSettings(pickup=True, forwarding=Forwarding(busy=HAMBURG),
                           telecommuter=Telecommuting(Mode.ON_DEMAND, MOBILE), voicemail=VoicemailPrefs(False))
    store.seed_routing("u1", LiveRouting(live, "office"), [])
    stored = json.loads(store._db.execute("SELECT settings FROM routing_live").fetchone()[0])
    assert "telecommuter" not in stored and "enabled" not in stored["voicemail"], "stored once: on the user"
    assert store.live_routing("u1") == LiveRouting(
        RoutingSettings(pickup=True, forwarding=Forwarding(busy=HAMBURG), voicemail=VoicemailPrefs(True)), "office")
    store.update_user("u1", mode=Mode.KEEP_CONNECTED, telecommuter_number=MOBILE, voicemail=False)
    got = store.live_routing("u1")
    assert got is not None and got.settings.telecommuter == Telecommuting(Mode.KEEP_CONNECTED, MOBILE)
    assert got.settings.voicemail.enabled is False and got.settings.pickup is True
    store.close()


def test_applying_writes_the_user_the_live_row_and_the_desk_left(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.add_user(ann(), "h")
    store.add_desk(Desk("300", "", "sip:300@10.0.0.1"))
    assert store.set_occupant("300", "u1")
    home = RoutingSettings(telecommuter=Telecommuting(Mode.ON_DEMAND, MOBILE))
    user = store.apply_routing("u1", LiveRouting(home, "home"), leave_desk=True)
    assert user is not None and (user.mode, user.telecommuter_number, user.restore_desk) == (
        Mode.ON_DEMAND, MOBILE, "300")
    assert store.desk_of("u1") is None and store.live_routing("u1") == LiveRouting(home, "home")
    assert store.apply_routing("nobody", LiveRouting(home, "home"), leave_desk=False) is None
    assert store.live_routing("nobody") is None
    store.close()


def test_seeding_fills_in_only_what_is_missing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.add_user(ann(), "h")
    office = profile("office", RoutingSettings(pickup=True))
    store.seed_routing("u1", LiveRouting(office.settings, "office"), [office])
    edited = profile("office", RoutingSettings(pickup=False))
    assert store.update_profile(edited)
    store.seed_routing("u1", LiveRouting(RoutingSettings(), ""), [office, profile("home", RoutingSettings(), 2)])
    assert [(p.id, p.settings.pickup) for p in store.profiles("u1")] == [("office", False), ("home", False)]
    assert store.live_routing("u1") == LiveRouting(RoutingSettings(pickup=True), "office")
    store.close()


def test_profile_names_are_unique_per_user_in_any_case(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.add_profile(profile("a1", RoutingSettings(), 3, "Lab"))
    with pytest.raises(Conflict):
        store.add_profile(profile("a2", RoutingSettings(), 4, "LAB"))
    store.add_profile(profile("a2", RoutingSettings(), 4, "Late"))
    with pytest.raises(Conflict):
        store.update_profile(profile("a2", RoutingSettings(), 4, "lab"))
    assert store.delete_profile("u1", "a2") and not store.delete_profile("u1", "a2")
    store.close()


def test_a_reopened_database_keeps_profiles_live_settings_and_presence(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = Store(path)
    store.add_user(ann(), "h")
    lab = profile("ab12", RoutingSettings(forwarding=Forwarding(HAMBURG, ring_time_s=35)), 3, "Lab")
    store.seed_routing("u1", LiveRouting(lab.settings, lab.id), [lab])
    store.set_presence(PresenceState("u1", PresenceStatus.DND, "focus", 5.0))
    store.close()
    again = Store(path, create=False)
    assert again.profiles("u1") == [lab] and again.live_routing("u1") == LiveRouting(lab.settings, "ab12")
    assert again.presence("u1") == PresenceState("u1", PresenceStatus.DND, "focus", 5.0)
    assert again.presences() == [PresenceState("u1", PresenceStatus.DND, "focus", 5.0)]
    assert again.delete_user("u1")
    assert (again.profiles("u1"), again.live_routing("u1"), again.presence("u1")) == ([], None, None)
    again.close()
