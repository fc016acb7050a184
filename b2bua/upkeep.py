"""Storage upkeep while the node runs, and the readiness /health reports beside the engine.

Every ``store.upkeep_s``: writes the database refused (call records, voicemail rows) are retried; a store whose
last write failed is probed, since nothing else may come along to clear it; a database file deleted under the
node is noticed (logged at error level). At start, recordings left without a row are adopted as messages; at
stop, writes still waiting are tried once more, then logged in full."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from b2bua.ops.logging import get_logger
from b2bua.store.sqlite import Store
from b2bua.telecommuter.domain import Domain


def readiness(store: Store, domain: Domain) -> dict[str, str]:
    """Each part: "ok" or "degraded: <why>" (the store counts writes still waiting as degraded)."""
    db = store.health()
    pending = domain.records.pending
    if db == "ok" and pending.pending():
        db = f"degraded: {pending.pending()} writes waiting for the database ({pending.error or 'retrying'})"
    return {"store": db, "voicemail": domain.mailbox.boxes.readiness()}


def upkeep_once(store: Store, domain: Domain) -> None:
    store.faults.gone()
    if domain.records.pending.retry() == 0:
        store.probe()


@contextlib.asynccontextmanager
async def store_upkeep(store: Store, domain: Domain, every_s: float) -> AsyncIterator[None]:
    log = get_logger("store")
    try:
        domain.mailbox.boxes.adopt_orphans()
    except Exception:
        log.exception("recordings without a row could not be adopted")
    task = asyncio.create_task(_every(store, domain, every_s))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pending = domain.records.pending
        if pending.retry():
            pending.give_up()


async def _every(store: Store, domain: Domain, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            upkeep_once(store, domain)
        except Exception:  # the upkeep must outlive any one failure
            get_logger("store").exception("store upkeep failed")
