"""Crash recovery at start, before the SIP engine takes the port: every dialog the last run left up (the store's
journal of live dialogs) gets a BYE, the calls they belonged to get a call record (outcome ``aborted``), and the
journal is emptied. A marker file beside the database says whether the last run stopped cleanly: written at
start, touched while running (its time is when the dead run was last alive: the aborted calls' end), removed on
a clean stop. After an unclean stop the start logs a warning with what it cleaned up, and the metrics show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from b2bua import __version__
from b2bua.control.journal import dialog_of
from b2bua.lifecycle import StartupError
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import Settings
from b2bua.outbound_tls import client_tls
from b2bua.sip.teardown import BUDGET_S, ByeResult, end_dialogs
from b2bua.store.sqlite import Store

MARKER_NAME = "b2bua.running"
HEARTBEAT_S = 1.0  # how exactly an aborted call's end is known (one utime a second)
BYE_BUDGET_S = BUDGET_S  # the longest a start waits for the BYEs' answers
ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a start cleaned up (all zero after a clean stop with nothing left over)."""

    unclean: bool = False
    byes_sent: int = 0
    byes_answered: int = 0  # 2xx
    byes_gone: int = 0  # 481: the peer had dropped the dialog already
    byes_failed: int = 0  # any other answer, or none within the budget
    cdrs_closed: int = 0
    seconds: float = 0.0


class RunMarker:
    """``<var>/b2bua.running``: present while a run is up (or after it died)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last_alive(self) -> float | None:
        """When the previous run was last known alive; None if it stopped cleanly (no marker)."""
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    def live_holder(self) -> int:
        """The pid of another b2bua process that wrote the marker and still runs (0: none): its dialogs are live,
        not left over, and must not be ended."""
        try:
            pid = int(json.loads(self.path.read_text()).get("pid", 0))
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, AttributeError):
            return 0
        return pid if pid != os.getpid() and b"b2bua" in cmdline else 0

    def create(self) -> None:
        self.path.unlink(missing_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"pid": os.getpid(), "started": time.time()}) + "\n")

    def touch(self) -> None:
        with contextlib.suppress(OSError):  # a full disk must not stop the run; the next start just knows less
            os.utime(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def crash_recovered(store: Store, settings: Settings, metrics: Metrics) -> AsyncIterator[Recovery]:
    """Clean up after the last run, then mark this one as running until the block exits (a clean stop)."""
    marker = RunMarker(settings.store.path.parent / MARKER_NAME)
    holder = marker.live_holder()
    if holder:
        raise StartupError("another b2bua runs on this state directory", 1, pid=holder, marker=str(marker.path))
    last_alive = marker.last_alive()
    report = await recover(store, settings, metrics, last_alive)
    marker.create()
    beat = asyncio.create_task(_heartbeat(marker))
    try:
        yield report
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        marker.remove()


async def recover(store: Store, settings: Settings, metrics: Metrics, last_alive: float | None) -> Recovery:
    """End what the journal holds; report, log and count it. Raises ``StartupError`` if the SIP port is taken
    (the journal is then kept for the next start)."""
    log = get_logger("b2bua")
    rows = store.journal.entries()
    started = time.monotonic()
    sip = settings.sip
    try:
        results = await end_dialogs([dialog_of(r) for r in rows], listen_ip=sip.listen_ip,
                                    listen_port=sip.listen_port, via_host=sip.public_host,
                                    user_agent=f"{sip.user_agent}/{__version__}", budget_s=BYE_BUDGET_S,
                                    tls=client_tls(settings))
    except OSError as e:
        raise StartupError("cannot end the last run's dialogs: SIP port not free", 1, error=str(e),
                           dialogs=len(rows), listen=f"{sip.listen_ip}:{sip.listen_port}") from e
    try:
        closed = _close_records(store, rows, last_alive)
        store.journal.clear()
    except (sqlite3.Error, OSError) as e:  # the store's trouble must not stop the start: the next one retries
        log.error("aborted calls' records not written; the journal is kept", error=repr(e), dialogs=len(rows))
        closed = 0
    report = _report(last_alive is not None, results, closed, time.monotonic() - started)
    _publish(metrics, report)
    fields = {k: v for k, v in asdict(report).items() if k != "unclean"}
    if report.unclean:
        log.warning("last stop was unclean", **fields)
    elif rows:
        log.info("dialogs left by the last run ended", **fields)
    failed = [r for r in results if not r.done]
    if failed:
        log.warning("dialogs not confirmed ended", count=len(failed), first=[_describe(r) for r in failed[:10]])
    return report


def _report(unclean: bool, results: list[ByeResult], closed: int, seconds: float) -> Recovery:
    answered = sum(1 for r in results if 200 <= r.code < 300)
    gone = sum(1 for r in results if r.code == 481)
    return Recovery(unclean, len(results), answered, gone, len(results) - answered - gone, closed, round(seconds, 3))


def _publish(metrics: Metrics, report: Recovery) -> None:
    metrics.unclean_start.set(1 if report.unclean else 0)
    for result, n in (("answered", report.byes_answered), ("gone", report.byes_gone),
                      ("failed", report.byes_failed)):
        metrics.recovery_byes.labels(result).inc(n)
    metrics.recovery_cdrs.inc(report.cdrs_closed)
    metrics.recovery_seconds.set(report.seconds)


def _describe(result: ByeResult) -> dict[str, Any]:
    d = result.dialog
    return {"sip_call_id": d.sip_call_id, "destination": d.destination, "code": result.code, "detail": result.detail}


def _close_records(store: Store, rows: list[dict[str, Any]], last_alive: float | None) -> int:
    """One record per call the journal names, unless the call has one already (it ended, its legs had not). The
    calls ended when the dead run was last seen alive: its last heartbeat, or a later answer it journaled."""
    if not rows:
        return 0
    ended_at = max(last_alive or 0.0, *(float(r["answered_at"]) for r in rows))
    by_call: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_call.setdefault(row["call_id"], []).append(row)
    closed = 0
    for call_id, legs in by_call.items():
        if store.get_cdr(call_id) is not None:
            continue
        store.add_cdr(_aborted_record(store, call_id, legs, ended_at))
        closed += 1
    return closed


def _aborted_record(store: Store, call_id: str, legs: list[dict[str, Any]], ended_at: float) -> dict[str, Any]:
    first = legs[0]
    info: dict[str, str] = json.loads(first["call_info"] or "{}")
    caller = info.get("caller", "")
    if not caller and first["user_id"]:
        user = store.get_user(first["user_id"])
        caller = user.business_number if user else ""
    answered = min(float(r["answered_at"]) for r in legs)
    return {
        "id": call_id, "sip_call_id": info.get("sip_call_id", ""), "kind": first["kind"], "user_id": first["user_id"],
        "caller": caller, "called": info.get("called") or info.get("target") or info.get("user_number", ""),
        "trunk_in": info.get("trunk_in", ""), "trunk_out": info.get("trunk_out", ""), "outcome": ABORTED,
        "final_code": 200, "started_at": float(first["call_started"]), "duration_s": max(0.0, ended_at - answered),
    }


async def _heartbeat(marker: RunMarker) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        marker.touch()
