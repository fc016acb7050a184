"""``b2bua init``: the explicit first start (issue 24, finding 5). It creates the database once, leaves an
existing one alone, and refuses to recreate one deleted after the node ran unless told to (``--recreate``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.procs import ROOT


def b2bua(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "b2bua", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_init_creates_once_then_leaves_alone_and_refuses_a_deleted_database(tmp_path: Path) -> None:
    db = tmp_path / "var" / "b2bua.sqlite"
    cfg = tmp_path / "b2bua.toml"
    cfg.write_text(f'[store]\npath = "{db}"\n')
    first = b2bua("init", "-c", str(cfg))
    assert first.returncode == 0 and first.stdout.startswith(f"{db}: new database created"), first
    assert db.exists()
    again = b2bua("init", "-c", str(cfg))
    assert again.returncode == 0 and "exists already" in again.stdout and "left as it is" in again.stdout, again
    db.unlink()
    refused = b2bua("init", "-c", str(cfg))
    assert refused.returncode == 2 and not db.exists(), refused
    assert f"the database {db} is gone" in refused.stderr and f"b2bua init -c {cfg} --recreate" in refused.stderr
    assert "Traceback" not in refused.stderr
    recreated = b2bua("init", "-c", str(cfg), "--recreate")
    assert recreated.returncode == 0 and db.exists(), recreated
