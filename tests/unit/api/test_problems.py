"""One error shape for every refusal: RFC 9457 problem+json with ``rule`` (auth, routing, validation and the
domain's refusals alike), with the headers a client needs (WWW-Authenticate, Retry-After, Allow)."""

from __future__ import annotations

import pytest

from b2bua.api.models import Problem
from tests.support.inprocess import InProcess
from tests.unit.api.helpers import (
    TARGET,
    assert_invalid,
    assert_problem,
    assert_unauthenticated,
    call_with,
    set_mode,
    user,
)


async def test_missing_token_is_401_with_a_bearer_challenge(t: InProcess) -> None:
    r = await t.call("GET", "/v1/users", token=None)
    assert_unauthenticated(r)
    body = r.json()
    assert set(body) == {"type", "title", "status", "detail", "rule"}  # no "errors": None sent along
    Problem.model_validate(body)


async def test_other_authorization_schemes_are_unauthenticated(t: InProcess) -> None:
    r = await t.api.get("/v1/users", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert_unauthenticated(r)


async def test_wrong_token_is_403_without_a_challenge(t: InProcess) -> None:
    r = await t.call("GET", "/v1/users", token="wrong")
    body = assert_problem(r, 403, "forbidden")
    assert "www-authenticate" not in r.headers
    assert body["detail"] == "invalid token"


async def test_unknown_path_and_method(t: InProcess) -> None:
    assert_problem(await t.call("GET", "/v1/nothing-here"), 404, "not-found")
    r = await t.call("PUT", "/v1/calls")
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "GET"


async def test_validation_errors_list_every_field(t: InProcess) -> None:
    r = await t.call("POST", "/v1/users", json={"name": "", "extension": "201", "colour": "blue"})
    errors = assert_invalid(r, "name", "business_number", "colour")
    by_field = {e["loc"][-1]: e for e in errors}
    assert by_field["colour"]["type"] == "extra_forbidden" and by_field["colour"]["loc"] == ["body", "colour"]
    assert by_field["business_number"]["type"] == "missing"
    assert by_field["name"]["type"] == "string_too_short"
    first = errors[0]
    assert r.json()["detail"] == f"{'.'.join(map(str, first['loc']))}: {first['msg']}"


@pytest.mark.parametrize(("content", "kind"), [(b"{not json", "json_invalid"), (b"[1, 2]", "model_attributes_type")])
async def test_a_body_that_is_not_the_object_is_invalid(t: InProcess, content: bytes, kind: str) -> None:
    r = await call_with(t, "POST", "/v1/users", {"Content-Type": "application/json"}, content=content)
    errors = assert_invalid(r)
    assert errors[0]["type"] == kind


async def test_query_and_header_validation_use_the_same_shape(t: InProcess) -> None:
    errors = assert_invalid(await t.call("GET", "/v1/cdrs?limit=0"), "limit")
    assert errors[0]["loc"] == ["query", "limit"]
    uid, _ = await user(t)
    errors = assert_invalid(await call_with(t, "GET", f"/v1/users/{uid}/events", {"Last-Event-ID": "soon"}),
                            "Last-Event-ID")
    assert errors[0]["loc"][0] == "header"


async def test_domain_refusals_keep_status_rule_and_detail(t: InProcess) -> None:
    uid, _ = await user(t)
    body = assert_problem(await t.call("POST", f"/v1/users/{uid}/calls", json={"target": TARGET}),
                          409, "telecommuter-mode-off")
    assert "telecommuter mode" in body["detail"] and "errors" not in body


async def test_overload_carries_retry_after(t: InProcess) -> None:
    uid, _ = await user(t)
    await set_mode(t, uid, "on-demand")
    while t.node.gate.admit() is None:
        pass
    r = await t.call("POST", f"/v1/users/{uid}/calls", json={"target": TARGET})
    body = assert_problem(r, 503, "over-capacity")
    assert r.headers["retry-after"] == str(t.node.gate.retry_after_s) == "5"
    assert body["title"] == "Service Unavailable"


async def test_authentication_comes_before_validation(t: InProcess) -> None:
    """A caller without a valid token learns nothing about the request schema."""
    assert_unauthenticated(await t.call("POST", "/v1/users", token=None, json={"bogus": True}))
    assert_problem(await t.call("POST", "/v1/users", token="wrong", json={"bogus": True}), 403, "forbidden")
