"""Which database a node runs on (issue 24, finding 5): a missing database is an error unless the first start
is explicit (``b2bua init``); a database deleted after the node ran is never replaced silently by an empty one;
a database that cannot be opened is reported with its path and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2bua.store.opening import StoreUnusable, initialise, marker_of, open_existing
from b2bua.store.sqlite import Store
from b2bua.telecommuter.users import Desk
from tests.support.disks import read_only, tmpfs

INIT = "b2bua init -c /etc/b2bua.toml"


def unusable(reason_part: str) -> pytest.RaisesExc[StoreUnusable]:
    return pytest.raises(StoreUnusable, check=lambda e: reason_part in e.reason)


def test_a_first_start_needs_init_and_nothing_is_created_without_it(tmp_path: Path) -> None:
    path = tmp_path / "var" / "b2bua.sqlite"
    with unusable(f"no database at {path}; run `{INIT}` for a first start"):
        open_existing(path, None, INIT)
    assert not path.parent.exists()
    assert initialise(path, INIT).startswith(f"{path}: new database created (schema version ")
    marker = json.loads(marker_of(path).read_text())
    assert marker["database"] == str(path) and marker["created"]
    store = open_existing(path, None, INIT)
    store.add_desk(Desk("300", "", "sip:300@10.0.0.1"))
    store.close()
    assert "exists already" in initialise(path, INIT), "init again is safe"
    store = open_existing(path, None, INIT)
    assert [d.extension for d in store.list_desks()] == ["300"], "and left the data alone"
    store.close()


def test_a_database_deleted_after_the_node_ran_is_not_recreated_silently(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.sqlite"
    initialise(path, INIT)
    path.unlink()
    for attempt in (lambda: open_existing(path, None, INIT), lambda: initialise(path, INIT)):
        with unusable(f"the database {path} is gone, but this node was initialised on "):
            attempt()
        assert not path.exists()
    with unusable(f"`{INIT} --recreate`"):
        open_existing(path, None, INIT)
    assert initialise(path, INIT, recreate=True).startswith(f"{path}: new database created")
    open_existing(path, None, INIT).close()


def test_a_database_from_before_the_marker_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.sqlite"
    Store(path).close()
    open_existing(path, None, INIT).close()
    assert marker_of(path).exists()


def test_a_read_only_database_is_reported_with_its_path_and_why(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "var", "1m") as disk:
        path = disk / "b2bua.sqlite"
        initialise(path, INIT)
        read_only(disk)
        try:
            with unusable(f"{path} is on a read-only file system"):
                open_existing(path, None, INIT)
        finally:
            read_only(disk, False)


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: p.write_bytes(b"not a database, just text" * 100), "file is not a database"),
    (lambda p: p.mkdir(), "is a directory, not a database file"),
])
def test_what_is_not_a_database_is_reported(tmp_path: Path, make: object, why: str) -> None:
    path = tmp_path / "b2bua.sqlite"
    assert callable(make)
    make(path)
    with pytest.raises(StoreUnusable) as e:
        open_existing(path, None, INIT)
    assert str(path) in e.value.reason and why in e.value.reason
