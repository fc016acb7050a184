"""What the API tests share: numbers the dialling rules accept (home country DE), users in a given mode, and
the one assertion every refusal must pass (RFC 9457 problem+json naming its rule)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx

from tests.support.fake_engine import Command
from tests.support.inprocess import ADMIN, InProcess

TELECOMMUTER = "+4930123456"  # where the user works from (Berlin, national)
TARGET = "+494012345678"  # someone the user calls (Hamburg, national)
OTHER_TARGET = "+4989555000"  # Munich, national
PREMIUM = "+499001234567"  # premium rate: the standard class of service refuses it
INTERNATIONAL = "+33123456789"  # France: the standard class of service refuses it
NOT_A_NUMBER = "+4990012345678"  # too long for a German premium number: not a valid number


def business(extension: str) -> str:
    """A distinct, valid business number (DID) per extension."""
    return f"+49309018{extension[-3:]:0>3}"


def assert_problem(r: httpx.Response, status: int, rule: str, case: object = "") -> dict[str, Any]:
    """The refusal is an RFC 9457 problem with this status and rule; returns its body. ``case``: what was
    tried, for the failure message of a test that tries several."""
    assert r.status_code == status, (case, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), (case, r.headers)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["rule"] == rule, (case, body)
    assert body["title"] == HTTPStatus(status).phrase and body["type"] == "about:blank", (case, body)
    assert isinstance(body["detail"], str) and body["detail"], (case, body)
    return body


def assert_invalid(r: httpx.Response, *fields: str, case: object = "") -> list[dict[str, Any]]:
    """A request the models refuse: 422 ``invalid-request`` with one error per field named (by its last loc)."""
    body = assert_problem(r, 422, "invalid-request", case)
    errors: list[dict[str, Any]] = body["errors"]
    assert errors and all({"loc", "msg", "type"} <= set(e) for e in errors), (case, errors)
    named = {str(e["loc"][-1]) for e in errors}
    assert set(fields) <= named, (case, errors)
    return errors


def assert_unauthenticated(r: httpx.Response) -> None:
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"


async def user(t: InProcess, extension: str = "201", **fields: Any) -> tuple[str, str]:
    """A new user (mode off): (id, token)."""
    return await t.new_user(extension, business(extension), **fields)


async def set_mode(t: InProcess, user_id: str, mode: str, number: str | None = TELECOMMUTER,
                   **body: Any) -> dict[str, Any]:
    r = await t.call("PUT", f"/v1/users/{user_id}/telecommuter", json={"mode": mode, "number": number, **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def call_with(t: InProcess, method: str, path: str, headers: dict[str, str], token: str | None = ADMIN,
                    **kwargs: Any) -> httpx.Response:
    """``t.call`` with extra request headers."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return await t.api.request(method, path, headers={**auth, **headers}, **kwargs)


def placed(t: InProcess, number: str) -> list[Command]:
    """The calls the engine was told to place to ``number``."""
    return [c for c in t.engine.calls_placed() if c.args[0].startswith(f"sip:{number}@")]


def hung_up(t: InProcess) -> list[str]:
    return [c.leg for c in t.engine.named("hangup")]
