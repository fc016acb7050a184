"""Disk faults for tests: a small tmpfs (full or read-only on demand), always unmounted at the end.

The tests run as root, which ignores file modes, so "read-only" has to be a read-only mount; "full" is a tmpfs
whose last free block a filler file took."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

FILLER = ".filler"


@contextmanager
def tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (created if needed) for the block; unmounted whatever happens."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        with suppress(OSError):
            (where / FILLER).unlink()
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> int:
    """Take every free byte of the file system ``where`` is on; returns how many bytes the filler took."""
    fd = os.open(where / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    taken = 0
    try:
        for block in (65536, 4096, 512, 1):
            with suppress(OSError):
                while True:
                    taken += os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    return taken


def free(where: Path) -> None:
    """Give back what ``fill`` took."""
    (where / FILLER).unlink(missing_ok=True)


def free_bytes(where: Path) -> int:
    st = os.statvfs(where)
    return st.f_bavail * st.f_frsize


def read_only(where: Path, on: bool = True) -> None:
    """Remount the tmpfs at ``where`` read-only (or writable again)."""
    subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(where)], check=True)
