"""/v1/users: provisioning (admin), settings, tokens and telecommuter mode, over the real API in-process."""

from __future__ import annotations

from typing import Any

from b2bua.control.interfaces import Local
from b2bua.telecommuter.users import Mode
from tests.support.inprocess import InProcess
from tests.unit.api.helpers import (
    NOT_A_NUMBER,
    PREMIUM,
    TELECOMMUTER,
    assert_invalid,
    assert_problem,
    assert_unauthenticated,
    business,
    placed,
    set_mode,
    user,
)


def _body(extension: str = "201", **fields: Any) -> dict[str, Any]:
    return {"name": f"User {extension}", "extension": extension, "business_number": business(extension), **fields}


# ------------------------------------------------------------------------------------------ POST /v1/users
async def test_create_user_returns_the_view_and_a_token_that_works(t: InProcess) -> None:
    r = await t.call("POST", "/v1/users", json=_body(business_number="030 9018201", confirm_digit="1",
                                                     telecommuter_number="030-123456"))
    assert r.status_code == 201, r.text
    data = r.json()
    view = data["user"]
    assert view["business_number"] == "+49309018201"  # normalised to E.164
    assert view["telecommuter_number"] == TELECOMMUTER
    assert view["mode"] == "off" and view["class_of_service"] == "standard" and view["confirm_digit"] == "1"
    assert view["voicemail"] is True and view["rings"] == "voicemail" and view["desk"] is None
    assert view["voicemail_messages"] == {"total": 0, "unread": 0} and view["last_test"] is None
    assert data["token"].startswith("u_")
    # the directory knows the new number at once: a carrier's call to it reaches this user
    assert t.domain.policy.lookup("49309018201", "carrier") == Local(view["id"])
    me = await t.call("GET", "/v1/users/me", token=data["token"])
    assert me.status_code == 200 and me.json()["id"] == view["id"]


async def test_create_user_is_for_the_admin_only(t: InProcess) -> None:
    _, token = await user(t)
    assert_unauthenticated(await t.call("POST", "/v1/users", token=None, json=_body("202")))
    assert_problem(await t.call("POST", "/v1/users", token="nope", json=_body("202")), 403, "forbidden")
    assert_problem(await t.call("POST", "/v1/users", token=token, json=_body("202")), 403, "forbidden")
    # refused before the body is looked at: a user learns nothing about the schema
    assert_problem(await t.call("POST", "/v1/users", token=token, json={"bogus": 1}), 403, "forbidden")
    assert len(t.domain.accounts.list()) == 1


async def test_create_user_refuses_invalid_bodies(t: InProcess) -> None:
    changes: list[dict[str, Any]] = [
        {"colour": "blue"},  # unknown fields are refused, not ignored
        {"name": ""}, {"extension": "1" * 21}, {"business_number": "12"}, {"confirm_digit": "12"},
        {"privacy": "maybe"}, {"voicemail": []}]
    for change in changes:
        assert_invalid(await t.call("POST", "/v1/users", json={**_body(), **change}), *change, case=change)
    assert t.domain.accounts.list() == []


async def test_create_user_refuses_a_missing_field(t: InProcess) -> None:
    body = _body()
    del body["business_number"]
    errors = assert_invalid(await t.call("POST", "/v1/users", json=body), "business_number")
    assert errors[0]["type"] == "missing"


async def test_create_user_domain_refusals(t: InProcess) -> None:
    await user(t, "201")
    r = await t.call("POST", "/v1/desks", json={"extension": "301", "contact": "sip:desk301@127.0.0.5"})
    assert r.status_code == 201, r.text
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"extension": "201"}, 409, "conflict"),  # the first user's extension
        ({"business_number": business("201")}, 409, "conflict"),  # the first user's number
        ({"extension": "301"}, 409, "conflict"),  # a desk's extension
        ({"business_number": "110"}, 422, "invalid-number"),  # an emergency number is nobody's DID
        ({"business_number": NOT_A_NUMBER}, 422, "invalid-number"),
        ({"extension": "12345678"}, 422, "invalid-extension"),
        ({"class_of_service": "gold"}, 422, "unknown-class-of-service"),
        ({"telecommuter_number": PREMIUM}, 403, "class-of-service:standard:premium"),
    ]
    for change, status, rule in cases:
        assert_problem(await t.call("POST", "/v1/users", json={**_body("202"), **change}), status, rule, change)
    assert len(t.domain.accounts.list()) == 1


# ------------------------------------------------------------------------------------------ GET /v1/users
async def test_list_users_is_for_the_admin(t: InProcess) -> None:
    a, token = await user(t, "201")
    b, _ = await user(t, "202")
    r = await t.call("GET", "/v1/users")
    assert r.status_code == 200
    assert {u["id"] for u in r.json()["users"]} == {a, b}
    assert_problem(await t.call("GET", "/v1/users", token=token), 403, "forbidden")
    assert_unauthenticated(await t.call("GET", "/v1/users", token=None))


# ------------------------------------------------------------------------------------------ GET /v1/users/{id}
async def test_get_user_for_the_admin_the_user_and_me(t: InProcess) -> None:
    uid, token = await user(t)
    for who, path in ((None, f"/v1/users/{uid}"), (token, f"/v1/users/{uid}"), (token, "/v1/users/me")):
        r = await t.call("GET", path, token=who) if who else await t.call("GET", path)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == uid and r.json()["extension"] == "201"


async def test_get_user_refusals(t: InProcess) -> None:
    uid, token = await user(t, "201")
    other, _ = await user(t, "202")
    assert_unauthenticated(await t.call("GET", f"/v1/users/{uid}", token=None))
    assert_problem(await t.call("GET", f"/v1/users/{uid}", token="u_not-a-token"), 403, "forbidden")
    assert_problem(await t.call("GET", f"/v1/users/{other}", token=token), 403, "not-your-user")
    assert_problem(await t.call("GET", "/v1/users/me"), 400, "me-needs-user-token")  # the admin is nobody's "me"
    assert_problem(await t.call("GET", "/v1/users/nobody"), 404, "no-user")
    # a user asking for an unknown id is told "not yours", not whether it exists
    assert_problem(await t.call("GET", "/v1/users/nobody", token=token), 403, "not-your-user")


# ------------------------------------------------------------------------------------------ PATCH /v1/users/{id}
async def test_admin_updates_any_field(t: InProcess) -> None:
    uid, _ = await user(t, "201")
    r = await t.call("PATCH", f"/v1/users/{uid}", json={
        "name": "Renamed", "extension": "250", "business_number": "+4930901850", "class_of_service": "international",
        "confirm_digit": "#", "privacy": True, "no_supervision": True})
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["name"], v["extension"], v["business_number"], v["class_of_service"], v["confirm_digit"],
            v["privacy"], v["no_supervision"]) == ("Renamed", "250", "+4930901850", "international", "#", True, True)
    stored = t.domain.accounts.get(uid)
    assert stored.extension == "250" and stored.class_of_service == "international"
    assert t.domain.policy.lookup("250", "pbx") == Local(uid)  # the directory follows


async def test_user_changes_their_self_service_fields(t: InProcess) -> None:
    uid, token = await user(t)
    r = await t.call("PATCH", "/v1/users/me", token=token, json={"voicemail": False, "call_waiting": True})
    assert r.status_code == 200, r.text
    assert r.json()["voicemail"] is False and r.json()["call_waiting"] is True
    assert r.json()["rings"] == "busy"  # no desk, no voicemail, mode off
    assert t.domain.accounts.get(uid).call_waiting is True


async def test_user_may_not_change_admin_fields_or_other_users(t: InProcess) -> None:
    uid, token = await user(t, "201")
    other, _ = await user(t, "202")
    body = assert_problem(await t.call("PATCH", f"/v1/users/{uid}", token=token,
                                       json={"name": "Boss", "voicemail": False}), 403, "admin-only-field")
    assert "name" in body["detail"]
    assert_problem(await t.call("PATCH", f"/v1/users/{other}", token=token, json={"voicemail": False}),
                   403, "not-your-user")
    assert t.domain.accounts.get(uid).name == "User 201" and t.domain.accounts.get(uid).voicemail is True
    assert t.domain.accounts.get(other).voicemail is True
    assert_unauthenticated(await t.call("PATCH", f"/v1/users/{uid}", token=None, json={"voicemail": False}))


async def test_update_user_refusals(t: InProcess) -> None:
    uid, _ = await user(t, "201")
    await user(t, "202")
    before = t.domain.accounts.get(uid)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"extension": "202"}, 409, "conflict"),
        ({"business_number": business("202")}, 409, "conflict"),
        ({"class_of_service": "gold"}, 422, "unknown-class-of-service"),
        ({"business_number": "110"}, 422, "invalid-number"),
        ({"extension": "x1"}, 422, "invalid-extension"),
        ({"mode": "on-demand"}, 422, "invalid-request"),  # not a settings field: the telecommuter route sets it
        ({"confirm_digit": "12"}, 422, "invalid-request"),
        ({"name": ""}, 422, "invalid-request"),
    ]
    for change, status, rule in cases:
        assert_problem(await t.call("PATCH", f"/v1/users/{uid}", json=change), status, rule, change)
        assert t.domain.accounts.get(uid) == before, change


async def test_update_unknown_user_is_404(t: InProcess) -> None:
    assert_problem(await t.call("PATCH", "/v1/users/nobody", json={"voicemail": False}), 404, "no-user")


# ------------------------------------------------------------------------------------------ DELETE /v1/users/{id}
async def test_delete_user_ends_their_calls_and_their_token(t: InProcess) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, "on-demand")
    call = await t.call("POST", f"/v1/users/{uid}/calls", json={"target": "+494012345678"})
    assert call.status_code == 201, call.text
    leg = placed(t, TELECOMMUTER)[0].leg
    r = await t.call("DELETE", f"/v1/users/{uid}")
    assert r.status_code == 204 and r.content == b""
    assert leg in [c.leg for c in t.engine.named("hangup")]  # the callback was ended
    assert_problem(await t.call("GET", f"/v1/users/{uid}"), 404, "no-user")
    assert_problem(await t.call("GET", "/v1/users/me", token=token), 403, "forbidden")
    assert t.domain.policy.lookup("49309018201", "carrier") is None


async def test_delete_user_is_for_the_admin_only(t: InProcess) -> None:
    uid, token = await user(t)
    assert_problem(await t.call("DELETE", f"/v1/users/{uid}", token=token), 403, "forbidden")
    assert_problem(await t.call("DELETE", "/v1/users/me", token=token), 403, "forbidden")
    assert_unauthenticated(await t.call("DELETE", f"/v1/users/{uid}", token=None))
    assert_problem(await t.call("DELETE", "/v1/users/nobody"), 404, "no-user")
    assert t.domain.accounts.get(uid).id == uid


# ------------------------------------------------------------------------------------------ POST /v1/users/{id}/token
async def test_rotate_token_replaces_the_old_one(t: InProcess) -> None:
    uid, old = await user(t)
    r = await t.call("POST", "/v1/users/me/token", token=old)
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert new != old and new.startswith("u_")
    assert_problem(await t.call("GET", "/v1/users/me", token=old), 403, "forbidden")
    assert (await t.call("GET", "/v1/users/me", token=new)).json()["id"] == uid
    r = await t.call("POST", f"/v1/users/{uid}/token")  # the admin may rotate it too
    assert r.status_code == 200
    assert_problem(await t.call("GET", "/v1/users/me", token=new), 403, "forbidden")
    assert (await t.call("GET", "/v1/users/me", token=r.json()["token"])).status_code == 200


async def test_rotate_token_refusals(t: InProcess) -> None:
    uid, token = await user(t, "201")
    other, other_token = await user(t, "202")
    assert_problem(await t.call("POST", f"/v1/users/{other}/token", token=token), 403, "not-your-user")
    assert (await t.call("GET", "/v1/users/me", token=other_token)).status_code == 200  # untouched
    assert_unauthenticated(await t.call("POST", f"/v1/users/{uid}/token", token=None))
    assert_problem(await t.call("POST", "/v1/users/nobody/token"), 404, "no-user")


# ------------------------------------------------------------------------------------------ PUT .../telecommuter
async def test_turning_on_demand_mode_on_and_off(t: InProcess) -> None:
    uid, token = await user(t)
    r = await t.call("PUT", "/v1/users/me/telecommuter", token=token,
                     json={"mode": "on-demand", "number": "030 123456"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["test_call_id"] is None
    assert data["user"]["mode"] == "on-demand" and data["user"]["telecommuter_number"] == TELECOMMUTER
    assert data["user"]["rings"] == "telecommuter"
    assert t.domain.accounts.get(uid).mode is Mode.ON_DEMAND
    assert t.engine.calls_placed() == []  # on-demand: nothing is dialled until a call needs it
    r = await t.call("PUT", f"/v1/users/{uid}/telecommuter", json={"mode": "off"})
    assert r.status_code == 200 and r.json()["user"]["mode"] == "off"
    assert r.json()["user"]["telecommuter_number"] == TELECOMMUTER  # kept for next time
    assert [e.data["mode"] for e in t.node.bus.recent(uid) if e.kind == "mode"] == ["on-demand", "off"]


async def test_test_call_rings_the_new_number(t: InProcess) -> None:
    uid, _ = await user(t)
    data = await set_mode(t, uid, "on-demand", test_call=True)
    test_id = data["test_call_id"]
    assert test_id and t.runner.get(test_id).kind.value == "test"
    assert len(placed(t, TELECOMMUTER)) == 1


async def test_without_supervision_on_demand_becomes_keep_connected(t: InProcess) -> None:
    uid, _ = await user(t)
    assert (await t.call("PATCH", f"/v1/users/{uid}", json={"no_supervision": True})).status_code == 200
    data = await set_mode(t, uid, "on-demand")
    assert data["user"]["mode"] == "keep-connected"
    assert t.domain.sessions.of(uid) is not None and len(placed(t, TELECOMMUTER)) == 1


async def test_telecommuter_mode_takes_the_user_off_their_desk_and_back(t: InProcess) -> None:
    uid, token = await user(t)
    r = await t.call("POST", "/v1/desks", json={"extension": "301", "contact": "sip:d@127.0.0.5"})
    assert r.status_code == 201
    assert (await t.call("PUT", "/v1/users/me/desk", token=token, json={"extension": "301"})).json()["desk"] == "301"
    on = await set_mode(t, uid, "on-demand")
    assert on["user"]["desk"] is None and on["user"]["restore_desk"] == "301"
    off = await set_mode(t, uid, "off", number=None)
    assert off["user"]["desk"] == "301" and off["user"]["restore_desk"] is None and off["user"]["rings"] == "desk"


async def test_telecommuter_refusals(t: InProcess) -> None:
    uid, _ = await user(t)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"mode": "on-demand"}, 422, "number-required"),  # no number on file, none given
        ({"mode": "keep-connected", "number": ""}, 422, "number-required"),
        ({"mode": "on-demand", "number": PREMIUM}, 403, "class-of-service:standard:premium"),
        ({"mode": "on-demand", "number": NOT_A_NUMBER}, 422, "invalid-number"),
        ({"mode": "sometimes", "number": TELECOMMUTER}, 422, "invalid-request"),
        ({"mode": "on-demand", "number": TELECOMMUTER, "ring": "loud"}, 422, "invalid-request"),
        ({"number": TELECOMMUTER}, 422, "invalid-request"),
    ]
    for body, status, rule in cases:
        assert_problem(await t.call("PUT", f"/v1/users/{uid}/telecommuter", json=body), status, rule, body)
        after = t.domain.accounts.get(uid)
        assert after.mode is Mode.OFF and after.telecommuter_number == "", body
    assert t.engine.calls_placed() == [] and t.node.bus.recent(uid) == []


async def test_telecommuter_auth(t: InProcess) -> None:
    uid, token = await user(t, "201")
    other, _ = await user(t, "202")
    body = {"mode": "on-demand", "number": TELECOMMUTER}
    assert_unauthenticated(await t.call("PUT", f"/v1/users/{uid}/telecommuter", token=None, json=body))
    assert_problem(await t.call("PUT", f"/v1/users/{uid}/telecommuter", token="x", json=body), 403, "forbidden")
    assert_problem(await t.call("PUT", f"/v1/users/{other}/telecommuter", token=token, json=body),
                   403, "not-your-user")
    assert_problem(await t.call("PUT", "/v1/users/nobody/telecommuter", json=body), 404, "no-user")
    assert t.domain.accounts.get(other).mode is Mode.OFF
