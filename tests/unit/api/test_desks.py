"""/v1/desks (admin) and a user's desk login/logout (/v1/users/{id}/desk): hot desking over the API."""

from __future__ import annotations

from typing import Any

from b2bua.control.interfaces import Local
from b2bua.telecommuter.users import Desk
from tests.support.inprocess import InProcess
from tests.unit.api.helpers import assert_invalid, assert_problem, assert_unauthenticated, set_mode, user

DESK = {"extension": "301", "contact": "sip:desk301@127.0.0.5", "name": "Room 3"}


async def desk(t: InProcess, extension: str = "301", **fields: Any) -> dict[str, Any]:
    r = await t.call("POST", "/v1/desks", json={**DESK, "extension": extension, **fields})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def desk_events(t: InProcess, user_id: str) -> list[dict[str, Any]]:
    return [e.data for e in t.node.bus.recent(user_id) if e.kind == "desk"]


# ------------------------------------------------------------------------------------------ desks (admin)
async def test_create_desk(t: InProcess) -> None:
    view = await desk(t, contact="sips:desk301@pbx.example;transport=tls")
    assert view == {"extension": "301", "name": "Room 3", "contact": "sips:desk301@pbx.example;transport=tls",
                    "occupant": None}
    # the directory knows it at once: a call to a free desk is refused as such
    assert t.domain.policy.lookup("301", "pbx") == Local("", 480, "desk-free")


async def test_list_get_update_delete_desks(t: InProcess) -> None:
    await desk(t, "301")
    await desk(t, "302", name="")
    r = await t.call("GET", "/v1/desks")
    assert r.status_code == 200 and [d["extension"] for d in r.json()["desks"]] == ["301", "302"]
    r = await t.call("GET", "/v1/desks/302")
    assert r.status_code == 200 and r.json()["name"] == "" and r.json()["occupant"] is None
    r = await t.call("PATCH", "/v1/desks/302", json={"name": "Lobby", "contact": "sip:lobby@127.0.0.5"})
    assert r.status_code == 200 and r.json() == {"extension": "302", "name": "Lobby",
                                                 "contact": "sip:lobby@127.0.0.5", "occupant": None}
    r = await t.call("PATCH", "/v1/desks/302", json={"name": "Hall"})  # a partial update keeps the rest
    assert r.json()["contact"] == "sip:lobby@127.0.0.5" and r.json()["name"] == "Hall"
    assert t.domain.desks.get("302").name == "Hall"
    r = await t.call("DELETE", "/v1/desks/302")
    assert r.status_code == 204 and r.content == b""
    assert [d.extension for d in t.domain.desks.list()] == ["301"]
    assert t.domain.policy.lookup("302", "pbx") == Local("", 404, "unknown-extension")


async def test_unknown_desk_is_404(t: InProcess) -> None:
    assert_problem(await t.call("GET", "/v1/desks/399"), 404, "no-desk")
    assert_problem(await t.call("PATCH", "/v1/desks/399", json={"name": "x"}), 404, "no-desk")
    assert_problem(await t.call("DELETE", "/v1/desks/399"), 404, "no-desk")


async def test_desk_administration_is_for_the_admin_only(t: InProcess) -> None:
    await desk(t, "301")
    _, token = await user(t)
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/desks", {**DESK, "extension": "302"}),
        ("GET", "/v1/desks", None),
        ("GET", "/v1/desks/301", None),
        ("PATCH", "/v1/desks/301", {"name": "Mine now"}),
        ("DELETE", "/v1/desks/301", None),
    ]
    for method, path, body in routes:
        case = (method, path)
        assert_problem(await t.call(method, path, token=token, json=body), 403, "forbidden", case)
        assert_problem(await t.call(method, path, token="wrong", json=body), 403, "forbidden", case)
        assert_unauthenticated(await t.call(method, path, token=None, json=body))
    assert [(d.extension, d.name) for d in t.domain.desks.list()] == [("301", "Room 3")]


async def test_create_desk_refusals(t: InProcess) -> None:
    await desk(t, "301")
    await user(t, "201")
    cases: list[tuple[dict[str, Any], int, str]] = [
        (DESK, 409, "conflict"),  # exists
        ({**DESK, "extension": "201"}, 409, "conflict"),  # a user's extension
        ({**DESK, "extension": "12345678"}, 422, "invalid-extension"),
        ({**DESK, "extension": "110"}, 422, "invalid-extension"),  # an emergency number is no desk
        ({**DESK, "extension": "302", "contact": "http://desk"}, 422, "invalid-request"),
        ({**DESK, "extension": "302", "floor": 3}, 422, "invalid-request"),
        ({"extension": "302"}, 422, "invalid-request"),
    ]
    for body, status, rule in cases:
        assert_problem(await t.call("POST", "/v1/desks", json=body), status, rule, body)
    assert [d.extension for d in t.domain.desks.list()] == ["301"]


async def test_update_desk_refuses_invalid_bodies(t: InProcess) -> None:
    await desk(t, "301")
    for body in ({"contact": "desk301"}, {"name": "x" * 101}, {"occupant": "someone"}):
        assert_invalid(await t.call("PATCH", "/v1/desks/301", json=body), *body, case=body)
    assert t.domain.desks.get("301") == Desk("301", "Room 3", DESK["contact"])


async def test_deleting_an_occupied_desk_logs_its_user_out(t: InProcess) -> None:
    await desk(t, "301")
    uid, token = await user(t)
    assert (await t.call("PUT", "/v1/users/me/desk", token=token, json={"extension": "301"})).status_code == 200
    assert (await t.call("DELETE", "/v1/desks/301")).status_code == 204
    assert desk_events(t, uid)[-1] == {"desk": None, "restored": False, "logged_out": True}
    assert (await t.call("GET", "/v1/users/me", token=token)).json()["desk"] is None


# ------------------------------------------------------------------------------------------ login / logout
async def test_desk_login_and_logout(t: InProcess) -> None:
    await desk(t, "301")
    uid, token = await user(t)
    r = await t.call("PUT", "/v1/users/me/desk", token=token, json={"extension": "301"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == uid and r.json()["desk"] == "301" and r.json()["rings"] == "desk"
    assert (await t.call("GET", "/v1/desks/301")).json()["occupant"] == uid
    assert t.domain.policy.lookup("301", "pbx") == Local(uid)  # the desk rings its occupant now
    r = await t.call("DELETE", "/v1/users/me/desk", token=token)
    assert r.status_code == 200 and r.json()["desk"] is None and r.json()["rings"] == "voicemail"
    assert (await t.call("GET", "/v1/desks/301")).json()["occupant"] is None
    assert t.domain.policy.lookup("301", "pbx") == Local("", 480, "desk-free")
    assert desk_events(t, uid) == [{"desk": "301", "restored": False, "logged_out": False},
                                   {"desk": None, "restored": False, "logged_out": True}]


async def test_admin_logs_a_user_in_and_out(t: InProcess) -> None:
    await desk(t, "301")
    uid, _ = await user(t)
    r = await t.call("PUT", f"/v1/users/{uid}/desk", json={"extension": "301"})
    assert r.status_code == 200 and r.json()["desk"] == "301"
    r = await t.call("DELETE", f"/v1/users/{uid}/desk")
    assert r.status_code == 200 and r.json()["desk"] is None
    assert t.domain.desks.of(uid) is None


async def test_desk_login_refusals(t: InProcess) -> None:
    await desk(t, "301")
    await desk(t, "302")
    a, a_token = await user(t, "201")
    b, b_token = await user(t, "202")
    assert (await t.call("PUT", "/v1/users/me/desk", token=a_token, json={"extension": "301"})).status_code == 200
    assert_problem(await t.call("PUT", "/v1/users/me/desk", token=b_token, json={"extension": "301"}),
                   409, "desk-occupied")
    assert_problem(await t.call("PUT", "/v1/users/me/desk", token=b_token, json={"extension": "399"}),
                   404, "no-desk")
    assert_problem(await t.call("PUT", f"/v1/users/{a}/desk", token=b_token, json={"extension": "302"}),
                   403, "not-your-user")
    assert_problem(await t.call("PUT", "/v1/users/nobody/desk", json={"extension": "302"}), 404, "no-user")
    await set_mode(t, b, "on-demand")
    assert_problem(await t.call("PUT", "/v1/users/me/desk", token=b_token, json={"extension": "302"}),
                   409, "telecommuter-mode-on")
    assert t.domain.desks.of(a).extension == "301" and t.domain.desks.of(b) is None


async def test_desk_login_refuses_invalid_bodies(t: InProcess) -> None:
    await desk(t, "301")
    uid, token = await user(t)
    for body in ({}, {"extension": ""}, {"extension": "301", "force": True}):
        assert_invalid(await t.call("PUT", "/v1/users/me/desk", token=token, json=body), case=body)
    assert t.domain.desks.of(uid) is None


async def test_desk_login_and_logout_auth(t: InProcess) -> None:
    await desk(t, "301")
    a, a_token = await user(t, "201")
    b, b_token = await user(t, "202")
    assert (await t.call("PUT", "/v1/users/me/desk", token=a_token, json={"extension": "301"})).status_code == 200
    assert_unauthenticated(await t.call("PUT", f"/v1/users/{b}/desk", token=None, json={"extension": "301"}))
    assert_unauthenticated(await t.call("DELETE", f"/v1/users/{a}/desk", token=None))
    assert_problem(await t.call("DELETE", f"/v1/users/{a}/desk", token="wrong"), 403, "forbidden")
    assert_problem(await t.call("DELETE", f"/v1/users/{a}/desk", token=b_token), 403, "not-your-user")
    assert_problem(await t.call("DELETE", "/v1/users/me/desk"), 400, "me-needs-user-token")
    assert t.domain.desks.of(a).extension == "301"  # nobody logged them out
