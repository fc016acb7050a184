"""FastAPI application: /health and /metrics for operators; /v1/* behind bearer tokens.

Tokens: the admin token provisions users and sees everything; a user's own token reaches only that user's
settings, calls and events ("me" works as the user id). Another user's call is simply not found (404).
Handlers are async on purpose: they touch call state, which lives on the event loop thread.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from b2bua import __version__
from b2bua.callcontrol import ActiveCall, AdmissionGate, CallControl
from b2bua.eventbus import EventBus
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import BuildLimits
from b2bua.store.sqlite import Store
from b2bua.telecommuter.service import Refused, TelecommuterService
from b2bua.telecommuter.users import Mode, User, token_hash

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    admin: bool
    user: User | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Body):
    name: str = Field(min_length=1, max_length=100)
    extension: str = Field(min_length=1, max_length=20)
    business_number: str = Field(min_length=3, max_length=32)
    class_of_service: str | None = None
    confirm_digit: str = Field("", pattern=r"^[0-9*#]?$")
    privacy: bool = False
    telecommuter_number: str = Field("", max_length=32)


class UserUpdate(_Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    extension: str | None = Field(None, min_length=1, max_length=20)
    business_number: str | None = Field(None, min_length=3, max_length=32)
    class_of_service: str | None = None
    confirm_digit: str | None = Field(None, pattern=r"^[0-9*#]?$")
    privacy: bool | None = None


class TelecommuterUpdate(_Body):
    mode: Mode
    number: str | None = Field(None, max_length=32)
    test_call: bool = False


class CallRequest(_Body):
    target: str = Field(min_length=1, max_length=40)


def principal(request: Request,
              cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if cred is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if hmac.compare_digest(cred.credentials.encode(), request.app.state.admin_token.encode()):
        return Principal(True, None)
    user = request.app.state.store.user_by_token_hash(token_hash(cred.credentials))
    if user is None:
        raise HTTPException(403, "invalid token")
    return Principal(False, user)


Auth = Annotated[Principal, Depends(principal)]


def admin_only(p: Auth) -> None:
    if not p.admin:
        raise HTTPException(403, "admin token required")


def create_app(
    *,
    admin_token: str,
    calls: CallControl,
    gate: AdmissionGate,
    metrics: Metrics,
    limits: BuildLimits,
    store: Store,
    service: TelecommuterService,
    bus: EventBus,
    engine_health: Callable[[], dict[str, Any]],
) -> FastAPI:
    app = FastAPI(title="b2bua", version=__version__,
                  description="SIP B2BUA for telecommuter bridging: management, callback calls, live events.")

    app.state.admin_token = admin_token
    app.state.store = store

    @app.exception_handler(Refused)
    async def _refused(_: Request, e: Refused) -> JSONResponse:
        return JSONResponse({"detail": e.message, "rule": e.rule}, status_code=e.status)

    def user_of(p: Principal, user_id: str) -> User:
        if user_id == "me":
            if p.user is None:
                raise HTTPException(400, "'me' needs a user token")
            user_id = p.user.id
        if not p.admin and (p.user is None or p.user.id != user_id):
            raise HTTPException(403, "not your user")
        user = store.get_user(user_id)
        if user is None:
            raise HTTPException(404, f"no user {user_id!r}")
        return user

    def call_of(p: Principal, call_id: str) -> ActiveCall:
        call = calls.calls.get(call_id)
        if call is None or (not p.admin and (p.user is None or call.user_id != p.user.id)):
            raise HTTPException(404, f"no active call {call_id!r}")
        return call

    # ------------------------------------------------------------------------------ operators
    @app.get("/health")
    async def health() -> dict[str, Any]:
        eng = engine_health()
        return {
            "status": "ok" if eng["up"] else "degraded",
            "version": __version__,
            "engine": eng,
            "limits": asdict(limits),
            "admission": {"ceiling": gate.ceiling, "admitted": gate.admitted, "closed": gate.closed},
            "active_calls": len(calls.calls),
        }

    @app.get("/metrics")
    async def prom() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------------------ users
    @app.post("/v1/users", status_code=201, dependencies=[Depends(admin_only)])
    async def create_user(body: UserCreate) -> dict[str, Any]:
        user, token = service.create_user(**body.model_dump())
        return {"user": user.public(), "token": token}

    @app.get("/v1/users", dependencies=[Depends(admin_only)])
    async def list_users() -> dict[str, Any]:
        return {"users": [u.public() for u in store.list_users()]}

    @app.get("/v1/users/{user_id}")
    async def get_user(user_id: str, p: Auth) -> dict[str, Any]:
        return user_of(p, user_id).public()

    @app.patch("/v1/users/{user_id}", dependencies=[Depends(admin_only)])
    async def update_user(user_id: str, body: UserUpdate, p: Auth) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        return service.update_user(user_of(p, user_id), **fields).public()

    @app.delete("/v1/users/{user_id}", status_code=204, dependencies=[Depends(admin_only)])
    async def delete_user(user_id: str, p: Auth) -> Response:
        service.delete_user(user_of(p, user_id))
        bus.forget(user_id)
        return Response(status_code=204)

    @app.post("/v1/users/{user_id}/token")
    async def rotate_token(user_id: str, p: Auth) -> dict[str, str]:
        return {"token": service.rotate_token(user_of(p, user_id))}

    @app.put("/v1/users/{user_id}/telecommuter")
    async def set_telecommuter(user_id: str, body: TelecommuterUpdate, p: Auth) -> dict[str, Any]:
        user, test_id = service.set_telecommuter(user_of(p, user_id), body.mode, body.number, body.test_call)
        bus.publish(user.id, "mode", {"mode": user.mode.value, "number": user.telecommuter_number})
        return {"user": user.public(), "test_call_id": test_id}

    # ------------------------------------------------------------------------------ calls
    @app.post("/v1/users/{user_id}/calls", status_code=201)
    async def start_call(user_id: str, body: CallRequest, p: Auth) -> dict[str, Any]:
        return service.start_callback(user_of(p, user_id), body.target).summary()

    @app.get("/v1/calls")
    async def list_calls(p: Auth) -> dict[str, Any]:
        mine = [c for c in calls.calls.values() if p.admin or (p.user is not None and c.user_id == p.user.id)]
        return {"calls": [c.summary() for c in mine], "at": time.time()}

    @app.get("/v1/calls/{call_id}")
    async def get_call(call_id: str, p: Auth) -> dict[str, Any]:
        return call_of(p, call_id).summary()

    @app.delete("/v1/calls/{call_id}", status_code=202)
    async def end_call(call_id: str, p: Auth) -> dict[str, str]:
        call = call_of(p, call_id)
        calls.terminate(call.id, "ended via API")
        return {"id": call.id, "status": "ending"}

    @app.get("/v1/cdrs", dependencies=[Depends(admin_only)])
    async def cdrs(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return {"cdrs": store.recent_cdrs(limit)}

    # ------------------------------------------------------------------------------ live events
    @app.get("/v1/users/{user_id}/events")
    async def events(user_id: str, p: Auth,
                     last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
                     replay: Annotated[bool, Query(description="send recent events first")] = False,
                     ) -> EventSourceResponse:
        user = user_of(p, user_id)
        after = last_event_id if last_event_id is not None else (0 if replay else None)

        async def stream() -> AsyncIterator[dict[str, str]]:
            yield {"event": "hello", "data": json.dumps({"user_id": user.id, "mode": user.mode.value})}
            async for ev in bus.subscribe(user.id, after):
                yield {"id": str(ev.id), "event": ev.kind, "data": json.dumps(ev.as_dict())}

        return EventSourceResponse(stream(), ping=15)

    return app
