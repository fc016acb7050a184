"""Calls: start a callback, list and inspect live calls (ended ones from their records), end a call, and the
call detail records (admin)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from b2bua.api.context import PROBLEMS, Auth, Context, admin_only, may_see, user_of
from b2bua.api.models import CallEnding, CallList, CallRecord, CallRecordList, CallRequest, CallView
from b2bua.telecommuter.errors import Refused

router = APIRouter(tags=["calls"], responses=PROBLEMS)


@router.post("/v1/users/{user_id}/calls", status_code=201)
async def start_call(user_id: str, body: CallRequest, p: Auth, ctx: Context) -> CallView:
    """A callback: the user's telecommuter phone rings first; when answered, the target is dialled."""
    call = ctx.domain.outgoing.start_callback(user_of(ctx, p, user_id), body.target)
    return CallView.model_validate(call.summary())


@router.get("/v1/calls")
async def list_calls(p: Auth, ctx: Context) -> CallList:
    mine = [c for c in ctx.runner.calls.values() if may_see(p, c.user_id)]
    return CallList(calls=[CallView.model_validate(c.summary()) for c in mine], at=time.time())


@router.get("/v1/calls/{call_id}")
async def get_call(call_id: str, p: Auth, ctx: Context) -> CallView:
    """A live call's state; once it has ended, its outcome from the call record (a client that polls must not
    see the call vanish)."""
    call = ctx.runner.get(call_id)
    if call is not None and may_see(p, call.user_id):
        return CallView.model_validate(call.summary())
    ended = ctx.domain.records.ended(call_id)
    if ended is None or not may_see(p, ended["user_id"]):
        raise Refused(404, "no-call", f"no call {call_id!r}")
    return CallView.model_validate(ended)


@router.delete("/v1/calls/{call_id}", status_code=202)
async def end_call(call_id: str, p: Auth, ctx: Context) -> CallEnding:
    call = ctx.runner.get(call_id)
    if call is None or not may_see(p, call.user_id):
        raise Refused(404, "no-call", f"no active call {call_id!r}")
    ctx.runner.terminate(call.id, "ended via API")
    return CallEnding(id=call.id, status="ending")


@router.get("/v1/cdrs", dependencies=[Depends(admin_only)])
async def call_records(ctx: Context, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> CallRecordList:
    return CallRecordList(cdrs=[CallRecord.model_validate(r) for r in ctx.domain.records.recent(limit)])
