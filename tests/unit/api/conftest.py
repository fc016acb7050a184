"""Fixtures for the API tests: the whole product in-process (``t``, from ``tests.support.inprocess``).

Two things make a fresh product slow to start and are shared here instead: the built-in greeting and music on
hold (written once per session, then named in the config), and FastAPI's per-route set-up on a route's first
request (one app per session; each test points it at its own node through ``app.state.context``, which is all
the routes read)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from b2bua.api.application import create_app
from b2bua.api.context import ApiContext
from b2bua.api.models import Health
from b2bua.media.sounds import write_notes
from tests.support.inprocess import ADMIN, InProcess, in_process


@pytest.fixture(scope="session")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Config that points music on hold and the voicemail greeting at one short WAV."""
    wav = tmp_path_factory.mktemp("sounds") / "tone.wav"
    write_notes(wav, ((440, 0.2),))
    return f'\n[keep_connected]\nmusic_wav = "{wav}"\n\n[voicemail]\ngreeting_wav = "{wav}"\n'


@pytest.fixture(scope="session")
def apps() -> list[FastAPI]:
    """The one app of the session, once the first test has made it."""
    return []


def health() -> Health:
    return Health.model_validate({
        "status": "ok", "version": "test", "engine": {"up": True, "loop_lag_s": 0.0, "legs": 0, "turns": 0},
        "limits": {}, "admission": {"ceiling": 50, "admitted": 0, "closed": False, "rate": 0, "burst": 1},
        "active_calls": 0})


@pytest.fixture
async def t(tmp_path: Path, sounds: str, apps: list[FastAPI]) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, sounds) as node:
        context = ApiContext(ADMIN, node.domain, node.runner, node.node.metrics, health)
        if not apps:
            apps.append(create_app(context))
        app = apps[0]
        app.state.context = context
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b2bua.test") as api:
            node.api = api
            yield node
