"""The event bus: a subscriber is registered before it is told so, and sees every later event."""

from __future__ import annotations

import asyncio

from b2bua.eventbus import EventBus


def test_subscription_signals_registration_then_delivers_every_later_event() -> None:
    async def run() -> list[tuple[str, int]]:
        bus = EventBus()
        bus.publish("u1", "call", {"n": 0})  # before subscribing: not replayed without after_id
        sub = bus.subscribe("u1")
        first = await anext(sub)
        assert first is None  # registered now
        bus.publish("u1", "call", {"n": 1})
        bus.publish("u2", "call", {"n": 99})  # someone else's
        bus.publish("u1", "session", {"n": 2})
        got = [await anext(sub), await anext(sub)]
        bus.close()
        rest = [(ev.kind, ev.data["n"]) async for ev in sub if ev is not None]  # none: the bus closed
        return [(e.kind, e.data["n"]) for e in got if e is not None] + rest

    assert asyncio.run(run()) == [("call", 1), ("session", 2)]


def test_replay_after_an_id_resends_what_was_missed() -> None:
    async def run() -> list[int]:
        bus = EventBus()
        a = bus.publish("u1", "call", {"n": 1})
        bus.publish("u1", "call", {"n": 2})
        sub = bus.subscribe("u1", after_id=a.id)
        assert await anext(sub) is None
        ev = await anext(sub)
        bus.close()
        return [ev.data["n"]] if ev is not None else []

    assert asyncio.run(run()) == [2]
