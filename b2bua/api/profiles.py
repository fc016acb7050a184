"""A user's profiles (Office, Mobile, Home and up to four of their own), selecting one, the active profile
(Detected when the live settings match none), and the live routing settings themselves."""

from __future__ import annotations

from fastapi import APIRouter, Response

from b2bua.api.context import PROBLEMS, Auth, Context, user_of
from b2bua.api.profile_models import (
    ActiveProfileView,
    LiveSettingsView,
    ProfileCreate,
    ProfileList,
    ProfileUpdate,
    ProfileView,
    RoutingSettingsView,
    SettingsChange,
)
from b2bua.telecommuter.profiles import MAX_CUSTOM, Active
from b2bua.telecommuter.users import Profile

router = APIRouter(prefix="/v1/users/{user_id}", tags=["profiles"], responses=PROBLEMS)


def _profile(p: Profile, active: Active) -> ProfileView:
    return ProfileView(id=p.id, name=p.name, builtin=p.builtin, active=active.id == p.id,
                       settings=RoutingSettingsView.model_validate(p.settings.public()), created_at=p.created_at,
                       updated_at=p.updated_at)


def _active(active: Active) -> ActiveProfileView:
    view = active.view()
    return ActiveProfileView(id=view["id"], name=view["name"], detected=view["detected"],
                             settings=RoutingSettingsView.model_validate(view["settings"]))


@router.get("/profiles")
async def list_profiles(user_id: str, p: Auth, ctx: Context) -> ProfileList:
    """The user's profiles (the built-ins first, then their own as created) and the active one."""
    user = user_of(ctx, p, user_id)
    book = ctx.domain.profiles
    profiles = book.all(user)
    active = book.active(user)
    return ProfileList(profiles=[_profile(x, active) for x in profiles], active=_active(active),
                       max_custom=MAX_CUSTOM)


@router.post("/profiles", status_code=201)
async def create_profile(user_id: str, body: ProfileCreate, p: Auth, ctx: Context) -> ProfileView:
    """A custom profile: the live settings with the changes given. 409 ``custom-profile-limit`` beyond four,
    ``profile-name-taken`` for a name the user has (in any case) or "Detected"."""
    user = user_of(ctx, p, user_id)
    book = ctx.domain.profiles
    created = book.create(user, body.name, body.settings.changes())
    return _profile(created, book.active(user))


@router.get("/profiles/{profile_id}")
async def get_profile(user_id: str, profile_id: str, p: Auth, ctx: Context) -> ProfileView:
    """One profile: ``office``, ``mobile``, ``home`` or a custom profile's id."""
    user = user_of(ctx, p, user_id)
    book = ctx.domain.profiles
    return _profile(book.get(user, profile_id), book.active(user))


@router.patch("/profiles/{profile_id}")
async def update_profile(user_id: str, profile_id: str, body: ProfileUpdate, p: Auth, ctx: Context) -> ProfileView:
    """Change a profile's settings (numbers checked by the dialling rules now) or rename a custom profile
    (409 ``builtin-profile`` for Office, Mobile and Home)."""
    user = user_of(ctx, p, user_id)
    book = ctx.domain.profiles
    changes = body.settings.changes() if body.settings is not None else {}
    return _profile(book.update(user, profile_id, body.name, changes), book.active(user))


@router.delete("/profiles/{profile_id}", status_code=204)
async def delete_profile(user_id: str, profile_id: str, p: Auth, ctx: Context) -> Response:
    """Delete a custom profile; the built-in ones are never deleted (409 ``builtin-profile``)."""
    ctx.domain.profiles.delete(user_of(ctx, p, user_id), profile_id)
    return Response(status_code=204)


@router.post("/profiles/{profile_id}/select")
async def select_profile(user_id: str, profile_id: str, p: Auth, ctx: Context) -> ActiveProfileView:
    """Apply every setting of the profile at once (one transaction); one ``profile`` event names it."""
    return _active(ctx.domain.live.select(user_of(ctx, p, user_id), profile_id))


@router.get("/active-profile")
async def get_active_profile(user_id: str, p: Auth, ctx: Context) -> ActiveProfileView:
    """The profile the live settings match (the one last selected if several do), else Detected."""
    return _active(ctx.domain.profiles.active(user_of(ctx, p, user_id)))


@router.get("/settings")
async def get_settings(user_id: str, p: Auth, ctx: Context) -> LiveSettingsView:
    """What routing uses now, which profile that is, and do-not-disturb."""
    return LiveSettingsView.model_validate(ctx.domain.live.view(user_of(ctx, p, user_id)))


@router.patch("/settings")
async def change_settings(user_id: str, body: SettingsChange, p: Auth, ctx: Context) -> LiveSettingsView:
    """Change some live settings (as phones' feature codes do): Detected shows if they now match no profile."""
    return LiveSettingsView.model_validate(ctx.domain.live.change(user_of(ctx, p, user_id), body.changes()))
