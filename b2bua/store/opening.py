"""Which database a node runs on, decided at start. ``b2bua init`` makes a new one and a marker beside it (this
node has a database); ``b2bua run`` opens only an existing one. A missing database is never replaced silently by
an empty one: without the marker it is a first start that needs ``init``; with it, the database was deleted or
moved after the node ran, and both commands refuse until it is restored (or ``init --recreate`` is asked for).
A database that cannot be opened is reported with its path and the reason, not a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

from b2bua.ops.metrics import Metrics
from b2bua.store.sqlite import Store

MARKER_SUFFIX = ".initialised"


class StoreUnusable(Exception):
    """The database cannot be opened or created; ``reason`` says why, for the operator."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def marker_of(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def initialise(path: Path, init_command: str, *, recreate: bool = False) -> str:
    """Create the schema for a first start; returns what was done, one line for the operator. An existing
    database is left as it is (running ``init`` again is safe)."""
    if path.exists():
        store = open_existing(path, None, init_command)
        version = store.schema_version
        store.close()
        return f"{path}: a database exists already (schema version {version}); left as it is"
    marker = marker_of(path)
    if marker.exists() and not recreate:
        raise StoreUnusable(path, _deleted(path, marker, init_command))
    try:
        store = Store(path, create=True)
    except (sqlite3.Error, OSError) as e:
        raise StoreUnusable(path, diagnose(path, e)) from e
    version = store.schema_version
    store.close()
    _write_marker(marker, path)
    return f"{path}: new database created (schema version {version})"


def open_existing(path: Path, metrics: Metrics | None, init_command: str) -> Store:
    """The node's database, migrated to this version; raises ``StoreUnusable`` (missing, deleted, unreadable,
    read-only, not a database)."""
    marker = marker_of(path)
    if not path.exists():
        if marker.exists():
            raise StoreUnusable(path, _deleted(path, marker, init_command))
        raise StoreUnusable(path, f"no database at {path}; run `{init_command}` for a first start")
    try:
        store = Store(path, metrics, create=False)
    except (sqlite3.Error, OSError) as e:
        raise StoreUnusable(path, diagnose(path, e)) from e
    if not marker.exists():  # a database older than the marker: this node has one now
        with contextlib.suppress(OSError):  # only a later deletion would go unrecognised
            _write_marker(marker, path)
    return store


def diagnose(path: Path, error: BaseException) -> str:
    """Why SQLite could not open ``path`` ("unable to open database file" alone helps nobody)."""
    said = str(error) or type(error).__name__
    if path.is_dir():
        return f"{path} is a directory, not a database file ({said})"
    where = path.parent
    try:
        st = os.statvfs(where)
    except OSError as e:
        return f"cannot reach {where}: {e.strerror or e} ({said})"
    if st.f_flag & os.ST_RDONLY:
        return (f"{path} is on a read-only file system: SQLite must write the database and its -wal and -shm "
                f"files beside it ({said})")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by uid {os.getuid()} ({said})"
    if not os.access(where, os.W_OK | os.X_OK):
        return f"directory {where} is not writable by uid {os.getuid()}: SQLite needs its -wal and -shm files there"\
               f" ({said})"
    return f"{path}: {said}"


def _deleted(path: Path, marker: Path, init_command: str) -> str:
    try:
        created = json.loads(marker.read_text()).get("created", "")
    except (OSError, ValueError):
        created = ""
    since = f" on {created}" if created else ""
    return (f"the database {path} is gone, but this node was initialised{since} (marker {marker}): it was "
            f"deleted or moved after the node ran. Restore it from a backup; to start over with an empty database "
            f"instead, run `{init_command} --recreate`")


def _write_marker(marker: Path, path: Path) -> None:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    marker.write_text(json.dumps({"database": str(path.absolute()), "created": created}) + "\n")
