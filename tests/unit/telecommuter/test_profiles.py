"""Profiles: Office, Mobile and Home for every user (with the user, or on first use for users from before
profiles), never deleted or renamed; up to four custom profiles; the active profile computed from the live
settings (the one last selected wins a tie, Detected when none matches) and an event when it moves."""

from __future__ import annotations

from b2bua.telecommuter.profiles import MAX_CUSTOM
from b2bua.telecommuter.users import Mode
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import MOBILE, events, make_user, refused

HAMBURG = "+494012345678"


def ids(t: InProcess, u: object) -> list[str]:
    return [p.id for p in t.domain.profiles.all(u)]


async def test_every_new_user_has_the_built_ins_and_office_is_active(t: InProcess) -> None:
    u = make_user(t)
    profiles = t.domain.profiles.all(u)
    assert [(p.id, p.name, p.builtin) for p in profiles] == [
        ("office", "Office", True), ("mobile", "Mobile", True), ("home", "Home", True)]
    active = t.domain.profiles.active(u)
    assert (active.id, active.name, active.profile is not None) == ("office", "Office", True)
    assert active.live == profiles[0].settings.with_telecommuter(Mode.OFF, "")


async def test_the_home_number_given_at_creation_seeds_home(t: InProcess) -> None:
    u, _ = t.domain.accounts.create(name="Ann", extension="201", business_number="+493012345678",
                                    home_number="040 12345678")
    home = t.domain.profiles.get(u, "home")
    assert home.settings.forwarding.unconditional == HAMBURG
    with refused(403, "class-of-service:standard:premium"):
        t.domain.accounts.create(name="Bo", extension="202", business_number="+493012345679",
                                 home_number="+499001234567")
    assert [x.extension for x in t.domain.accounts.list()] == ["201"], "a refused home number creates nobody"


async def test_users_from_before_profiles_get_them_on_first_use(t: InProcess) -> None:
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    for table in ("routing_live", "profiles"):  # as a database migrated from before profiles has it
        t.store._db.execute(f"DELETE FROM {table}")
    assert t.store.live_routing(u.id) is None
    active = t.domain.profiles.active(u)
    assert ids(t, u) == ["office", "mobile", "home"]
    assert active.id == "home", "telecommuter mode on: Home, which is on-demand on the user's number"
    assert active.live.telecommuter.mode is Mode.ON_DEMAND and active.live.telecommuter.number == MOBILE


async def test_custom_profiles_up_to_the_limit(t: InProcess) -> None:
    u = make_user(t)
    book = t.domain.profiles
    made = [book.create(u, f"Lab {i}", {"forwarding": {"busy": HAMBURG}}) for i in range(MAX_CUSTOM)]
    assert [p.position for p in made] == [3, 4, 5, 6]
    with refused(409, "custom-profile-limit") as caught:
        book.create(u, "One too many", {})
    assert "at most 4 custom profiles" in caught.value.message
    book.delete(u, made[0].id)
    assert book.create(u, "Again", {}).name == "Again"
    assert len(ids(t, u)) == 3 + MAX_CUSTOM


async def test_a_custom_profile_starts_as_the_live_settings_with_the_changes(t: InProcess) -> None:
    u = make_user(t)
    p = t.domain.profiles.create(u, "  Lab   late ", {"forwarding": {"no_answer": "040 12345678", "ring_time_s": 10}})
    assert p.name == "Lab late" and not p.builtin
    office = t.domain.profiles.get(u, "office").settings
    assert p.settings == office.merged({"forwarding": {"no_answer": HAMBURG, "ring_time_s": 10}})


async def test_names_are_unique_per_user_and_detected_is_reserved(t: InProcess) -> None:
    u = make_user(t)
    book = t.domain.profiles
    lab = book.create(u, "Lab", {})
    for name in ("lab", "OFFICE", "Detected"):
        with refused(409, "profile-name-taken"):
            book.create(u, name, {})
    with refused(409, "profile-name-taken"):
        book.update(u, lab.id, "home", {})
    assert book.update(u, lab.id, "LAB", {}).name == "LAB", "its own name in other letters"
    other = make_user(t, "202", "+493012345679")
    assert book.create(other, "Lab", {}).name == "Lab", "names are per user"


async def test_built_ins_are_edited_but_never_renamed_or_deleted(t: InProcess) -> None:
    u = make_user(t)
    book = t.domain.profiles
    for pid in ("office", "mobile", "home"):
        with refused(409, "builtin-profile"):
            book.delete(u, pid)
        with refused(409, "builtin-profile"):
            book.update(u, pid, "Elsewhere", {})
    home = book.update(u, "home", "Home", {"forwarding": {"unconditional": HAMBURG}})
    assert home.settings.forwarding.unconditional == HAMBURG and home.name == "Home"
    assert ids(t, u) == ["office", "mobile", "home"]
    with refused(404, "no-profile"):
        book.delete(u, "nope")


async def test_edits_are_checked_like_settings(t: InProcess) -> None:
    u = make_user(t)
    with refused(403, "class-of-service:standard:premium"):
        t.domain.profiles.update(u, "mobile", None, {"mobility": {"twinning": True, "twin_number": "+499001234567"}})
    assert not t.domain.profiles.get(u, "mobile").settings.mobility.twinning


async def test_the_selected_profile_wins_when_several_match(t: InProcess) -> None:
    u = make_user(t)  # no mobile number: Mobile is the same as Office
    assert t.domain.profiles.active(u).id == "office"
    t.domain.live.select(u, "mobile")
    assert t.domain.profiles.active(u).id == "mobile"
    twin = t.domain.profiles.create(u, "Twin", {})
    assert twin.settings == t.domain.profiles.get(u, "mobile").settings
    assert t.domain.profiles.active(u).id == "mobile"


async def test_editing_the_active_profile_away_shows_detected_and_says_so(t: InProcess) -> None:
    u = make_user(t, telecommuter_number=MOBILE)  # Mobile twins with the number: unlike Office
    t.domain.profiles.update(u, "office", None, {"pickup": False})  # now Office matches nothing live
    assert t.domain.profiles.active(u).id == "detected"
    assert [(e["id"], e["cause"], e["detected"]) for e in events(t, u.id, "profile")] == [
        ("detected", "profile-changed", True)]
    saved = t.domain.profiles.create(u, "As it is", {})  # saving the live settings: that profile is active
    assert t.domain.profiles.active(u).id == saved.id
    t.domain.profiles.delete(u, saved.id)
    assert [(e["id"], e["cause"]) for e in events(t, u.id, "profile")][1:] == [
        (saved.id, "profile-created"), ("detected", "profile-deleted")]


async def test_changes_that_keep_the_active_profile_send_no_event(t: InProcess) -> None:
    u = make_user(t)
    t.domain.profiles.update(u, "home", None, {"forwarding": {"unconditional": HAMBURG}})
    t.domain.profiles.create(u, "Lab", {"pickup": False})
    assert events(t, u.id, "profile") == []


async def test_deleting_a_user_deletes_their_profiles(t: InProcess) -> None:
    u = make_user(t)
    t.domain.profiles.create(u, "Lab", {})
    t.domain.accounts.delete(u)
    assert t.store.profiles(u.id) == [] and t.store.live_routing(u.id) is None
    with refused(404, "no-user"):
        t.domain.profiles.all(u)


async def test_a_desk_deleted_later_leaves_its_profiles_usable(t: InProcess) -> None:
    u = make_user(t)
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    t.domain.profiles.update(u, "office", None, {"mobility": {"default_desk": "300"}})
    t.domain.desks.delete("300")
    office = t.domain.profiles.update(u, "office", None, {"pickup": False})  # not about the desk: no refusal
    assert office.settings.mobility.default_desk == "300"
    assert t.domain.live.select(u, "office").id == "office"
    with refused(422, "unknown-desk"):
        t.domain.profiles.update(u, "office", None, {"mobility": {"default_desk": "300"}})
    with refused(422, "unknown-desk"):
        t.domain.live.change(u, {"mobility": {"default_desk": "301"}})
