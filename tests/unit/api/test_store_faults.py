"""The API when the database fails (issue 24, findings 2 and 5): store errors are 503 problem+json
``store-unavailable`` with the reason (not a plain-text 500), anything unexpected is a 500 problem+json, and
/health shows the store degraded until it works again. The database is on a real tmpfs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from b2bua.api.application import create_app
from b2bua.api.context import ApiContext
from b2bua.telecommuter.users import Mode
from tests.support.disks import fill, free, tmpfs
from tests.support.inprocess import ADMIN, InProcess, health_of, in_process
from tests.unit.api.helpers import assert_problem, business
from tests.unit.control.helpers import CALLER, MOBILE, make_user, placed

NEW_USER = {"name": "Ann", "extension": "201", "business_number": business("201")}


@pytest.fixture
async def t(tmp_path: Path, sounds: str) -> AsyncIterator[InProcess]:
    """The product in-process with its database (and voicemail) on a 4 MB tmpfs."""
    with tmpfs(tmp_path / "var", "4m"):
        async with in_process(tmp_path, sounds) as node:
            yield node


async def health(t: InProcess) -> dict[str, Any]:
    r = await t.call("GET", "/health", token=None)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def test_a_full_database_disk_is_503_store_unavailable_and_health_degraded(t: InProcess,
                                                                                 tmp_path: Path) -> None:
    assert (await health(t))["checks"] == {"store": "ok", "voicemail": "ok"}
    fill(tmp_path / "var")
    body = assert_problem(await t.call("POST", "/v1/users", json=NEW_USER), 503, "store-unavailable")
    assert "database or disk is full" in body["detail"]
    r = await t.call("POST", "/v1/users", json=NEW_USER)
    assert r.headers["retry-after"] == "10"
    assert (await t.call("GET", "/v1/users")).status_code == 200, "reads still work"
    h = await health(t)
    assert h["status"] == "degraded" and h["checks"]["store"] == "degraded: database or disk is full"
    metrics = (await t.call("GET", "/metrics", token=None)).text
    assert 'b2bua_store_errors_total{operation="insert:users"} 2.0' in metrics

    free(tmp_path / "var")
    assert (await t.call("POST", "/v1/users", json=NEW_USER)).status_code == 201
    assert (await health(t))["status"] == "ok"


async def test_a_database_deleted_while_running_is_503_and_health_says_so(t: InProcess) -> None:
    """Issue 24: the API kept answering 201/200 and /health said ok; the next start made an empty database."""
    os.unlink(t.settings.store.path)
    body = assert_problem(await t.call("POST", "/v1/users", json=NEW_USER), 503, "store-unavailable")
    assert "was deleted or replaced while running" in body["detail"]
    h = await health(t)
    assert h["status"] == "degraded" and "deleted or replaced" in h["checks"]["store"]
    assert not t.settings.store.path.exists()


async def test_anything_unexpected_is_a_500_problem_and_logged(t: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(t.domain.accounts, "list", broken)
    app = create_app(ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, lambda: health_of(t.store, t.node)))
    # the server (not the client) sees the exception once the response is out, as uvicorn does
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://b2bua.test") as api:
        with capture_logs() as logs:
            r = await api.get("/v1/users", headers={"Authorization": f"Bearer {ADMIN}"})
    body = assert_problem(r, 500, "internal-error")
    assert "a bug" not in body["detail"], "no internals to the client"
    (line,) = [e for e in logs if e["event"] == "request failed"]
    assert line["path"] == "/v1/users" and "a bug" in line["error"] and line["log_level"] == "error"


async def test_an_ended_call_whose_record_waits_for_a_full_disk_is_still_shown(t: InProcess,
                                                                               tmp_path: Path) -> None:
    """A client polling its call must not get 404 while the call record waits in memory for the disk."""
    u = make_user(t, mode=Mode.ON_DEMAND, number=MOBILE)
    call = t.domain.outgoing.start_callback(u, CALLER)
    fill(tmp_path / "var")
    t.far.ended(placed(t)[0].leg, 480)
    assert t.domain.records.pending.pending("cdr") == 1, "the disk is full: the record waits"
    r = await t.call("GET", f"/v1/calls/{call.id}")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ended" and r.json()["outcome"] == "user-no-answer"
    assert (await t.call("GET", "/v1/calls/no-such-call")).status_code == 404

    free(tmp_path / "var")
    assert t.domain.records.pending.retry() == 0
    assert t.domain.records.repository.get_cdr(call.id)["outcome"] == "user-no-answer"
    assert (await t.call("GET", f"/v1/calls/{call.id}")).json()["outcome"] == "user-no-answer"
