"""SQLite store: schema migrations and call detail records. One connection, used from the asyncio thread."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from b2bua.ops.metrics import Metrics
from b2bua.store.faults import StoreFaults, conflicts, connect
from b2bua.store.journal import DialogJournal
from b2bua.store.routing import SCHEMA as ROUTING_SCHEMA
from b2bua.store.routing import RoutingTables
from b2bua.telecommuter.users import Desk, Message, Mode, User

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
    """
    CREATE TABLE desks (
        extension TEXT PRIMARY KEY,
        name      TEXT NOT NULL DEFAULT '',
        contact   TEXT NOT NULL,
        occupant  TEXT UNIQUE
    );
    ALTER TABLE users ADD COLUMN voicemail INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE users ADD COLUMN call_waiting INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN restore_desk TEXT NOT NULL DEFAULT '';
    CREATE TABLE voicemail (
        id          TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL,
        caller      TEXT NOT NULL,
        caller_name TEXT NOT NULL,
        called      TEXT NOT NULL,
        received_at REAL NOT NULL,
        duration_s  REAL NOT NULL,
        path        TEXT NOT NULL,
        read        INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX voicemail_user ON voicemail(user_id, received_at);
    """,
    """
    ALTER TABLE users ADD COLUMN no_supervision INTEGER NOT NULL DEFAULT 0;
    """,
    """
    CREATE TABLE dialog_journal (
        sip_call_id  TEXT NOT NULL,
        local_tag    TEXT NOT NULL,
        leg_id       TEXT NOT NULL,
        call_id      TEXT NOT NULL,
        kind         TEXT NOT NULL,
        user_id      TEXT NOT NULL DEFAULT '',
        call_started REAL NOT NULL,
        answered_at  REAL NOT NULL,
        local_uri    TEXT NOT NULL,
        remote_uri   TEXT NOT NULL,
        remote_tag   TEXT NOT NULL,
        request_uri  TEXT NOT NULL,
        route_set    TEXT NOT NULL DEFAULT '[]',
        destination  TEXT NOT NULL,
        cseq         INTEGER NOT NULL,
        call_info    TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (sip_call_id, local_tag)
    );
    """,
    ROUTING_SCHEMA,  # live routing settings, profiles, presence (store/routing.py)
]

_USER_COLUMNS = ("id", "name", "extension", "business_number", "telecommuter_number", "mode", "class_of_service",
                 "confirm_digit", "privacy", "created_at", "last_test_result", "last_test_at", "voicemail",
                 "call_waiting", "restore_desk", "no_supervision")
_BOOL_COLUMNS = ("privacy", "voicemail", "call_waiting", "no_supervision")
_UPDATABLE = set(_USER_COLUMNS) - {"id", "created_at"}


class Store(RoutingTables):
    def __init__(self, path: Path, metrics: Metrics | None = None, *, create: bool = True) -> None:
        """``create=False``: the database must exist (``b2bua run``; only ``b2bua init`` makes a new one)."""
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.faults = StoreFaults(path, metrics)  # what went wrong lately: counted, logged, on /health
        self._db = connect(path, self.faults, create)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.faults.opened()
        self.migrate()
        self.journal = DialogJournal(self._db)  # live dialogs, for crash recovery

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:  # a failed COMMIT (disk full) may leave the transaction open
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def migrate(self) -> None:
        v = self.schema_version
        for i, step in enumerate(MIGRATIONS[v:], start=v + 1):
            with self._transaction():
                for stmt in filter(None, (s.strip() for s in step.split(";"))):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {i}")

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
        with conflicts():
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
            with conflicts():
                self._db.execute(f"UPDATE users SET {sets} WHERE id = :_id", {**values, "_id": user_id})
        return self.get_user(user_id)

    def set_token_hash(self, user_id: str, token_hash: str) -> bool:
        return self._db.execute("UPDATE users SET token_hash = ? WHERE id = ?", (token_hash, user_id)).rowcount == 1

    def delete_user(self, user_id: str) -> bool:
        """The user, their desk login, messages' rows, profiles and presence go together (the caller removes the
        files)."""
        with self._transaction():
            self._db.execute("UPDATE desks SET occupant = NULL WHERE occupant = ?", (user_id,))
            self._db.execute("DELETE FROM voicemail WHERE user_id = ?", (user_id,))
            self._delete_routing(user_id)
            return self._db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 1

    # ------------------------------------------------------------------------------------ desks
    def add_desk(self, desk: Desk) -> None:
        with conflicts():
            self._db.execute("INSERT INTO desks (extension, name, contact, occupant) VALUES (?, ?, ?, ?)",
                             (desk.extension, desk.name, desk.contact, desk.occupant or None))

    def update_desk(self, extension: str, *, name: str | None = None, contact: str | None = None) -> Desk | None:
        for col, value in (("name", name), ("contact", contact)):
            if value is not None:
                self._db.execute(f"UPDATE desks SET {col} = ? WHERE extension = ?", (value, extension))
        return self.get_desk(extension)

    def get_desk(self, extension: str) -> Desk | None:
        r = self._db.execute("SELECT extension, name, contact, occupant FROM desks WHERE extension = ?",
                             (extension,)).fetchone()
        return Desk(r[0], r[1], r[2], r[3] or "") if r else None

    def list_desks(self) -> list[Desk]:
        rows = self._db.execute("SELECT extension, name, contact, occupant FROM desks ORDER BY extension")
        return [Desk(r[0], r[1], r[2], r[3] or "") for r in rows.fetchall()]

    def desk_of(self, user_id: str) -> Desk | None:
        r = self._db.execute("SELECT extension FROM desks WHERE occupant = ?", (user_id,)).fetchone()
        return self.get_desk(r[0]) if r else None

    def set_occupant(self, extension: str, user_id: str, *, only_if_free: bool = True) -> bool:
        """Log a user in at a desk (one desk per user, one user per desk); False if someone else is there."""
        with self._transaction():
            cur = self._db.execute("SELECT occupant FROM desks WHERE extension = ?", (extension,)).fetchone()
            if cur is None or (only_if_free and cur[0] not in (None, user_id)):
                return False
            self._db.execute("UPDATE desks SET occupant = NULL WHERE occupant = ?", (user_id,))
            self._db.execute("UPDATE desks SET occupant = ? WHERE extension = ?", (user_id, extension))
            return True

    def clear_occupant(self, user_id: str) -> str:
        """Log the user out of whatever desk they are at; returns that desk's extension ("" if none)."""
        desk = self.desk_of(user_id)
        self._db.execute("UPDATE desks SET occupant = NULL WHERE occupant = ?", (user_id,))
        return desk.extension if desk else ""

    def delete_desk(self, extension: str) -> bool:
        return self._db.execute("DELETE FROM desks WHERE extension = ?", (extension,)).rowcount == 1

    # ------------------------------------------------------------------------------------ voicemail
    def add_message(self, m: Message) -> None:
        self._db.execute(
            "INSERT INTO voicemail (id, user_id, caller, caller_name, called, received_at, duration_s, path, read)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.id, m.user_id, m.caller, m.caller_name, m.called, m.received_at, m.duration_s, m.path, int(m.read)))

    def messages(self, user_id: str) -> list[Message]:
        rows = self._db.execute(f"SELECT {_MSG_COLS} FROM voicemail WHERE user_id = ? ORDER BY received_at DESC",
                                (user_id,)).fetchall()
        return [_message(r) for r in rows]

    def message(self, user_id: str, message_id: str) -> Message | None:
        r = self._db.execute(f"SELECT {_MSG_COLS} FROM voicemail WHERE user_id = ? AND id = ?",
                             (user_id, message_id)).fetchone()
        return _message(r) if r else None

    def mark_message(self, user_id: str, message_id: str, read: bool) -> bool:
        return self._db.execute("UPDATE voicemail SET read = ? WHERE user_id = ? AND id = ?",
                                (int(read), user_id, message_id)).rowcount == 1

    def delete_message(self, user_id: str, message_id: str) -> bool:
        return self._db.execute("DELETE FROM voicemail WHERE user_id = ? AND id = ?",
                                (user_id, message_id)).rowcount == 1

    def message_counts(self, user_id: str) -> tuple[int, int]:
        """(total, unread)."""
        r = self._db.execute("SELECT COUNT(*), COALESCE(SUM(read = 0), 0) FROM voicemail WHERE user_id = ?",
                             (user_id,)).fetchone()
        return int(r[0]), int(r[1])

    def _one(self, sql: str, args: tuple[Any, ...]) -> User | None:
        cur = self._db.execute(sql, args)
        r = cur.fetchone()
        if r is None:
            return None
        return _user(dict(zip([c[0] for c in cur.description], r, strict=True)))

    def get_cdr(self, call_id: str) -> dict[str, Any] | None:
        cur = self._db.execute("SELECT * FROM cdr WHERE id = ?", (call_id,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))

    def recent_cdrs(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM cdr ORDER BY started_at DESC LIMIT ?", (limit,))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def health(self) -> str:
        """"ok", or "degraded: <why>": the last operation failed, or the file was deleted under us."""
        return self.faults.status()

    def probe(self) -> str:
        """After a failure, try a harmless write (nothing else may come to clear it); returns ``health()``."""
        if self.faults.error and not self.faults.gone():
            with contextlib.suppress(sqlite3.DatabaseError):
                self._db.execute(f"PRAGMA user_version = {self.schema_version}")
        return self.health()

    def close(self) -> None:
        self._db.close()



_MSG_COLS = "id, user_id, caller, caller_name, called, received_at, duration_s, path, read"


def _message(r: tuple[Any, ...]) -> Message:
    return Message(r[0], r[1], r[2], r[3], r[4], float(r[5]), float(r[6]), r[7], bool(r[8]))


def _user_row(u: User) -> dict[str, Any]:
    return {c: (getattr(u, c).value if c == "mode" else int(getattr(u, c)) if c in _BOOL_COLUMNS
                else getattr(u, c)) for c in _USER_COLUMNS}


def _user(row: dict[str, Any]) -> User:
    values: dict[str, Any] = {c: row[c] for c in _USER_COLUMNS}
    values.update({c: bool(row[c]) for c in _BOOL_COLUMNS}, mode=Mode(row["mode"]))
    return User(**values)
