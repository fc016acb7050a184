"""/v1/users/{id}/calls (callbacks), /v1/calls (live calls, ended ones from their records) and /v1/cdrs: the
API's side of a callback, with the fake engine showing what call control dialled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from b2bua.calls.machine import CallKind
from tests.support.inprocess import InProcess, in_process
from tests.unit.api.helpers import (
    INTERNATIONAL,
    NOT_A_NUMBER,
    OTHER_TARGET,
    PREMIUM,
    TARGET,
    TELECOMMUTER,
    assert_invalid,
    assert_problem,
    assert_unauthenticated,
    business,
    hung_up,
    placed,
    set_mode,
    user,
)


async def on_demand_user(t: InProcess, extension: str = "201",
                         number: str = TELECOMMUTER) -> tuple[str, str]:
    uid, token = await user(t, extension)
    await set_mode(t, uid, "on-demand", number)
    return uid, token


async def callback(t: InProcess, token: str, target: str = TARGET) -> dict[str, Any]:
    r = await t.call("POST", "/v1/users/me/calls", token=token, json={"target": target})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


# ------------------------------------------------------------------------------------------ POST .../calls
async def test_callback_rings_the_telecommuter_first_then_the_target(t: InProcess) -> None:
    uid, token = await on_demand_user(t)
    r = await t.call("POST", "/v1/users/me/calls", token=token, json={"target": "040 12345678"})
    assert r.status_code == 201, r.text
    call = r.json()
    assert call["kind"] == "callback" and call["user_id"] == uid
    assert call["state"] == "user-calling" and call["answered"] is False
    assert call["target"] == TARGET and call["user_number"] == TELECOMMUTER  # normalised
    # only the user's phone rings, presenting the target; the target is not dialled yet
    [first] = t.engine.calls_placed()
    assert first.args[0].startswith(f"sip:{TELECOMMUTER}@127.0.0.3") and TARGET in first.args[1]
    assert call["legs"] == {"user": first.leg}
    assert t.node.gate.admitted == 1 and t.runner.get(call["id"]).kind is CallKind.CALLBACK
    t.far.answered(first.leg)
    [target] = placed(t, TARGET)
    assert business("201") in target.args[1]  # the target sees the business number
    r = await t.call("GET", f"/v1/calls/{call['id']}", token=token)
    assert r.json()["state"] == "target-calling" and set(r.json()["legs"]) == {"user", "target"}


async def test_admin_starts_a_callback_for_a_user(t: InProcess) -> None:
    uid, _ = await on_demand_user(t)
    r = await t.call("POST", f"/v1/users/{uid}/calls", json={"target": TARGET})
    assert r.status_code == 201 and r.json()["user_id"] == uid
    assert len(placed(t, TELECOMMUTER)) == 1


async def test_dialling_rules_refuse_targets(t: InProcess) -> None:
    _, token = await on_demand_user(t)
    cases = [
        (PREMIUM, 403, "class-of-service:standard:premium"),
        (INTERNATIONAL, 403, "class-of-service:standard:international"),
        ("110", 403, "class-of-service:standard:emergency"),
        (NOT_A_NUMBER, 422, "invalid-number"),
        ("call mum", 422, "invalid-number"),
    ]
    for target, status, rule in cases:
        r = await t.call("POST", "/v1/users/me/calls", token=token, json={"target": target})
        assert_problem(r, status, rule, target)
    assert t.engine.commands == [] and t.node.gate.admitted == 0 and not t.runner.calls


async def test_blocked_prefix_is_refused_by_its_rule(tmp_path: Path, sounds: str) -> None:
    extra = sounds + '\n[classes_of_service.standard]\nblocked_prefixes = ["+4940"]\n'
    async with in_process(tmp_path, extra) as t:
        _, token = await on_demand_user(t)
        assert_problem(await t.call("POST", "/v1/users/me/calls", token=token, json={"target": TARGET}),
                       403, "blocked-prefix:+4940")
        r = await t.call("POST", "/v1/users/me/calls", token=token, json={"target": OTHER_TARGET})
        assert r.status_code == 201


@pytest.mark.parametrize("mode", ["off", "keep-connected"])
async def test_callback_needs_on_demand_mode(t: InProcess, mode: str) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, mode)
    t.engine.clear()
    assert_problem(await t.call("POST", "/v1/users/me/calls", token=token, json={"target": TARGET}),
                   409, "telecommuter-mode-off")
    assert t.engine.calls_placed() == [] and not t.runner.calls_of(uid, CallKind.CALLBACK)


async def test_callback_concurrency_limit(t: InProcess) -> None:
    uid, token = await on_demand_user(t)
    await callback(t, token)
    await callback(t, token, OTHER_TARGET)
    assert_problem(await t.call("POST", "/v1/users/me/calls", token=token, json={"target": TARGET}),
                   429, "concurrent-limit")
    assert len(t.runner.calls_of(uid)) == 2 and t.node.gate.admitted == 2


async def test_callback_when_admission_is_full_is_503_with_retry_after(t: InProcess) -> None:
    _, token = await on_demand_user(t)
    while t.node.gate.admit() is None:
        pass
    assert t.node.gate.admitted == 50  # max_bridged_calls
    r = await t.call("POST", "/v1/users/me/calls", token=token, json={"target": TARGET})
    assert_problem(r, 503, "over-capacity")
    assert r.headers["retry-after"] == "5"
    assert t.engine.commands == [] and not t.runner.calls


async def test_callback_refuses_invalid_bodies(t: InProcess) -> None:
    _, token = await on_demand_user(t)
    bodies: list[dict[str, Any]] = [{}, {"target": ""}, {"target": "1" * 41}, {"target": TARGET, "from": "x"},
                                    {"number": TARGET}, {"target": 4940123456}]
    for body in bodies:
        assert_invalid(await t.call("POST", "/v1/users/me/calls", token=token, json=body), case=body)
    assert t.engine.commands == []


async def test_callback_auth(t: InProcess) -> None:
    a, _ = await on_demand_user(t, "201")
    _, b_token = await on_demand_user(t, "202")
    body = {"target": TARGET}
    assert_unauthenticated(await t.call("POST", f"/v1/users/{a}/calls", token=None, json=body))
    assert_problem(await t.call("POST", f"/v1/users/{a}/calls", token="wrong", json=body), 403, "forbidden")
    assert_problem(await t.call("POST", f"/v1/users/{a}/calls", token=b_token, json=body), 403, "not-your-user")
    assert_problem(await t.call("POST", "/v1/users/me/calls", json=body), 400, "me-needs-user-token")
    assert_problem(await t.call("POST", "/v1/users/nobody/calls", json=body), 404, "no-user")
    assert t.engine.commands == []


# ------------------------------------------------------------------------------------------ GET /v1/calls
async def test_list_calls_shows_each_caller_their_own(t: InProcess) -> None:
    a, a_token = await on_demand_user(t, "201")
    b, b_token = await on_demand_user(t, "202")
    _, c_token = await user(t, "203")
    call_a = await callback(t, a_token)
    call_b = await callback(t, b_token)
    r = await t.call("GET", "/v1/calls")
    assert r.status_code == 200 and isinstance(r.json()["at"], float)
    assert {c["id"]: c["user_id"] for c in r.json()["calls"]} == {call_a["id"]: a, call_b["id"]: b}
    mine = (await t.call("GET", "/v1/calls", token=a_token)).json()["calls"]
    assert [c["id"] for c in mine] == [call_a["id"]] and mine[0]["state"] == "user-calling"
    assert (await t.call("GET", "/v1/calls", token=c_token)).json()["calls"] == []
    assert_unauthenticated(await t.call("GET", "/v1/calls", token=None))
    assert_problem(await t.call("GET", "/v1/calls", token="wrong"), 403, "forbidden")


# ------------------------------------------------------------------------------------------ GET /v1/calls/{id}
async def test_get_live_call(t: InProcess) -> None:
    _, token = await on_demand_user(t, "201")
    _, other = await on_demand_user(t, "202")
    call = await callback(t, token)
    for who in (token, None):
        r = await (t.call("GET", f"/v1/calls/{call['id']}", token=who) if who else
                   t.call("GET", f"/v1/calls/{call['id']}"))
        assert r.status_code == 200 and r.json()["id"] == call["id"] and r.json()["state"] == "user-calling"
    assert_problem(await t.call("GET", f"/v1/calls/{call['id']}", token=other), 404, "no-call")
    assert_problem(await t.call("GET", "/v1/calls/nothing"), 404, "no-call")
    assert_unauthenticated(await t.call("GET", f"/v1/calls/{call['id']}", token=None))


async def test_an_ended_call_is_shown_from_its_record(t: InProcess) -> None:
    uid, token = await on_demand_user(t, "201")
    _, other = await on_demand_user(t, "202")
    call = await callback(t, token)
    user_leg = call["legs"]["user"]
    t.far.answered(user_leg)
    target_leg = placed(t, TARGET)[0].leg
    t.far.answered(target_leg)
    assert (await t.call("GET", f"/v1/calls/{call['id']}", token=token)).json()["state"] == "connected"
    t.far.ended(user_leg)
    assert target_leg in hung_up(t)
    t.far.ended(target_leg)
    assert t.runner.get(call["id"]) is None and t.node.gate.admitted == 0
    r = await t.call("GET", f"/v1/calls/{call['id']}", token=token)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["state"] == "ended" and ended["outcome"] == "completed-user-hangup" and ended["final_code"] == 200
    assert ended["user_id"] == uid and ended["called"] == TARGET and ended["caller"] == business("201")
    assert ended["kind"] == "callback" and ended["started"] == call["started"]
    assert (await t.call("GET", "/v1/calls", token=token)).json()["calls"] == []
    assert_problem(await t.call("GET", f"/v1/calls/{call['id']}", token=other), 404, "no-call")


# ------------------------------------------------------------------------------------------ DELETE /v1/calls/{id}
async def test_end_call(t: InProcess) -> None:
    _, token = await on_demand_user(t, "201")
    _, other = await on_demand_user(t, "202")
    call = await callback(t, token)
    leg = call["legs"]["user"]
    assert_problem(await t.call("DELETE", f"/v1/calls/{call['id']}", token=other), 404, "no-call")
    assert_unauthenticated(await t.call("DELETE", f"/v1/calls/{call['id']}", token=None))
    assert hung_up(t) == []
    r = await t.call("DELETE", f"/v1/calls/{call['id']}", token=token)
    assert r.status_code == 202 and r.json() == {"id": call["id"], "status": "ending"}
    assert hung_up(t) == [leg]
    t.far.ended(leg)
    ended = (await t.call("GET", f"/v1/calls/{call['id']}", token=token)).json()
    assert ended["state"] == "ended" and ended["outcome"] == "terminated"
    assert_problem(await t.call("DELETE", f"/v1/calls/{call['id']}", token=token), 404, "no-call")


async def test_admin_ends_any_call(t: InProcess) -> None:
    _, token = await on_demand_user(t)
    call = await callback(t, token)
    r = await t.call("DELETE", f"/v1/calls/{call['id']}")
    assert r.status_code == 202 and hung_up(t) == [call["legs"]["user"]]
    assert_problem(await t.call("DELETE", "/v1/calls/nothing"), 404, "no-call")


# ------------------------------------------------------------------------------------------ GET /v1/cdrs
async def test_call_records_for_the_admin(t: InProcess) -> None:
    uid, token = await on_demand_user(t)
    first = await callback(t, token)
    t.far.ended(first["legs"]["user"], 486)  # busy
    second = await callback(t, token, OTHER_TARGET)
    await t.call("DELETE", f"/v1/calls/{second['id']}")
    t.far.ended(second["legs"]["user"])
    r = await t.call("GET", "/v1/cdrs")
    assert r.status_code == 200
    cdrs = {c["id"]: c for c in r.json()["cdrs"]}
    assert set(cdrs) == {first["id"], second["id"]}
    assert (cdrs[first["id"]]["outcome"], cdrs[first["id"]]["final_code"]) == ("user-busy", 486)
    assert cdrs[second["id"]]["outcome"] == "terminated" and cdrs[second["id"]]["called"] == OTHER_TARGET
    assert all(c["user_id"] == uid and c["kind"] == "callback" for c in cdrs.values())
    assert len((await t.call("GET", "/v1/cdrs?limit=1")).json()["cdrs"]) == 1
    assert_problem(await t.call("GET", "/v1/cdrs", token=token), 403, "forbidden")
    assert_unauthenticated(await t.call("GET", "/v1/cdrs", token=None))


async def test_call_records_limit_is_checked(t: InProcess) -> None:
    for query in ("limit=0", "limit=1001", "limit=many"):
        assert_invalid(await t.call("GET", f"/v1/cdrs?{query}"), "limit", case=query)
