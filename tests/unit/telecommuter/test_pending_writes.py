"""Writes the database refuses wait and are retried (issue 24, finding 2: with the database disk full, finished
calls' records were dropped and a voicemail's WAV stayed on disk with no row). The database is on a real tmpfs
that a filler file makes full; the calls end cleanly meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from b2bua.calls.events import Ended, Role
from b2bua.calls.incoming import IncomingCall
from b2bua.media.sounds import write_notes
from b2bua.ops.metrics import Metrics
from b2bua.telecommuter.pending_writes import PendingWrites
from tests.support.disks import fill, free, tmpfs
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, CALLER, GREETING_S, events, make_user, metric, node, only_call


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[tuple[InProcess, Path]]:
    """A node whose database is on a 1 MB tmpfs (voicemail elsewhere); the test fills it."""
    with tmpfs(tmp_path / "var", "1m") as var:
        async with node(tmp_path, voicemail=f'dir = "{tmp_path / "vm"}"') as t:
            yield t, var


def trunk_call(t: InProcess, leg: str) -> str:
    t.far.call_in(invite(leg, called="4930123456"))
    call = next(c for c in t.runner.calls.values() if c.invite is not None and c.invite.leg_id == leg)
    b = call.legs[Role.B]
    t.far.answered(b)
    t.far.ended(leg)
    t.far.ended(b)
    return str(call.id)


async def test_call_records_the_full_disk_refuses_wait_in_order_and_are_written_once_there_is_room(
        full: tuple[InProcess, Path]) -> None:
    t, var = full
    fill(var)
    with capture_logs() as logs:
        first, second = trunk_call(t, "A1"), trunk_call(t, "A2")
    assert not t.runner.calls and t.node.gate.admitted == 0, "the calls ended whatever the disk"
    assert t.domain.records.repository.get_cdr(first) is None and t.domain.records.repository.get_cdr(second) is None
    assert [(t.domain.records.ended(c) or {}).get("id") for c in (first, second)] == [first, second], \
        "shown from memory meanwhile"
    pending = t.domain.records.pending
    assert pending.pending("cdr") == 2 and "full" in pending.error
    assert metric(t, "b2bua_pending_writes", kind="cdr") == 2
    assert metric(t, "b2bua_store_errors_total", operation="insert:cdr") >= 2
    refused = [e for e in logs if e["event"].startswith("database refused a write")]
    assert len(refused) == 1 and refused[0]["log_level"] == "error", "one line per fault, not per write"
    assert t.store.health().startswith("degraded: database or disk is full")

    free(var)
    assert pending.retry() == 0
    assert [c["id"] for c in t.domain.records.recent(5)][::-1] == [first, second]
    assert metric(t, "b2bua_pending_writes", kind="cdr") == 0 and pending.error == ""
    assert t.store.health() == "ok"


async def test_a_voicemail_row_the_database_refuses_keeps_its_file_and_lands_later(
        full: tuple[InProcess, Path]) -> None:
    t, var = full
    u = make_user(t)
    path = t.domain.mailbox.boxes.dir / u.id / "m1.wav"
    write_notes(path, ((440, 1.0),))
    fill(var)
    t.domain.mailbox.recorded(u.id, {"message_id": "m1", "path": str(path), "caller": CALLER, "called": BUSINESS,
                                     "duration_s": 1.0})
    assert path.exists() and t.domain.mailbox.messages(u.id) == [], "the file waits with its row"
    (ev,) = events(t, u.id, "voicemail")
    assert (ev["change"], ev["caller"]) == ("pending", CALLER) and "full" in ev["why"]
    free(var)
    t.domain.records.pending.retry()
    (m,) = t.domain.mailbox.messages(u.id)
    assert (m.id, m.path, m.duration_s) == ("m1", str(path), 1.0)
    assert [e["change"] for e in events(t, u.id, "voicemail")] == ["pending", "new"]


async def test_a_voicemail_call_ending_while_the_database_is_full_is_not_stranded(
        full: tuple[InProcess, Path]) -> None:
    """Issue 24: add_message raised during the voicemail hang-up; the call stayed active for ever (admitted 1, 0
    legs) and the WAV stayed on disk with no row."""
    t, var = full
    u = make_user(t)
    t.far.call_in(invite("A1", called=BUSINESS, from_user="03098765432"))
    call = only_call(t)
    await asyncio.sleep(GREETING_S + 0.05)
    (rec,) = t.engine.named("record")
    write_notes(Path(rec.args[0]), ((440, 1.5),))
    fill(var)
    machine = call.machine
    assert isinstance(machine, IncomingCall)
    t.runner.drive(call.id, lambda now: machine.handle(Ended(Role.CALLER, 200), now + 2.0))
    assert not t.runner.calls and t.node.gate.admitted == 0 and await t.runner.wait_idle(0.01)
    pending = t.domain.records.pending
    assert (pending.pending("voicemail"), pending.pending("cdr")) == (1, 1) and Path(rec.args[0]).exists()
    free(var)
    pending.retry()
    (m,) = t.domain.mailbox.messages(u.id)
    assert m.path == rec.args[0] and m.duration_s == 1.5
    assert t.domain.records.ended(call.id) is not None


# ------------------------------------------------------------------------------------------ the queue itself
class Refusing:
    """A write the store refuses until told otherwise."""

    def __init__(self, error: Exception) -> None:
        self.error: Exception | None = error
        self.done: list[str] = []

    def write(self, name: str) -> Any:
        def apply() -> None:
            if self.error is not None:
                raise self.error
            self.done.append(name)

        return apply


def test_the_queue_is_bounded_and_logs_in_full_what_it_gives_up() -> None:
    metrics = Metrics()
    queue = PendingWrites(metrics, limit=2)
    store = Refusing(sqlite3.OperationalError("database or disk is full"))
    with capture_logs() as logs:
        for n in range(3):
            assert queue.write("cdr", {"id": f"c{n}"}, store.write(f"c{n}")) is False
    assert queue.pending() == 2
    (dropped,) = [e for e in logs if e["event"].startswith("write given up")]
    assert dropped["record"] == {"id": "c0"} and dropped["log_level"] == "error"
    with capture_logs() as logs:
        queue.give_up()
    assert [e["record"]["id"] for e in logs if e["event"].startswith("write given up")] == ["c1", "c2"]
    assert queue.pending() == 0 and metrics.registry.get_sample_value("b2bua_pending_writes", {"kind": "cdr"}) == 0


def test_a_write_already_in_the_database_counts_as_written_and_order_is_kept() -> None:
    queue = PendingWrites(Metrics())
    store = Refusing(OSError(28, "No space left on device"))
    assert not queue.write("cdr", {"id": "a"}, store.write("a"))
    store.error = None
    assert queue.write("cdr", {"id": "b"}, store.write("b")), "written, after the one waiting before it"
    assert store.done == ["a", "b"]
    store.error = sqlite3.IntegrityError("UNIQUE constraint failed: cdr.id")
    assert queue.write("cdr", {"id": "a"}, store.write("a")) and queue.pending() == 0
