"""A user's live events (server-sent events): call states, mode, desk and voicemail changes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from b2bua.api.context import PROBLEMS, Auth, Context, user_of
from b2bua.api.streamslots import StreamSlot

router = APIRouter(tags=["events"], responses=PROBLEMS)


@router.get("/v1/users/{user_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`hello` once subscribed, then one event per change"}})
async def events(user_id: str, p: Auth, ctx: Context,
                 last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
                 replay: Annotated[bool, Query(description="send recent events first")] = False,
                 ) -> EventSourceResponse:
    user = user_of(ctx, p, user_id)
    after = last_event_id if last_event_id is not None else (0 if replay else None)
    bus = ctx.domain.bus
    slot = ctx.limits.streams.take(user.id, ctx.metrics)  # 429 beyond the limits

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for ev in bus.subscribe(user.id, after):
            if ev is None:  # registered: only now may the client rely on seeing every later event
                yield {"event": "hello", "data": json.dumps({"user_id": user.id, "mode": user.mode.value})}
            else:
                yield {"id": str(ev.id), "event": ev.kind, "data": json.dumps(ev.as_dict())}

    return HoldingSlot(stream(), slot, ping=15)


class HoldingSlot(EventSourceResponse):
    """The stream's response gives its slot back when it ends, however it ends (even before it started)."""

    def __init__(self, content: AsyncIterator[dict[str, str]], slot: StreamSlot, ping: int) -> None:
        super().__init__(content, ping=ping)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()
