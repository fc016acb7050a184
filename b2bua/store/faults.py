"""Database faults where they happen. Every statement goes through ``GuardedConnection``, a failure counted by
operation (``b2bua_store_errors_total{operation}``), logged (once per distinct error) and remembered for /health
until a write works again. ``StoreFaults`` also notices the database file deleted or replaced under the running
node: the open file still answers, but whatever is written to it is lost at the next start, so from then on
writes are refused (the API answers 503, call records wait in memory) and /health says why."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.telecommuter.users import Conflict

_TABLE = re.compile(r"\b(?:into|update|from|table)\s+(\w+)", re.IGNORECASE)
_WRITES = {"insert", "update", "delete", "replace", "begin", "commit", "create", "alter", "drop"}


def operation(sql: str) -> str:
    """A statement as a low-cardinality label: "insert:cdr", "select:users", "commit", "pragma"."""
    words = sql.split(None, 1)
    verb = words[0].lower() if words else "?"
    table = _TABLE.search(sql) if verb in ("insert", "update", "delete", "select", "replace") else None
    return f"{verb}:{table.group(1).lower()}" if table else verb


def is_write(sql: str) -> bool:
    words = sql.split(None, 1)
    verb = words[0].lower() if words else ""
    return verb in _WRITES or (verb == "pragma" and "=" in sql)


class StoreFaults:
    def __init__(self, path: Path, metrics: Metrics | None) -> None:
        self.path = path
        self.metrics = metrics
        self.error = ""  # the last failure, until a write works again
        self._identity: tuple[int, int] | None = None
        self._gone = ""
        self._log = get_logger("store")

    def opened(self) -> None:
        """Remember which file is open, to notice it deleted or replaced later."""
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)

    def gone(self) -> str:
        """Why the file at ``path`` is no longer the open database ("" while it is): one stat, logged once."""
        if self._gone or self._identity is None:
            return self._gone
        try:
            st = os.stat(self.path)
            replaced = (st.st_dev, st.st_ino) != self._identity
        except FileNotFoundError:
            replaced = True
        except OSError:
            return ""  # cannot tell (e.g. a directory we may not search): the next look decides
        if replaced:
            self._gone = (f"database file {self.path} was deleted or replaced while running: writes are refused "
                          f"until it is restored and the node restarted")
            self._log.error("database file deleted or replaced while running", path=str(self.path),
                            open_copy=_open_copy(self.path) or None)
        return self._gone

    def failed(self, sql: str, error: Exception) -> None:
        op = operation(sql)
        if self.metrics is not None:
            self.metrics.store_errors.labels(op).inc()
        if str(error) != self.error:
            self._log.error("database operation failed", operation=op, error=str(error), path=str(self.path))
        self.error = str(error)

    def wrote(self) -> None:
        if self.error:
            self._log.info("database writes work again", path=str(self.path))
            self.error = ""

    def status(self) -> str:
        """"ok", or "degraded: <why>" (for /health)."""
        why = self.gone() or self.error
        return f"degraded: {why}" if why else "ok"


class GuardedConnection(sqlite3.Connection):
    """A sqlite3 connection whose ``execute`` reports every database error to ``StoreFaults`` and refuses writes
    once the file is gone (made by ``connect``)."""

    faults: StoreFaults | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        faults = self.faults
        if faults is None:
            return super().execute(sql, parameters)
        write = is_write(sql)
        gone = faults.gone() if write else ""
        if gone:
            refused = sqlite3.OperationalError(gone)
            faults.failed(sql, refused)
            raise refused
        try:
            cursor = super().execute(sql, parameters)
        except sqlite3.IntegrityError:
            raise  # a conflict, not a fault (the store turns it into the domain's Conflict)
        except sqlite3.DatabaseError as e:
            faults.failed(sql, e)
            raise
        if write and not self.in_transaction:
            faults.wrote()
        return cursor


def connect(path: Path, faults: StoreFaults, create: bool) -> GuardedConnection:
    """``create=False`` opens an existing database only: a missing one is an error, never a new empty file."""
    target = str(path) if create else f"{path.absolute().as_uri()}?mode=rw"
    conn = sqlite3.connect(target, uri=not create, isolation_level=None, check_same_thread=False,
                           factory=GuardedConnection)
    conn.faults = faults
    return conn


def _open_copy(path: Path) -> str:
    """Where a deleted database can still be read while this process holds it open (for the operator's log)."""
    fds = Path("/proc/self/fd")
    try:
        for fd in fds.iterdir():
            try:
                if os.readlink(fd) == f"{path.absolute()} (deleted)":
                    return f"/proc/{os.getpid()}/fd/{fd.name}"
            except OSError:
                continue
    except OSError:
        pass
    return ""


@contextlib.contextmanager
def conflicts() -> Iterator[None]:
    """A UNIQUE or PRIMARY KEY violation is the domain's ``Conflict``; other errors stay what they are."""
    try:
        yield
    except sqlite3.IntegrityError as e:
        raise Conflict(str(e)) from None
