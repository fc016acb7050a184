"""/health and /metrics: what load balancers, probes and Prometheus read (no token needed)."""

from __future__ import annotations

from b2bua.api.models import Health
from tests.support.inprocess import InProcess
from tests.unit.api.helpers import PREMIUM, set_mode, user


async def test_health_needs_no_token_and_is_the_health_model(t: InProcess) -> None:
    r = await t.call("GET", "/health", token=None)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    health = Health.model_validate(r.json())
    assert health.status == "ok" and health.engine.up is True
    assert set(r.json()) == set(Health.model_fields)


async def test_health_ignores_a_wrong_token(t: InProcess) -> None:
    assert (await t.call("GET", "/health", token="wrong")).status_code == 200


async def test_metrics_are_prometheus_text_with_b2bua_names(t: InProcess) -> None:
    uid, _ = await user(t)
    await set_mode(t, uid, "on-demand")
    assert (await t.call("POST", f"/v1/users/{uid}/calls", json={"target": PREMIUM})).status_code == 403
    r = await t.call("GET", "/metrics", token=None)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in ("b2bua_active_calls", "b2bua_calls_total", "b2bua_invites_rejected_total",
                 "b2bua_dialling_refused_total", "b2bua_limit"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    # the refusal above was counted, by its rule
    assert 'b2bua_dialling_refused_total{kind="class-of-service",rule="class-of-service:standard:premium"} 1.0' in text


async def test_metrics_follow_live_calls(t: InProcess) -> None:
    uid, _ = await user(t)
    await set_mode(t, uid, "on-demand")
    assert (await t.call("POST", f"/v1/users/{uid}/calls", json={"target": "+494012345678"})).status_code == 201
    text = (await t.call("GET", "/metrics", token=None)).text
    assert "b2bua_active_calls 1.0" in text
