"""The SQLite store's own fault handling: a transaction whose COMMIT the full disk refuses is rolled back (the
next transaction must not find one still open), and ``create=False`` never makes a new empty database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from b2bua.store.sqlite import Store
from b2bua.telecommuter.users import Desk
from tests.support.disks import fill, free, tmpfs


def test_a_transaction_the_full_disk_refuses_leaves_none_open(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "var", "1m") as disk:
        store = Store(disk / "b2bua.sqlite")
        store.add_desk(Desk("300", "", "sip:300@10.0.0.1"))
        fill(disk)
        with pytest.raises(sqlite3.OperationalError):
            store.set_occupant("300", "u1")
        free(disk)
        assert store.set_occupant("300", "u1"), "a transaction can start again"
        assert store.get_desk("300") == Desk("300", "", "sip:300@10.0.0.1", "u1")
        store.close()


def test_opening_an_existing_database_only_never_creates_one(tmp_path: Path) -> None:
    path = tmp_path / "var" / "b2bua.sqlite"
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        Store(path, create=False)
    assert not path.exists() and not path.parent.exists()
    Store(path).close()
    store = Store(path, create=False)
    assert store.schema_version > 0
    store.close()
