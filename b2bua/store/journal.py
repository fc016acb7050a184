"""The journal of live dialogs: one row per confirmed leg, removed when the leg ends.

What is left in it at start was up when the last run died: the next start ends those dialogs (BYE) and closes
their calls' records. Rows are keyed by the dialog (SIP Call-ID and our tag), never by the engine's leg id, which
starts again at L1 in every run. Autocommit writes: WAL keeps each one across a process crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

COLUMNS = ("sip_call_id", "local_tag", "leg_id", "call_id", "kind", "user_id", "call_started", "answered_at",
           "local_uri", "remote_uri", "remote_tag", "request_uri", "route_set", "destination", "cseq", "call_info")


class DialogJournal:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def add(self, row: Mapping[str, Any]) -> None:
        """Record a confirmed dialog (again: the same dialog replaces its row)."""
        values = {c: row[c] for c in COLUMNS}
        self._db.execute(f"INSERT OR REPLACE INTO dialog_journal ({', '.join(COLUMNS)})"
                         f" VALUES ({', '.join(':' + c for c in COLUMNS)})", values)

    def remove(self, sip_call_id: str, local_tag: str) -> bool:
        return self._db.execute("DELETE FROM dialog_journal WHERE sip_call_id = ? AND local_tag = ?",
                                (sip_call_id, local_tag)).rowcount == 1

    def entries(self) -> list[dict[str, Any]]:
        cur = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM dialog_journal ORDER BY call_id, answered_at")
        return [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]

    def clear(self) -> int:
        return int(self._db.execute("DELETE FROM dialog_journal").rowcount)
