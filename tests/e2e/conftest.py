from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.procs import B2bua, stop_leftovers
from tests.support.sse import EventWatcher


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A failing test must not leave a SIPp or phone holding ports for the next test."""
    yield
    stop_leftovers()


@pytest.fixture
def start_b2bua(tmp_path: Path) -> Iterator[Callable[..., B2bua]]:
    """Start real B2BUA processes; each must exit cleanly (rc 0) on SIGTERM at the end of the test."""
    started: list[B2bua] = []

    def start(**kw: object) -> B2bua:
        b = B2bua(tmp_path / f"b2bua{len(started)}", **kw)  # type: ignore[arg-type]
        started.append(b)
        return b.start()

    yield start
    for b in started:
        rc = b.stop()
        assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


@pytest.fixture
def b2bua(start_b2bua: Callable[..., B2bua]) -> B2bua:
    return start_b2bua()


@pytest.fixture
def watcher_factory() -> Iterator[Callable[[B2bua, str, str], EventWatcher]]:
    made: list[EventWatcher] = []

    def make(b: B2bua, uid: str, token: str) -> EventWatcher:
        w = EventWatcher(f"http://127.0.0.1:{b.http_port}/v1/users/{uid}/events", token)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
