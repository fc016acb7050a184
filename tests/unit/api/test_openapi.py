"""/openapi.json: every route documented, every 2xx body by a component schema, every refusal as what it is
sent as (application/problem+json, the Problem schema). Also the list of routes these tests cover: a route
added to the API without tests fails here."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from b2bua.api import calls, desks, events, operators, presence, profiles, sessions, users, voicemail
from b2bua.api.context import PROBLEM_JSON
from tests.support.inprocess import InProcess

# every route, and the test module that covers it
ROUTES = {
    ("GET", "/health"): "test_operators",
    ("GET", "/metrics"): "test_operators",
    ("POST", "/v1/users"): "test_users",
    ("GET", "/v1/users"): "test_users",
    ("GET", "/v1/users/{user_id}"): "test_users",
    ("PATCH", "/v1/users/{user_id}"): "test_users",
    ("DELETE", "/v1/users/{user_id}"): "test_users",
    ("POST", "/v1/users/{user_id}/token"): "test_users",
    ("PUT", "/v1/users/{user_id}/telecommuter"): "test_users",
    ("GET", "/v1/users/{user_id}/session"): "test_sessions",
    ("POST", "/v1/users/{user_id}/session/calls"): "test_sessions",
    ("POST", "/v1/users/{user_id}/session/actions"): "test_sessions",
    ("POST", "/v1/desks"): "test_desks",
    ("GET", "/v1/desks"): "test_desks",
    ("GET", "/v1/desks/{extension}"): "test_desks",
    ("PATCH", "/v1/desks/{extension}"): "test_desks",
    ("DELETE", "/v1/desks/{extension}"): "test_desks",
    ("PUT", "/v1/users/{user_id}/desk"): "test_desks",
    ("DELETE", "/v1/users/{user_id}/desk"): "test_desks",
    ("GET", "/v1/users/{user_id}/voicemail"): "test_voicemail",
    ("GET", "/v1/users/{user_id}/voicemail/{message_id}"): "test_voicemail",
    ("GET", "/v1/users/{user_id}/voicemail/{message_id}/audio"): "test_voicemail",
    ("PATCH", "/v1/users/{user_id}/voicemail/{message_id}"): "test_voicemail",
    ("DELETE", "/v1/users/{user_id}/voicemail/{message_id}"): "test_voicemail",
    ("POST", "/v1/users/{user_id}/calls"): "test_calls",
    ("GET", "/v1/calls"): "test_calls",
    ("GET", "/v1/calls/{call_id}"): "test_calls",
    ("DELETE", "/v1/calls/{call_id}"): "test_calls",
    ("GET", "/v1/cdrs"): "test_calls",
    ("GET", "/v1/users/{user_id}/events"): "test_events",
    ("GET", "/v1/users/{user_id}/profiles"): "test_profiles",
    ("POST", "/v1/users/{user_id}/profiles"): "test_profiles",
    ("GET", "/v1/users/{user_id}/profiles/{profile_id}"): "test_profiles",
    ("PATCH", "/v1/users/{user_id}/profiles/{profile_id}"): "test_profiles",
    ("DELETE", "/v1/users/{user_id}/profiles/{profile_id}"): "test_profiles",
    ("POST", "/v1/users/{user_id}/profiles/{profile_id}/select"): "test_profiles",
    ("GET", "/v1/users/{user_id}/active-profile"): "test_profiles",
    ("GET", "/v1/users/{user_id}/settings"): "test_profiles",
    ("PATCH", "/v1/users/{user_id}/settings"): "test_profiles",
    ("GET", "/v1/users/{user_id}/presence"): "test_presence",
    ("PUT", "/v1/users/{user_id}/presence"): "test_presence",
    ("GET", "/v1/presence"): "test_presence",
    ("GET", "/v1/presence/events"): "test_presence",
}
# 2xx bodies that are not JSON, by the media type they are documented as
NOT_JSON = {
    ("GET", "/metrics"): "text/plain",
    ("GET", "/v1/users/{user_id}/voicemail/{message_id}/audio"): "audio/wav",
    ("GET", "/v1/users/{user_id}/events"): "text/event-stream",
    ("GET", "/v1/presence/events"): "text/event-stream",
}
PUBLIC = {("GET", "/health"), ("GET", "/metrics")}  # no token: no 401/403 to document


@pytest.fixture
async def spec(t: InProcess) -> dict[str, Any]:
    r = await t.call("GET", "/openapi.json", token=None)
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in spec["paths"].items() for method, op in item.items()}


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    assert ref.startswith("#/components/schemas/"), ref
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def test_every_route_is_known_to_these_tests() -> None:
    routers = (calls, desks, events, operators, presence, profiles, sessions, users, voicemail)
    served = [(m, r.path) for module in routers for r in module.router.routes if isinstance(r, APIRoute)
              for m in r.methods or ()]
    assert sorted(served) == sorted(ROUTES)
    assert {module.__name__.rsplit(".", 1)[1] for module in routers} == {
        name.removeprefix("test_") for name in ROUTES.values()}


async def test_every_route_is_documented(spec: dict[str, Any]) -> None:
    assert set(operations(spec)) == set(ROUTES)
    assert spec["info"]["title"] == "b2bua"


async def test_every_2xx_response_has_a_component_schema(spec: dict[str, Any]) -> None:
    for key, op in operations(spec).items():
        ok = {code: resp for code, resp in op["responses"].items() if code.startswith("2")}
        assert len(ok) == 1, (key, ok)
        [(code, resp)] = ok.items()
        content = resp.get("content", {})
        if code == "204":
            assert key[0] == "DELETE" and not content, (key, resp)
        elif key in NOT_JSON:
            assert any(media.startswith(NOT_JSON[key]) for media in content), (key, content)
        else:
            assert set(content) == {"application/json"}, (key, content)
            component = resolve(spec, content["application/json"]["schema"])
            assert component["type"] == "object" and component["properties"], key


async def test_created_and_accepted_statuses_are_documented(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    assert "201" in ops[("POST", "/v1/users")]["responses"]
    assert "201" in ops[("POST", "/v1/users/{user_id}/calls")]["responses"]
    assert "201" in ops[("POST", "/v1/users/{user_id}/session/calls")]["responses"]
    assert "202" in ops[("DELETE", "/v1/calls/{call_id}")]["responses"]
    assert "201" in ops[("POST", "/v1/users/{user_id}/profiles")]["responses"]


async def test_refusals_are_documented_as_problem_json(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"title", "status", "detail", "rule"} <= set(problem["required"])
    assert "errors" in problem["properties"]
    for key, op in operations(spec).items():
        if key in PUBLIC:
            continue
        responses = op["responses"]
        for code in ("401", "403", "404", "422", "503"):
            assert code in responses, (key, code)
        for code, resp in responses.items():
            if code.startswith("2"):
                continue
            # a refusal is sent as application/problem+json: documented as that, with the Problem schema
            assert set(resp["content"]) == {PROBLEM_JSON}, (key, code, resp["content"])
            assert resolve(spec, resp["content"][PROBLEM_JSON]["schema"]) == problem, (key, code)


async def test_gone_recordings_are_documented(spec: dict[str, Any]) -> None:
    audio = operations(spec)[("GET", "/v1/users/{user_id}/voicemail/{message_id}/audio")]["responses"]
    assert audio["410"]["description"] == "Gone"
    assert PROBLEM_JSON in audio["410"]["content"]


async def test_the_api_is_bearer_authenticated(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer"}
    for key, op in operations(spec).items():
        assert (key in PUBLIC) == ("security" not in op), key


async def test_profile_presence_and_settings_models_are_described(spec: dict[str, Any]) -> None:
    """Every schema of the routing settings, profiles and presence says what it is: a description on the model or
    on each field that is not self-evident."""
    schemas = spec["components"]["schemas"]
    for name in ("RoutingSettingsView", "MobilitySettings", "ForwardingSettings", "TelecommuterSettings",
                 "VoicemailSettings", "ActiveProfileView", "LiveSettingsView", "SettingsChange"):
        assert schemas[name].get("description"), name
    assert "twin" in schemas["MobilitySettings"]["description"]
    forwarding = schemas["ForwardingSettings"]["properties"]
    assert "dialling rules" in forwarding["busy"]["description"] and forwarding["ring_time_s"]["description"]
    assert schemas["ProfileView"]["properties"]["builtin"]["description"]
    assert schemas["PresenceView"]["properties"]["status"]["description"]
    new = {key for key, module in ROUTES.items() if module in ("test_profiles", "test_presence")}
    assert len(new) == 13
    for key in new:
        assert operations(spec)[key].get("description"), key
