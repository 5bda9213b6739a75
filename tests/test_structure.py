"""The shape of the code, checked: the core is pure, the package has no import cycles,
and no module is too big to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "coordinator"
CORE = PKG / "core"
MAX_LINES = 400

# What the core may import: the standard library's pure parts, and itself.
CORE_ALLOWED = {"__future__", "bisect", "collections", "dataclasses", "enum", "fractions", "functools", "heapq",
                "itertools", "math", "operator", "re", "typing"}


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> list[str]:
    """Absolute names of the modules ``name`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]  # "from . import x" imports module x
    return out


def test_core_is_pure() -> None:
    """No asyncio, drivers, sockets, clocks, sleeps or randomness inside coordinator/core:
    time and seeds come in as inputs (an AST walk over every import)."""
    mods = _modules(CORE)
    assert len(mods) > 10
    bad = []
    for name, path in mods.items():
        for imp in _imports(name, path):
            top = imp.split(".")[0]
            if imp.startswith("coordinator.core") or top in CORE_ALLOWED:
                continue
            if imp.startswith("coordinator"):
                bad.append(f"{name} imports {imp} (outside the core)")
            else:
                bad.append(f"{name} imports {imp}")
    assert not bad, "\n".join(bad)


def test_purity_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("import time\nfrom asyncio import sleep\nfrom ..service import y\n")
    imports = _imports("coordinator.core.x", tmp_path / "x.py")
    assert "time" in imports and "asyncio" in imports and "coordinator.service" in imports


def test_no_import_cycles() -> None:
    mods = _modules(PKG)
    graph = {name: {i for i in _imports(name, path) if i in mods and i != name} for name, path in mods.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    # a package __init__ that imports nothing of its own is never part of a real cycle
    real = [c for c in cycles if not any(m in ("coordinator", "coordinator.core", "coordinator.http") for m in c)]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def test_modules_are_small() -> None:
    big = {str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"
