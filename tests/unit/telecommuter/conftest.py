"""The whole node in-process around the fake engine, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.inprocess import InProcess
from tests.unit.control.helpers import node


@pytest.fixture
async def t(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with node(tmp_path) as started:
        yield started
