"""Token guessing on the API: a source that keeps failing gets 429 for a while (even with a right token), other
sources are unaffected, the log gets a few lines however long the flood, and the metrics count every refusal.
Sources are set per client (httpx's ASGI transport gives the app a client address)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from b2bua.api.application import create_app
from b2bua.api.authguard import AuthGuard
from b2bua.api.context import ApiContext
from b2bua.api.limits import ApiLimits
from b2bua.api.streamslots import StreamSlots
from tests.support.inprocess import ADMIN, InProcess
from tests.unit.api.conftest import health
from tests.unit.api.helpers import assert_problem, assert_unauthenticated, user

ATTACKER = "203.0.113.66"
ADMIN_HOST = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guarded_app(t: InProcess, guard: AuthGuard) -> FastAPI:
    return create_app(ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, health,
                                 limits=ApiLimits(guard, StreamSlots(8, 500))))


def client(app: FastAPI, source: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(source, 40000)),
                             base_url="http://b2bua.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metric(t: InProcess, name: str, **labels: str) -> float:
    return t.node.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_flood_of_2000_bad_tokens_is_throttled_logged_a_few_times_and_counted(t: InProcess) -> None:
    uid, token = await user(t)
    clock = Clock()
    app = guarded_app(t, AuthGuard(20, 300, clock=clock))
    async with client(app, ATTACKER) as attacker, client(app, ADMIN_HOST) as admin:
        with capture_logs() as logs:
            statuses = [(await attacker.get("/v1/calls", headers=bearer(f"guess-{i}"))).status_code
                        for i in range(2000)]
            assert statuses == [403] * 20 + [429] * 1980
            r = await attacker.get("/v1/calls", headers=bearer(f"guess-{2000}"))
            body = assert_problem(r, 429, "auth-blocked")
            assert int(r.headers["retry-after"]) == 300 and "try again later" in body["detail"]
            # blocked means blocked: a right token from there is not even looked at
            assert_problem(await attacker.get("/v1/calls", headers=bearer(ADMIN)), 429, "auth-blocked")
            assert_problem(await attacker.get(f"/v1/users/{uid}", headers=bearer(token)), 429, "auth-blocked")
            # the admin elsewhere is not locked out, and a mistake there is only a 403
            assert (await admin.get("/v1/calls", headers=bearer(ADMIN))).status_code == 200
            assert_problem(await admin.get("/v1/calls", headers=bearer("typo")), 403, "forbidden")
            flood_lines = [e for e in logs if e.get("src") == ATTACKER]
            assert [e["event"] for e in flood_lines] == ["api authentication failed",
                                                         "api source blocked: too many failed authentications"]
            assert all(e["log_level"] == "warning" for e in flood_lines)
            assert flood_lines[0]["reason"] == "invalid-token" and flood_lines[0]["path"] == "/v1/calls"
            # a minute later the next request writes what was left out, once
            clock.now += 60
            assert (await admin.get("/v1/calls", headers=bearer(ADMIN))).status_code == 200
        summaries = {e["event"]: e["suppressed"] for e in logs if e.get("src") == ATTACKER and "suppressed" in e}
        # 20 failures: the first written, 18 left out, the 20th is the block's line; then 1983 refused requests
        assert summaries == {"api authentication failed: suppressed 18 similar lines": 18,
                             "api request refused: source blocked: suppressed 1983 similar lines": 1983}
        assert len([e for e in logs if e.get("src") == ATTACKER]) == 4, "4 lines for 2003 refusals"
    assert metric(t, "b2bua_api_auth_failures_total", reason="invalid-token") == 21  # the admin host's typo too
    assert metric(t, "b2bua_api_auth_failures_total", reason="blocked") == 1983
    assert metric(t, "b2bua_api_auth_blocked_sources") == 1
    assert metric(t, "b2bua_log_lines_suppressed_total", what="api-auth") == 18 + 1983


async def test_the_block_ends_and_counting_starts_afresh(t: InProcess) -> None:
    clock = Clock()
    app = guarded_app(t, AuthGuard(3, 300, clock=clock))
    async with client(app, ATTACKER) as attacker:
        for _ in range(3):
            assert_unauthenticated(await attacker.get("/v1/calls"))  # a missing token counts too
        r = await attacker.get("/v1/calls", headers=bearer(ADMIN))
        assert r.status_code == 429 and r.headers["retry-after"] == "300"
        clock.now += 299.5
        assert (await attacker.get("/v1/calls", headers=bearer(ADMIN))).headers["retry-after"] == "1"
        clock.now += 0.5
        assert (await attacker.get("/v1/calls", headers=bearer(ADMIN))).status_code == 200
        assert metric(t, "b2bua_api_auth_blocked_sources") == 0
        assert [(await attacker.get("/v1/calls", headers=bearer("x"))).status_code for _ in range(4)] == [
            403, 403, 403, 429]
    assert metric(t, "b2bua_api_auth_failures_total", reason="missing-token") == 3


async def test_failures_spread_over_more_than_a_minute_never_block(t: InProcess) -> None:
    clock = Clock()
    app = guarded_app(t, AuthGuard(3, 300, clock=clock))
    async with client(app, ATTACKER) as c:
        for _ in range(10):
            assert (await c.get("/v1/calls", headers=bearer("x"))).status_code == 403
            clock.now += 31
        assert (await c.get("/v1/calls", headers=bearer(ADMIN))).status_code == 200


async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(t: InProcess) -> None:
    app = guarded_app(t, AuthGuard(2, 300, trusted_proxies=["10.0.0.0/8"]))
    async with client(app, ATTACKER) as direct, client(app, "10.1.1.1") as proxy:
        # a client that names made-up addresses is still one source
        for i in range(2):
            await direct.get("/v1/calls", headers={**bearer("x"), "X-Forwarded-For": f"192.0.2.{i}"})
        assert (await direct.get("/v1/calls", headers=bearer(ADMIN))).status_code == 429
        # behind the proxy: each client is its own source, and the proxy itself is never blocked
        for _ in range(2):
            await proxy.get("/v1/calls", headers={**bearer("x"), "X-Forwarded-For": "192.0.2.50"})
        assert (await proxy.get("/v1/calls", headers={**bearer(ADMIN), "X-Forwarded-For": "192.0.2.50"})
                ).status_code == 429
        assert (await proxy.get("/v1/calls", headers={**bearer(ADMIN), "X-Forwarded-For": "192.0.2.51"})
                ).status_code == 200
        assert (await proxy.get("/v1/calls", headers=bearer(ADMIN))).status_code == 200


@pytest.mark.parametrize("peer, forwarded, source", [
    ("192.0.2.9", None, "192.0.2.9"),
    ("192.0.2.9", "10.0.0.1", "192.0.2.9"),  # not a proxy of ours: its header is the client's word
    ("10.0.0.2", "192.0.2.9", "192.0.2.9"),
    ("10.0.0.2", "6.6.6.6, 192.0.2.9, 10.0.0.3", "192.0.2.9"),  # left of the nearest untrusted hop: made up
    ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),  # proxies all the way
    ("10.0.0.2", "garbage, 192.0.2.9", "192.0.2.9"),
    ("10.0.0.2", "192.0.2.9, garbage", "10.0.0.2"),  # the nearest hop is unreadable: the proxy is the source
    ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
    (None, "192.0.2.9", "unknown"),
])
def test_the_client_address(peer: str | None, forwarded: str | None, source: str) -> None:
    assert AuthGuard(3, 300, trusted_proxies=["10.0.0.0/8"]).client(peer, forwarded) == source
