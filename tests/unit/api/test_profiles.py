"""/v1/users/{id}/profiles, /active-profile and /settings over the real API in-process: the built-in and custom
profiles, selecting one with one request (one event), Detected after a settings change, every refusal as
problem+json naming its rule, and a store failure while selecting answered 503 with the settings left whole."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.support.inprocess import InProcess
from tests.unit.api.helpers import PREMIUM, TELECOMMUTER, assert_invalid, assert_problem, set_mode, user

HAMBURG = "+494012345678"


async def ok(t: InProcess, method: str, path: str, token: str | None = None, **kw: Any) -> dict[str, Any]:
    r = await (t.call(method, path, token=token, **kw) if token else t.call(method, path, **kw))
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def profile_events(t: InProcess, uid: str) -> list[tuple[str, str]]:
    return [(e.data["id"], e.data["cause"]) for e in t.node.bus.recent(uid) if e.kind == "profile"]


async def test_every_user_has_office_mobile_and_home_with_office_active(t: InProcess) -> None:
    uid, token = await user(t, telecommuter_number=TELECOMMUTER)
    body = await ok(t, "GET", "/v1/users/me/profiles", token)
    assert [(p["id"], p["name"], p["builtin"], p["active"]) for p in body["profiles"]] == [
        ("office", "Office", True, True), ("mobile", "Mobile", True, False), ("home", "Home", True, False)]
    assert body["max_custom"] == 4 and body["active"]["id"] == "office" and not body["active"]["detected"]
    office, mobile, home = (p["settings"] for p in body["profiles"])
    assert office["pickup"] and office["voicemail"]["enabled"] and office["telecommuter"] == {"mode": "off",
                                                                                              "number": None}
    assert mobile["mobility"] == {"default_desk": None, "twinning": True, "twin_number": TELECOMMUTER}
    assert home["telecommuter"] == {"mode": "on-demand", "number": TELECOMMUTER} and not home["pickup"]
    assert office["forwarding"] == {"unconditional": None, "busy": None, "no_answer": None, "ring_time_s": 20}
    assert (await ok(t, "GET", f"/v1/users/{uid}/profiles/home"))["settings"] == home


async def test_a_home_number_at_creation_is_where_home_forwards(t: InProcess) -> None:
    uid, _ = await user(t, home_number="040 12345678")
    home = await ok(t, "GET", f"/v1/users/{uid}/profiles/home")
    assert home["settings"]["forwarding"]["unconditional"] == HAMBURG
    r = await t.call("POST", "/v1/users", json={"name": "Bo", "extension": "202", "business_number": "+49309018202",
                                                "home_number": PREMIUM})
    assert_problem(r, 403, "class-of-service:standard:premium")


async def test_select_by_one_request_applies_it_and_sends_one_event(t: InProcess) -> None:
    uid, token = await user(t, telecommuter_number=TELECOMMUTER)
    active = await ok(t, "POST", "/v1/users/me/profiles/home/select", token)
    assert (active["id"], active["name"], active["detected"]) == ("home", "Home", False)
    assert active["settings"]["telecommuter"] == {"mode": "on-demand", "number": TELECOMMUTER}
    view = await ok(t, "GET", f"/v1/users/{uid}")
    assert view["mode"] == "on-demand" and view["rings"] == "telecommuter"
    assert profile_events(t, uid) == [("home", "selected")]
    assert (await ok(t, "GET", "/v1/users/me/active-profile", token)) == active


async def test_a_settings_change_shows_detected_until_a_profile_is_selected(t: InProcess) -> None:
    uid, token = await user(t)
    live = await ok(t, "PATCH", "/v1/users/me/settings", token, json={"forwarding": {"unconditional": "040 12345678"}})
    assert live["active_profile"] == {"id": "detected", "name": "Detected", "detected": True}
    assert live["settings"]["forwarding"]["unconditional"] == HAMBURG and live["dnd"] is False
    listed = await ok(t, "GET", "/v1/users/me/profiles", token)
    assert listed["active"]["id"] == "detected" and listed["active"]["settings"] == live["settings"]
    assert not any(p["active"] for p in listed["profiles"])
    await ok(t, "POST", "/v1/users/me/profiles/office/select", token)
    assert (await ok(t, "GET", "/v1/users/me/settings", token))["active_profile"]["id"] == "office"
    assert profile_events(t, uid) == [("detected", "settings-changed"), ("office", "selected")]


async def test_a_number_in_the_settings_is_removed_with_null(t: InProcess) -> None:
    _, token = await user(t)
    await ok(t, "PATCH", "/v1/users/me/settings", token, json={"forwarding": {"busy": HAMBURG, "ring_time_s": 30}})
    live = await ok(t, "PATCH", "/v1/users/me/settings", token, json={"forwarding": {"busy": None}})
    assert live["settings"]["forwarding"] == {"unconditional": None, "busy": None, "no_answer": None,
                                              "ring_time_s": 30}


async def test_the_telecommuter_route_shows_in_the_settings_and_back(t: InProcess) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, "on-demand")
    live = await ok(t, "GET", f"/v1/users/{uid}/settings")
    assert live["settings"]["telecommuter"] == {"mode": "on-demand", "number": TELECOMMUTER}
    await ok(t, "PATCH", "/v1/users/me/settings", token, json={"telecommuter": {"mode": "off"}})
    assert (await ok(t, "GET", f"/v1/users/{uid}"))["mode"] == "off"


async def test_custom_profiles_up_to_four_then_409_naming_the_limit(t: InProcess) -> None:
    _, token = await user(t)
    made = []
    for i in range(4):
        r = await t.call("POST", "/v1/users/me/profiles", token=token,
                         json={"name": f"Lab {i}", "settings": {"forwarding": {"no_answer": HAMBURG}}})
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert made[0]["settings"]["forwarding"]["no_answer"] == HAMBURG and not made[0]["builtin"]
    body = assert_problem(await t.call("POST", "/v1/users/me/profiles", token=token, json={"name": "Fifth"}),
                          409, "custom-profile-limit")
    assert "at most 4 custom profiles" in body["detail"]
    r = await t.call("DELETE", f"/v1/users/me/profiles/{made[0]['id']}", token=token)
    assert r.status_code == 204
    renamed = await ok(t, "PATCH", f"/v1/users/me/profiles/{made[1]['id']}", token,
                       json={"name": "Night", "settings": {"pickup": False}})
    assert (renamed["name"], renamed["settings"]["pickup"]) == ("Night", False)
    assert (await t.call("POST", "/v1/users/me/profiles", token=token, json={"name": "Fifth"})).status_code == 201


async def test_refusals_are_problems_naming_the_rule(t: InProcess) -> None:
    _, token = await user(t)
    me = "/v1/users/me"
    cases = [
        ("DELETE", f"{me}/profiles/home", None, 409, "builtin-profile"),
        ("PATCH", f"{me}/profiles/office", {"name": "Desk"}, 409, "builtin-profile"),
        ("POST", f"{me}/profiles", {"name": "office"}, 409, "profile-name-taken"),
        ("POST", f"{me}/profiles", {"name": "Detected"}, 409, "profile-name-taken"),
        ("GET", f"{me}/profiles/nope", None, 404, "no-profile"),
        ("POST", f"{me}/profiles/detected/select", None, 409, "detected-not-selectable"),
        ("PATCH", f"{me}/settings", {"forwarding": {"busy": PREMIUM}}, 403, "class-of-service:standard:premium"),
        ("PATCH", f"{me}/profiles/home", {"settings": {"mobility": {"twinning": True}}}, 422, "number-required"),
        ("PATCH", f"{me}/settings", {"mobility": {"default_desk": "300"}}, 422, "unknown-desk"),
        ("PATCH", f"{me}/settings", {"forwarding": {"unconditional": "201"}}, 422, "forwarding-loop"),
    ]
    for method, path, body, status, rule in cases:
        problem = assert_problem(await t.call(method, path, token=token, json=body), status, rule, (method, path))
        if rule.startswith("class-of-service"):
            assert problem["detail"].startswith("forwarding.busy: ")
    assert (await ok(t, "GET", f"{me}/active-profile", token))["id"] == "office", "nothing changed"


async def test_invalid_bodies_are_422(t: InProcess) -> None:
    _, token = await user(t)
    path = "/v1/users/me/settings"
    assert_invalid(await t.call("PATCH", path, token=token, json={"pickup": None}), "pickup")
    assert_invalid(await t.call("PATCH", path, token=token, json={"voicemail": {"listen_by": "fax"}}), "listen_by")
    assert_invalid(await t.call("PATCH", path, token=token, json={"forwarding": {"ring_time_s": 2}}), "ring_time_s")
    assert_invalid(await t.call("PATCH", path, token=token, json={"forwarding": {"always": HAMBURG}}), "always")
    assert_invalid(await t.call("POST", "/v1/users/me/profiles", token=token, json={"name": ""}), "name")


async def test_only_the_user_and_the_admin_see_a_users_profiles(t: InProcess) -> None:
    uid, _ = await user(t)
    _, other = await user(t, "202")
    for method, path in (("GET", f"/v1/users/{uid}/profiles"), ("POST", f"/v1/users/{uid}/profiles/home/select"),
                         ("PATCH", f"/v1/users/{uid}/settings")):
        assert_problem(await t.call(method, path, token=other, json={}), 403, "not-your-user", path)
        assert_problem(await t.call(method, path, token=None, json={}), 401, "unauthenticated", path)
    assert (await t.call("GET", f"/v1/users/{uid}/profiles")).status_code == 200, "the admin may"


async def test_a_store_failure_while_selecting_is_503_and_changes_nothing(t: InProcess) -> None:
    uid, token = await user(t, telecommuter_number=TELECOMMUTER)
    before = await ok(t, "GET", "/v1/users/me/settings", token)
    real = t.store._db.execute

    def execute(sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("INSERT OR REPLACE INTO routing_live"):  # after the user's row was updated
            raise sqlite3.OperationalError("disk I/O error")
        return real(sql, *args)

    t.store._db.execute = execute  # type: ignore[method-assign]
    try:
        r = await t.call("POST", "/v1/users/me/profiles/home/select", token=token)
    finally:
        t.store._db.execute = real  # type: ignore[method-assign]
    body = assert_problem(r, 503, "store-unavailable")
    assert "disk I/O error" in body["detail"] and r.headers["retry-after"] == "10"
    assert await ok(t, "GET", "/v1/users/me/settings", token) == before
    assert (await ok(t, "GET", f"/v1/users/{uid}"))["mode"] == "off" and profile_events(t, uid) == []
    assert (await ok(t, "POST", "/v1/users/me/profiles/home/select", token))["id"] == "home", "works again"
