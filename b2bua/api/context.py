"""What every route needs: the domain and call runner (one ``ApiContext`` on the app), who is asking (bearer
tokens), and one error shape for every refusal (RFC 9457 ``application/problem+json`` with ``rule``).

Tokens: the admin token provisions users and sees everything; a user's own token reaches only that user's
settings, calls and events ("me" works as the user id). Another user's call is simply not found (404).
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from b2bua.api.limits import ApiLimits
from b2bua.api.models import Health, Problem
from b2bua.control.runner import CallRunner
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.telecommuter.domain import Domain
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.users import User

PROBLEM_JSON = "application/problem+json"
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(code).phrase}
    for code in (400, 401, 403, 404, 409, 422, 429, 503)
}


@dataclass(frozen=True)
class ApiContext:
    admin_token: str
    domain: Domain
    runner: CallRunner
    metrics: Metrics
    health: Callable[[], Health]
    limits: ApiLimits = field(default_factory=ApiLimits.from_settings)


@dataclass(frozen=True, slots=True)
class Principal:
    admin: bool
    user: User | None


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]
_bearer = HTTPBearer(auto_error=False)


async def principal(request: Request, ctx: Context,
                    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """Who is asking; a source that keeps failing is throttled (``AuthGuard``) before its token is looked at."""
    guard = ctx.limits.auth
    source = guard.client(request.client.host if request.client else None, request.headers.get("x-forwarded-for"))
    guard.refuse_if_blocked(source, ctx.metrics)
    if cred is None:
        guard.failed(source, "missing-token", request.url.path, ctx.metrics)
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if hmac.compare_digest(cred.credentials.encode(), ctx.admin_token.encode()):
        return Principal(True, None)
    user = ctx.domain.accounts.by_token(cred.credentials)
    if user is None:
        guard.failed(source, "invalid-token", request.url.path, ctx.metrics)
        raise HTTPException(403, "invalid token")
    return Principal(False, user)


Auth = Annotated[Principal, Depends(principal)]


def admin_only(p: Auth) -> None:
    if not p.admin:
        raise HTTPException(403, "admin token required")


def user_of(ctx: ApiContext, p: Principal, user_id: str) -> User:
    """The user a path names, if the caller may see them ("me": the caller's own user)."""
    if user_id == "me":
        if p.user is None:
            raise Refused(400, "me-needs-user-token", "'me' needs a user token")
        user_id = p.user.id
    if not p.admin and (p.user is None or p.user.id != user_id):
        raise Refused(403, "not-your-user", "not your user")
    return ctx.domain.accounts.get(user_id)


def may_see(p: Principal, owner: str | None) -> bool:
    return p.admin or (p.user is not None and owner == p.user.id)


# ------------------------------------------------------------------------------------------ problems
def problem(status: int, detail: str, rule: str, headers: dict[str, str] | None = None,
            errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, rule=rule, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


async def _refused(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, Refused)
    headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
    return problem(e.status, e.message, e.rule, headers)


async def _http_error(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, StarletteHTTPException)
    rule = {401: "unauthenticated", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}.get(
        e.status_code, "http-error")
    return problem(e.status_code, str(e.detail), rule, dict(e.headers) if e.headers else None)


async def _invalid(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError)
    errors = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
              for err in e.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return problem(422, f"{where}: {first['msg']}" if where else str(first["msg"]), "invalid-request",
                   errors=errors)


async def _store_error(request: Request, e: Exception) -> JSONResponse:
    """The database refused (disk full, read-only, file gone): a fault of ours the client may retry, not a 500."""
    if isinstance(e, sqlite3.IntegrityError):  # a conflict the domain did not expect: a bug, not the disk
        return await _unexpected(request, e)
    return problem(503, f"the database cannot be used now: {e}", "store-unavailable", {"Retry-After": "10"})


async def _unexpected(request: Request, e: Exception) -> JSONResponse:
    get_logger("api").error("request failed", method=request.method, path=request.url.path, error=repr(e),
                            exc_info=e)
    return problem(500, "the request failed inside the service; the failure is logged", "internal-error")


def document_problems_as_sent(schema: dict[str, Any]) -> None:
    """FastAPI documents a response ``model`` under the route's own media type (application/json) and leaves the
    ``application/problem+json`` entry of ``PROBLEMS`` without a schema; a refusal is sent as problem+json only, so
    its schema moves there (in place, in the generated OpenAPI document)."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON not in content:
                    continue
                documented = [content.pop(media) for media in list(content) if media != PROBLEM_JSON]
                content[PROBLEM_JSON] = next((d for d in documented if "schema" in d), content[PROBLEM_JSON])


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(sqlite3.DatabaseError, _store_error)
    app.add_exception_handler(Exception, _unexpected)  # anything else: still problem+json (500), and logged
