"""The whole product wired in-process around a fake engine: the real composition (``b2bua.app.compose``), a real
SQLite store in a temp dir, the real API over an ASGI client. Tests play the SIP peers through ``far`` and read
what call control told the engine from ``engine``. Runs in milliseconds; the e2e suite proves the same over SIP.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from b2bua.api.application import create_app
from b2bua.api.context import ApiContext
from b2bua.api.models import Health
from b2bua.app import Node, compose
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import Settings, load_settings
from b2bua.sip.types import BuildLimits
from b2bua.store.sqlite import Store
from b2bua.upkeep import readiness
from tests.support.fake_engine import FakeEngine, FarEnds

ADMIN = "test-admin-token"
LIMITS = BuildLimits(max_calls=2048, max_conf_ports=2576, max_accounts=64, ioqueue_max_handles=8256,
                     pjsip_version="fake", build="fake-engine")


def config_text(var: Path, extra: str = "") -> str:
    return f"""
[sip]
listen_ip = "127.0.0.1"
no_answer_timeout_s = 30
max_bridged_calls = 50
max_call_rate = 0

[http]
admin_token = "{ADMIN}"

[store]
path = "{var / 'b2bua.sqlite'}"

[[trunks]]
name = "carrier"
inbound_acl = ["127.0.0.2/32"]
host = "127.0.0.3"
class_of_service = "standard"

[[trunks]]
name = "pbx"
inbound_acl = ["127.0.0.5/32"]
host = "127.0.0.5"
extensions = true

[[routes]]
pattern = "[0-9+]+"
trunk = "carrier"
{extra}
"""


@dataclass
class InProcess:
    settings: Settings
    store: Store
    engine: FakeEngine
    node: Node
    far: FarEnds
    api: httpx.AsyncClient

    @property
    def runner(self) -> Any:
        return self.node.runner

    @property
    def domain(self) -> Any:
        return self.node.domain

    async def settle(self) -> None:
        """Let call_soon callbacks and zero-delay timers run."""
        for _ in range(3):
            await asyncio.sleep(0)

    async def call(self, method: str, path: str, token: str | None = ADMIN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.api.request(method, path, headers=headers, **kwargs)

    async def new_user(self, extension: str = "201", business: str = "+493012345670", **fields: Any) -> tuple[str, str]:
        body = {"name": f"User {extension}", "extension": extension, "business_number": business, **fields}
        r = await self.call("POST", "/v1/users", json=body)
        assert r.status_code == 201, r.text
        data = r.json()
        return data["user"]["id"], data["token"]


def health_of(store: Store, node: Node) -> Health:
    """/health as the product builds it, the engine always up: admission, calls and the readiness checks."""
    checks = readiness(store, node.domain)
    gate = node.gate
    return Health.model_validate({
        "status": "ok" if all(v == "ok" for v in checks.values()) else "degraded", "version": "test",
        "engine": {"up": True, "loop_lag_s": 0.0, "legs": 0, "turns": 0}, "limits": {},
        "admission": {"ceiling": gate.ceiling, "admitted": gate.admitted, "closed": gate.closed, "rate": gate.rate,
                      "burst": gate.burst},
        "active_calls": len(node.runner.calls), "checks": checks, "trunks": node.trunks.views()})


@asynccontextmanager
async def in_process(tmp: Path, extra_config: str = "") -> AsyncIterator[InProcess]:
    cfg = tmp / "b2bua.toml"
    cfg.write_text(config_text(tmp / "var", extra_config))
    settings = load_settings(cfg)
    metrics = Metrics()
    store = Store(settings.store.path, metrics)
    engine = FakeEngine()
    node = compose(settings, store, engine, LIMITS, metrics)
    far = FarEnds(node.screen.screen, node.dispatcher.on_event)
    health = functools.partial(health_of, store, node)
    app = create_app(ApiContext(ADMIN, node.domain, node.runner, node.metrics, health))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b2bua.test") as client:
        try:
            yield InProcess(settings, store, engine, node, far, client)
        finally:
            node.runner.terminate_all("test over")
            node.bus.close()
            store.close()
