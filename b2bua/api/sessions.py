"""The keep-connected session of a user: its state, calls dialled over the line, and hold/park/swap/... ."""

from __future__ import annotations

from fastapi import APIRouter

from b2bua.api.context import PROBLEMS, Auth, Context, user_of
from b2bua.api.models import CallRequest, SessionAction, SessionDialled, SessionView
from b2bua.telecommuter.errors import Refused

router = APIRouter(prefix="/v1/users/{user_id}/session", tags=["keep-connected session"], responses=PROBLEMS)


@router.get("")
async def get_session(user_id: str, p: Auth, ctx: Context) -> SessionView:
    sessions = ctx.domain.sessions
    call = sessions.of(user_of(ctx, p, user_id).id)
    if call is None:
        raise Refused(404, "no-session", "no keep-connected session (turn the mode on)")
    return SessionView.model_validate(sessions.view(call))


@router.post("/calls", status_code=201)
async def session_dial(user_id: str, body: CallRequest, p: Auth, ctx: Context) -> SessionDialled:
    return SessionDialled.model_validate(ctx.domain.sessions.dial(user_of(ctx, p, user_id), body.target))


@router.post("/actions")
async def session_action(user_id: str, body: SessionAction, p: Auth, ctx: Context) -> SessionView:
    result = ctx.domain.sessions.action(user_of(ctx, p, user_id), body.action, body.call, body.slot)
    return SessionView.model_validate(result)
