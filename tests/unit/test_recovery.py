"""Crash recovery at start: the journal's dialogs get their BYEs from the SIP port, their calls get records with
outcome ``aborted`` (never a second one), the journal is emptied, and an unclean stop is logged and counted.
The run marker tells a clean stop from a crash and a crash from another process still running."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from b2bua import recovery
from b2bua.lifecycle import StartupError
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import Settings, load_settings
from b2bua.store.sqlite import Store
from tests.support.inprocess import config_text
from tests.unit.sip.test_teardown import Peer, free_port


def settings_for(tmp_path: Path, port: int) -> Settings:
    cfg = tmp_path / "b2bua.toml"
    cfg.write_text(config_text(tmp_path / "var"))
    s = load_settings(cfg)
    return s.model_copy(update={"sip": s.sip.model_copy(update={"listen_port": port})})


def journal_row(call_id: str, leg: str, destination: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sip_call_id": f"sip-{leg}", "local_tag": f"tag-{leg}", "leg_id": leg, "call_id": call_id, "kind": "trunk",
        "user_id": "", "call_started": 1000.0, "answered_at": 1002.0, "local_uri": "sip:b2bua@127.0.0.1",
        "remote_uri": "sip:far@127.0.0.3", "remote_tag": f"far-{leg}", "request_uri": f"sip:far@{destination}",
        "route_set": "[]", "destination": destination, "cseq": 1_081_343,
        "call_info": json.dumps({"caller": "15551230001", "called": "4930123456", "trunk_in": "carrier",
                                 "trunk_out": "carrier", "sip_call_id": "sip-in-" + call_id}),
    }
    return {**row, **over}


async def far_end(answer: Any) -> tuple[Peer, str]:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(lambda: Peer(answer), local_addr=("127.0.0.3", 0))
    assert proto.transport is not None
    return proto, f"127.0.0.3:{proto.transport.get_extra_info('sockname')[1]}"


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_unclean_stop_ends_every_journaled_dialog_and_closes_its_calls(tmp_path: Path) -> None:
    far, where = await far_end(lambda call_id, nth: 481 if call_id == "sip-L3" else 200)
    settings = settings_for(tmp_path, free_port())
    store = Store(settings.store.path)
    store.journal.add(journal_row("c1", "L1", where))
    store.journal.add(journal_row("c1", "L2", where, answered_at=1001.0))
    store.journal.add(journal_row("c2", "L3", where, kind="session", call_info=json.dumps({"user_number": "+4917"})))
    store.journal.add(journal_row("c3", "L4", where))
    store.add_cdr({"id": "c3", "sip_call_id": "", "caller": "", "called": "", "trunk_in": "", "trunk_out": "",
                   "outcome": "completed-a-hangup", "final_code": 200, "started_at": 1000.0, "duration_s": 5.0})
    metrics = Metrics()
    with capture_logs() as logs:
        report = await recovery.recover(store, settings, metrics, last_alive=1031.0)
    assert (report.unclean, report.byes_sent, report.byes_answered, report.byes_gone, report.byes_failed,
            report.cdrs_closed) == (True, 4, 3, 1, 0, 2)
    assert sorted(t.split("Call-ID: ")[1].split("\r\n")[0] for _, t, _ in far.got) == ["sip-L1", "sip-L2", "sip-L3",
                                                                                      "sip-L4"]
    c1, c2 = store.get_cdr("c1"), store.get_cdr("c2")
    assert c1 is not None and c2 is not None
    assert (c1["outcome"], c1["final_code"], c1["kind"], c1["caller"], c1["called"], c1["sip_call_id"]) == (
        "aborted", 200, "trunk", "15551230001", "4930123456", "sip-in-c1")
    assert c1["duration_s"] == 30.0  # from the first leg's answer to when the dead run was last alive
    assert (c2["outcome"], c2["kind"], c2["called"]) == ("aborted", "session", "+4917")
    assert store.get_cdr("c3")["outcome"] == "completed-a-hangup"  # type: ignore[index]  # its record stays
    assert store.journal.entries() == []
    warning = next(e for e in logs if e["event"] == "last stop was unclean")
    assert warning["log_level"] == "warning" and warning["byes_sent"] == 4 and warning["cdrs_closed"] == 2
    assert sample(metrics, "b2bua_unclean_start") == 1
    assert sample(metrics, "b2bua_recovery_byes_total", result="answered") == 3
    assert sample(metrics, "b2bua_recovery_byes_total", result="gone") == 1
    assert sample(metrics, "b2bua_recovery_cdrs_closed_total") == 2
    store.close()


async def test_unanswered_byes_are_reported_and_the_journal_is_still_emptied(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "BYE_BUDGET_S", 0.3)
    _, where = await far_end(lambda call_id, nth: None)
    settings = settings_for(tmp_path, free_port())
    store = Store(settings.store.path)
    store.journal.add(journal_row("c1", "L1", where))
    metrics = Metrics()
    with capture_logs() as logs:
        report = await recovery.recover(store, settings, metrics, last_alive=None)
    assert (report.unclean, report.byes_sent, report.byes_failed, report.cdrs_closed) == (False, 1, 1, 1)
    assert store.journal.entries() == [] and store.get_cdr("c1") is not None
    assert not any(e["event"] == "last stop was unclean" for e in logs)  # the marker said clean: info only
    assert any(e["event"] == "dialogs left by the last run ended" for e in logs)
    failed = next(e for e in logs if e["event"] == "dialogs not confirmed ended")
    assert failed["first"][0]["sip_call_id"] == "sip-L1" and failed["first"][0]["code"] == 0
    assert sample(metrics, "b2bua_recovery_byes_total", result="failed") == 1
    store.close()


async def test_a_taken_sip_port_fails_the_start_and_keeps_the_journal(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        settings = settings_for(tmp_path, taken.getsockname()[1])
        store = Store(settings.store.path)
        store.journal.add(journal_row("c1", "L1", "127.0.0.3:9"))
        with pytest.raises(StartupError, match="SIP port not free"):
            await recovery.recover(store, settings, Metrics(), last_alive=5.0)
    assert len(store.journal.entries()) == 1 and store.get_cdr("c1") is None
    store.close()


async def test_the_run_marker_tells_a_clean_stop_from_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "HEARTBEAT_S", 0.05)
    settings = settings_for(tmp_path, free_port())
    store = Store(settings.store.path)
    marker = settings.store.path.parent / recovery.MARKER_NAME
    metrics = Metrics()
    async with recovery.crash_recovered(store, settings, metrics) as report:
        assert not report.unclean and marker.exists() and oct(marker.stat().st_mode & 0o777) == "0o600"
        os.utime(marker, (1.0, 1.0))
        await asyncio.sleep(0.2)
        assert marker.stat().st_mtime > 1.0  # touched while running: the time a crash is taken to have happened
        assert json.loads(marker.read_text())["pid"] == os.getpid()
    assert not marker.exists()  # clean stop
    marker.write_text(json.dumps({"pid": 2**22 + 7}))  # a crash: the marker stayed, its process is gone
    with capture_logs() as logs:
        async with recovery.crash_recovered(store, settings, metrics) as report:
            assert report.unclean
    assert any(e["event"] == "last stop was unclean" for e in logs)
    store.close()


async def test_a_marker_held_by_a_running_b2bua_refuses_the_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, free_port())
    store = Store(settings.store.path)
    store.journal.add(journal_row("c1", "L1", "127.0.0.3:9"))
    marker = settings.store.path.parent / recovery.MARKER_NAME
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(30)", "b2bua")
    try:
        marker.write_text(json.dumps({"pid": other.pid}))
        with pytest.raises(StartupError, match="another b2bua runs"):
            async with recovery.crash_recovered(store, settings, Metrics()):
                pass
        assert marker.exists() and len(store.journal.entries()) == 1  # its live dialogs are left alone
    finally:
        other.kill()
        await other.wait()
    store.close()


async def test_a_store_that_refuses_the_records_does_not_stop_the_start(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    far, where = await far_end(lambda call_id, nth: 200)
    settings = settings_for(tmp_path, free_port())
    store = Store(settings.store.path)
    store.journal.add(journal_row("c1", "L1", where))

    def disk_full(row: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "add_cdr", disk_full)
    with capture_logs() as logs:
        report = await recovery.recover(store, settings, Metrics(), last_alive=5.0)
    assert (report.byes_answered, report.cdrs_closed) == (1, 0) and len(far.got) == 1
    assert len(store.journal.entries()) == 1  # kept: the next start ends it again (481) and writes the record
    assert any(e["event"] == "aborted calls' records not written; the journal is kept" for e in logs)
    store.close()
