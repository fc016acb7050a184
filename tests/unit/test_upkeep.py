"""Storage upkeep: writes the database refused are retried on the clock (a passing disk-full loses nothing),
readiness counts them, recordings without a row are adopted at start, and what the database never took is logged
in full at stop. The database is on a real tmpfs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from b2bua.calls.events import Role
from b2bua.media.sounds import write_notes
from b2bua.upkeep import readiness, store_upkeep, upkeep_once
from tests.support.disks import fill, free, tmpfs
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import make_user, node


@pytest.fixture
async def t(tmp_path: Path) -> AsyncIterator[InProcess]:
    with tmpfs(tmp_path / "var", "1m"):
        async with node(tmp_path, voicemail=f'dir = "{tmp_path / "vm"}"') as started:
            yield started


def disk(t: InProcess) -> Path:
    return t.settings.store.path.parent


def finished_call(t: InProcess) -> str:
    t.far.call_in(invite("A1", called="4930123456"))
    call = next(iter(t.runner.calls.values()))
    t.far.ended("A1")
    t.far.ended(call.legs[Role.B])
    return str(call.id)


async def test_waiting_writes_are_retried_on_the_clock(t: InProcess) -> None:
    fill(disk(t))
    async with store_upkeep(t.store, t.domain, every_s=0.05):
        call_id = finished_call(t)
        assert readiness(t.store, t.domain)["store"] == "degraded: database or disk is full"
        await asyncio.sleep(0.15)
        assert t.domain.records.pending.pending() == 1, "still full: still waiting"
        free(disk(t))
        await asyncio.sleep(0.15)
        assert t.domain.records.pending.pending() == 0 and t.domain.records.ended(call_id) is not None
        assert readiness(t.store, t.domain)["store"] == "ok"


async def test_readiness_counts_writes_still_waiting_once_the_store_works_again(t: InProcess) -> None:
    fill(disk(t))
    finished_call(t)
    free(disk(t))
    make_user(t)  # another write works: the store itself is fine again
    assert t.store.health() == "ok"
    assert readiness(t.store, t.domain)["store"] == "degraded: 1 writes waiting for the database (database or disk"\
                                                   " is full)"
    upkeep_once(t.store, t.domain)
    assert readiness(t.store, t.domain) == {"store": "ok", "voicemail": "ok"}


async def test_at_start_orphans_are_adopted_and_at_stop_what_still_waits_is_logged(t: InProcess) -> None:
    u = make_user(t)
    write_notes(t.domain.mailbox.boxes.dir / u.id / "orphan.wav", ((440, 1.0),))
    with capture_logs() as logs:
        async with store_upkeep(t.store, t.domain, every_s=60):
            assert [m.id for m in t.domain.mailbox.messages(u.id)] == ["orphan"]
            fill(disk(t))
            call_id = finished_call(t)
    (line,) = [e for e in logs if e["event"].startswith("write given up: the node stopped")]
    assert line["record"]["id"] == call_id and line["kind"] == "cdr" and line["log_level"] == "error"
