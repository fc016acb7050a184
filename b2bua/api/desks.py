"""Hot desking: desk extensions (admin) and a user's desk login/logout."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from b2bua.api.context import PROBLEMS, Auth, Context, admin_only, user_of
from b2bua.api.models import DeskCreate, DeskList, DeskLogin, DeskUpdate, DeskView, UserView

router = APIRouter(tags=["desks"], responses=PROBLEMS)
admin = [Depends(admin_only)]


@router.post("/v1/desks", status_code=201, dependencies=admin)
async def create_desk(body: DeskCreate, ctx: Context) -> DeskView:
    return DeskView.model_validate(ctx.domain.desks.create(body.extension, body.contact, body.name).public())


@router.get("/v1/desks", dependencies=admin)
async def list_desks(ctx: Context) -> DeskList:
    return DeskList(desks=[DeskView.model_validate(d.public()) for d in ctx.domain.desks.list()])


@router.get("/v1/desks/{extension}", dependencies=admin)
async def get_desk(extension: str, ctx: Context) -> DeskView:
    return DeskView.model_validate(ctx.domain.desks.get(extension).public())


@router.patch("/v1/desks/{extension}", dependencies=admin)
async def update_desk(extension: str, body: DeskUpdate, ctx: Context) -> DeskView:
    return DeskView.model_validate(ctx.domain.desks.update(extension, name=body.name, contact=body.contact).public())


@router.delete("/v1/desks/{extension}", status_code=204, dependencies=admin)
async def delete_desk(extension: str, ctx: Context) -> Response:
    ctx.domain.desks.delete(extension)
    return Response(status_code=204)


@router.put("/v1/users/{user_id}/desk")
async def desk_login(user_id: str, body: DeskLogin, p: Auth, ctx: Context) -> UserView:
    user = user_of(ctx, p, user_id)
    ctx.domain.desks.login(user, body.extension)
    return UserView.model_validate(ctx.domain.accounts.view(ctx.domain.accounts.get(user.id)))


@router.delete("/v1/users/{user_id}/desk")
async def desk_logout(user_id: str, p: Auth, ctx: Context) -> UserView:
    user = user_of(ctx, p, user_id)
    ctx.domain.desks.logout(user)
    return UserView.model_validate(ctx.domain.accounts.view(ctx.domain.accounts.get(user.id)))
