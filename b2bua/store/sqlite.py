"""SQLite store: schema migrations and call detail records. One connection, used from the asyncio thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

# Append-only: each entry moves the schema one version up. Never edit a released step.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE cdr (
        id           TEXT PRIMARY KEY,
        sip_call_id  TEXT NOT NULL,
        caller       TEXT NOT NULL,
        called       TEXT NOT NULL,
        trunk_in     TEXT NOT NULL,
        trunk_out    TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        final_code   INTEGER NOT NULL,
        started_at   REAL NOT NULL,
        duration_s   REAL NOT NULL
    );
    CREATE INDEX cdr_started ON cdr(started_at);
    """,
]


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.migrate()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        v = self.schema_version
        for i, step in enumerate(MIGRATIONS[v:], start=v + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(None, (s.strip() for s in step.split(";"))):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {i}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add_cdr(self, row: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO cdr (id, sip_call_id, caller, called, trunk_in, trunk_out, outcome, final_code,"
            " started_at, duration_s) VALUES (:id, :sip_call_id, :caller, :called, :trunk_in, :trunk_out,"
            " :outcome, :final_code, :started_at, :duration_s)",
            row,
        )

    def recent_cdrs(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM cdr ORDER BY started_at DESC LIMIT ?", (limit,))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        self._db.close()
