"""Presence: a user sets their status and message; every client of theirs and every colleague sees it at once.
Colleagues: every user of this node (one company). ``/v1/presence`` lists them all, ``/v1/presence/events``
streams every change (server-sent events); a user's own stream carries their own changes too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from sse_starlette.sse import EventSourceResponse

from b2bua.api.context import PROBLEMS, Auth, Context, user_of
from b2bua.api.events import HoldingSlot
from b2bua.api.profile_models import PresenceList, PresenceUpdate, PresenceView
from b2bua.telecommuter.presence import CHANNEL

router = APIRouter(tags=["presence"], responses=PROBLEMS)


@router.get("/v1/users/{user_id}/presence")
async def get_presence(user_id: str, p: Auth, ctx: Context) -> PresenceView:
    """The user's presence: what others see (busy on a call) and what the user set."""
    return PresenceView.model_validate(ctx.domain.presence.of(user_of(ctx, p, user_id)))


@router.put("/v1/users/{user_id}/presence")
async def set_presence(user_id: str, body: PresenceUpdate, p: Auth, ctx: Context) -> PresenceView:
    """Stored (a restart keeps it) and sent at once as a ``presence`` event on the user's and the colleagues'
    streams. While the user is on a call, others see busy; this status comes back after."""
    user = user_of(ctx, p, user_id)
    return PresenceView.model_validate(ctx.domain.presence.update(user, body.status, body.message))


@router.get("/v1/presence")
async def list_presence(p: Auth, ctx: Context) -> PresenceList:
    """Every user's presence (any user's token or the admin's), by extension."""
    return PresenceList(presence=[PresenceView.model_validate(v) for v in ctx.domain.presence.everyone()])


@router.get("/v1/presence/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`hello` once subscribed, then one `presence` event per change of "
                                            "any user's presence (the same body as GET /v1/users/{id}/presence)"}})
async def presence_events(p: Auth, ctx: Context,
                          last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
                          ) -> EventSourceResponse:
    """Every user's presence changes, for colleagues' views (any user's token); ``Last-Event-ID`` resumes."""
    watcher = p.user.id if p.user is not None else "admin"
    slot = ctx.limits.streams.take(f"presence:{watcher}", ctx.metrics)  # 429 beyond the limits
    bus = ctx.domain.bus

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for ev in bus.subscribe(CHANNEL, last_event_id):
            if ev is None:
                yield {"event": "hello", "data": json.dumps({"channel": "presence"})}
            else:
                yield {"id": str(ev.id), "event": ev.kind, "data": json.dumps(ev.as_dict())}

    return HoldingSlot(stream(), slot, ping=15)
