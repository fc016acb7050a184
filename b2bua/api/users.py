"""Users: provisioning (admin), settings (admin, or the user for their own self-service fields), tokens and
telecommuter mode."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from b2bua.api.context import PROBLEMS, Auth, Context, admin_only, user_of
from b2bua.api.models import (
    SELF_SERVICE_FIELDS,
    ModeChanged,
    TelecommuterUpdate,
    Token,
    UserCreate,
    UserCreated,
    UserList,
    UserUpdate,
    UserView,
)
from b2bua.telecommuter.errors import Refused

router = APIRouter(prefix="/v1/users", tags=["users"], responses=PROBLEMS)


@router.post("", status_code=201, dependencies=[Depends(admin_only)])
async def create_user(body: UserCreate, ctx: Context) -> UserCreated:
    accounts = ctx.domain.accounts
    user, token = accounts.create(**body.model_dump())
    return UserCreated(user=UserView.model_validate(accounts.view(user)), token=token)


@router.get("", dependencies=[Depends(admin_only)])
async def list_users(ctx: Context) -> UserList:
    accounts = ctx.domain.accounts
    return UserList(users=[UserView.model_validate(accounts.view(u)) for u in accounts.list()])


@router.get("/{user_id}")
async def get_user(user_id: str, p: Auth, ctx: Context) -> UserView:
    return UserView.model_validate(ctx.domain.accounts.view(user_of(ctx, p, user_id)))


@router.patch("/{user_id}")
async def update_user(user_id: str, body: UserUpdate, p: Auth, ctx: Context) -> UserView:
    fields = body.model_dump(exclude_none=True)
    if not p.admin:
        not_theirs = set(fields) - SELF_SERVICE_FIELDS
        if not_theirs:
            raise Refused(403, "admin-only-field", f"only the administrator may change {sorted(not_theirs)}")
    accounts = ctx.domain.accounts
    return UserView.model_validate(accounts.view(accounts.update(user_of(ctx, p, user_id), **fields)))


@router.delete("/{user_id}", status_code=204, dependencies=[Depends(admin_only)])
async def delete_user(user_id: str, p: Auth, ctx: Context) -> Response:
    ctx.domain.accounts.delete(user_of(ctx, p, user_id))
    return Response(status_code=204)


@router.post("/{user_id}/token")
async def rotate_token(user_id: str, p: Auth, ctx: Context) -> Token:
    return Token(token=ctx.domain.accounts.rotate_token(user_of(ctx, p, user_id)))


@router.put("/{user_id}/telecommuter")
async def set_telecommuter(user_id: str, body: TelecommuterUpdate, p: Auth, ctx: Context) -> ModeChanged:
    user, test_id = ctx.domain.modes.set(user_of(ctx, p, user_id), body.mode, body.number, body.test_call)
    return ModeChanged(user=UserView.model_validate(ctx.domain.accounts.view(user)), test_call_id=test_id)
