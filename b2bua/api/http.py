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
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
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
from b2bua.telecommuter.users import Message, Mode, User, token_hash

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
    voicemail: bool | None = None
    call_waiting: bool = False


class UserUpdate(_Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    extension: str | None = Field(None, min_length=1, max_length=20)
    business_number: str | None = Field(None, min_length=3, max_length=32)
    class_of_service: str | None = None
    confirm_digit: str | None = Field(None, pattern=r"^[0-9*#]?$")
    privacy: bool | None = None
    voicemail: bool | None = None
    call_waiting: bool | None = None
    no_supervision: bool | None = None


class SessionAction(_Body):
    action: Literal["hold", "retrieve", "toggle-hold", "swap", "park", "unpark", "accept", "reject", "hangup",
                    "reconnect"]
    call: str = Field("", max_length=64, description="a call of the session; empty: the obvious one")
    slot: int = Field(0, ge=0, le=99, description="park/unpark slot; 0: first free / most recent")


class SelfUpdate(_Body):
    """What users may change themselves (the rest is the administrator's)."""

    voicemail: bool | None = None
    call_waiting: bool | None = None


_SIP_URI = r"^sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?$"


class DeskCreate(_Body):
    extension: str = Field(min_length=1, max_length=20)
    contact: str = Field(min_length=5, max_length=200, pattern=_SIP_URI, description="SIP URI of the device")
    name: str = Field("", max_length=100)


class DeskUpdate(_Body):
    contact: str | None = Field(None, min_length=5, max_length=200, pattern=_SIP_URI)
    name: str | None = Field(None, max_length=100)


class DeskLogin(_Body):
    extension: str = Field(min_length=1, max_length=20)


class MessageUpdate(_Body):
    read: bool


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
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
        return JSONResponse({"detail": e.message, "rule": e.rule}, status_code=e.status, headers=headers)

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
            "admission": {"ceiling": gate.ceiling, "admitted": gate.admitted, "closed": gate.closed,
                          "rate": gate.rate, "burst": gate.burst},
            "active_calls": len(calls.calls),
        }

    @app.get("/metrics")
    async def prom() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------------------ users
    @app.post("/v1/users", status_code=201, dependencies=[Depends(admin_only)])
    async def create_user(body: UserCreate) -> dict[str, Any]:
        fields = body.model_dump()
        voicemail, call_waiting = fields.pop("voicemail"), fields.pop("call_waiting")
        user, token = service.create_user(**fields)
        extra = {"call_waiting": call_waiting, **({"voicemail": voicemail} if voicemail is not None else {})}
        user = service.update_user(user, **extra)
        return {"user": service.view(user), "token": token}

    @app.get("/v1/users", dependencies=[Depends(admin_only)])
    async def list_users() -> dict[str, Any]:
        return {"users": [service.view(u) for u in store.list_users()]}

    @app.get("/v1/users/{user_id}")
    async def get_user(user_id: str, p: Auth) -> dict[str, Any]:
        return service.view(user_of(p, user_id))

    @app.patch("/v1/users/{user_id}")
    async def update_user(user_id: str, body: UserUpdate, p: Auth) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        if not p.admin:
            not_theirs = set(fields) - set(SelfUpdate.model_fields)
            if not_theirs:
                raise HTTPException(403, f"only the administrator may change {sorted(not_theirs)}")
        return service.view(service.update_user(user_of(p, user_id), **fields))

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
        return {"user": service.view(user), "test_call_id": test_id}

    # ------------------------------------------------------------------------------ keep-connected session
    def session_of(user: User) -> ActiveCall:
        call = service.sessions.of(user.id)
        if call is None:
            raise HTTPException(404, "no keep-connected session (turn the mode on)")
        return call

    @app.get("/v1/users/{user_id}/session")
    async def get_session(user_id: str, p: Auth) -> dict[str, Any]:
        return service.sessions.view(session_of(user_of(p, user_id)))

    @app.post("/v1/users/{user_id}/session/calls", status_code=201)
    async def session_dial(user_id: str, body: CallRequest, p: Auth) -> dict[str, Any]:
        return service.sessions.dial(user_of(p, user_id), body.target)

    @app.post("/v1/users/{user_id}/session/actions")
    async def session_action(user_id: str, body: SessionAction, p: Auth) -> dict[str, Any]:
        return service.sessions.action(user_of(p, user_id), body.action, body.call, body.slot)

    # ------------------------------------------------------------------------------ desks (hot desking)
    @app.post("/v1/desks", status_code=201, dependencies=[Depends(admin_only)])
    async def create_desk(body: DeskCreate) -> dict[str, Any]:
        return service.create_desk(body.extension, body.contact, body.name).public()

    @app.get("/v1/desks", dependencies=[Depends(admin_only)])
    async def list_desks() -> dict[str, Any]:
        return {"desks": [d.public() for d in store.list_desks()]}

    @app.get("/v1/desks/{extension}", dependencies=[Depends(admin_only)])
    async def get_desk(extension: str) -> dict[str, Any]:
        return service.get_desk(extension).public()

    @app.patch("/v1/desks/{extension}", dependencies=[Depends(admin_only)])
    async def update_desk(extension: str, body: DeskUpdate) -> dict[str, Any]:
        return service.update_desk(extension, name=body.name, contact=body.contact).public()

    @app.delete("/v1/desks/{extension}", status_code=204, dependencies=[Depends(admin_only)])
    async def delete_desk(extension: str) -> Response:
        service.delete_desk(extension)
        return Response(status_code=204)

    @app.put("/v1/users/{user_id}/desk")
    async def desk_login(user_id: str, body: DeskLogin, p: Auth) -> dict[str, Any]:
        user = user_of(p, user_id)
        service.desk_login(user, body.extension)
        return service.view(user)

    @app.delete("/v1/users/{user_id}/desk")
    async def desk_logout(user_id: str, p: Auth) -> dict[str, Any]:
        user = user_of(p, user_id)
        service.desk_logout(user)
        return service.view(user)

    # ------------------------------------------------------------------------------ voicemail
    def message_of(p: Principal, user_id: str, message_id: str) -> Message:
        user = user_of(p, user_id)
        m = store.message(user.id, message_id)
        if m is None:
            raise HTTPException(404, f"no message {message_id!r}")
        return m

    @app.get("/v1/users/{user_id}/voicemail")
    async def list_messages(user_id: str, p: Auth) -> dict[str, Any]:
        user = user_of(p, user_id)
        msgs = store.messages(user.id)
        return {"messages": [m.public() for m in msgs], "total": len(msgs),
                "unread": sum(1 for m in msgs if not m.read)}

    @app.get("/v1/users/{user_id}/voicemail/{message_id}")
    async def get_message(user_id: str, message_id: str, p: Auth) -> dict[str, Any]:
        return message_of(p, user_id, message_id).public()

    @app.get("/v1/users/{user_id}/voicemail/{message_id}/audio")
    async def message_audio(user_id: str, message_id: str, p: Auth) -> FileResponse:
        m = message_of(p, user_id, message_id)
        if not Path(m.path).exists():
            raise HTTPException(410, "the recording is gone from disk")
        return FileResponse(m.path, media_type="audio/wav", filename=f"voicemail-{m.id}.wav")

    @app.patch("/v1/users/{user_id}/voicemail/{message_id}")
    async def mark_message(user_id: str, message_id: str, body: MessageUpdate, p: Auth) -> dict[str, Any]:
        m = message_of(p, user_id, message_id)
        store.mark_message(m.user_id, m.id, body.read)
        service.publish_mailbox(m.user_id, "read" if body.read else "unread")
        updated = store.message(m.user_id, m.id)
        assert updated is not None
        return updated.public()

    @app.delete("/v1/users/{user_id}/voicemail/{message_id}", status_code=204)
    async def delete_message(user_id: str, message_id: str, p: Auth) -> Response:
        m = message_of(p, user_id, message_id)
        service.voicemail.delete(m)
        service.publish_mailbox(m.user_id, "deleted")
        return Response(status_code=204)

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
        """A live call's state; once it has ended, its outcome from the call record (a client that polls must
        not see the call vanish)."""
        call = calls.calls.get(call_id)
        if call is not None and (p.admin or (p.user is not None and call.user_id == p.user.id)):
            return call.summary()
        cdr = store.get_cdr(call_id)
        if cdr is None or not (p.admin or (p.user is not None and cdr["user_id"] == p.user.id)):
            raise HTTPException(404, f"no call {call_id!r}")
        return {"id": cdr["id"], "kind": cdr["kind"], "user_id": cdr["user_id"] or None, "state": "ended",
                "outcome": cdr["outcome"], "final_code": cdr["final_code"], "caller": cdr["caller"],
                "called": cdr["called"], "started": cdr["started_at"], "duration_s": cdr["duration_s"]}

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
            async for ev in bus.subscribe(user.id, after):
                if ev is None:  # registered: only now may the client rely on seeing every later event
                    yield {"event": "hello", "data": json.dumps({"user_id": user.id, "mode": user.mode.value})}
                else:
                    yield {"id": str(ev.id), "event": ev.kind, "data": json.dumps(ev.as_dict())}

        return EventSourceResponse(stream(), ping=15)

    return app
