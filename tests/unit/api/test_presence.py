"""/v1/users/{id}/presence, /v1/presence and the colleagues' presence stream /v1/presence/events: a status set
by one client is on every stream of the user and on the colleagues' stream at once, and kept in the store."""

from __future__ import annotations

import asyncio
import time

from b2bua.api.application import create_app
from b2bua.api.context import ApiContext
from tests.support.inprocess import ADMIN, InProcess
from tests.unit.api.helpers import assert_invalid, assert_problem, user
from tests.unit.api.test_events import EventStream, _no_health


async def test_set_and_get_presence(t: InProcess) -> None:
    uid, token = await user(t)
    r = await t.call("PUT", "/v1/users/me/presence", token=token, json={"status": "away", "message": "lunch"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert (view["user_id"], view["status"], view["set_status"], view["message"], view["on_call"]) == (
        uid, "away", "away", "lunch", False)
    assert view["extension"] == "201" and view["updated_at"] > 0
    assert (await t.call("GET", f"/v1/users/{uid}/presence")).json() == view
    assert t.store.presence(uid) is not None, "stored: a restart keeps it"


async def test_every_user_sees_every_colleagues_presence(t: InProcess) -> None:
    a, a_token = await user(t)
    b, b_token = await user(t, "202")
    await t.call("PUT", "/v1/users/me/presence", token=b_token, json={"status": "do-not-disturb"})
    for token in (a_token, ADMIN):
        r = await t.call("GET", "/v1/presence", token=token)
        assert r.status_code == 200
        assert [(p["user_id"], p["status"]) for p in r.json()["presence"]] == [(a, "available"),
                                                                              (b, "do-not-disturb")]
    settings = (await t.call("GET", "/v1/users/me/settings", token=b_token)).json()
    assert settings["dnd"] is True, "routing's view says do-not-disturb"


async def test_refusals(t: InProcess) -> None:
    uid, _ = await user(t)
    _, other = await user(t, "202")
    assert_invalid(await t.call("PUT", f"/v1/users/{uid}/presence", json={"status": "gone"}), "status")
    assert_invalid(await t.call("PUT", f"/v1/users/{uid}/presence", json={"status": "away", "message": "x" * 201}),
                   "message")
    assert_problem(await t.call("PUT", f"/v1/users/{uid}/presence", token=other, json={"status": "away"}),
                   403, "not-your-user")
    assert_problem(await t.call("GET", "/v1/presence", token=None), 401, "unauthenticated")
    assert_problem(await t.call("GET", "/v1/presence/events", token="wrong"), 403, "forbidden")


async def test_a_status_set_reaches_the_users_other_client_and_the_colleagues_at_once(t: InProcess) -> None:
    uid, token = await user(t)
    _, colleague = await user(t, "202")
    app = create_app(ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, _no_health))
    own = EventStream(t, "/v1/users/me/events", token, app=app)
    others = EventStream(t, "/v1/presence/events", colleague, app=app)
    try:
        for stream in (own, others):
            assert (await stream.start())[0] == 200
            assert (await stream.next())["event"] == "hello"
        started = time.monotonic()
        r = await t.call("PUT", "/v1/users/me/presence", token=token, json={"status": "busy", "message": "call"})
        assert r.status_code == 200
        got = await asyncio.gather(own.next(), others.next())
        elapsed = time.monotonic() - started
        for ev in got:
            assert ev["event"] == "presence" and ev["data"]["user_id"] == uid and ev["data"]["status"] == "busy"
            assert ev["data"]["message"] == "call"
        assert elapsed < 1.0, elapsed
    finally:
        await own.close()
        await others.close()


async def test_the_presence_stream_resumes_after_the_last_event_id(t: InProcess) -> None:
    _, token = await user(t)
    for status in ("away", "available"):
        await t.call("PUT", "/v1/users/me/presence", token=token, json={"status": status})
    first, second = t.node.bus.recent("*presence")
    stream = EventStream(t, "/v1/presence/events", ADMIN, headers={"Last-Event-ID": str(first.id)})
    try:
        await stream.start()
        assert (await stream.next())["data"] == {"channel": "presence"}
        resumed = await stream.next()
        assert resumed["id"] == str(second.id) and resumed["data"]["status"] == "available"
    finally:
        await stream.close()
