"""The pure core stays sans-I/O: no module of ``stratacache.core`` except ``engine`` imports I/O machinery.

Checked on the source with :mod:`ast` (every ``import`` statement anywhere in the module, including inside functions
and ``TYPE_CHECKING`` blocks, plus ``__import__``/``importlib.import_module`` calls with a literal name), and
transitively through the runtime imports of other ``stratacache`` modules a pure module relies on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stratacache
import stratacache.core

FORBIDDEN = frozenset({"asyncio", "threading", "socket", "sqlite3"})
IMPURE_CORE = frozenset({"engine"})

PACKAGE_DIR = Path(stratacache.__file__).parent
CORE_DIR = Path(stratacache.core.__file__).parent


def pure_core_modules() -> list[str]:
    names = sorted(p.stem for p in CORE_DIR.glob("*.py") if p.stem not in IMPURE_CORE)
    return [f"stratacache.core.{n}" if n != "__init__" else "stratacache.core" for n in names]


def module_path(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "stratacache":
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    path = module_path(module)
    base = package if path is not None and path.name == "__init__.py" else package[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(source: str, module: str = "stratacache.core.x") -> list[tuple[str, int, bool]]:
    """``(imported module, line, runtime)`` for every import in ``source``; runtime is False under TYPE_CHECKING."""
    tree = ast.parse(source)
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, runtime=False)
            for child in node.orelse:
                visit(child, runtime)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, runtime) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            found.append((base, node.lineno, runtime))
            found.extend((f"{base}.{alias.name}", node.lineno, runtime) for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in {"__import__", "import_module"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((arg.value, node.lineno, runtime))
        for child in ast.iter_child_nodes(node):
            visit(child, runtime)

    visit(tree, runtime=True)
    return found


def forbidden_in(source: str, module: str = "stratacache.core.x") -> list[str]:
    return [f"{name} (line {line})" for name, line, _ in imports_of(source, module) if name.split(".")[0] in FORBIDDEN]


# ------------------------------------------------------------------ the checker itself


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import asyncio.tasks",
        "import os, threading",
        "from threading import Lock",
        "from socket import socket as s",
        "import sqlite3 as db",
        "def f():\n    import asyncio\n",
        "class C:\n    def m(self):\n        from asyncio import sleep\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import asyncio\n",
        "try:\n    import sqlite3\nexcept ImportError:\n    pass\n",
        "__import__('socket')",
        "import importlib\nimportlib.import_module('threading')",
    ],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    assert forbidden_in(source)


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import asyncio_compat_shim",
        "from stratacache.errors import DecodeError",
        "x = 'import asyncio'",
        "# import threading",
    ],
)
def test_checker_accepts_innocent_code(source: str) -> None:
    assert forbidden_in(source) == []


def test_relative_imports_are_resolved() -> None:
    names = [n for n, _, _ in imports_of("from .keys import build_key\nfrom .. import errors", "stratacache.core.x")]
    assert "stratacache.core.keys" in names
    assert "stratacache.errors" in names


# ------------------------------------------------------------------ the rule


def test_the_pure_modules_are_found() -> None:
    modules = pure_core_modules()
    for expected in ("keys", "config", "freshness", "envelope", "clock"):
        assert f"stratacache.core.{expected}" in modules
    assert "stratacache.core.engine" not in modules


@pytest.mark.parametrize("module", pure_core_modules())
def test_pure_core_module_imports_no_io(module: str) -> None:
    path = module_path(module)
    assert path is not None
    assert forbidden_in(path.read_text(encoding="utf-8"), module) == []


def reachable_io(module: str) -> list[str]:
    """Forbidden imports reachable from ``module`` through runtime imports of ``stratacache`` submodules.

    Package ``__init__`` re-exports are not followed (importing any submodule runs ``stratacache/__init__.py``,
    which re-exports the engine); ``TYPE_CHECKING`` imports are followed only for ``module`` itself.
    """
    seen: set[str] = set()
    chain: dict[str, str] = {}
    todo = [module]
    offenders: list[str] = []
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        path = module_path(current)
        if path is None:
            continue
        for name, line, runtime in imports_of(path.read_text(encoding="utf-8"), current):
            if name.split(".")[0] in FORBIDDEN:
                if runtime or current == module:
                    offenders.append(f"{name} (line {line} of {' <- '.join(_chain(current, chain))})")
                continue
            if not runtime or not name.startswith("stratacache."):
                continue
            target = module_path(name)
            if target is None or target.name == "__init__.py":
                continue
            chain.setdefault(name, current)
            todo.append(name)
    return offenders


def _chain(module: str, chain: dict[str, str]) -> list[str]:
    out = [module]
    while out[-1] in chain:
        out.append(chain[out[-1]])
    return out


def test_reachable_io_follows_imports_into_other_modules() -> None:
    # guards the rule below: modules known to reach threading/sqlite3 directly or through another module
    assert any("threading" in o for o in reachable_io("stratacache.tiers.memory"))
    assert any("sqlite3" in o and "tiers.sqlite" in o for o in reachable_io("stratacache.tiers.specs"))
    assert any("asyncio" in o for o in reachable_io("stratacache.core.engine"))


@pytest.mark.parametrize("module", pure_core_modules())
def test_pure_core_module_does_not_reach_io_through_other_stratacache_modules(module: str) -> None:
    assert reachable_io(module) == []
