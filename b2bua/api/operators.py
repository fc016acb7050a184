"""For operators and their monitoring: /health (no token: load balancers and probes ask it) and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from b2bua.api.context import Context
from b2bua.api.models import Health

router = APIRouter(tags=["operators"])


@router.get("/health")
async def health(ctx: Context) -> Health:
    return ctx.health()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
async def metrics(ctx: Context) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
