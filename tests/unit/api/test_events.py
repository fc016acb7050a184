"""/v1/users/{id}/events: a user's live events as server-sent events. httpx's ASGI transport buffers a whole
response, so the stream is read by driving the real app's ASGI callable directly (``EventStream``); refusals are
plain responses and go through the ordinary client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from b2bua.api.application import create_app
from b2bua.api.context import ApiContext
from b2bua.api.models import Health
from b2bua.media.sounds import write_notes
from tests.support.inprocess import ADMIN, InProcess
from tests.unit.api.helpers import (
    TARGET,
    assert_invalid,
    assert_problem,
    assert_unauthenticated,
    call_with,
    set_mode,
    user,
)

Message = MutableMapping[str, Any]


def _no_health() -> Health:
    raise AssertionError("the event stream does not ask for health")


class EventStream:
    """One GET of the event stream against the app's ASGI callable: the response start, then event by event,
    until the test hangs up (``close``) or the server ends the stream."""

    def __init__(self, t: InProcess, path: str, token: str, query: str = "", headers: dict[str, str] | None = None,
                 app: Any = None) -> None:
        """``app``: one to share between streams (their limits are the app's); default: a fresh one."""
        app = app or create_app(ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, _no_health))
        raw = [(b"host", b"b2bua.test"), (b"authorization", f"Bearer {token}".encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": raw, "client": ("127.0.0.1", 40000), "server": ("b2bua.test", 80)}
        self._sent: asyncio.Queue[Message] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._buffer = ""
        self.ended = False
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> Message:
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        await self._sent.put(message)

    async def start(self) -> tuple[int, dict[str, str]]:
        m = await asyncio.wait_for(self._sent.get(), 2)
        assert m["type"] == "http.response.start", m
        return m["status"], {k.decode(): v.decode() for k, v in m["headers"]}

    async def next(self) -> dict[str, Any]:
        """The next event: its ``event`` name, ``id`` (if any) and decoded ``data``."""
        while "\r\n\r\n" not in self._buffer:
            m = await asyncio.wait_for(self._sent.get(), 2)
            assert m["type"] == "http.response.body", m
            self._buffer += m.get("body", b"").decode()
            if not m.get("more_body", False):
                self.ended = True
                if "\r\n\r\n" not in self._buffer:
                    raise EOFError("the stream ended")
        block, self._buffer = self._buffer.split("\r\n\r\n", 1)
        fields = dict(line.split(": ", 1) for line in block.split("\r\n") if not line.startswith(":"))
        return {"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])}

    async def close(self) -> None:
        self._gone.set()
        await asyncio.wait_for(self.task, 2)


async def test_hello_replay_then_live_events(t: InProcess) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, "on-demand")
    stream = EventStream(t, "/v1/users/me/events", token, "replay=true")
    try:
        status, headers = await stream.start()
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        hello = await stream.next()
        assert hello == {"event": "hello", "id": None, "data": {"user_id": uid, "mode": "on-demand"}}
        replayed = await stream.next()
        assert replayed["event"] == "mode" and replayed["data"]["mode"] == "on-demand"
        assert replayed["id"] == str(replayed["data"]["id"]) and replayed["data"]["kind"] == "mode"
        # live: a callback's state changes reach the stream
        r = await t.call("POST", "/v1/users/me/calls", token=token, json={"target": TARGET})
        assert r.status_code == 201
        live = await stream.next()
        assert live["event"] == "call"
        assert live["data"]["call_id"] == r.json()["id"] and live["data"]["state"] == "user-calling"
        assert int(live["id"]) > int(replayed["id"])
    finally:
        await stream.close()


async def test_every_kind_of_change_reaches_the_stream(t: InProcess) -> None:
    uid, token = await user(t)
    r = await t.call("POST", "/v1/desks", json={"extension": "301", "contact": "sip:d@127.0.0.5"})
    assert r.status_code == 201
    stream = EventStream(t, f"/v1/users/{uid}/events", ADMIN)  # the admin may watch any user
    try:
        assert (await stream.start())[0] == 200
        assert (await stream.next())["event"] == "hello"
        assert (await t.call("PUT", "/v1/users/me/desk", token=token, json={"extension": "301"})).status_code == 200
        desk = await stream.next()
        assert (desk["event"], desk["data"]["desk"]) == ("desk", "301")
        await t.call("DELETE", "/v1/users/me/desk", token=token)
        assert (await stream.next())["data"]["logged_out"] is True
        await set_mode(t, uid, "keep-connected")
        seen = [await stream.next() for _ in range(2)]
        assert {(e["event"], e["data"].get("state") or e["data"].get("mode")) for e in seen} == {
            ("session", "line-calling"), ("mode", "keep-connected")}
        path = t.domain.mailbox.boxes.dir / uid / "m1.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_notes(path, ((440, 1.0),))  # what the engine's recorder wrote
        t.domain.mailbox.recorded(uid, {"message_id": "m1", "path": str(path), "duration_s": 3.0})
        vm = await stream.next()
        assert vm["event"] == "voicemail" and vm["data"]["change"] == "new" and vm["data"]["waiting"] is True
        assert vm["data"]["message"]["id"] == "m1" and "path" not in vm["data"]["message"]
    finally:
        await stream.close()
    # the stream carried exactly what the bus holds for replay
    assert [e.kind for e in t.node.bus.recent(uid)] == ["desk", "desk", "session", "mode", "voicemail"]


async def test_last_event_id_resumes_after_it(t: InProcess) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, "on-demand")
    await set_mode(t, uid, "off", number=None)
    first, second = t.node.bus.recent(uid)
    stream = EventStream(t, "/v1/users/me/events", token, headers={"Last-Event-ID": str(first.id)})
    try:
        await stream.start()
        assert (await stream.next())["event"] == "hello"
        resumed = await stream.next()
        assert resumed["id"] == str(second.id) and resumed["data"]["mode"] == "off"
    finally:
        await stream.close()


async def test_without_replay_only_later_events_come(t: InProcess) -> None:
    uid, token = await user(t)
    await set_mode(t, uid, "on-demand")  # before the stream: not sent
    stream = EventStream(t, "/v1/users/me/events", token)
    try:
        await stream.start()
        assert (await stream.next())["data"]["mode"] == "on-demand"  # hello
        await set_mode(t, uid, "off", number=None)
        ev = await stream.next()
        assert ev["event"] == "mode" and ev["data"]["mode"] == "off"
    finally:
        await stream.close()


async def test_shutdown_ends_the_stream(t: InProcess) -> None:
    _, token = await user(t)
    stream = EventStream(t, "/v1/users/me/events", token)
    await stream.start()
    assert (await stream.next())["event"] == "hello"
    t.node.bus.close()
    with pytest.raises(EOFError):
        await stream.next()
    await asyncio.wait_for(stream.task, 2)  # the response finished without the client hanging up
    assert stream.ended


async def test_event_stream_refusals(t: InProcess) -> None:
    a, _ = await user(t, "201")
    _, b_token = await user(t, "202")
    path = f"/v1/users/{a}/events"
    assert_unauthenticated(await t.call("GET", path, token=None))
    assert_problem(await t.call("GET", path, token="wrong"), 403, "forbidden")
    assert_problem(await t.call("GET", path, token=b_token), 403, "not-your-user")
    assert_problem(await t.call("GET", "/v1/users/me/events"), 400, "me-needs-user-token")
    assert_problem(await t.call("GET", "/v1/users/nobody/events"), 404, "no-user")
    assert_invalid(await call_with(t, "GET", path, {"Last-Event-ID": "x"}), "Last-Event-ID")
    assert_invalid(await t.call("GET", f"{path}?replay=maybe"), "replay")
