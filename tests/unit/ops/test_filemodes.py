"""Private files: the umask setting and the tightening of what older versions left readable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from b2bua.ops.filemodes import apply_umask, parse_umask, tighten


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("text, mask", [("0077", 0o077), ("077", 0o077), ("0027", 0o027), ("0", 0)])
def test_umask_is_read_as_octal(text: str, mask: int) -> None:
    assert parse_umask(text) == mask


@pytest.mark.parametrize("text, why", [("0088", "not an octal"), ("", "not an octal"), ("77 ", "not an octal"),
                                       ("00777", "not an octal"), ("0177", "deny the service's own user")])
def test_umask_nonsense_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_umask(text)


def test_apply_umask_makes_new_files_and_directories_private(tmp_path: Path) -> None:
    """In a child process: the umask is process-wide."""
    code = ("import sys, pathlib; from b2bua.ops.filemodes import apply_umask; apply_umask('0077');"
            "d = pathlib.Path(sys.argv[1]); (d / 'dir').mkdir(); (d / 'file').write_text('x')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert mode(tmp_path / "dir") == 0o700 and mode(tmp_path / "file") == 0o600


def test_apply_umask_returns_the_previous_one() -> None:
    before = os.umask(0o022)
    try:
        assert apply_umask("0077") == 0o022
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(before)


def test_tighten_takes_what_the_umask_forbids_and_says_so(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    db = var / "b2bua.sqlite"
    db.write_text("")
    db.chmod(0o644)
    token = var / "admin-token"
    token.write_text("")
    token.chmod(0o600)
    with capture_logs() as logs:
        tighten([var, db, token, var / "absent"], "0077")
    assert (mode(var), mode(db), mode(token)) == (0o700, 0o600, 0o600)
    assert [(e["event"], e["path"], e["was"], e["now"]) for e in logs] == [
        ("permissions tightened", str(var), "0o755", "0o700"), ("permissions tightened", str(db), "0o644", "0o600")]


def test_tighten_leaves_a_shared_sticky_directory_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with capture_logs() as logs:
        tighten([shared], "0077")
    assert mode(shared) == 0o1777 and logs == []


def test_tighten_a_looser_umask_keeps_group_read(tmp_path: Path) -> None:
    f = tmp_path / "m.wav"
    f.write_text("")
    f.chmod(0o666)
    tighten([f], "0027")
    assert mode(f) == 0o640
