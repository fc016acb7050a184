"""Database faults where they happen (issue 24, findings 2 and 5): a full disk fails writes, which are counted
by operation, logged and shown on /health until a write works again; a database file deleted under the running
node is noticed and writes are refused (they would be lost at the next start). Real disks: a small tmpfs."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from b2bua.ops.metrics import Metrics
from b2bua.store.faults import is_write, operation
from b2bua.store.sqlite import Store
from b2bua.telecommuter.users import Desk
from tests.support.disks import fill, free, tmpfs


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "var", "1m") as where:
        yield where


def errors(metrics: Metrics, op: str) -> float:
    return metrics.registry.get_sample_value("b2bua_store_errors_total", {"operation": op}) or 0.0


def test_a_full_disk_fails_writes_counts_them_and_degrades_health_until_a_write_works(disk: Path) -> None:
    metrics = Metrics()
    store = Store(disk / "b2bua.sqlite", metrics)
    store.add_desk(Desk("300", "", "sip:300@10.0.0.1"))
    fill(disk)
    with capture_logs() as logs, pytest.raises(sqlite3.OperationalError, match="full"):
        store.add_desk(Desk("301", "", "sip:301@10.0.0.1"))
    with pytest.raises(sqlite3.OperationalError):
        store.add_desk(Desk("302", "", "sip:302@10.0.0.1"))
    assert errors(metrics, "insert:desks") == 2
    (line,) = [e for e in logs if e["event"] == "database operation failed"]
    assert line["log_level"] == "error" and line["operation"] == "insert:desks" and str(disk) in line["path"]
    assert store.health() == "degraded: database or disk is full"
    assert [d.extension for d in store.list_desks()] == ["300"], "reads still work"
    assert store.probe().startswith("degraded"), "the probe write fails while the disk is full"
    free(disk)
    assert store.probe() == "ok", "nothing else wrote: the probe finds the disk usable again"
    store.add_desk(Desk("301", "", "sip:301@10.0.0.1"))
    store.close()


def test_a_database_deleted_while_running_refuses_writes_and_says_where_it_can_still_be_read(tmp_path: Path) -> None:
    metrics = Metrics()
    path = tmp_path / "b2bua.sqlite"
    store = Store(path, metrics)
    store.add_desk(Desk("300", "", "sip:300@10.0.0.1"))
    assert store.health() == "ok"
    os.unlink(path)
    with capture_logs() as logs:
        assert store.health().startswith(f"degraded: database file {path} was deleted or replaced while running")
        with pytest.raises(sqlite3.OperationalError, match="deleted or replaced"):
            store.add_desk(Desk("301", "", "sip:301@10.0.0.1"))
    (line,) = [e for e in logs if e["event"] == "database file deleted or replaced while running"]
    assert line["log_level"] == "error" and line["open_copy"].startswith(f"/proc/{os.getpid()}/fd/")
    assert Path(line["open_copy"]).read_bytes()[:15] == b"SQLite format 3", "the operator can still save it"
    assert [d.extension for d in store.list_desks()] == ["300"], "reads still work"
    assert errors(metrics, "insert:desks") == 1 and not path.exists(), "no new empty file either"
    store.close()


def test_a_database_replaced_while_running_is_noticed_too(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.sqlite"
    store = Store(path)
    os.replace(Store(tmp_path / "other.sqlite").path, path)
    assert "deleted or replaced" in store.health()
    store.close()


def test_statements_are_labelled_by_operation_and_table() -> None:
    assert operation("INSERT INTO cdr (id) VALUES (?)") == "insert:cdr"
    assert operation("  UPDATE users SET name = ?") == "update:users"
    assert operation("DELETE FROM voicemail WHERE id = ?") == "delete:voicemail"
    assert operation("SELECT COUNT(*) FROM voicemail WHERE user_id = ?") == "select:voicemail"
    assert (operation("BEGIN IMMEDIATE"), operation("COMMIT"), operation("PRAGMA user_version = 4")) == (
        "begin", "commit", "pragma")
    assert is_write("INSERT INTO cdr VALUES (1)") and is_write("PRAGMA user_version = 3")
    assert not is_write("SELECT 1") and not is_write("PRAGMA user_version") and not is_write("ROLLBACK")
