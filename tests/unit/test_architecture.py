"""The design rules as tests: which floor may import which, no import cycles, pjsua2 only in the SIP engine's
modules, and small modules and functions. Imports are read from the source (every ``import``, also inside
functions and under ``TYPE_CHECKING``: a cycle hidden in a function is still a cycle)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "b2bua"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# b2bua.sip modules that are plain Python (the typed boundary and SIP text helpers); the rest own pjsua2
SIP_PURE = {"b2bua.sip", "b2bua.sip.types", "b2bua.sip.message", "b2bua.sip.digest", "b2bua.sip.config",
            "b2bua.sip.dialog", "b2bua.sip.teardown", "b2bua.sip.options", "b2bua.sip.streams"}

# floor -> the floors it may import (its own included). Floors are named by module prefix; see _floor().
FLOORS: dict[str, set[str]] = {
    "version": set(),
    "ops": {"ops"},
    "media": {"ops", "media"},
    "eventbus": set(),
    "sip-pure": {"sip-pure"},
    "sip-engine": {"version", "ops", "media", "sip-pure", "sip-engine"},
    "calls": {"ops", "media", "sip-pure", "calls"},
    "control": {"ops", "sip-pure", "calls", "control"},
    "store": {"ops", "store", "domain-records"},
    "domain-records": set(),
    "telecommuter": {"ops", "media", "sip-pure", "calls", "control", "eventbus", "domain-records", "telecommuter"},
    "api": {"version", "ops", "control", "eventbus", "domain-records", "telecommuter", "api"},
    "root": {"version", "ops", "media", "eventbus", "sip-pure", "sip-engine", "calls", "control", "store",
             "domain-records", "telecommuter", "api", "root"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _floor(module: str) -> str:
    if module == "b2bua":
        return "version"
    if module == "b2bua.telecommuter.users":
        return "domain-records"  # the domain's record types and repository interface: the store implements it
    if module.startswith("b2bua.sip"):
        return "sip-pure" if module in SIP_PURE else "sip-engine"
    second = module.split(".")[1]
    if second in ("ops", "media", "eventbus", "calls", "control", "store", "telecommuter", "api"):
        return second
    return "root"  # app, lifecycle, cli, __main__: the composition root


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


@cache
def _imports(module: str) -> set[str]:
    """Every b2bua module this one imports (``from b2bua.x import y`` counts as b2bua.x.y if that is a module)."""
    return _imports_in(_modules()[module].read_text(), set(_modules()), module)


def _imports_in(source: str, known: set[str], module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != module}


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


def test_only_the_sip_engine_modules_import_pjsua2() -> None:
    offenders = [m for m, p in _modules().items() if _floor(m) != "sip-engine" and _imports_pjsua2(p)]
    assert offenders == []
    assert _imports_pjsua2(_modules()["b2bua.sip.legs"]), "the pjsua2 subclasses live in the SIP engine modules"


def test_every_module_imports_only_its_own_floor_and_below() -> None:
    wrong = sorted(f"{m} ({_floor(m)}) imports {i} ({_floor(i)})"
                   for m in _modules() for i in _imports(m) if _floor(i) not in FLOORS[_floor(m)])
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for nxt in sorted(graph[m]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycles() -> None:
    assert _cycles({m: _imports(m) for m in _modules()}) == []


def test_the_checker_sees_a_cycle_hidden_in_a_function() -> None:
    """The rule above must be able to fail: two modules importing each other, one of them only inside a
    function (and the other under TYPE_CHECKING), make a cycle."""
    sources = {
        "b2bua.x": "def f() -> None:\n    from b2bua import y\n",
        "b2bua.y": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b2bua.x\n",
        "b2bua.z": "import b2bua.y\n",
    }
    graph = {m: _imports_in(src, set(sources), m) for m, src in sources.items()}
    assert graph == {"b2bua.x": {"b2bua.y"}, "b2bua.y": {"b2bua.x"}, "b2bua.z": {"b2bua.y"}}
    assert _cycles(graph) == [["b2bua.x", "b2bua.y", "b2bua.x"]]


@pytest.mark.parametrize("module", sorted(_modules()))
def test_modules_and_functions_stay_small(module: str) -> None:
    path = _modules()[module]
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module}: {text.count(chr(10))} lines"
    long = [f"{n.name}: {n.end_lineno - n.lineno + 1} lines" for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno is not None
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], module


def test_no_cryptic_aliases_for_our_own_modules() -> None:
    """``import x as br`` hides what a name is (in the product and in its tests); library conventions such as
    ``pjsua2 as pj`` or hypothesis' ``strategies as st`` are not ours and stay."""
    short = []
    for p in [*PKG.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                base = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
                for a in node.names:
                    target = f"{base}.{a.name}" if base else a.name
                    if a.asname and target.startswith("b2bua") and len(a.asname) <= 4:
                        short.append(f"{p.relative_to(ROOT)}: {target} as {a.asname}")
    assert short == []


def test_domain_and_call_logic_do_not_even_load_the_engine() -> None:
    for m in _modules():
        if _floor(m) in ("calls", "control", "telecommuter", "store", "ops", "media", "api"):
            engine_imports = {i for i in _imports(m) if _floor(i) == "sip-engine"}
            assert engine_imports == set(), m
