"""Caps on live event streams: per user and in all, 429 ``too-many-streams`` beyond them, a slot freed when its
stream ends. Streams are driven through the app's ASGI callable (``EventStream``), many at once, on one app so
that they share its limits."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

from fastapi import FastAPI

from b2bua.api.application import create_app
from b2bua.api.authguard import AuthGuard
from b2bua.api.context import ApiContext
from b2bua.api.limits import ApiLimits
from b2bua.api.models import Health
from b2bua.api.streamslots import RETRY_AFTER_S, StreamSlots
from tests.support.inprocess import ADMIN, InProcess
from tests.unit.api.helpers import user
from tests.unit.api.test_events import EventStream


def _no_health() -> Health:
    raise AssertionError("not asked")


def limited_app(t: InProcess, per_user: int, total: int) -> tuple[FastAPI, StreamSlots]:
    slots = StreamSlots(per_user, total)
    limits = ApiLimits(AuthGuard(20, 300), slots)
    return create_app(ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, _no_health, limits=limits)), slots


class Attempt(EventStream):
    async def problem(self) -> dict[str, Any]:
        """The body of a refusal (a plain response: one body message)."""
        m = await asyncio.wait_for(self._sent.get(), 2)
        assert m["type"] == "http.response.body" and not m.get("more_body"), m
        body: dict[str, Any] = json.loads(m["body"])
        return body


def metric(t: InProcess, name: str, **labels: str) -> float:
    return t.node.metrics.registry.get_sample_value(name, labels) or 0.0


async def open_many(t: InProcess, app: FastAPI, token: str, n: int,
                    path: str = "/v1/users/me/events") -> tuple[list[Attempt], list[Attempt], list[dict[str, str]]]:
    """``n`` simultaneous attempts: (accepted, refused, the refusals' headers)."""
    attempts = [Attempt(t, path, token, app=app) for _ in range(n)]
    starts = await asyncio.gather(*(a.start() for a in attempts))
    accepted = [a for a, (status, _) in zip(attempts, starts, strict=True) if status == 200]
    refused = [a for a, (status, _) in zip(attempts, starts, strict=True) if status == 429]
    assert len(accepted) + len(refused) == n, sorted({s for s, _ in starts})
    return accepted, refused, [h for s, h in starts if s == 429]


async def test_a_thousand_simultaneous_streams_for_one_user_get_the_cap_and_429s(t: InProcess) -> None:
    uid, token = await user(t)
    app, slots = limited_app(t, per_user=8, total=500)
    accepted, refused, headers = await open_many(t, app, token, 1000)
    assert (len(accepted), len(refused)) == (8, 992)
    assert all(h["content-type"].startswith("application/problem+json") for h in headers)
    assert {h["retry-after"] for h in headers} == {str(RETRY_AFTER_S)}
    body = await refused[0].problem()
    assert (body["status"], body["rule"], body["title"]) == (429, "too-many-streams", "Too Many Requests")
    assert "8 event streams" in body["detail"]
    await asyncio.gather(*(a.close() for a in refused))  # refusals hold nothing
    assert (slots.of(uid), slots.open) == (8, 8)
    assert metric(t, "b2bua_event_streams_refused_total", limit="user") == 992
    assert metric(t, "b2bua_event_streams") == 8
    # the accepted ones are real streams: subscribed, and they carry events
    assert [(await a.next())["event"] for a in accepted] == ["hello"] * 8
    assert len(t.node.bus._subs[uid]) == 8

    # a client that goes frees its slot, and only that one
    await accepted.pop().close()
    assert slots.of(uid) == 7 and metric(t, "b2bua_event_streams") == 7
    again, more_refused, _ = await open_many(t, app, token, 5)
    assert (len(again), len(more_refused)) == (1, 4)
    # shutdown ends every stream: all slots back
    t.node.bus.close()
    await asyncio.gather(*(asyncio.wait_for(a.task, 2) for a in [*accepted, *again]))
    assert (slots.of(uid), slots.open) == (0, 0) and metric(t, "b2bua_event_streams") == 0


async def test_the_total_cap_counts_every_user_and_the_admin_watching_counts_for_the_user(t: InProcess) -> None:
    a, a_token = await user(t, "201")
    b, b_token = await user(t, "202")
    _, c_token = await user(t, "203")
    app, slots = limited_app(t, per_user=2, total=3)
    a_streams, _, _ = await open_many(t, app, a_token, 1)
    watched, _, _ = await open_many(t, app, ADMIN, 2, path=f"/v1/users/{a}/events")  # a's second, then refused
    assert len(watched) == 1 and slots.of(a) == 2
    b_streams, b_refused, _ = await open_many(t, app, b_token, 2)
    assert (len(b_streams), len(b_refused)) == (1, 1), "b has room of its own, the service has not"
    assert "the service has 3 event streams open" in (await b_refused[0].problem())["detail"]
    _, c_refused, _ = await open_many(t, app, c_token, 1)
    assert len(c_refused) == 1
    assert metric(t, "b2bua_event_streams_refused_total", limit="total") == 2
    assert metric(t, "b2bua_event_streams_refused_total", limit="user") == 1
    await watched[0].close()
    c_streams, _, _ = await open_many(t, app, c_token, 1)
    assert len(c_streams) == 1 and slots.open == 3 and slots.of(b) == 1
    for s in [*a_streams, *b_streams, *c_streams]:
        await s.close()
    assert slots.open == 0


async def test_a_refused_token_takes_no_slot(t: InProcess) -> None:
    _, token = await user(t)
    app, slots = limited_app(t, per_user=1, total=1)
    bad = EventStream(t, "/v1/users/me/events", "wrong", app=app)
    assert (await bad.start())[0] == 403 and slots.open == 0
    held, _, _ = await open_many(t, app, token, 1)
    assert len(held) == 1 and slots.open == 1
    await held[0].close()
    assert slots.open == 0


async def test_a_refused_attempt_costs_no_lasting_memory(t: InProcess) -> None:
    _, token = await user(t)
    app, _ = limited_app(t, per_user=1, total=1)
    held, _, _ = await open_many(t, app, token, 1)

    async def refuse(n: int) -> None:
        for _ in range(n // 100):
            _, refused, _ = await open_many(t, app, token, 100)
            await asyncio.gather(*(a.close() for a in refused))

    await refuse(200)  # warm-up: FastAPI's and the metrics' first-use allocations
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await refuse(500)
        await asyncio.sleep(0.01)  # the last batch's finished tasks and callbacks go
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"memory kept after 500 refused stream attempts: {kept} bytes ({kept / 500:.1f} per attempt)")
    assert kept < 100_000, f"{kept} bytes kept after 500 refusals"  # measured: ~40 kB, mostly the thread pool
    await held[0].close()
