"""The live-dialog journal table: keyed by the dialog (Call-ID and our tag), replaced when written again, removed
one dialog at a time, kept across a process dying (another connection sees it), emptied at recovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from b2bua.store.journal import COLUMNS
from b2bua.store.sqlite import MIGRATIONS, Store


def row(sip_call_id: str, tag: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sip_call_id": sip_call_id, "local_tag": tag, "leg_id": "L1", "call_id": "c1", "kind": "trunk", "user_id": "",
        "call_started": 100.0, "answered_at": 101.5, "local_uri": "sip:b2bua@127.0.0.1", "remote_uri": "sip:x@h",
        "remote_tag": "r", "request_uri": "sip:x@127.0.0.3:5060", "route_set": json.dumps(["<sip:p;lr>"]),
        "destination": "127.0.0.3:5060", "cseq": 1_081_343, "call_info": json.dumps({"caller": "1"}),
    }
    return {**base, **over}


def test_the_journal_is_a_migration_of_its_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.schema_version == len(MIGRATIONS)
    assert [i for i, step in enumerate(MIGRATIONS) if "dialog_journal" in step] == [4]
    assert store.journal.entries() == []
    store.close()


def test_rows_round_trip_are_replaced_by_key_and_removed_one_dialog_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    j = store.journal
    j.add(row("cid-1", "a"))
    j.add(row("cid-1", "b", leg_id="L2", answered_at=101.0))  # a call looping back to us: the same Call-ID
    j.add(row("cid-2", "a", call_id="c2", answered_at=99.0))
    j.add(row("cid-1", "a", cseq=7))  # written again: replaced, not duplicated
    got = j.entries()
    assert [(r["sip_call_id"], r["local_tag"]) for r in got] == [("cid-1", "b"), ("cid-1", "a"), ("cid-2", "a")]
    assert set(got[0]) == set(COLUMNS) and next(r for r in got if r["local_tag"] == "a")["cseq"] == 7
    assert j.remove("cid-1", "a") is True
    assert j.remove("cid-1", "a") is False
    assert [(r["sip_call_id"], r["local_tag"]) for r in j.entries()] == [("cid-1", "b"), ("cid-2", "a")]
    assert j.clear() == 2 and j.entries() == []
    store.close()


def test_a_written_row_outlives_its_connection(tmp_path: Path) -> None:
    """What a process writes before it is killed is what the next one reads (autocommit, WAL)."""
    first = Store(tmp_path / "db.sqlite")
    first.journal.add(row("cid-9", "t"))
    # no close(): the process is gone; a new connection (the next start) opens the same file
    second = Store(tmp_path / "db.sqlite")
    assert [r["sip_call_id"] for r in second.journal.entries()] == ["cid-9"]
    second.close()
    first.close()
