"""The pjsua2 thread boundary stays in one place: only b2bua/sip/engine.py may import pjsua2."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "b2bua"
ALLOWED = {PKG / "sip" / "engine.py"}


def _imports_pjsua2(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "pjsua2" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pjsua2":
            return True
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            return True
    return False


def test_only_the_engine_imports_pjsua2() -> None:
    offenders = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if p not in ALLOWED and _imports_pjsua2(p)]
    assert offenders == []
    assert _imports_pjsua2(PKG / "sip" / "engine.py"), "the engine is where pjsua2 lives"


def test_domain_and_call_logic_do_not_even_load_the_engine() -> None:
    for sub in ("calls", "media", "store", "ops"):
        for p in (PKG / sub).rglob("*.py"):
            assert "b2bua.sip.engine" not in p.read_text(), p
