"""SQLite store: schema migrations and call detail records. One connection, used from the asyncio thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from b2bua.telecommuter.users import Mode, User

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
    """
    CREATE TABLE users (
        id                  TEXT PRIMARY KEY,
        name                TEXT NOT NULL,
        extension           TEXT NOT NULL UNIQUE,
        business_number     TEXT NOT NULL UNIQUE,
        telecommuter_number TEXT NOT NULL DEFAULT '',
        mode                TEXT NOT NULL DEFAULT 'off',
        class_of_service    TEXT NOT NULL,
        confirm_digit       TEXT NOT NULL DEFAULT '',
        privacy             INTEGER NOT NULL DEFAULT 0,
        token_hash          TEXT NOT NULL UNIQUE,
        created_at          REAL NOT NULL,
        last_test_result    TEXT NOT NULL DEFAULT '',
        last_test_at        REAL NOT NULL DEFAULT 0
    );
    ALTER TABLE cdr ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE cdr ADD COLUMN kind TEXT NOT NULL DEFAULT 'trunk';
    """,
]

_USER_COLUMNS = ("id", "name", "extension", "business_number", "telecommuter_number", "mode", "class_of_service",
                 "confirm_digit", "privacy", "created_at", "last_test_result", "last_test_at")
_UPDATABLE = set(_USER_COLUMNS) - {"id", "created_at"}


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
        row = {"user_id": "", "kind": "trunk", **row}
        self._db.execute(
            "INSERT INTO cdr (id, sip_call_id, caller, called, trunk_in, trunk_out, outcome, final_code,"
            " started_at, duration_s, user_id, kind) VALUES (:id, :sip_call_id, :caller, :called, :trunk_in,"
            " :trunk_out, :outcome, :final_code, :started_at, :duration_s, :user_id, :kind)",
            row,
        )

    # ------------------------------------------------------------------------------------ users
    def add_user(self, user: User, token_hash: str) -> None:
        row = _user_row(user)
        row["token_hash"] = token_hash
        cols = ", ".join(row)
        self._db.execute(f"INSERT INTO users ({cols}) VALUES ({', '.join(':' + c for c in row)})", row)

    def get_user(self, user_id: str) -> User | None:
        return self._one("SELECT * FROM users WHERE id = ?", (user_id,))

    def user_by_token_hash(self, token_hash: str) -> User | None:
        return self._one("SELECT * FROM users WHERE token_hash = ?", (token_hash,))

    def list_users(self) -> list[User]:
        cur = self._db.execute("SELECT * FROM users ORDER BY created_at")
        cols = [c[0] for c in cur.description]
        return [_user(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]

    def update_user(self, user_id: str, **fields: Any) -> User | None:
        bad = set(fields) - _UPDATABLE
        if bad:
            raise ValueError(f"not updatable: {sorted(bad)}")
        if fields:
            sets = ", ".join(f"{k} = :{k}" for k in fields)
            values = {k: (v.value if isinstance(v, Mode) else int(v) if isinstance(v, bool) else v)
                      for k, v in fields.items()}
            self._db.execute(f"UPDATE users SET {sets} WHERE id = :_id", {**values, "_id": user_id})
        return self.get_user(user_id)

    def set_token_hash(self, user_id: str, token_hash: str) -> bool:
        return self._db.execute("UPDATE users SET token_hash = ? WHERE id = ?", (token_hash, user_id)).rowcount == 1

    def delete_user(self, user_id: str) -> bool:
        return self._db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 1

    def _one(self, sql: str, args: tuple[Any, ...]) -> User | None:
        cur = self._db.execute(sql, args)
        r = cur.fetchone()
        if r is None:
            return None
        return _user(dict(zip([c[0] for c in cur.description], r, strict=True)))

    def recent_cdrs(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM cdr ORDER BY started_at DESC LIMIT ?", (limit,))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        self._db.close()


def _user_row(u: User) -> dict[str, Any]:
    return {c: (getattr(u, c).value if c == "mode" else int(u.privacy) if c == "privacy" else getattr(u, c))
            for c in _USER_COLUMNS}


def _user(row: dict[str, Any]) -> User:
    return User(**{c: row[c] for c in _USER_COLUMNS if c not in ("mode", "privacy")},
                mode=Mode(row["mode"]), privacy=bool(row["privacy"]))
