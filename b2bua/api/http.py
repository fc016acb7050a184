"""FastAPI application: /health and /metrics for operators, /v1/* for management behind a bearer token."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from b2bua import __version__
from b2bua.callcontrol import AdmissionGate, CallControl
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import BuildLimits
from b2bua.store.sqlite import Store

_bearer = HTTPBearer(auto_error=False)


def create_app(
    *,
    admin_token: str,
    calls: CallControl,
    gate: AdmissionGate,
    metrics: Metrics,
    limits: BuildLimits,
    store: Store,
    engine_health: Callable[[], dict[str, Any]],
) -> FastAPI:
    # handlers are async on purpose: they touch call state, which lives on the event loop thread
    app = FastAPI(title="b2bua", version=__version__)

    def admin(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if cred is None:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(cred.credentials.encode(), admin_token.encode()):
            raise HTTPException(403, "invalid token")

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

    @app.get("/v1/calls", dependencies=[Depends(admin)])
    async def list_calls() -> dict[str, Any]:
        return {"calls": [c.summary() for c in calls.calls.values()], "at": time.time()}

    @app.get("/v1/calls/{call_id}", dependencies=[Depends(admin)])
    async def get_call(call_id: str) -> dict[str, Any]:
        call = calls.calls.get(call_id)
        if call is None:
            raise HTTPException(404, f"no active call {call_id!r}")
        return call.summary()

    @app.delete("/v1/calls/{call_id}", status_code=202, dependencies=[Depends(admin)])
    async def end_call(call_id: str) -> dict[str, str]:
        if not calls.terminate(call_id):
            raise HTTPException(404, f"no active call {call_id!r}")
        return {"id": call_id, "status": "ending"}

    @app.get("/v1/cdrs", dependencies=[Depends(admin)])
    async def cdrs(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return {"cdrs": store.recent_cdrs(limit)}

    return app
